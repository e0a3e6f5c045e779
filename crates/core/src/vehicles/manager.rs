//! The vehicles task: reads cars, matches them to slaves, runs the plan, answers requests.

mod amps;

use super::plan::{self, Action, CarView, SlaveView};
use super::{
    CarAction, CommandRecord, Job, VehicleError, VehicleHandle, VehicleOverview, VehicleRequest,
    VehicleStatus, VehiclesConfig,
};
use crate::engine::{Command, EngineHandle};
use crate::model::Status;
use crate::plugin::{ChargeState, VehicleApi};
use crate::protocol::{SlaveState, TwcId};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How often the task looks at the cars when nothing else wakes it.
const TICK: Duration = Duration::from_secs(5);
/// How often the vehicle list is read again.
const LIST_EVERY: Duration = Duration::from_secs(3600);

struct Car {
    api: usize,
    status: VehicleStatus,
    data_at: Option<Instant>,
    polled_at: Option<Instant>,
    force_poll: bool,
    start_stop_at: Option<Instant>,
    limit_try_at: Option<Instant>,
    /// When the last `set_charging_amps` went out.
    amps_at: Option<Instant>,
    can_command: bool,
}

struct Manager {
    apis: Vec<(String, Box<dyn VehicleApi>)>,
    cfg: VehiclesConfig,
    engine: EngineHandle,
    cars: BTreeMap<String, Car>,
    listed_at: Vec<Option<Instant>>,
    offers: BTreeMap<TwcId, (u16, Instant)>,
    sent: Vec<VehicleStatus>,
    overview: watch::Sender<VehicleOverview>,
}

/// Start the vehicles task for `apis` (name, plugin) next to `engine`.
pub fn spawn(
    apis: Vec<(String, Box<dyn VehicleApi>)>,
    cfg: VehiclesConfig,
    engine: EngineHandle,
) -> VehicleHandle {
    let (tx, rx) = mpsc::channel(16);
    let (otx, orx) = watch::channel(VehicleOverview::default());
    let n = apis.len();
    let m = Manager {
        apis,
        cfg,
        engine,
        cars: BTreeMap::new(),
        listed_at: vec![None; n],
        offers: BTreeMap::new(),
        sent: Vec::new(),
        overview: otx,
    };
    let span = crate::plugin::plugin_span("vehicle", "vehicles");
    crate::plugin::spawn(tracing::Instrument::instrument(m.run(rx), span));
    VehicleHandle { tx, overview: orx }
}

impl Manager {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut status_rx = self.engine.watch_status();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                job = rx.recv(), if open => match job {
                    Some(j) => {
                        let r = self.request(j.req).await;
                        let _ = j.reply.send(r);
                    }
                    None => open = false,
                },
                _ = tick.tick() => {}
                r = status_rx.changed() => if r.is_err() {
                    debug!("Engine stopped: vehicles task ends");
                    return;
                },
            }
            self.step().await;
        }
    }

    /// One round: read what is due, decide, command, publish.
    async fn step(&mut self) {
        let status = self.engine.status();
        let now = Instant::now();
        self.track_offers(&status, now);
        self.list_due(now).await;
        self.match_slaves(&status);
        self.poll_due(now).await;
        let views: Vec<CarView> = self
            .cars
            .keys()
            .map(|v| self.view(v, &status, now))
            .collect();
        for v in &views {
            if let Some(c) = self.cars.get_mut(&v.vin) {
                c.status.below_min_soc = plan::below_min_soc(v, &self.cfg);
            }
            for a in plan::plan(v, &status.policy.name, &self.cfg) {
                self.act(a, &status, now).await;
            }
        }
        self.car_amps(&status, now).await;
        self.mark_low_current();
        self.publish(now).await;
    }

    fn track_offers(&mut self, status: &Status, now: Instant) {
        for s in &status.slaves {
            let e = self.offers.entry(s.id).or_insert((s.offered.0, now));
            if e.0 != s.offered.0 {
                *e = (s.offered.0, now);
            }
        }
        self.offers
            .retain(|id, _| status.slaves.iter().any(|s| s.id == *id));
    }

    async fn list_due(&mut self, now: Instant) {
        for i in 0..self.apis.len() {
            if self.listed_at[i].is_some_and(|t| now - t < LIST_EVERY) {
                continue;
            }
            let (name, api) = &self.apis[i];
            self.listed_at[i] = Some(now);
            match api.list().await {
                Ok(list) => {
                    let can_command = api.account().can_command;
                    for v in list {
                        let car = self.cars.entry(v.vin.clone()).or_insert_with(|| {
                            info!(vin = %v.vin, source = %name, "Vehicle found");
                            Car {
                                api: i,
                                status: VehicleStatus {
                                    vin: v.vin.clone(),
                                    source: name.clone(),
                                    stale: true,
                                    ..VehicleStatus::default()
                                },
                                data_at: None,
                                polled_at: None,
                                force_poll: false,
                                start_stop_at: None,
                                limit_try_at: None,
                                amps_at: None,
                                can_command,
                            }
                        });
                        // A car two plugins know is commanded by the one that can.
                        if can_command && !car.can_command {
                            car.api = i;
                            car.can_command = true;
                            car.status.source = name.clone();
                        }
                        if v.name.is_some() {
                            car.status.name = v.name;
                        }
                    }
                }
                Err(e) => {
                    warn!(source = %name, error = %e.chain(), "Cannot list vehicles; retrying later");
                    // Try again after a poll interval rather than an hour.
                    self.listed_at[i] =
                        Some(now - LIST_EVERY + Duration::from_secs(self.cfg.poll_secs));
                }
            }
        }
    }

    fn match_slaves(&mut self, status: &Status) {
        let plugged_cars = self
            .cars
            .values()
            .filter(|c| c.status.plugged_in == Some(true) && c.status.at_home != Some(false))
            .count();
        for (vin, car) in &mut self.cars {
            let sole_match = |status: &Status, car: &Car, _vin: &str| {
                sole_slave_without_vin(status, car, plugged_cars)
            };
            let slave = status.slaves.iter().find(|s| {
                let same =
                    |x: &Option<String>| x.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(vin));
                !s.timed_out
                    && (same(&s.vin) || (same(&s.last_vin) && SlaveState(s.state).car_connected()))
            });
            let now_at = slave.map(|s| s.id).or_else(|| sole_match(status, car, vin));
            if now_at != car.status.slave {
                match now_at {
                    Some(id) => info!(vin = %vin, slave = %id, "Vehicle arrived at a TWC"),
                    None => info!(vin = %vin, "Vehicle left its TWC"),
                }
                // Arrival and departure: read the car now. A car plugged in again starts from
                // its own charging amps.
                car.force_poll = true;
                if now_at.is_some() {
                    car.status.told_amps = None;
                }
                car.status.slave = now_at;
            }
        }
    }

    async fn poll_due(&mut self, now: Instant) {
        let vins: Vec<String> = self.cars.keys().cloned().collect();
        for vin in vins {
            let car = &self.cars[&vin];
            let every = if car.status.slave.is_some() {
                self.cfg.poll_secs
            } else {
                self.cfg.idle_poll_secs
            };
            let due = car.force_poll
                || car
                    .polled_at
                    .is_none_or(|t| now - t >= Duration::from_secs(every));
            if !due {
                continue;
            }
            let r = self.apis[car.api].1.charge_state(&vin).await;
            let car = self.cars.get_mut(&vin).expect("listed");
            car.force_poll = false;
            car.polled_at = Some(now);
            match r {
                Ok(cs) => {
                    if car.status.last_error.take().is_some() {
                        info!(vin = %vin, "Vehicle readable again");
                    }
                    apply(&mut car.status, &cs);
                    let age = cs.age_secs.unwrap_or(0.0);
                    let age = Duration::from_secs_f64(if age.is_finite() {
                        age.clamp(0.0, 1e9)
                    } else {
                        1e9
                    });
                    // An asleep car answers with cached values: they keep their age. Values of
                    // unknown age (older than the clock goes back) count as stale.
                    if cs.soc_pct.is_some() {
                        car.data_at = now.checked_sub(age);
                    }
                }
                Err(e) => {
                    let msg = e.chain();
                    if car.status.last_error.as_deref() != Some(msg.as_str()) {
                        warn!(vin = %vin, error = %msg, "Cannot read vehicle");
                    }
                    car.status.last_error = Some(msg);
                }
            }
        }
    }

    fn view(&self, vin: &str, status: &Status, now: Instant) -> CarView {
        let car = &self.cars[vin];
        let fresh = car
            .data_at
            .is_some_and(|t| now - t <= Duration::from_secs(self.cfg.stale_after_secs));
        let slave = car.status.slave.and_then(|id| {
            let s = status.slaves.iter().find(|s| s.id == id)?;
            let since = self
                .offers
                .get(&id)
                .map(|(_, t)| now - *t)
                .unwrap_or_default();
            Some(SlaveView {
                id,
                offered_a: s.offered.amps(),
                actual_a: s.actual.amps(),
                offer_age_secs: since.as_secs_f64(),
                min_amps: status.min_amps_per_twc.max(s.version.min_amps()).amps(),
            })
        });
        CarView {
            vin: vin.to_string(),
            slave,
            fresh,
            soc_pct: car.status.soc_pct,
            limit_pct: car.status.limit_pct,
            charging_state: car.status.charging_state.clone(),
            policy_limit_pct: car.status.policy_limit_pct,
            own_limit_pct: car.status.own_limit_pct,
            since_start_stop_secs: car.start_stop_at.map(|t| (now - t).as_secs_f64()),
            // A failed limit command is retried after the command interval, not every tick.
            can_command: car.can_command
                && car
                    .limit_try_at
                    .is_none_or(|t| now - t >= Duration::from_secs(self.cfg.command_interval_secs)),
        }
    }

    async fn act(&mut self, a: Action, status: &Status, now: Instant) {
        match a {
            Action::SetLimit { vin, pct, own } => {
                let reason = format!("policy \"{}\"", status.policy.name);
                if let Some(c) = self.cars.get_mut(&vin) {
                    c.limit_try_at = Some(now);
                    if own.is_some() {
                        c.status.own_limit_pct = own;
                    }
                }
                if self
                    .send(&vin, CarAction::SetLimit(pct), &reason, status)
                    .await
                    .is_ok()
                    && let Some(c) = self.cars.get_mut(&vin)
                {
                    c.status.policy_limit_pct = Some(pct);
                    c.status.limit_pct = Some(f64::from(pct));
                }
            }
            Action::RestoreLimit { vin, pct } => {
                if let Some(c) = self.cars.get_mut(&vin) {
                    c.limit_try_at = Some(now);
                }
                let reason = "restoring the car's own limit";
                if self
                    .send(&vin, CarAction::SetLimit(pct), reason, status)
                    .await
                    .is_ok()
                    && let Some(c) = self.cars.get_mut(&vin)
                {
                    c.status.policy_limit_pct = None;
                    c.status.own_limit_pct = None;
                    c.status.limit_pct = Some(f64::from(pct));
                }
            }
            Action::Start { vin, reason } => {
                self.start_stop(&vin, CarAction::Start, &reason, status, now)
                    .await
            }
            Action::Stop { vin, reason } => {
                self.start_stop(&vin, CarAction::Stop, &reason, status, now)
                    .await
            }
        }
    }

    async fn start_stop(
        &mut self,
        vin: &str,
        action: CarAction,
        reason: &str,
        status: &Status,
        now: Instant,
    ) {
        if let Some(c) = self.cars.get_mut(vin) {
            c.start_stop_at = Some(now);
        }
        let _ = self.send(vin, action, reason, status).await;
    }

    /// Send one command, record it on the car, log it.
    async fn send(
        &mut self,
        vin: &str,
        action: CarAction,
        reason: &str,
        status: &Status,
    ) -> Result<(), VehicleError> {
        let Some(car) = self.cars.get(vin) else {
            return Err(VehicleError::NotFound(format!("no vehicle with VIN {vin}")));
        };
        let api = &self.apis[car.api].1;
        let r = match action {
            CarAction::Start => api.start(vin).await,
            CarAction::Stop => api.stop(vin).await,
            CarAction::SetLimit(p) => api.set_limit(vin, p).await,
            CarAction::SetAmps(a) => api.set_amps(vin, a).await,
            CarAction::Wake => api.wake(vin).await,
        };
        let (ok, result) = match &r {
            Ok(()) => {
                info!(vin = %vin, command = %action, reason = %reason, "Vehicle command done");
                (true, "done".to_string())
            }
            Err(e) => {
                warn!(vin = %vin, command = %action, reason = %reason, error = %e.chain(), "Vehicle command failed");
                (false, e.chain())
            }
        };
        if let Some(c) = self.cars.get_mut(vin) {
            c.status.last_command = Some(CommandRecord {
                command: action.to_string(),
                reason: reason.to_string(),
                ok,
                result: result.clone(),
                at: status.updated_at,
            });
        }
        r.map_err(|_| VehicleError::Failed(result))
    }

    async fn publish(&mut self, now: Instant) {
        let mut list = Vec::new();
        for c in self.cars.values_mut() {
            c.status.stale = c
                .data_at
                .is_none_or(|t| now - t > Duration::from_secs(self.cfg.stale_after_secs));
            c.status.data_age_secs = c.data_at.map(|t| (now - t).as_secs_f64().round());
            list.push(c.status.clone());
        }
        let accounts = self.apis.iter().map(|(_, a)| a.account()).collect();
        self.overview.send_replace(VehicleOverview {
            accounts,
            vehicles: list.clone(),
        });
        // The engine gets the cars without their ages, so that it hears of changes only.
        let for_engine: Vec<VehicleStatus> = list
            .into_iter()
            .map(|mut v| {
                v.data_age_secs = None;
                v
            })
            .collect();
        if for_engine != self.sent {
            self.sent = for_engine.clone();
            if let Err(e) = self.engine.command(Command::SetVehicles(for_engine)).await {
                debug!(error = %e, "Engine did not take the vehicles");
            }
        }
    }

    async fn request(&mut self, req: VehicleRequest) -> Result<String, VehicleError> {
        let status = self.engine.status();
        match req {
            VehicleRequest::Command { vin, action } => {
                match action {
                    CarAction::SetLimit(p) if !(50..=100).contains(&p) => {
                        return Err(VehicleError::Invalid(format!(
                            "percent must be between 50 and 100, got {p}"
                        )));
                    }
                    CarAction::SetAmps(a) if !(1..=48).contains(&a) => {
                        return Err(VehicleError::Invalid(format!(
                            "amps must be between 1 and 48, got {a}"
                        )));
                    }
                    _ => {}
                }
                let vins: Vec<String> = match vin {
                    Some(v) => {
                        let found = self.cars.keys().find(|k| k.eq_ignore_ascii_case(&v));
                        vec![found.cloned().ok_or_else(|| {
                            VehicleError::NotFound(format!("no vehicle with VIN {v}"))
                        })?]
                    }
                    None => self
                        .cars
                        .iter()
                        .filter(|(_, c)| c.status.slave.is_some() || c.status.at_home == Some(true))
                        .map(|(k, _)| k.clone())
                        .collect(),
                };
                if vins.is_empty() {
                    return Err(VehicleError::NotFound("no vehicle is at home".into()));
                }
                let mut failed = Vec::new();
                for v in &vins {
                    if let Err(e) = self.send(v, action, "API request", &status).await {
                        failed.push(format!("{v}: {e}"));
                    }
                }
                if failed.is_empty() {
                    Ok(format!("{action} sent to {}", vins.join(", ")))
                } else {
                    Err(VehicleError::Failed(failed.join("; ")))
                }
            }
            VehicleRequest::CheckArrival | VehicleRequest::CheckDeparture => {
                for c in self.cars.values_mut() {
                    c.force_poll = true;
                }
                Ok(format!("checking {} vehicle(s)", self.cars.len()))
            }
            VehicleRequest::LoginUrl {
                plugin,
                redirect_uri,
            } => {
                let i = self.login_plugin(plugin.as_deref())?;
                self.apis[i]
                    .1
                    .login_url(&redirect_uri)
                    .map_err(|e| VehicleError::Failed(e.chain()))
            }
            VehicleRequest::FinishLogin {
                plugin,
                code,
                state,
            } => {
                let i = self.login_plugin(plugin.as_deref())?;
                self.apis[i]
                    .1
                    .finish_login(&code, &state)
                    .await
                    .map_err(|e| match e.kind() {
                        crate::plugin::ErrorKind::Config | crate::plugin::ErrorKind::Protocol => {
                            VehicleError::Invalid(e.chain())
                        }
                        _ => VehicleError::Failed(e.chain()),
                    })?;
                // Logged in: read the cars now.
                self.listed_at[i] = None;
                info!(source = %self.apis[i].0, "Logged in to the vehicle API");
                Ok("logged in".into())
            }
        }
    }

    fn login_plugin(&self, name: Option<&str>) -> Result<usize, VehicleError> {
        let can: Vec<usize> = (0..self.apis.len())
            .filter(|&i| self.apis[i].1.account().login_supported)
            .collect();
        match name {
            Some(n) => can
                .into_iter()
                .find(|&i| self.apis[i].0 == n)
                .ok_or_else(|| {
                    VehicleError::NotFound(format!("no vehicle plugin {n:?} with a login"))
                }),
            None => match can.as_slice() {
                [i] => Ok(*i),
                [] => Err(VehicleError::NotFound(
                    "no enabled vehicle plugin has a login (enable [vehicle.teslaapi])".into(),
                )),
                _ => Err(VehicleError::Invalid(
                    "several vehicle plugins have a login: name one with `plugin`".into(),
                )),
            },
        }
    }
}

/// Copy what a read returned onto the car's status; unknown stays unknown.
fn apply(s: &mut VehicleStatus, cs: &ChargeState) {
    s.state = cs.state.clone().or(s.state.take());
    if cs.soc_pct.is_some() {
        s.soc_pct = cs.soc_pct;
        s.limit_pct = cs.limit_pct.or(s.limit_pct);
        s.charging_state = cs.charging_state.clone();
        s.plugged_in = cs.plugged_in;
    }
    if cs.latitude.is_some() {
        s.latitude = cs.latitude;
        s.longitude = cs.longitude;
    }
    if cs.at_home.is_some() {
        s.at_home = cs.at_home;
    }
    if s.slave.is_some() {
        s.at_home = Some(true);
    }
    if cs.name.is_some() {
        s.name = cs.name.clone();
    }
    if cs.max_amps.is_some() {
        s.max_amps = cs.max_amps;
    }
}

/// A TWC reports the VIN only once the car draws: until then (green tracking on a cloudy day)
/// the one car the API says is plugged in at home is matched to the one TWC with a car and no
/// VIN, when there is exactly one of each.
fn sole_slave_without_vin(status: &Status, car: &Car, plugged_cars: usize) -> Option<TwcId> {
    if plugged_cars != 1 || car.status.plugged_in != Some(true) || car.status.at_home == Some(false)
    {
        return None;
    }
    let open: Vec<TwcId> = status
        .slaves
        .iter()
        .filter(|s| !s.timed_out && s.vin.is_none() && SlaveState(s.state).car_connected())
        .map(|s| s.id)
        .collect();
    match open.as_slice() {
        [id] => Some(*id),
        _ => None,
    }
}
