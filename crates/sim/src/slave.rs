//! One simulated slave and its car as a sans-I/O state machine: messages in, messages out, time
//! passed in as `tokio::time::Instant`.

mod messages;

use crate::config::{CarConfig, SlaveConfig};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info};
use twc_core::model::CentiAmps;
use twc_core::protocol::{MasterCommand, Message, MessageCode, ProtocolVersion, SlaveState, TwcId};

/// While unlinked a slave sends `FD E2` this often (spec §5).
pub const LINK_READY_INTERVAL: Duration = Duration::from_secs(10);
/// Without master heartbeats for this long the slave considers itself unlinked again (spec §5/§11:
/// DRACO measured ~10 s).
pub const LINK_LOST_AFTER: Duration = Duration::from_secs(10);
/// Without master heartbeats for this long the car stops (spec §5: 20–30 s).
pub const CAR_STOPS_AFTER: Duration = Duration::from_secs(30);
/// Delay between the master's 2nd `FB E2` and the first of the five `FD E2` answers.
pub const BURST_REPLY_DELAY: Duration = Duration::from_millis(200);
/// Spacing of the five `FD E2` answers.
pub const BURST_REPLY_SPACING: Duration = Duration::from_millis(100);
/// A car draws this much under its offer (spec §4.3: ~5.2 A on 6 A, ~38.8–39.2 A on 40 A).
pub const DRAW_SHORTFALL: f64 = 0.8;
/// Below this draw a starting car reports state `08` (spec §4.2: ramping from 0 to ~1.3 A).
const STARTING_BELOW_AMPS: f64 = 1.3;

/// Amps to centiamps, rounded to the nearest (0.8 A under 10 A must read 9.20 A, not 9.19 A).
fn centi(a: f64) -> CentiAmps {
    CentiAmps::from_f64((a * 100.0).round() / 100.0 + 0.000_1)
}

/// What a test or a UI can read about one slave.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveSnapshot {
    /// Position on the bus (index into the list given to `SimBus::new`).
    pub index: usize,
    /// Present TWCID (changes after a clash).
    pub id: TwcId,
    /// Present sign.
    pub sign: u8,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// True while master heartbeats reach it.
    pub linked: bool,
    /// The master whose heartbeats it answers.
    pub master: Option<TwcId>,
    /// State byte it would report now.
    pub state: SlaveState,
    /// The limit it mirrors from the master.
    pub limit: CentiAmps,
    /// The highest limit it was ever given.
    pub max_limit_seen: CentiAmps,
    /// What the car draws (without noise).
    pub actual: CentiAmps,
    /// Lifetime counter, whole kWh.
    pub lifetime_kwh: u32,
    /// Energy delivered since the simulation started, Wh (fractional).
    pub energy_wh: f64,
    /// The car's config (plugged or not).
    pub car: CarConfig,
    /// True after `FC B2` until `FC B1` or a re-plug.
    pub contactor_open: bool,
    /// Car state of charge, when modelled.
    pub soc_pct: Option<f64>,
    /// Master heartbeats answered.
    pub heartbeats: u64,
    /// `FD E2` frames sent.
    pub link_readies_sent: u64,
    /// True after an error command (`02`) until [`crate::SimHandle::reset`].
    pub error_latched: bool,
}

/// A simulated slave with its car.
#[derive(Debug)]
pub struct SlaveSim {
    index: usize,
    cfg: SlaveConfig,
    car: CarConfig,
    noise: CentiAmps,
    /// Its bus wires are cut: it neither hears the master nor is heard.
    cut: bool,
    // link
    master: Option<TwcId>,
    last_hb: Option<Instant>,
    linked: bool,
    next_link_ready: Option<Instant>,
    burst_replies: VecDeque<Instant>,
    fb_e2_count: u32,
    last_fb_e2: Option<Instant>,
    // control
    limit: CentiAmps,
    max_limit_seen: CentiAmps,
    limit_since_plug: bool,
    contactor_open: bool,
    stopped_by_master_loss: bool,
    error_latched: bool,
    error_reported: bool,
    // physics
    actual: f64,
    /// Since when the target draw is below the actual (for `faults.lower_after`).
    lower_since: Option<Instant>,
    last_update: Instant,
    energy_wh: f64,
    soc: Option<f64>,
    // counters
    heartbeats: u64,
    link_readies_sent: u64,
}

impl SlaveSim {
    /// A slave powered on at `now`; its first `FD E2` goes out at `now + first_link_ready`.
    pub fn new(
        index: usize,
        cfg: SlaveConfig,
        car: CarConfig,
        now: Instant,
        first_link_ready: Duration,
    ) -> Self {
        let soc = car.soc_pct;
        SlaveSim {
            index,
            cfg,
            car,
            noise: CentiAmps::ZERO,
            cut: false,
            master: None,
            last_hb: None,
            linked: false,
            next_link_ready: Some(now + first_link_ready),
            burst_replies: VecDeque::new(),
            fb_e2_count: 0,
            last_fb_e2: None,
            limit: CentiAmps::ZERO,
            max_limit_seen: CentiAmps::ZERO,
            limit_since_plug: false,
            contactor_open: false,
            stopped_by_master_loss: false,
            error_latched: false,
            error_reported: false,
            actual: 0.0,
            lower_since: None,
            last_update: now,
            energy_wh: 0.0,
            soc,
            heartbeats: 0,
            link_readies_sent: 0,
        }
    }

    /// Present TWCID.
    pub fn id(&self) -> TwcId {
        self.cfg.id
    }

    /// The unit's configuration (with its present TWCID and sign).
    pub fn config(&self) -> &SlaveConfig {
        &self.cfg
    }

    /// Restart the link-ready schedule (a new stream was attached).
    pub fn restart_link(&mut self, now: Instant, first: Duration) {
        if !self.linked {
            self.next_link_ready = Some(now + first);
        }
    }

    fn offer(&self) -> CentiAmps {
        self.limit.min(self.car.max_amps)
    }

    fn full(&self) -> bool {
        self.soc.is_some_and(|s| s >= 100.0) && self.car.battery_kwh.is_some()
    }

    fn may_charge(&self) -> bool {
        self.car.plugged_in
            && !self.contactor_open
            && !self.stopped_by_master_loss
            && !self.error_latched
            && !self.full()
            && self.offer() > CentiAmps::ZERO
            && self.offer() >= self.car.min_amps
    }

    fn target_draw(&self) -> f64 {
        let f = &self.car.faults;
        if self.may_charge() {
            let want = (self.offer().amps() - DRAW_SHORTFALL).max(0.0) + f.overdraw.max(0.0);
            want.max(f.draws_at_zero.max(0.0))
        } else if f.draws_at_zero > 0.0
            && self.car.plugged_in
            && !self.contactor_open
            && !self.stopped_by_master_loss
            && !self.error_latched
            && !self.full()
        {
            // Offered 0 A (or below its minimum) and drawing anyway.
            f.draws_at_zero
        } else {
            0.0
        }
    }

    /// The state byte it reports now (spec §4.2).
    pub fn state(&self) -> SlaveState {
        if self.error_latched {
            return SlaveState::ERROR;
        }
        if !self.car.plugged_in {
            return SlaveState::READY;
        }
        if self.contactor_open || self.full() {
            return SlaveState::CONNECTED_NOT_CHARGING;
        }
        if self.stopped_by_master_loss {
            // Shows 08 once a master is back and until it sends a new limit; 02 while alone.
            return if self.linked {
                SlaveState::STARTING
            } else {
                SlaveState::ERROR
            };
        }
        if self.limit == CentiAmps::ZERO && !self.limit_since_plug {
            return SlaveState::CONNECTED_READY;
        }
        if !self.may_charge() {
            return SlaveState::CONNECTED_NOT_CHARGING;
        }
        if self.actual < STARTING_BELOW_AMPS {
            SlaveState::STARTING
        } else {
            SlaveState::CHARGING
        }
    }

    /// Move the car and the clocks forward to `now`.
    pub fn advance(&mut self, now: Instant) {
        if now <= self.last_update {
            return;
        }
        // Master loss first, at the instants it happened, so the energy integral stops in time.
        if let Some(hb) = self.last_hb {
            let lost_at = hb + LINK_LOST_AFTER;
            if self.linked && now >= lost_at {
                self.integrate(lost_at);
                self.linked = false;
                self.next_link_ready = Some(lost_at);
                info!(slave = %self.cfg.id, "No heartbeat for {} s: link lost, advertising again", LINK_LOST_AFTER.as_secs());
            }
            let stop_at = hb + CAR_STOPS_AFTER + self.car.faults.stops_late_by;
            if !self.linked && !self.stopped_by_master_loss && now >= stop_at && self.car.plugged_in
            {
                self.integrate(stop_at);
                self.stopped_by_master_loss = true;
                self.actual = 0.0;
                info!(slave = %self.cfg.id, "No heartbeat for {} s: the car stops", CAR_STOPS_AFTER.as_secs());
            }
        }
        self.integrate(now);
    }

    fn integrate(&mut self, now: Instant) {
        if now <= self.last_update {
            return;
        }
        let dt = (now - self.last_update).as_secs_f64();
        self.last_update = now;
        let target = self.target_draw();
        let a0 = self.actual;
        let a1 = if target > a0 {
            self.lower_since = None;
            (a0 + self.car.ramp_amps_per_sec.max(0.0) * dt).min(target)
        } else if target < a0 {
            // A car obeys a lower pilot at once (well within the 5 s IEC 61851 allows), unless
            // it is modelled as slow to follow.
            let delay = self.car.faults.lower_after;
            let since = *self
                .lower_since
                .get_or_insert(self.last_update - Duration::from_secs_f64(dt));
            if delay.is_zero() || now - since >= delay {
                self.lower_since = None;
                target
            } else {
                a0
            }
        } else {
            self.lower_since = None;
            target
        };
        self.actual = a1;
        let wh = (a0 + a1) / 2.0 * self.cfg.volts_sum() * dt / 3600.0;
        if wh > 0.0 {
            self.energy_wh += wh;
            if let (Some(soc), Some(kwh)) = (self.soc.as_mut(), self.car.battery_kwh)
                && kwh > 0.0
            {
                *soc = (*soc + wh / 10.0 / kwh).min(100.0);
            }
        }
    }

    fn lifetime_kwh(&self) -> u32 {
        self.cfg
            .lifetime_kwh
            .saturating_add((self.energy_wh / 1000.0).floor() as u32)
    }

    fn reported_actual(&self) -> CentiAmps {
        let base = self.actual;
        let n = self.noise.amps();
        let noisy = if n > 0.0 {
            if base > 0.0 {
                base + (rand::random::<f64>() * 2.0 - 1.0) * n
            } else {
                rand::random::<f64>() * n
            }
        } else {
            base
        };
        centi(noisy)
    }

    /// The next instant at which [`SlaveSim::poll`] has something to do.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let mut due: Option<Instant> = None;
        let mut add = |t: Instant| due = Some(due.map_or(t, |d: Instant| d.min(t)));
        if self.error_latched {
            // Silent until reset; the car is off.
            return None;
        }
        if !self.linked
            && let Some(t) = self.next_link_ready
        {
            add(t);
        }
        if let Some(&t) = self.burst_replies.front() {
            add(t);
        }
        if let Some(hb) = self.last_hb {
            if self.linked {
                add(hb + LINK_LOST_AFTER);
            } else if !self.stopped_by_master_loss && self.car.plugged_in {
                add(hb + CAR_STOPS_AFTER + self.car.faults.stops_late_by);
            }
        }
        if self.car.plugged_in && self.actual != self.target_draw() {
            // Keep the ramp (and a slow car's lowering) and the energy counter moving even
            // without traffic.
            add(self.last_update + Duration::from_secs(1));
        }
        due
    }

    /// Frames due at `now` (link-readies), after advancing the car.
    pub fn poll(&mut self, now: Instant) -> Vec<Message> {
        self.advance(now);
        if self.cut {
            // What it says goes nowhere: keep its timers moving so it does not spin.
            self.burst_replies.clear();
            if let Some(t) = self.next_link_ready
                && t <= now
            {
                self.next_link_ready = Some(now + LINK_READY_INTERVAL);
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.error_latched {
            self.burst_replies.clear();
            return out;
        }
        while self.burst_replies.front().is_some_and(|t| *t <= now) {
            self.burst_replies.pop_front();
            out.push(self.link_ready());
        }
        if !self.linked
            && let Some(t) = self.next_link_ready
            && t <= now
        {
            out.push(self.link_ready());
            self.next_link_ready = Some(now + LINK_READY_INTERVAL);
        }
        out
    }

    fn link_ready(&mut self) -> Message {
        self.link_readies_sent += 1;
        Message::SlaveLinkReady {
            slave: self.cfg.id,
            sign: self.cfg.sign,
            max_amps: self.cfg.max_amps,
            version: self.cfg.version,
        }
    }

    /// Replace the car (plug in, unplug, another car). A re-plug clears an `FC B2` stop.
    pub fn set_car(&mut self, car: CarConfig, now: Instant) {
        self.advance(now);
        if car.plugged_in != self.car.plugged_in || car.vin != self.car.vin {
            info!(slave = %self.cfg.id, plugged_in = car.plugged_in, vin = ?car.vin, "Car changed");
            self.contactor_open = false;
            self.stopped_by_master_loss = false;
            self.limit_since_plug = self.limit > CentiAmps::ZERO;
            self.actual = 0.0;
            self.soc = car.soc_pct;
        }
        if !car.plugged_in {
            self.actual = 0.0;
        }
        self.car = car;
    }

    /// The car's config.
    pub fn car(&self) -> &CarConfig {
        &self.car
    }

    /// Noise added to the reported draw (± this much while charging, 0…this much when idle).
    pub fn set_noise(&mut self, noise: CentiAmps) {
        self.noise = noise;
    }

    /// Cut (`true`) or reconnect its bus wires. While cut it hears no heartbeat, so its car
    /// stops after [`CAR_STOPS_AFTER`] (plus any `stops_late_by`), and the master times it out.
    pub fn set_cut(&mut self, cut: bool, now: Instant) {
        self.advance(now);
        self.cut = cut;
    }

    /// Hold the reset button: clears an error latched by command `02`.
    pub fn reset(&mut self, now: Instant) {
        self.advance(now);
        self.error_latched = false;
        self.error_reported = false;
        self.linked = false;
        self.last_hb = None;
        self.next_link_ready = Some(now);
    }

    /// The limit it mirrors and what the car draws (without noise): the two fields of
    /// [`SlaveSim::snapshot`] a replay samples every second, without cloning the car.
    pub fn draw(&self) -> (CentiAmps, CentiAmps) {
        (self.limit, centi(self.actual))
    }

    /// What a test can read.
    pub fn snapshot(&self) -> SlaveSnapshot {
        SlaveSnapshot {
            index: self.index,
            id: self.cfg.id,
            sign: self.cfg.sign,
            version: self.cfg.version,
            linked: self.linked,
            master: self.master,
            state: self.state(),
            limit: self.limit,
            max_limit_seen: self.max_limit_seen,
            actual: centi(self.actual),
            lifetime_kwh: self.lifetime_kwh(),
            energy_wh: self.energy_wh,
            car: self.car.clone(),
            contactor_open: self.contactor_open,
            soc_pct: self.soc,
            heartbeats: self.heartbeats,
            link_readies_sent: self.link_readies_sent,
            error_latched: self.error_latched,
        }
    }
}
