//! The hub: owns every charger's state, answers their CALLs, reports their connectors to the
//! engine as load points and sends each the engine's allocation as a charging profile —
//! lowerings first, raises only once no lowering is waiting for its answer.

use super::CentralConfig;
use super::charger::Charger;
use super::conn::{self, Event};
use crate::rpc::{self, Frame};
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};
use twc_core::engine::{Command, CommandError, EngineHandle};
use twc_core::model::{CentiAmps, LoadPointReport, Status};
use twc_core::plugin::{ErrorKind, PluginError};

/// A CALL of ours; `profile` = (target connector, limit A, a lowering).
#[derive(Debug, Clone)]
struct Out {
    action: &'static str,
    payload: Value,
    profile: Option<(u32, f64, bool)>,
}

/// A connected charger.
struct Link {
    conn: u64,
    out: mpsc::Sender<Message>,
    _kill: oneshot::Sender<()>,
    queue: VecDeque<Out>,
    in_flight: Option<(String, Out, Instant)>,
    last_seen: Instant,
}

impl Link {
    fn lowering(&self) -> bool {
        self.queue
            .iter()
            .chain(self.in_flight.as_ref().map(|(_, o, _)| o))
            .any(|o| o.profile.is_some_and(|p| p.2))
    }
}

struct Hub {
    cfg: Arc<CentralConfig>,
    chargers: BTreeMap<String, Charger>,
    links: BTreeMap<String, Link>,
    /// The limit last queued per charger and target connector.
    sent: BTreeMap<String, BTreeMap<u32, f64>>,
    next_tx: i64,
    msg_id: u64,
}

fn lp_name(id: &str, c: u32) -> String {
    format!("{}.{id}.{c}", crate::NAME)
}

impl Hub {
    fn profile(&self, target: u32, limit: f64) -> Value {
        let start = (Utc::now() - chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        json!({"connectorId": target, "csChargingProfiles": {
            "chargingProfileId": self.cfg.profile_id + i64::from(target),
            "stackLevel": self.cfg.stack_level,
            "chargingProfilePurpose": self.cfg.profile.as_str(),
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": start,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        }})
    }

    /// Queue the allocation changes: lowerings now, raises when no lowering is pending.
    fn sync_profiles(&mut self, status: &Status) {
        let alloc: BTreeMap<&str, CentiAmps> = status
            .load_points
            .iter()
            .map(|l| (l.name.as_str(), l.allocated))
            .collect();
        let (mut lowers, mut raises) = (Vec::new(), Vec::new());
        for (id, ch) in &self.chargers {
            if ch.boot.is_none() || !self.links.contains_key(id) {
                continue;
            }
            let per: Vec<(u32, f64)> = ch
                .connectors
                .keys()
                .map(|c| {
                    let a = alloc.get(lp_name(id, *c).as_str()).copied();
                    (*c, a.unwrap_or_default().amps())
                })
                .collect();
            let targets = match self.cfg.profile {
                super::ProfileKind::TxDefaultProfile => per,
                super::ProfileKind::ChargePointMaxProfile if per.is_empty() => vec![],
                super::ProfileKind::ChargePointMaxProfile => {
                    vec![(0, per.iter().map(|(_, a)| a).sum())]
                }
            };
            for (t, limit) in targets {
                // Multiples of 0.1 A, rounded down.
                let limit = (limit * 10.0).floor() / 10.0;
                let prev = self.sent.get(id).and_then(|m| m.get(&t)).copied();
                match prev {
                    Some(p) if (p - limit).abs() < 0.05 => {}
                    Some(p) if limit > p => raises.push((id.clone(), t, limit)),
                    _ => lowers.push((id.clone(), t, limit)),
                }
            }
        }
        for (id, t, limit) in lowers {
            self.queue_profile(&id, t, limit, true);
        }
        if !self.links.values().any(Link::lowering) {
            for (id, t, limit) in raises {
                self.queue_profile(&id, t, limit, false);
            }
        }
    }

    fn queue_profile(&mut self, id: &str, t: u32, limit: f64, lower: bool) {
        let payload = self.profile(t, limit);
        let Some(link) = self.links.get_mut(id) else {
            return;
        };
        debug!(plugin = "ocpp", charger = %id, connector = t, limit, lower, "Profile queued");
        let out = Out {
            action: "SetChargingProfile",
            payload,
            profile: Some((t, limit, lower)),
        };
        match link
            .queue
            .iter_mut()
            .find(|o| o.profile.is_some_and(|p| p.0 == t))
        {
            Some(o) => {
                let was_lower = o.profile.is_some_and(|p| p.2);
                *o = out;
                o.profile = Some((t, limit, lower || was_lower));
            }
            None => link.queue.push_back(out),
        }
        self.sent
            .entry(id.to_string())
            .or_default()
            .insert(t, limit);
    }

    /// Send the next CALL of each charger that waits for no answer.
    fn pump(&mut self) {
        let mut dead = Vec::new();
        for (id, link) in self.links.iter_mut() {
            if link.in_flight.is_some() {
                continue;
            }
            let Some(out) = link.queue.pop_front() else {
                continue;
            };
            self.msg_id += 1;
            let mid = format!("cs-{}", self.msg_id);
            let frame = rpc::call(&mid, out.action, &out.payload);
            if link.out.try_send(Message::text(frame)).is_err() {
                dead.push(id.clone());
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(self.cfg.call_timeout_secs);
            link.in_flight = Some((mid, out, deadline));
        }
        for id in dead {
            self.gone(&id, "it does not read what we send");
        }
    }

    fn gone(&mut self, id: &str, why: &str) {
        if self.links.remove(id).is_some() {
            warn!(plugin = "ocpp", charger = %id, reason = %why, "Charger gone: its connectors count at their maximum once stale");
        }
        self.sent.remove(id);
        if let Some(ch) = self.chargers.get_mut(id) {
            ch.gone_since = Some(Instant::now());
        }
    }

    fn answered(&mut self, id: &str, out: &Out, status: Option<&str>, error: Option<String>) {
        let Some(ch) = self.chargers.get_mut(id) else {
            return;
        };
        if let Some((t, limit, _)) = out.profile {
            ch.profile_problem = match (status, error) {
                (Some("Accepted"), None) => None,
                (s, e) => {
                    let p = format!(
                        "refused SetChargingProfile ({limit} A on connector {t}): {}",
                        e.unwrap_or_else(|| s.unwrap_or("no status").to_string())
                    );
                    warn!(plugin = "ocpp", charger = %id, "{p}");
                    Some(p)
                }
            };
        }
    }

    /// Handle one event; the connectors whose report changed go to `changed`.
    fn event(&mut self, ev: Event, changed: &mut Vec<(String, u32)>) {
        match ev {
            Event::Open {
                id,
                conn,
                out,
                kill,
            } => {
                let Some(limits) = self.cfg.limits(&id) else {
                    return;
                };
                let ch = self
                    .chargers
                    .entry(id.clone())
                    .or_insert_with(|| Charger::new(id.clone(), limits));
                ch.gone_since = None;
                self.sent.remove(&id);
                // A second connection under the same id replaces the first.
                self.links.insert(
                    id,
                    Link {
                        conn,
                        out,
                        _kill: kill,
                        queue: VecDeque::new(),
                        in_flight: None,
                        last_seen: Instant::now(),
                    },
                );
            }
            Event::Closed { id, conn, why } => {
                if self.links.get(&id).is_some_and(|l| l.conn == conn) {
                    self.gone(&id, &why);
                    if let Some(ch) = self.chargers.get(&id) {
                        changed.extend(ch.connectors.keys().map(|c| (id.clone(), *c)));
                    }
                }
            }
            Event::Text { id, conn, text } => {
                let Some(link) = self.links.get_mut(&id).filter(|l| l.conn == conn) else {
                    return;
                };
                link.last_seen = Instant::now();
                let reply = match rpc::parse(&text) {
                    Ok(Frame::Call {
                        id: mid,
                        action,
                        payload,
                    }) => {
                        let ch = self.chargers.get_mut(&id).expect("opened");
                        let mut cs = Vec::new();
                        let r = ch.handle(&self.cfg, &action, &payload, &mut self.next_tx, &mut cs);
                        changed.extend(cs.into_iter().map(|c| (id.clone(), c)));
                        if action == "BootNotification" && r.is_ok() {
                            self.booted(&id);
                        }
                        Some(match r {
                            Ok(v) => rpc::result(&mid, &v),
                            Err(e) => {
                                warn!(plugin = "ocpp", charger = %id, action = %action.chars().take(40).collect::<String>(), error = %e.description, "Refused a message from a charger");
                                rpc::error(&mid, &e)
                            }
                        })
                    }
                    Ok(Frame::Result { id: mid, payload }) => {
                        if let Some((_, out, _)) = link.in_flight.take_if(|(i, _, _)| *i == mid) {
                            let st = payload["status"].as_str().map(str::to_string);
                            self.answered(&id, &out, st.as_deref(), None);
                        }
                        None
                    }
                    Ok(Frame::Error {
                        id: mid,
                        code,
                        description,
                    }) => {
                        if let Some((_, out, _)) = link.in_flight.take_if(|(i, _, _)| *i == mid) {
                            self.answered(&id, &out, None, Some(format!("{code}: {description}")));
                        }
                        None
                    }
                    Err(bad) => {
                        warn!(plugin = "ocpp", charger = %id, error = %bad.error.description, "Unreadable message from a charger");
                        Some(rpc::error(bad.id.as_deref().unwrap_or("-1"), &bad.error))
                    }
                };
                if let Some(r) = reply
                    && let Some(link) = self.links.get(&id)
                    && link.out.try_send(Message::text(r)).is_err()
                {
                    self.gone(&id, "it does not read what we send");
                }
            }
        }
    }

    /// After an accepted boot: the meter values we need, then the profiles anew.
    fn booted(&mut self, id: &str) {
        self.sent.remove(id);
        let Some(link) = self.links.get_mut(id) else {
            return;
        };
        for (k, v) in [
            (
                "MeterValuesSampledData",
                "Current.Import,Power.Active.Import,Energy.Active.Import.Register".to_string(),
            ),
            (
                "MeterValueSampleInterval",
                self.cfg.meter_interval_secs.to_string(),
            ),
        ] {
            link.queue.push_back(Out {
                action: "ChangeConfiguration",
                payload: json!({"key": k, "value": v}),
                profile: None,
            });
        }
    }

    fn report(&mut self, id: &str, c: u32, status: &Status, now: Instant) -> Command {
        let name = lp_name(id, c);
        let cfg = self.cfg.clone();
        let sent = self.sent.get(id).and_then(|m| {
            m.get(&c)
                .or_else(|| {
                    m.get(&0)
                        .filter(|_| cfg.profile == super::ProfileKind::ChargePointMaxProfile)
                })
                .copied()
        });
        let ch = self.chargers.get_mut(id).expect("listed");
        let m = ch.measurement(c, &cfg, sent, now);
        let given = status
            .load_points
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.allocated)
            .unwrap_or_default();
        let mut problem = ch.follow(c, &cfg, m.as_ref().map(|m| m.draw), given, now);
        if let Some(t) = ch.gone_since {
            problem = Some(format!(
                "disconnected {} s ago: counted at its maximum once its reading is stale",
                now.duration_since(t).as_secs()
            ));
        }
        Command::ReportLoadPoint(Box::new(LoadPointReport {
            via_car: None,
            name,
            kind: crate::NAME.into(),
            max: CentiAmps::from_f64(ch.limits.max),
            min: CentiAmps::from_f64(ch.limits.min),
            controllable: true,
            stale_after_secs: cfg.stale_after_secs,
            measured: m,
            problem,
        }))
    }

    /// Timeouts, silent and long-gone chargers; the load points to remove.
    fn housekeeping(&mut self, now: Instant) -> Vec<String> {
        let silent = Duration::from_secs(self.cfg.heartbeat_interval_secs * 2 + 10);
        let mut dead = Vec::new();
        for (id, link) in self.links.iter_mut() {
            if let Some((_, out, _)) = link.in_flight.take_if(|(_, _, d)| now >= *d) {
                dead.push((id.clone(), Some(out)));
            } else if now.duration_since(link.last_seen) > silent {
                dead.push((id.clone(), None));
            }
        }
        for (id, out) in dead {
            match out {
                Some(out) => self.answered(&id, &out, None, Some("no answer in time".into())),
                None => self.gone(&id, "silent for more than twice its heartbeat interval"),
            }
        }
        let after = Duration::from_secs(self.cfg.remove_after_secs);
        let old: Vec<String> = self
            .chargers
            .iter()
            .filter(|(_, c)| c.gone_since.is_some_and(|t| now.duration_since(t) >= after))
            .map(|(id, _)| id.clone())
            .collect();
        let mut removed = Vec::new();
        for id in old {
            info!(plugin = "ocpp", charger = %id, "Charger removed after being disconnected for remove_after_secs");
            if let Some(ch) = self.chargers.remove(&id) {
                removed.extend(ch.connectors.keys().map(|c| lp_name(&id, *c)));
            }
        }
        removed
    }
}

/// Run the central system until the engine stops.
pub(crate) async fn run(cfg: CentralConfig, engine: EngineHandle) -> Result<(), PluginError> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| {
            PluginError::new(
                ErrorKind::Config,
                crate::NAME,
                format!("central.listen {:?}: {e}", cfg.listen),
            )
        })?;
    info!(plugin = "ocpp", listen = %cfg.listen, "OCPP central system listening for chargers");
    let cfg = Arc::new(cfg);
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(256);
    let accept = twc_core::plugin::spawn(conn::listen(listener, cfg.clone(), ev_tx));
    let mut hub = Hub {
        cfg,
        chargers: BTreeMap::new(),
        links: BTreeMap::new(),
        sent: BTreeMap::new(),
        next_tx: Utc::now()
            .timestamp()
            .clamp(1, i64::from(i32::MAX) - 1_000_000),
        msg_id: 0,
    };
    let mut status_rx = engine.watch_status();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopping: Option<Instant> = None;
    loop {
        let mut changed = Vec::new();
        let mut cmds = Vec::new();
        tokio::select! {
            Some(ev) = ev_rx.recv() => hub.event(ev, &mut changed),
            r = status_rx.changed(), if stopping.is_none() => {
                if r.is_err() {
                    // The engine has stopped: every charger gets 0 A, then we end.
                    info!(plugin = "ocpp", "Stopping: 0 A to every OCPP charger");
                    let mut st = status_rx.borrow().clone();
                    for l in &mut st.load_points {
                        l.allocated = CentiAmps::ZERO;
                    }
                    hub.sync_profiles(&st);
                    stopping = Some(Instant::now() + Duration::from_secs(3));
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for name in hub.housekeeping(now) {
                    cmds.push(Command::RemoveLoadPoint { name });
                }
                for (id, ch) in &hub.chargers {
                    changed.extend(ch.connectors.keys().map(|c| (id.clone(), *c)));
                }
            }
        }
        if stopping.is_none() {
            let status = engine.status();
            let now = Instant::now();
            changed.sort();
            changed.dedup();
            for (id, c) in changed {
                if hub.chargers.contains_key(&id) {
                    cmds.push(hub.report(&id, c, &status, now));
                }
            }
            for c in cmds {
                if let Err(CommandError::Stopped) = engine.command(c).await {
                    break;
                }
            }
            hub.sync_profiles(&engine.status());
        }
        hub.pump();
        if let Some(end) = stopping {
            let idle = hub
                .links
                .values()
                .all(|l| l.queue.is_empty() && l.in_flight.is_none());
            if idle || Instant::now() >= end {
                accept.abort();
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
