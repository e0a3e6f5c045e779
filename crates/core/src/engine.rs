//! The engine: one task that owns all mutable state (the master, readings, settings, policy) and
//! talks to everything else through channels.
//!
//! ```text
//! Comms ──frames──▶ bus task ──▶ engine ◀── readings ── one task per EMS source
//!   ▲                              │  ◀── commands (mpsc + oneshot) ── control surfaces
//!   └──── frames (heartbeats) ─────┤
//!                                  ├── watch<Status>  ──▶ control surfaces, status publishers
//!                                  └── broadcast<Event> ─▶ loggers (each with its own queue)
//! ```
//!
//! Everything runs on tokio's clock, so tests and the simulator can use paused time.

use crate::master::{Master, MasterConfig, MasterEvent, RequestError};
use crate::model::{
    BusStatus, CentiAmps, ChargeNow, ChargeSession, ConsumptionOffset, EnergyReading, Event,
    GridLimit, HomeLocation, OffsetUnit, PolicyStatus, Schedule, Settings, SitePower, SlaveStatus,
    SourceStatus, Status,
};
use crate::plugin::{
    Comms, EmsSource, Logger, PluginError, PollSettings, Received, StatusPublisher,
};
use crate::policy::{Context, PolicyConfig, PolicyEngine, Webhook};
use crate::protocol::{DecodeStats, Frame, FrameError, TwcId};
use crate::settings_store::SettingsStore;
use crate::share::{self, Demand, ShareInput};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, trace, warn};

/// Engine settings (from `[wiring]`, `[master]`, `[site]`).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bus master settings, including the wiring limits.
    pub master: MasterConfig,
    /// Never offer a car less than this (unless 0).
    pub min_amps_per_twc: CentiAmps,
    /// Volts per phase when the slaves report none.
    pub voltage: f64,
    /// Phases the chargers are wired for.
    pub phases: u8,
    /// True when the consumption a meter reports includes the chargers.
    pub consumption_includes_chargers: bool,
    /// How often the policy is re-evaluated without new input (staleness, end of Charge Now).
    pub tick: Duration,
    /// How often a `SlaveStatus` event is emitted per slave.
    pub slave_status_interval: Duration,
    /// Capacity of the event broadcast (each logger has its own queue behind it).
    pub event_capacity: usize,
    /// Longest graceful shutdown before we stop transmitting anyway.
    pub shutdown_timeout: Duration,
    /// `[policy]`, `[green]`, `[grid]`.
    pub policy: PolicyConfig,
    /// Where settings are saved after every settings-changing command (`None` = not saved).
    pub settings_store: Option<SettingsStore>,
    /// Wall-clock time at start (`None` = now); the simulator replays a day from its first
    /// timestamp.
    pub start_wall: Option<DateTime<Utc>>,
    /// Which source provides which quantity (`[site.sources]`).
    pub sources: crate::combine::SourcesConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            master: MasterConfig::default(),
            min_amps_per_twc: CentiAmps::from_amps(6),
            voltage: 230.0,
            phases: 1,
            consumption_includes_chargers: true,
            tick: Duration::from_secs(1),
            slave_status_interval: Duration::from_secs(60),
            event_capacity: 1024,
            shutdown_timeout: Duration::from_secs(10),
            policy: PolicyConfig::default(),
            settings_store: None,
            start_wall: None,
            sources: crate::combine::SourcesConfig::default(),
        }
    }
}

/// An energy source with its name and poll settings.
pub struct SourceSpec {
    /// Registry name (or instance name).
    pub name: String,
    /// The source.
    pub source: Box<dyn EmsSource>,
    /// Interval and staleness.
    pub poll: PollSettings,
}

/// What control surfaces may ask of the engine. Everything is validated; nothing is clamped
/// silently (safety invariant 5).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Command {
    /// Charge at `amps` for the whole site for `duration`.
    ChargeNow {
        /// Amps (≤ wiring max for all TWCs).
        amps: f64,
        /// How long.
        duration: Duration,
    },
    /// End Charge Now.
    CancelChargeNow,
    /// Change the non-scheduled action (`charge`, `stop`, `green`) and/or its amps.
    SetNonScheduled {
        /// New action.
        action: Option<String>,
        /// New amps.
        amps: Option<f64>,
    },
    /// Send `FC B1` to one slave or all.
    StartCharging {
        /// `None` = every slave.
        slave: Option<TwcId>,
    },
    /// Send `FC B2` to one slave or all.
    StopCharging {
        /// `None` = every slave.
        slave: Option<TwcId>,
    },
    /// Replace the runtime settings (validated as a whole).
    ReplaceSettings(Box<Settings>),
    /// Apply a JSON merge patch (RFC 7386) to the settings as they are when the engine applies
    /// it (no stale read-modify-write); top-level keys must exist. Validated as a whole.
    PatchSettings(serde_json::Value),
    /// Replace the charging schedule.
    SetSchedule(Box<Schedule>),
    /// Add or change (`Some`) or delete (`None`) a named consumption offset.
    SetOffset {
        /// Offset name.
        name: String,
        /// The offset, or `None` to delete it.
        offset: Option<ConsumptionOffset>,
    },
    /// Set (`Some`) or clear (`None`) the runtime grid-import limit; never above `[grid]`.
    SetGridLimit(Option<GridLimit>),
    /// Set the green-tracking flex amps.
    SetFlexAmps(f64),
    /// Replace the VIN allow and/or deny lists.
    SetVinLists {
        /// New allow list (empty = everyone not denied).
        allow: Option<Vec<String>>,
        /// New deny list.
        deny: Option<Vec<String>>,
    },
    /// Set (`Some`) or clear (`None`) the sharing priority of a VIN or TWCID.
    SetPriority {
        /// A VIN or a TWCID (4 hex digits).
        key: String,
        /// Higher is served first.
        priority: Option<i32>,
    },
    /// Set (`Some`) or clear (`None`) the home location (sunrise/sunset).
    SetHome(Option<HomeLocation>),
    /// Store (`Some`) or delete (`None`) a free-form setting (TWCManager's `setSetting`).
    SetSetting {
        /// Key.
        key: String,
        /// Value.
        value: Option<String>,
    },
    /// Send one query the protocol spec marks safe (`FB EB`, `FB EC`, `FB ED`, VIN parts, …) to
    /// one slave or all, for diagnostics; the reply shows in `Status.bus.last_reply`.
    DebugQuery {
        /// `None` = every slave.
        slave: Option<TwcId>,
        /// The query code.
        code: crate::protocol::MessageCode,
    },
    /// Offer 0 A to every slave, wait for them to confirm, stop transmitting and end the engine.
    Shutdown,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The request is invalid (→ HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The request is valid but cannot be done now (→ HTTP 409/503).
    #[error("{0}")]
    Unavailable(String),
    /// Too many commands are waiting (→ HTTP 429, MQTT "busy"); heartbeats go first.
    #[error("busy: {0}")]
    Busy(String),
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Settings, CommandError>>;

struct Request {
    cmd: Command,
    reply: oneshot::Sender<Result<Settings, CommandError>>,
}

/// A cheap, cloneable handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    cmd: mpsc::Sender<Request>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<Event>,
}

impl EngineHandle {
    /// The latest status snapshot.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }
    /// A receiver that sees every new snapshot.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }
    /// A receiver of events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
    /// Send a command; returns the settings after it was applied.
    pub async fn command(&self, cmd: Command) -> Result<Settings, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Request { cmd, reply: tx })
            .await
            .map_err(|_| CommandError::Stopped)?;
        rx.await.map_err(|_| CommandError::Stopped)?
    }
}

/// How long a slave that timed out stays in `Status.slaves` (with `timed_out`) unless it links
/// again; after that it is forgotten, as TWCManager does at once.
const LOST_SLAVE_SHOWN: Duration = Duration::from_secs(600);

enum BusIn {
    Rx(Received),
    Down(String),
    Up,
    /// The transport's decoder counters, when its garbage or partial-frame counts moved.
    Stats(DecodeStats),
}

struct SourceState {
    name: String,
    poll: PollSettings,
    last: Option<EnergyReading>,
    last_error: Option<String>,
    errors: u64,
    was_stale: bool,
    /// Fields of its readings dropped as unusable (non-finite or implausible), warned once per
    /// change.
    dropped: Vec<String>,
}

/// The running engine's parts, returned by [`spawn`].
pub struct Engine {
    /// Handle for control surfaces.
    pub handle: EngineHandle,
    /// Resolves when the engine has shut down (after [`Command::Shutdown`]).
    pub task: JoinHandle<()>,
}

/// Start the engine with a bus transport, energy sources and initial settings.
pub fn spawn(
    cfg: EngineConfig,
    comms: Box<dyn Comms>,
    sources: Vec<SourceSpec>,
    settings: Settings,
) -> Engine {
    spawn_with(cfg, comms, sources, settings, |_| {})
}

/// As [`spawn`], calling `before_start` with the handle before the engine's loop runs: sinks
/// subscribed there see every event from the first (subscribing after `spawn` races the loop
/// on a multi-threaded runtime, and the first policy and link events were missed).
pub fn spawn_with(
    cfg: EngineConfig,
    comms: Box<dyn Comms>,
    sources: Vec<SourceSpec>,
    settings: Settings,
    before_start: impl FnOnce(&EngineHandle),
) -> Engine {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (events_tx, _) = broadcast::channel(cfg.event_capacity);
    let master = Master::new(cfg.master.clone());
    let (status_tx, status_rx) = watch::channel(Status::default());
    let (bus_out_tx, bus_out_rx) = mpsc::channel::<Frame>(32);
    let (bus_in_tx, bus_in_rx) = mpsc::channel::<BusIn>(256);
    let bus_task = tokio::spawn(bus_task(comms, bus_out_rx, bus_in_tx));
    let (read_tx, read_rx) = mpsc::channel(64);
    let mut states = Vec::new();
    for (i, spec) in sources.into_iter().enumerate() {
        states.push(SourceState {
            name: spec.name.clone(),
            poll: spec.poll,
            last: None,
            last_error: None,
            errors: 0,
            was_stale: false,
            dropped: Vec::new(),
        });
        tokio::spawn(ems_task(i, spec, read_tx.clone()));
    }
    drop(read_tx);
    let now = Instant::now();
    let policy_engine = PolicyEngine::new(cfg.policy.clone());
    let start_wall = cfg.start_wall.unwrap_or_else(Utc::now);
    let (settings_tx, settings_writer) = match cfg.settings_store.clone() {
        Some(store) => {
            let (tx, task) = spawn_settings_writer(store, settings.clone());
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    let battery_expected = cfg.sources.battery.is_some();
    let core = Core {
        cfg,
        master,
        settings,
        sources: states,
        events: events_tx.clone(),
        status: status_tx,
        bus: BusStatus::default(),
        decode: DecodeStats::default(),
        policy: PolicyStatus::default(),
        combined: None,
        start_instant: now,
        start_wall,
        policy_engine,
        webhooks: Vec::new(),
        http: None,
        denied_logged: BTreeMap::new(),
        draw_history: BTreeMap::new(),
        paired: None,
        unpaired: VecDeque::new(),
        pair_pending: false,
        battery_expected,
        std_start: std::time::Instant::now(),
        settings_tx,
        settings_writer,
        site: SitePower::default(),
        car_vin: BTreeMap::new(),
        combine_problems: Vec::new(),
        sessions: BTreeMap::new(),
        session_wh: BTreeMap::new(),
        last_slave_event: BTreeMap::new(),
        logged_actual: BTreeMap::new(),
        lost_slaves: BTreeMap::new(),
        bus_out: bus_out_tx,
    };
    let handle = EngineHandle {
        cmd: cmd_tx,
        status: status_rx,
        events: events_tx,
    };
    before_start(&handle);
    let task = tokio::spawn(core.run(cmd_rx, bus_in_rx, read_rx, bus_task));
    Engine { handle, task }
}

async fn bus_task(
    mut comms: Box<dyn Comms>,
    mut out: mpsc::Receiver<Frame>,
    tx: mpsc::Sender<BusIn>,
) {
    let mut backoff = Duration::from_millis(500);
    let mut reported = (0, 0);
    loop {
        let failure = tokio::select! {
            r = comms.recv() => match r {
                Ok(item) => {
                    if tx.send(BusIn::Rx(item)).await.is_err() { return; }
                    if let Some(s) = comms.decode_stats()
                        && (s.garbage_bytes, s.timed_out) != reported
                    {
                        reported = (s.garbage_bytes, s.timed_out);
                        let _ = tx.send(BusIn::Stats(s)).await;
                    }
                    continue;
                }
                Err(e) => e,
            },
            f = out.recv() => match f {
                Some(frame) => match comms.send(&frame).await {
                    Ok(()) => { backoff = Duration::from_millis(500); continue; }
                    Err(e) => e,
                },
                None => return,
            },
        };
        let _ = tx.send(BusIn::Down(failure.chain())).await;
        // Retry with backoff until the link is back; frames queued meanwhile are dropped (the
        // next heartbeat round carries fresh values).
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
            while out.try_recv().is_ok() {}
            if out.is_closed() {
                return;
            }
            match comms.reconnect().await {
                Ok(()) => {
                    let _ = tx.send(BusIn::Up).await;
                    break;
                }
                Err(e) => debug!(error = %e.chain(), "Reconnect failed"),
            }
        }
    }
}

async fn ems_task(
    index: usize,
    spec: SourceSpec,
    tx: mpsc::Sender<(usize, Result<EnergyReading, PluginError>)>,
) {
    let mut iv = tokio::time::interval(spec.poll.interval);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let limit = spec.poll.interval.max(Duration::from_secs(5)) * 2;
    loop {
        iv.tick().await;
        let r = match tokio::time::timeout(limit, spec.source.read()).await {
            Ok(r) => r,
            Err(_) => Err(PluginError::new(
                crate::plugin::ErrorKind::Transient,
                spec.name.clone(),
                format!("no answer within {} s", limit.as_secs()),
            )),
        };
        if tx.send((index, r)).await.is_err() {
            return;
        }
    }
}

struct Core {
    cfg: EngineConfig,
    master: Master,
    settings: Settings,
    sources: Vec<SourceState>,
    events: broadcast::Sender<Event>,
    status: watch::Sender<Status>,
    bus: BusStatus,
    decode: DecodeStats,
    policy: PolicyStatus,
    combined: Option<EnergyReading>,
    start_instant: Instant,
    start_wall: DateTime<Utc>,
    sessions: BTreeMap<TwcId, ChargeSession>,
    /// Energy of each open session integrated from the reported draw, Wh, and when last added
    /// to (the lifetime counter has whole kWh only).
    session_wh: BTreeMap<TwcId, (f64, Instant)>,
    last_slave_event: BTreeMap<TwcId, Instant>,
    logged_actual: BTreeMap<TwcId, CentiAmps>,
    /// Slaves that timed out, as last seen and since when: shown with `timed_out` until they
    /// link again or [`LOST_SLAVE_SHOWN`] has passed (the master forgets them at once).
    lost_slaves: BTreeMap<TwcId, (SlaveStatus, Instant)>,
    bus_out: mpsc::Sender<Frame>,
    policy_engine: PolicyEngine,
    webhooks: Vec<(Webhook, String)>,
    http: Option<reqwest::Client>,
    denied_logged: BTreeMap<TwcId, String>,
    /// What each slave reported its car drew, A, with when: a reading is paired with the draw
    /// at the time it was *measured* (see [`Core::charger_for`]).
    draw_history: BTreeMap<TwcId, VecDeque<(Instant, f64)>>,
    /// The last reading that could be paired, with the chargers' draw at its time.
    paired: Option<(EnergyReading, f64)>,
    /// Newer combined readings waiting for the slaves' reports after their measuring time.
    unpaired: VecDeque<EnergyReading>,
    /// A newer reading waits for the slaves' next reports: re-evaluate on each heartbeat.
    pair_pending: bool,
    /// True once a battery is configured or any source reported battery power: from then on a
    /// missing battery reading makes derived grid values unknown, never 0 W.
    battery_expected: bool,
    /// Real elapsed time next to tokio's, so the wall clock follows the system clock (NTP
    /// steps on a Pi without RTC) yet advances with paused time in tests.
    std_start: std::time::Instant,
    /// The site's power as the policy saw it at the last evaluation.
    site: SitePower,
    /// Settings to save; a writer task saves the latest off the engine loop.
    settings_tx: Option<watch::Sender<Settings>>,
    settings_writer: Option<JoinHandle<()>>,
    /// The last problems reported while combining sources (warned once per change).
    combine_problems: Vec<String>,
    /// The VIN of the car plugged into each slave, kept after its session ends.
    car_vin: BTreeMap<TwcId, String>,
}

impl Core {
    /// Wall-clock time. A simulation (`start_wall` set) runs from its first timestamp on tokio's
    /// clock. Otherwise the system clock, so that a clock set by NTP after boot is followed, plus
    /// however far tokio's clock has run ahead of real time (only under paused time in tests).
    fn wall(&self, now: Instant) -> DateTime<Utc> {
        let tokio_elapsed = now - self.start_instant;
        if self.cfg.start_wall.is_some() {
            return self.start_wall
                + chrono::Duration::from_std(tokio_elapsed).unwrap_or(chrono::Duration::zero());
        }
        let ahead = tokio_elapsed.saturating_sub(self.std_start.elapsed());
        Utc::now() + chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::zero())
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    async fn run(
        mut self,
        mut cmd_rx: mpsc::Receiver<Request>,
        mut bus_rx: mpsc::Receiver<BusIn>,
        mut read_rx: mpsc::Receiver<(usize, Result<EnergyReading, PluginError>)>,
        bus_task: JoinHandle<()>,
    ) {
        info!(
            master = %self.master.id(),
            sign = format!("{:02X}", self.master.sign()),
            wiring_max_all = %self.cfg.master.wiring_max_all,
            wiring_max_per_twc = %self.cfg.master.wiring_max_per_twc,
            "Engine started as bus master"
        );
        self.bus.link_up = true;
        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown: Option<(Instant, Vec<Reply>)> = None;
        let mut reads_open = true;
        self.recompute(Instant::now());
        loop {
            let now = Instant::now();
            if let Some((started, _)) = &shutdown
                && (self.master.shutdown_complete() || now - *started >= self.cfg.shutdown_timeout)
            {
                break;
            }
            let wake = self.master.next_wakeup(now);
            // Order matters under load: a due heartbeat first, then the bus, the tick and the
            // readings, and commands last, so that no flood of commands (nor of frames from a
            // noisy bridge) can delay a heartbeat or freeze the offer.
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(wake) => self.transmit(Instant::now()).await,
                _ = tick.tick() => {
                    let now = Instant::now();
                    let ev = self.master.check_timeouts(now);
                    self.on_master_events(ev, now);
                    self.recompute(now);
                    self.periodic_slave_events(now);
                }
                Some(input) = bus_rx.recv() => self.on_bus(input, Instant::now()),
                r = read_rx.recv(), if reads_open => match r {
                    Some((i, r)) => self.on_reading(i, r, Instant::now()),
                    None => reads_open = false,
                },
                Some(req) = cmd_rx.recv() => {
                    if matches!(req.cmd, Command::Shutdown) {
                        info!("Shutting down: offering 0 A to every slave");
                        self.master.begin_shutdown();
                        shutdown.get_or_insert((Instant::now(), Vec::new())).1.push(req.reply);
                    } else {
                        let r = self.on_command(req.cmd, Instant::now());
                        let _ = req.reply.send(r);
                    }
                }
            }
            self.publish(Instant::now());
        }
        let now = Instant::now();
        let open: Vec<TwcId> = self.sessions.keys().copied().collect();
        for id in open {
            self.end_session(id, now, "twcmanager stopped");
        }
        let n = self.master.slaves().count();
        let confirmed = self
            .master
            .slaves()
            .filter(|s| s.offered == CentiAmps::ZERO && s.reported_limit == CentiAmps::ZERO)
            .count();
        if confirmed == n {
            info!(
                slaves = n,
                "Stopped transmitting; every slave confirmed 0 A"
            );
        } else {
            warn!(
                slaves = n,
                confirmed,
                "Stopped transmitting; not every slave confirmed 0 A (their cars stop within 30 s without heartbeats)"
            );
        }
        drop(self.bus_out);
        let _ = tokio::time::timeout(Duration::from_secs(2), bus_task).await;
        // Let the settings writer finish the last save.
        drop(self.settings_tx.take());
        if let Some(w) = self.settings_writer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
        }
        if let Some((_, waiters)) = shutdown {
            for w in waiters {
                let _ = w.send(Ok(self.settings.clone()));
            }
        }
    }

    async fn transmit(&mut self, now: Instant) {
        if let Some((frame, events)) = self.master.poll_transmit(now) {
            trace!(hex = %frame.hex(), "TX");
            // Never wait for the transport: while the link is down and the bus task backs off,
            // its queue fills; a frame that does not fit is dropped (the next heartbeat round
            // carries fresh values), so commands and readings keep being handled.
            match self.bus_out.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!("Bus queue full (link down?); frame dropped")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.bus.link_up = false,
            }
            self.on_master_events(events, now);
        }
    }

    fn on_bus(&mut self, input: BusIn, now: Instant) {
        match input {
            BusIn::Rx(Received::Frame(f)) => {
                self.decode.frames_ok += 1;
                trace!(hex = %f.hex(), "RX");
                let ev = self.master.handle_frame(&f, now);
                self.on_master_events(ev, now);
            }
            BusIn::Rx(Received::Dropped(e)) => {
                match e {
                    FrameError::BadChecksum { .. } => self.decode.bad_checksum += 1,
                    FrameError::BadEscape(_) => self.decode.bad_escape += 1,
                    FrameError::TooLong => self.decode.too_long += 1,
                    _ => self.decode.bad_length += 1,
                }
                debug!(error = %e, "Dropped a frame");
            }
            BusIn::Down(e) => {
                if self.bus.link_up {
                    warn!(error = %e, "Bus link lost; retrying with backoff");
                    self.emit(Event::Fault {
                        at: self.wall(now),
                        component: "bus".into(),
                        message: format!("bus link lost: {e}"),
                    });
                }
                self.bus.link_up = false;
                self.bus.last_error = Some(e);
            }
            BusIn::Stats(s) => {
                if s.timed_out > self.decode.timed_out {
                    debug!(
                        count = s.timed_out,
                        "Dropped a partial frame after a silence"
                    );
                }
                self.decode.garbage_bytes = s.garbage_bytes;
                self.decode.timed_out = s.timed_out;
            }
            BusIn::Up => {
                info!("Bus link restored");
                self.bus.link_up = true;
                // The slaves may have given up on us: re-link them now, not in 10 s.
                self.master.announce();
            }
        }
    }

    fn on_master_events(&mut self, events: Vec<MasterEvent>, now: Instant) {
        let at = self.wall(now);
        let mut recompute = false;
        for e in events {
            match e {
                MasterEvent::SlaveLinked(id) | MasterEvent::SlaveRelinked(id) => {
                    let s = self.master.slave(id).expect("linked slave exists");
                    info!(slave = %id, max = %s.max_amps, protocol = s.version.number(), "Slave linked");
                    if self.cfg.master.wiring_max_per_twc > s.max_amps {
                        warn!(slave = %id, rated = %s.max_amps, wiring = %self.cfg.master.wiring_max_per_twc,
                            "The wiring limit per TWC is above this unit's rating; offering at most its rating");
                    }
                    self.emit(Event::SlaveLinked {
                        at,
                        slave: id,
                        max_amps: s.max_amps,
                        version: s.version,
                    });
                    recompute = true;
                }
                MasterEvent::SlaveTimedOut(id) => {
                    warn!(slave = %id, "Slave timed out (no heartbeat reply for {} s)", self.cfg.master.slave_timeout.as_secs());
                    let last = self
                        .status
                        .borrow()
                        .slaves
                        .iter()
                        .find(|x| x.id == id)
                        .cloned();
                    if let Some(mut s) = last {
                        s.timed_out = true;
                        s.charging = false;
                        s.offered = CentiAmps::ZERO;
                        s.target = CentiAmps::ZERO;
                        self.lost_slaves.insert(id, (s, now));
                    }
                    self.emit(Event::SlaveTimedOut { at, slave: id });
                    self.draw_history.remove(&id);
                    self.end_session(id, now, "the slave timed out");
                    recompute = true;
                }
                MasterEvent::Heartbeat(id) => {
                    self.note_draw(id, now);
                    self.update_session_energy(id, now);
                    if self.pair_pending {
                        recompute = true;
                    }
                    if let Some(s) = self.master.slave(id) {
                        // A person follows the draw at info: log when it moves by ≥ 1 A.
                        let last = self.logged_actual.get(&id).copied().unwrap_or_default();
                        if s.actual.0.abs_diff(last.0) >= 100 {
                            info!(slave = %id, actual = %s.actual, offered = %s.offered, state = s.state.name(), "Car draw changed");
                            self.logged_actual.insert(id, s.actual);
                        }
                        debug!(slave = %id, state = s.state.name(), limit = %s.reported_limit, actual = %s.actual, offered = %s.offered, "Slave heartbeat");
                    }
                }
                MasterEvent::StateChanged { slave, from, to } => {
                    info!(slave = %slave, from = from.name(), to = to.name(), "Slave state changed");
                    recompute = true;
                }
                MasterEvent::OfferSent { slave, from, to } => {
                    info!(slave = %slave, from = %from, to = %to, "Offer changed");
                    self.emit(Event::OfferChanged {
                        at,
                        slave,
                        from,
                        to,
                    });
                }
                MasterEvent::LifetimeKwh(id) => {
                    if let Some(s) = self.master.slave(id) {
                        debug!(slave = %id, kwh = s.lifetime_kwh, volts = ?s.volts, "Lifetime kWh and voltage");
                        if let (Some(sess), Some(kwh)) =
                            (self.sessions.get_mut(&id), s.lifetime_kwh)
                            && sess.start_kwh.is_none()
                        {
                            sess.start_kwh = Some(kwh);
                        }
                    }
                    self.update_session_energy(id, now);
                }
                MasterEvent::Vin(id, vin) => {
                    if vin.is_empty() {
                        info!(slave = %id, "The car gives no VIN (not a Tesla, or CAN disabled)");
                    } else {
                        info!(slave = %id, vin = %vin, "VIN read");
                    }
                    if let Some(sess) = self.sessions.get_mut(&id) {
                        sess.vin = (!vin.is_empty()).then(|| vin.clone());
                    }
                    self.emit(Event::VinRead { at, slave: id, vin });
                }
                MasterEvent::SessionStarted(id) => {
                    let s = self.master.slave(id).expect("slave exists");
                    let session = ChargeSession {
                        slave: id,
                        vin: s.vin.clone().filter(|v| !v.is_empty()),
                        started_at: at,
                        start_kwh: s.lifetime_kwh,
                        energy_kwh: 0.0,
                    };
                    info!(slave = %id, "Charge session started");
                    self.sessions.insert(id, session.clone());
                    self.session_wh.insert(id, (0.0, now));
                    self.emit(Event::SessionStarted { at, session });
                    recompute = true;
                }
                MasterEvent::SessionEnded(id) => {
                    self.end_session(id, now, "the car stopped drawing");
                    recompute = true;
                }
                MasterEvent::ForeignMaster(id) => {
                    error!(other = %id, "Another master is on the bus: set every TWC's rotary switch to F. Not transmitting until it has been silent");
                    self.emit(Event::Fault {
                        at,
                        component: "bus".into(),
                        message: format!("another master ({id}) is on the bus; set every TWC's rotary switch to F"),
                    });
                }
                MasterEvent::ForeignMasterGone => {
                    info!("The other master has gone quiet; transmitting again")
                }
                MasterEvent::IdClash(id) => {
                    warn!(slave = %id, "TWCID clash; sending link-ready bursts so the slave picks a new TWCID");
                }
                MasterEvent::TooManySlaves(id) => {
                    warn!(slave = %id, max = self.cfg.master.max_slaves, "Ignoring a slave: the bus already has the most slaves allowed");
                }
                MasterEvent::Overdraw {
                    slave,
                    actual,
                    limit,
                } => {
                    warn!(slave = %slave, actual = %actual, limit = %limit, "The car draws more than the slave's limit");
                    self.emit(Event::Fault {
                        at,
                        component: format!("slave {slave}"),
                        message: format!("car draws {actual}, more than the limit {limit}"),
                    });
                }
                MasterEvent::NotFollowing {
                    slave,
                    actual,
                    offered,
                    reported,
                } => {
                    error!(slave = %slave, actual = %actual, offered = %offered, reported = %reported,
                        "The car does not follow its offer: its draw now counts against every other slave's budget");
                    self.emit(Event::Fault {
                        at,
                        component: format!("slave {slave}"),
                        message: format!(
                            "car draws {actual} with {offered} offered (slave reports {reported}); not following"
                        ),
                    });
                    recompute = true;
                }
                MasterEvent::FollowingAgain(slave) => {
                    info!(slave = %slave, "The car follows its offer again");
                    recompute = true;
                }
                MasterEvent::EscalatedStop(slave) => {
                    error!(slave = %slave, "The car kept drawing more than offered: sending the stop command (FC B2); a Tesla needs a re-plug afterwards");
                    self.emit(Event::Fault {
                        at,
                        component: format!("slave {slave}"),
                        message:
                            "car kept drawing more than offered; stop command sent (re-plug needed)"
                                .into(),
                    });
                }
                MasterEvent::Unknown(code) => debug!(code = %code, "Unknown message"),
                MasterEvent::Malformed(e) => debug!(error = %e, "Malformed message"),
                MasterEvent::Ack { slave, start } => {
                    info!(slave = %slave, "{} acknowledged", if start { "Start" } else { "Stop" })
                }
            }
        }
        if recompute {
            self.recompute(now);
        }
    }

    fn on_reading(&mut self, i: usize, r: Result<EnergyReading, PluginError>, now: Instant) {
        let at = self.wall(now);
        let Some(st) = self.sources.get_mut(i) else {
            return;
        };
        match r {
            Ok(mut reading) => {
                let dropped = sanitize(&mut reading);
                if reading.battery_w.is_some() {
                    self.battery_expected = true;
                }
                let st = &mut self.sources[i];
                if dropped != st.dropped {
                    if !dropped.is_empty() {
                        warn!(source = %st.name, fields = %dropped.join(", "),
                            "Unusable values in a reading (not finite, or outside plausible ranges): treated as missing");
                    }
                    st.dropped = dropped.clone();
                }
                // A reading with unusable values does not replace a fresh one that had them all:
                // it is skipped, and the good one ages out as usual (a meter sending garbage in
                // every other reading made the grid limit flip between known and unknown).
                let stale_after = st.poll.stale_after.as_secs_f64();
                if !dropped.is_empty()
                    && st.last.as_ref().is_some_and(|prev| {
                        prev.age_secs(now) <= stale_after
                            && dropped.iter().all(|f| has_value(prev, f))
                    })
                {
                    debug!(source = %st.name, fields = %dropped.join(", "), "Reading skipped: the last good one is still fresh");
                    return;
                }
                // A reading measured longer ago than the staleness bound is stale on arrival (a
                // sensor whose integration died): it does not end a stale period.
                let age = reading.age_secs(now);
                let fresh = age <= st.poll.stale_after.as_secs_f64();
                let had_error = st.last_error.take().is_some();
                if fresh && (had_error || st.was_stale) {
                    info!(source = %st.name, "Source is delivering readings again");
                } else if !fresh && !st.was_stale {
                    warn!(source = %st.name, age_secs = age.round(), stale_after_secs = st.poll.stale_after.as_secs(),
                        "Source delivers readings measured too long ago; they do not count until a fresh one arrives");
                }
                st.was_stale = !fresh;
                debug!(source = %st.name, generation_w = ?reading.generation_w, consumption_w = ?reading.consumption_w, grid_w = ?reading.grid_w, "Reading");
                let name = st.name.clone();
                st.last = Some(reading.clone());
                self.emit(Event::Reading {
                    at,
                    source: name,
                    reading,
                });
            }
            Err(e) => {
                st.errors += 1;
                let msg = e.chain();
                if st.last_error.is_none() {
                    warn!(source = %st.name, error = %msg, "Source read failed; its last reading ages and will go stale");
                } else {
                    debug!(source = %st.name, error = %msg, count = st.errors, "Source read failed again");
                }
                st.last_error = Some(msg);
            }
        }
        self.recompute(now);
    }

    fn combine(&mut self, now: Instant) -> Option<EnergyReading> {
        let mut fresh: Vec<(&str, &EnergyReading)> = Vec::new();
        for st in &mut self.sources {
            let is_fresh = st
                .last
                .as_ref()
                .is_some_and(|r| r.age_secs(now) <= st.poll.stale_after.as_secs_f64());
            if !is_fresh && st.last.is_some() && !st.was_stale {
                st.was_stale = true;
                warn!(source = %st.name, "Source reading is stale; it no longer counts");
            }
        }
        for st in &self.sources {
            if let Some(r) = st
                .last
                .as_ref()
                .filter(|r| r.age_secs(now) <= st.poll.stale_after.as_secs_f64())
            {
                fresh.push((st.name.as_str(), r));
            }
        }
        // Each quantity from its configured source(s), never double counted (crate::combine).
        let combined = crate::combine::combine(&self.cfg.sources, &fresh);
        if combined.problems != self.combine_problems {
            for p in &combined.problems {
                warn!(problem = %p, "Combining energy sources");
            }
            self.combine_problems = combined.problems;
        }
        combined.reading
    }

    fn voltage(&self) -> f64 {
        let v: Vec<f64> = self
            .master
            .slaves()
            .flat_map(|s| s.volts.iter().copied())
            .map(f64::from)
            .filter(|v| PLAUSIBLE_VOLTS.contains(v))
            .collect();
        if v.is_empty() {
            self.cfg.voltage
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// Why a slave's car may not charge (VIN allow/deny lists), or `None` when it may. `None`
    /// VIN = not read yet: the car may start, since slaves give the VIN only once a car draws
    /// current (as in TWCManager, a car that turns out not to be allowed is then stopped).
    /// `Some("")` = the car gives no VIN (non-Tesla): refused only when an allow list is set.
    fn vin_denial(&self, vin: Option<&str>) -> Option<String> {
        let s = &self.settings;
        let v = vin?;
        if v.is_empty() {
            return (!s.vin_allow.is_empty())
                .then(|| "an allow list is set and the car gives no VIN".to_string());
        }
        if s.vin_deny.iter().any(|d| d.eq_ignore_ascii_case(v)) {
            return Some(format!("VIN {v} is in the deny list"));
        }
        if !s.vin_allow.is_empty() && !s.vin_allow.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return Some(format!("VIN {v} is not in the allow list"));
        }
        None
    }

    fn priority(&self, id: TwcId, vin: Option<&str>) -> i32 {
        let p = &self.settings.priorities;
        vin.filter(|v| !v.is_empty())
            .and_then(|v| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(v)))
            .or_else(|| {
                let hex = id.to_string();
                p.iter().find(|(k, _)| k.eq_ignore_ascii_case(&hex))
            })
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    /// Hand the settings to the writer task (which saves the latest, off the engine loop: an
    /// fsync on an SD card must not delay a heartbeat).
    fn save_settings(&self) {
        if let Some(tx) = &self.settings_tx {
            tx.send_replace(self.settings.clone());
        }
    }

    /// Add the draw since the last heartbeat to the session's energy: the integral of the
    /// reported draw, or the lifetime counter's difference when that is larger (whole kWh).
    fn update_session_energy(&mut self, id: TwcId, now: Instant) {
        let volts = self.voltage() * f64::from(self.cfg.phases.max(1));
        let Some(s) = self.master.slave(id) else {
            return;
        };
        let (actual, lifetime) = (s.actual.amps(), s.lifetime_kwh);
        let (Some(sess), Some((wh, last))) =
            (self.sessions.get_mut(&id), self.session_wh.get_mut(&id))
        else {
            return;
        };
        *wh += actual * volts * (now - *last).as_secs_f64() / 3600.0;
        *last = now;
        let counted = match (sess.start_kwh, lifetime) {
            (Some(a), Some(b)) => f64::from(b.saturating_sub(a)),
            _ => 0.0,
        };
        sess.energy_kwh = (*wh / 1000.0).max(counted);
    }

    /// End the open session of slave `id`, if any, now.
    fn end_session(&mut self, id: TwcId, now: Instant, why: &str) {
        self.update_session_energy(id, now);
        self.session_wh.remove(&id);
        if let Some(session) = self.sessions.remove(&id) {
            info!(slave = %id, kwh = format!("{:.2}", session.energy_kwh), reason = why, "Charge session ended");
            self.emit(Event::SessionEnded {
                at: self.wall(now),
                session,
            });
        }
    }

    /// Record what slave `id` reports its car draws (on every heartbeat reply).
    fn note_draw(&mut self, id: TwcId, now: Instant) {
        let Some(actual) = self.master.slave(id).map(|s| s.actual.amps()) else {
            return;
        };
        let keep = self
            .sources
            .iter()
            .map(|s| s.poll.stale_after)
            .max()
            .unwrap_or_default()
            + Duration::from_secs(10);
        let h = self.draw_history.entry(id).or_default();
        h.push_back((now, actual));
        // Keep what the oldest usable reading may need (and the entry in force before it).
        while h.len() > 1 && (h.len() > 4096 || h.get(1).is_some_and(|(t, _)| now - *t > keep)) {
            h.pop_front();
        }
    }

    /// The chargers' draw to pair with a reading measured at `measured`, and whether it is
    /// complete (every linked slave has reported since then). A reading's grid and consumption
    /// include what the chargers drew *when it was measured*; taking out more than that makes
    /// the house look smaller and the budget larger, and a re-delivered old value then lets a
    /// car ramp up on its own draw (runaway). Per slave this is the least it reported from its
    /// last report before the measuring time to its first one after it (within [`DRAW_MARGIN`]
    /// of it): the safe side for every use, as house load and grid import are never
    /// underestimated and surplus never overestimated. Without a report before, or (incomplete)
    /// after, the least possible draw, 0 A, bounds that end.
    fn charger_for(&self, measured: Instant) -> (f64, bool) {
        let from = measured.checked_sub(DRAW_MARGIN).unwrap_or(measured);
        let to = measured + DRAW_MARGIN;
        let (mut total, mut complete) = (0.0, true);
        for h in self
            .master
            .slaves()
            .filter_map(|s| self.draw_history.get(&s.id))
        {
            let mut least = h
                .iter()
                .rev()
                .find(|(t, _)| *t <= from)
                .map_or(0.0, |(_, a)| *a);
            let mut bracketed = false;
            for (t, a) in h.iter().filter(|(t, _)| *t > from) {
                least = least.min(*a);
                if *t >= to {
                    bracketed = true;
                    break;
                }
            }
            if !bracketed {
                least = 0.0;
                complete = false;
            }
            total += least;
        }
        (total, complete)
    }

    /// The reading the policy uses, with the chargers' draw at its time: the newest combined
    /// reading for which every slave has reported after it was measured (a meter polled more
    /// often than the heartbeats always has a newer one waiting); while none is, and the last
    /// paired one is no longer fresh, the newest with the least draw known for it.
    fn paired_reading(
        &mut self,
        reading: Option<EnergyReading>,
        now: Instant,
    ) -> (Option<EnergyReading>, f64) {
        self.pair_pending = false;
        let Some(r) = reading else {
            self.paired = None;
            self.unpaired.clear();
            return (None, 0.0);
        };
        match self.unpaired.back_mut() {
            // The same measuring time (a quantity from a newer reading of another source).
            Some(b) if b.measured_at == r.measured_at => *b = r.clone(),
            _ => self.unpaired.push_back(r.clone()),
        }
        while self.unpaired.len() > 64 {
            self.unpaired.pop_front();
        }
        // The newest waiting reading that can now be paired; older ones are dropped with it.
        for i in (0..self.unpaired.len()).rev() {
            let (c, complete) = self.charger_for(self.unpaired[i].measured_at);
            if complete {
                let p = self.unpaired[i].clone();
                self.unpaired.drain(..=i);
                self.paired = Some((p, c));
                break;
            }
        }
        self.pair_pending = !self.unpaired.is_empty();
        let fresh_for = self
            .sources
            .iter()
            .map(|s| s.poll.stale_after)
            .min()
            .unwrap_or_default()
            .as_secs_f64();
        match &self.paired {
            Some((p, c)) if p.age_secs(now) <= fresh_for && p.measured_at <= r.measured_at => {
                (Some(p.clone()), *c)
            }
            _ => {
                let (c, _) = self.charger_for(r.measured_at);
                (Some(r), c)
            }
        }
    }

    fn recompute(&mut self, now: Instant) {
        let combined = self.combine(now);
        let (reading, charger_amps) = self.paired_reading(combined, now);
        let wall = self.wall(now);
        if let Some(cn) = self.settings.charge_now
            && cn.until_unix <= wall.timestamp()
        {
            info!("Charge Now has ended");
            self.settings.charge_now = None;
            self.save_settings();
        }
        // VIN allow/deny: a car that is not allowed gets 0 A, with a log line saying why.
        let mut denied: BTreeMap<TwcId, String> = BTreeMap::new();
        let mut vins = Vec::new();
        let (mut connected, mut charging) = (0usize, 0usize);
        let mut min_amps: Option<CentiAmps> = None;
        // The master forgets a VIN when the session ends (the car stops drawing); the car that
        // gave it is still plugged in until the slave says no car is connected.
        for sl in self.master.slaves() {
            let car = sl.state.car_connected() || sl.actual.0 >= 100;
            match &sl.vin {
                Some(v) => {
                    self.car_vin.insert(sl.id, v.clone());
                }
                None if !car => {
                    self.car_vin.remove(&sl.id);
                }
                None => {}
            }
        }
        for sl in self.master.slaves() {
            let car = sl.state.car_connected() || sl.actual.0 >= 100;
            if !car {
                continue;
            }
            if let Some(why) = self.vin_denial(self.car_vin.get(&sl.id).map(String::as_str)) {
                denied.insert(sl.id, why);
                continue;
            }
            connected += 1;
            if sl.actual.0 >= 100 {
                charging += 1;
            }
            if let Some(v) = self.car_vin.get(&sl.id).filter(|v| !v.is_empty()) {
                vins.push(v.clone());
            }
            let m = self.cfg.min_amps_per_twc.max(sl.version.min_amps());
            min_amps = Some(min_amps.map_or(m, |x: CentiAmps| x.min(m)));
        }
        for (id, why) in &denied {
            if self.denied_logged.get(id) != Some(why) {
                warn!(slave = %id, reason = %why, "Car not allowed to charge: offering 0 A");
            }
        }
        self.denied_logged = denied.clone();
        let min_amps = min_amps
            .unwrap_or(self.cfg.min_amps_per_twc.max(CentiAmps::from_amps(6)))
            .amps();
        let wiring = self.cfg.master.wiring_max_all;
        let voltage = self.voltage();
        let ctx = Context {
            settings: &self.settings,
            now: wall,
            mono_secs: (now - self.start_instant).as_secs_f64(),
            reading: reading.as_ref(),
            charger_amps,
            voltage,
            phases: self.cfg.phases,
            consumption_includes_chargers: self.cfg.consumption_includes_chargers,
            wiring_max_all: wiring.amps(),
            min_amps,
            cars_connected: connected,
            cars_charging: charging,
            vins: &vins,
            battery_expected: self.battery_expected,
        };
        let out = self.policy_engine.evaluate(&ctx);
        let phases = self.cfg.phases.max(1);
        self.site = SitePower {
            voltage,
            phases,
            charger_w: 0.0,
            grid_w: crate::policy::grid_now_w(&ctx),
        };
        let budget = CentiAmps::from_f64(out.amps).min(wiring);
        if out.name != self.policy.name {
            info!(from = %self.policy.name, to = %out.name, reason = %out.reason, "Policy changed");
            self.emit(Event::PolicyChanged {
                at: wall,
                from: self.policy.name.clone(),
                to: out.name.clone(),
                reason: out.reason.clone(),
            });
        }
        if budget != self.policy.budget {
            debug!(budget = %budget, reason = %out.reason, "Site budget changed");
            self.emit(Event::BudgetChanged {
                at: wall,
                budget,
                reading: reading.clone(),
            });
        }
        self.webhooks.extend(out.webhooks);
        let green_cars = out.green_cars;
        self.policy = PolicyStatus {
            name: out.name,
            reason: out.reason,
            is_green: out.is_green,
            budget,
            policy_amps: Some(out.policy_amps),
            limited_by: out.limited_by,
            surplus_w: out.surplus_w,
            grid_headroom_amps: out.grid_headroom_amps,
            green_state: out.green_state,
        };
        self.combined = reading;
        // A car that does not follow its offer draws what it likes: that draw comes out of the
        // budget for the others, and it is offered 0 A (the master escalates to a stop command).
        let grace = self.cfg.master.follow_grace;
        let rogue: BTreeMap<TwcId, CentiAmps> = self
            .master
            .slaves()
            .filter(|s| s.not_following(now, grace))
            .map(|s| (s.id, s.committed()))
            .collect();
        let uncontrolled: CentiAmps = rogue.values().copied().sum();
        let share_budget = budget.saturating_sub(uncontrolled);
        let inputs: Vec<ShareInput> = self
            .master
            .slaves()
            .map(|s| ShareInput {
                id: s.id,
                cap: if denied.contains_key(&s.id) || rogue.contains_key(&s.id) {
                    CentiAmps::ZERO
                } else {
                    self.master.cap(s.id)
                },
                min: self.cfg.min_amps_per_twc.max(s.version.min_amps()),
                demand: if s.actual.0 >= 100 {
                    Demand::Charging
                } else if s.state.car_connected() {
                    Demand::Connected
                } else {
                    Demand::Idle
                },
                priority: self.priority(s.id, self.car_vin.get(&s.id).map(String::as_str)),
            })
            .collect();
        let targets = share::distribute_limited(share_budget, wiring, &inputs, green_cars);
        self.master.set_total_cap(budget);
        self.master.set_targets(&targets);
    }

    /// Call the webhooks queued by policy changes, with the status as JSON (POST) or plain GET.
    fn fire_webhooks(&mut self, status: &Status) {
        if self.webhooks.is_empty() {
            return;
        }
        let timeout = Duration::from_secs(self.cfg.policy.rules.webhook_timeout_secs.max(1));
        let client = match &self.http {
            Some(c) => c.clone(),
            None => match reqwest::Client::builder().timeout(timeout).build() {
                Ok(c) => {
                    self.http = Some(c.clone());
                    c
                }
                Err(e) => {
                    warn!(error = %e, "Cannot create the HTTP client for webhooks");
                    self.webhooks.clear();
                    return;
                }
            },
        };
        let body = serde_json::to_value(status).unwrap_or_default();
        for (hook, event) in self.webhooks.drain(..) {
            let client = client.clone();
            let body = body.clone();
            let policy = status.policy.name.clone();
            tokio::spawn(async move {
                let req = if hook.method.eq_ignore_ascii_case("GET") {
                    client.get(&hook.url)
                } else {
                    client.post(&hook.url).json(&body)
                };
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        info!(url = %hook.url, event = %event, policy = %policy, "Webhook called")
                    }
                    Ok(r) => {
                        warn!(url = %hook.url, event = %event, status = r.status().as_u16(), "Webhook answered with an error")
                    }
                    Err(e) => warn!(url = %hook.url, event = %event, error = %e, "Webhook failed"),
                }
            });
        }
    }

    fn periodic_slave_events(&mut self, now: Instant) {
        let due: Vec<TwcId> = self
            .master
            .slaves()
            .filter(|s| {
                self.last_slave_event
                    .get(&s.id)
                    .is_none_or(|t| now - *t >= self.cfg.slave_status_interval)
            })
            .map(|s| s.id)
            .collect();
        for id in due {
            self.last_slave_event.insert(id, now);
            if let Some(s) = self.slave_status(id, now) {
                self.emit(Event::SlaveStatus {
                    at: self.wall(now),
                    slave: s,
                });
            }
        }
    }

    fn slave_status(&self, id: TwcId, now: Instant) -> Option<SlaveStatus> {
        let s = self.master.slave(id)?;
        Some(SlaveStatus {
            id: s.id,
            sign: s.sign,
            version: s.version,
            max_amps: s.max_amps,
            cap_amps: self.master.cap(s.id),
            state: s.state.0,
            state_name: s.state.name().to_string(),
            reported_limit: s.reported_limit,
            actual: s.actual,
            offered: s.offered,
            target: s.target,
            lifetime_kwh: s.lifetime_kwh,
            volts: s.volts,
            vin: s.vin.clone().filter(|v| !v.is_empty()),
            last_vin: s.last_vin.clone(),
            last_heartbeat_secs: s.last_rx.map(|t| (now - t).as_secs_f64()).unwrap_or(0.0),
            timed_out: false,
            charging: s.charging,
            session_kwh: self.sessions.get(&id).map(|x| x.energy_kwh).unwrap_or(0.0),
            session_secs: s.session_started_at.map(|t| (now - t).as_secs_f64()),
            firmware: s.firmware.clone(),
            overdraw: s.overdraw,
            power_w: s.actual.amps() * self.site.voltage * f64::from(self.site.phases),
        })
    }

    fn publish(&mut self, now: Instant) {
        let c = self.master.counters();
        self.bus.master_id = self.master.id();
        self.bus.master_sign = self.master.sign();
        self.bus.transmitting = self.master.transmitting();
        self.bus.foreign_master = self.master.foreign_master();
        self.bus.frames_tx = c.frames_tx;
        self.bus.decode = self.decode;
        self.bus.unknown_messages = c.unknown;
        self.bus.malformed_messages = c.malformed;
        self.bus.unlinked_heartbeats = c.unlinked_heartbeats;
        self.bus.echoes = c.echoes;
        let (reply, replies) = self.master.last_reply();
        self.bus.last_reply = reply.map(|f| f.hex());
        self.bus.replies = replies;
        let mut slaves: Vec<SlaveStatus> = self
            .master
            .slaves()
            .filter_map(|s| self.slave_status(s.id, now))
            .collect();
        let master = &self.master;
        self.lost_slaves.retain(|id, (_, since)| {
            master.slave(*id).is_none() && now - *since < LOST_SLAVE_SHOWN
        });
        for (s, since) in self.lost_slaves.values() {
            let mut s = s.clone();
            s.last_heartbeat_secs += (now - *since).as_secs_f64();
            slaves.push(s);
        }
        slaves.sort_by_key(|s| s.id);
        let sources = self
            .sources
            .iter()
            .map(|st| SourceStatus {
                name: st.name.clone(),
                last: st.last.clone(),
                age_secs: st.last.as_ref().map(|r| r.age_secs(now)),
                stale: st
                    .last
                    .as_ref()
                    .is_none_or(|r| r.age_secs(now) > st.poll.stale_after.as_secs_f64()),
                last_error: st.last_error.clone(),
                errors: st.errors,
            })
            .collect();
        let charger_w = slaves
            .iter()
            .filter(|s| !s.timed_out)
            .map(|s| s.power_w)
            .sum();
        let status = Status {
            updated_at: Some(self.wall(now)),
            bus: self.bus.clone(),
            slaves,
            policy: self.policy.clone(),
            reading: self.combined.clone(),
            sources,
            settings: self.settings.clone(),
            wiring_max_all: self.cfg.master.wiring_max_all,
            wiring_max_per_twc: self.cfg.master.wiring_max_per_twc,
            min_amps_per_twc: self.cfg.min_amps_per_twc,
            sinks: crate::logging::all_sinks().statuses(),
            site: SitePower {
                charger_w,
                ..self.site.clone()
            },
        };
        self.fire_webhooks(&status);
        self.status.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }

    fn on_command(&mut self, cmd: Command, now: Instant) -> Result<Settings, CommandError> {
        let wiring = self.cfg.master.wiring_max_all.amps();
        let mut next = self.settings.clone();
        match cmd {
            Command::ChargeNow { amps, duration } => {
                validate_amps("amps", amps, wiring)?;
                if amps <= 0.0 {
                    return Err(CommandError::Invalid("amps must be greater than 0".into()));
                }
                if duration.is_zero() {
                    return Err(CommandError::Invalid(
                        "duration must be greater than 0".into(),
                    ));
                }
                if duration > MAX_CHARGE_NOW {
                    return Err(CommandError::Invalid(format!(
                        "duration = {} s is longer than a year; use the non-scheduled action for \"always\"",
                        duration.as_secs()
                    )));
                }
                let until = self
                    .wall(now)
                    .timestamp()
                    .saturating_add(duration.as_secs() as i64);
                info!(amps, seconds = duration.as_secs(), "Charge Now requested");
                next.charge_now = Some(ChargeNow {
                    amps,
                    until_unix: until,
                });
            }
            Command::CancelChargeNow => {
                info!("Charge Now cancelled");
                next.charge_now = None;
            }
            Command::SetNonScheduled { action, amps } => {
                if let Some(a) = &action
                    && !matches!(a.as_str(), "charge" | "stop" | "green")
                {
                    return Err(CommandError::Invalid(format!(
                        "non-scheduled action must be \"charge\", \"stop\" or \"green\", got {a:?}"
                    )));
                }
                if let Some(a) = amps {
                    validate_amps("amps", a, wiring)?;
                }
                if let Some(a) = action {
                    next.non_scheduled_action = a;
                }
                if let Some(a) = amps {
                    next.non_scheduled_amps = a;
                }
            }
            Command::DebugQuery { slave, code } => {
                let ids: Vec<TwcId> = match slave {
                    Some(id) => vec![id],
                    None => self.master.slaves().map(|s| s.id).collect(),
                };
                if ids.is_empty() {
                    return Err(CommandError::Unavailable("no slave is linked".into()));
                }
                for id in ids {
                    self.master.request_query(id, code).map_err(|e| match e {
                        RequestError::Busy(_) => CommandError::Busy(e.to_string()),
                        _ => CommandError::Invalid(e.to_string()),
                    })?;
                }
                return Ok(self.settings.clone());
            }
            Command::StartCharging { slave } | Command::StopCharging { slave } => {
                let start = matches!(cmd, Command::StartCharging { .. });
                let ids: Vec<TwcId> = match slave {
                    Some(id) => vec![id],
                    None => self.master.slaves().map(|s| s.id).collect(),
                };
                if ids.is_empty() {
                    return Err(CommandError::Unavailable("no slave is linked".into()));
                }
                for id in ids {
                    let r = if start {
                        self.master.request_start(id)
                    } else {
                        self.master.request_stop(id)
                    };
                    r.map_err(|e| match e {
                        RequestError::Busy(_) => CommandError::Busy(e.to_string()),
                        _ => CommandError::Unavailable(e.to_string()),
                    })?;
                }
                return Ok(self.settings.clone());
            }
            Command::ReplaceSettings(s) => next = *s,
            Command::PatchSettings(patch) => next = patch_settings(&self.settings, patch)?,
            Command::SetSchedule(s) => next.schedule = *s,
            Command::SetOffset { name, offset } => {
                if name.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "offset name must not be empty".into(),
                    ));
                }
                match offset {
                    Some(o) => {
                        next.consumption_offsets.insert(name, o);
                    }
                    None => {
                        if next.consumption_offsets.remove(&name).is_none() {
                            return Err(CommandError::Invalid(format!(
                                "there is no consumption offset named {name:?}"
                            )));
                        }
                    }
                }
            }
            Command::SetGridLimit(l) => next.max_grid_import = l,
            Command::SetFlexAmps(a) => next.flex_amps = a,
            Command::SetVinLists { allow, deny } => {
                if let Some(a) = allow {
                    next.vin_allow = a;
                }
                if let Some(d) = deny {
                    next.vin_deny = d;
                }
            }
            Command::SetPriority { key, priority } => {
                if key.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "priority key must be a VIN or a TWCID".into(),
                    ));
                }
                match priority {
                    Some(p) => {
                        next.priorities.insert(key, p);
                    }
                    None => {
                        next.priorities.remove(&key);
                    }
                }
            }
            Command::SetHome(h) => next.home = h,
            Command::SetSetting { key, value } => {
                if key.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "setting key must not be empty".into(),
                    ));
                }
                match value {
                    Some(v) => {
                        next.extra.insert(key, v);
                    }
                    None => {
                        next.extra.remove(&key);
                    }
                }
            }
            Command::Shutdown => unreachable!("handled by the loop"),
        }
        validate_settings(&next, wiring, &self.cfg.policy)?;
        if next.charge_now != self.settings.charge_now
            && let Some(cn) = next.charge_now
        {
            validate_charge_now(&cn, self.wall(now).timestamp())?;
        }
        if next != self.settings {
            self.settings = next;
            self.save_settings();
        }
        self.recompute(now);
        Ok(self.settings.clone())
    }
}

/// Longest Charge Now (a year): longer is what the non-scheduled action is for.
const MAX_CHARGE_NOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// A Charge Now set through any surface (a whole-settings replace or patch included): amps
/// above 0 and an end time from now to a year ahead.
fn validate_charge_now(cn: &ChargeNow, now_unix: i64) -> Result<(), CommandError> {
    if !(cn.amps.is_finite() && cn.amps > 0.0) {
        return Err(CommandError::Invalid(format!(
            "charge_now.amps must be greater than 0, got {}",
            cn.amps
        )));
    }
    let max = now_unix.saturating_add(MAX_CHARGE_NOW.as_secs() as i64);
    if cn.until_unix > max {
        return Err(CommandError::Invalid(format!(
            "charge_now.until_unix = {} is more than a year ahead (now {now_unix}); use the non-scheduled action for \"always\"",
            cn.until_unix
        )));
    }
    Ok(())
}

/// Apply a JSON merge patch to the settings; every top-level key must be a settings key. What
/// [`Command::PatchSettings`] does (surfaces may call it first for an early error).
pub fn patch_settings(
    current: &Settings,
    patch: serde_json::Value,
) -> Result<Settings, CommandError> {
    let serde_json::Value::Object(p) = patch else {
        return Err(CommandError::Invalid(
            "settings patch must be a JSON object".into(),
        ));
    };
    let mut base = serde_json::to_value(current)
        .map_err(|e| CommandError::Invalid(format!("settings: {e}")))?;
    let obj = base
        .as_object_mut()
        .ok_or_else(|| CommandError::Invalid("settings are not an object".into()))?;
    for (k, v) in p {
        let Some(slot) = obj.get_mut(&k) else {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            return Err(CommandError::Invalid(format!(
                "settings: unknown key {k:?}; expected one of: {}",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        merge_patch(slot, &v);
    }
    serde_json::from_value(base).map_err(|e| CommandError::Invalid(format!("settings: {e}")))
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Volts a slave may plausibly report per phase; others are ignored (a garbled 2300 V would
/// make every watt look like fewer amps).
const PLAUSIBLE_VOLTS: std::ops::RangeInclusive<f64> = 80.0..=300.0;
/// How far a reading's measuring time may be off (timestamps in whole seconds, clocks): it is
/// paired with each slave's least reported draw over this margin around it.
const DRAW_MARGIN: Duration = Duration::from_millis(500);

/// Make a reading safe to use: every value that is not finite or outside plausible ranges
/// becomes missing (never 0, never ∞). Returns the names of the fields dropped.
pub fn sanitize(r: &mut EnergyReading) -> Vec<String> {
    const MAX_W: f64 = 2_000_000.0;
    let mut dropped = Vec::new();
    let mut check = |name: &str, v: &mut Option<f64>, ok: &dyn Fn(f64) -> bool| {
        if let Some(x) = *v
            && !(x.is_finite() && ok(x))
        {
            *v = None;
            dropped.push(name.to_string());
        }
    };
    check("generation_w", &mut r.generation_w, &|x| {
        (-5_000.0..=MAX_W).contains(&x)
    });
    check("consumption_w", &mut r.consumption_w, &|x| {
        (-5_000.0..=MAX_W).contains(&x)
    });
    check("grid_w", &mut r.grid_w, &|x| x.abs() <= MAX_W);
    check("battery_w", &mut r.battery_w, &|x| x.abs() <= MAX_W);
    check("battery_soc_pct", &mut r.battery_soc_pct, &|x| {
        (0.0..=100.0).contains(&x)
    });
    if let Some(v) = &r.phase_voltages
        && !v.iter().all(|x| x.is_finite() && (0.0..=300.0).contains(x))
    {
        r.phase_voltages = None;
        dropped.push("phase_voltages".into());
    }
    if let Some(v) = &r.phase_currents_a
        && !v.iter().all(|x| x.is_finite() && x.abs() <= 2_000.0)
    {
        r.phase_currents_a = None;
        dropped.push("phase_currents_a".into());
    }
    dropped
}

/// Whether `r` has a value for the field `sanitize` names `name`.
fn has_value(r: &EnergyReading, name: &str) -> bool {
    match name {
        "generation_w" => r.generation_w.is_some(),
        "consumption_w" => r.consumption_w.is_some(),
        "grid_w" => r.grid_w.is_some(),
        "battery_w" => r.battery_w.is_some(),
        "battery_soc_pct" => r.battery_soc_pct.is_some(),
        "phase_voltages" => r.phase_voltages.is_some(),
        "phase_currents_a" => r.phase_currents_a.is_some(),
        _ => false,
    }
}

/// The writer task for settings: saves the latest value whenever it changes, off the engine
/// loop, and the last one when the engine drops the sender (the engine awaits the task).
fn spawn_settings_writer(
    store: SettingsStore,
    initial: Settings,
) -> (watch::Sender<Settings>, JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(initial);
    rx.mark_unchanged();
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let s = rx.borrow_and_update().clone();
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.save(&s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    error!(error = %e, "Could not save the settings; the change holds until restart")
                }
                Err(e) => error!(error = %e, "The settings writer failed"),
            }
        }
    });
    (tx, task)
}

fn validate_amps(key: &str, amps: f64, wiring: f64) -> Result<(), CommandError> {
    if !amps.is_finite() || amps < 0.0 {
        return Err(CommandError::Invalid(format!(
            "{key} must be a number ≥ 0, got {amps}"
        )));
    }
    if amps > wiring {
        return Err(CommandError::Invalid(format!(
            "{key} = {amps} A is above the wiring limit for all TWCs ({wiring} A)"
        )));
    }
    Ok(())
}

/// Validate runtime settings as a whole against the wiring limit and the `[grid]` config. Every
/// control surface's change goes through this; nothing is clamped (safety invariant 5).
pub fn validate_settings(
    s: &Settings,
    wiring: f64,
    policy: &PolicyConfig,
) -> Result<(), CommandError> {
    let bad = |m: String| Err(CommandError::Invalid(m));
    validate_amps("non_scheduled_amps", s.non_scheduled_amps, wiring)?;
    if let Some(cn) = s.charge_now {
        validate_amps("charge_now.amps", cn.amps, wiring)?;
    }
    if !matches!(s.non_scheduled_action.as_str(), "charge" | "stop" | "green") {
        return bad(format!(
            "non_scheduled_action must be \"charge\", \"stop\" or \"green\", got {:?}",
            s.non_scheduled_action
        ));
    }
    validate_amps("flex_amps", s.flex_amps, wiring)?;
    validate_amps("schedule.amps", s.schedule.amps, wiring)?;
    for (d, a) in &s.schedule.day_amps {
        if !(1..=7).contains(d) {
            return bad(format!(
                "schedule.day_amps: weekday {d} is not 1 (Monday) … 7 (Sunday)"
            ));
        }
        validate_amps(&format!("schedule.day_amps[{d}]"), *a, wiring)?;
    }
    for w in &s.schedule.windows {
        if !(1..=7).contains(&w.weekday) {
            return bad(format!(
                "schedule window weekday {} is not 1 (Monday) … 7 (Sunday)",
                w.weekday
            ));
        }
        if w.start_minute > 1439 || w.end_minute > 1439 {
            return bad(format!(
                "schedule window on day {}: minutes must be 0..=1439, got {}–{}",
                w.weekday, w.start_minute, w.end_minute
            ));
        }
    }
    if !(s.schedule.flex_battery_kwh.is_finite() && s.schedule.flex_battery_kwh >= 0.0) {
        return bad("schedule.flex_battery_kwh must be a number ≥ 0".into());
    }
    for (name, o) in &s.consumption_offsets {
        let max = match o.unit {
            OffsetUnit::A => 1000.0,
            OffsetUnit::W => 1_000_000.0,
        };
        if name.trim().is_empty() {
            return bad("consumption offset names must not be empty".into());
        }
        if !o.value.is_finite() || o.value.abs() > max {
            return bad(format!(
                "consumption offset {name:?} = {} {:?}: expected a finite value within ±{max}",
                o.value, o.unit
            ));
        }
    }
    if let Some(h) = s.home
        && !(h.lat.is_finite()
            && h.lon.is_finite()
            && (-90.0..=90.0).contains(&h.lat)
            && (-180.0..=180.0).contains(&h.lon))
    {
        return bad(format!(
            "home location lat = {}, lon = {}: expected −90..=90 and −180..=180",
            h.lat, h.lon
        ));
    }
    if let Some(l) = s.max_grid_import {
        if !(l.value.is_finite() && l.value >= 0.0) {
            return bad(format!(
                "max_grid_import = {}: expected a number ≥ 0",
                l.value
            ));
        }
        let (cfg_a, cfg_w) = (policy.grid.max_import_amps, policy.grid.max_import_w);
        match l.unit {
            OffsetUnit::A => {
                if let Some(c) = cfg_a
                    && l.value > c
                {
                    return bad(format!(
                        "max_grid_import = {} A is above the configured [grid] max_import_amps = {c} A",
                        l.value
                    ));
                }
            }
            OffsetUnit::W => {
                if let Some(c) = cfg_w
                    && l.value > c
                {
                    return bad(format!(
                        "max_grid_import = {} W is above the configured [grid] max_import_w = {c} W",
                        l.value
                    ));
                }
            }
        }
    }
    for v in s.vin_allow.iter().chain(&s.vin_deny) {
        if v.is_empty() || v.len() > 17 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad(format!(
                "VIN {v:?} in the allow/deny lists: expected up to 17 letters and digits"
            ));
        }
    }
    Ok(())
}

/// Feed every event to a logger through its own bounded queue, so a slow logger never blocks the
/// engine. Returns the task; the counter of events the logger missed is logged.
pub fn spawn_logger(
    handle: &EngineHandle,
    name: String,
    logger: Box<dyn Logger>,
) -> JoinHandle<()> {
    let mut rx = handle.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Err(err) = logger.record(&e).await {
                        warn!(logger = %name, error = %err.chain(), "Logger failed to record an event");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(logger = %name, missed = n, "Logger fell behind and missed events");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = logger.flush().await;
                    return;
                }
            }
        }
    })
}

/// Publish every status change to a publisher, at most once per `min_interval`, always ending
/// with the latest snapshot.
pub fn spawn_publisher(
    handle: &EngineHandle,
    name: String,
    publisher: Box<dyn StatusPublisher>,
    min_interval: Duration,
) -> JoinHandle<()> {
    let mut rx = handle.watch_status();
    tokio::spawn(async move {
        loop {
            if rx.changed().await.is_err() {
                return;
            }
            let snapshot = rx.borrow_and_update().clone();
            if let Err(err) = publisher.publish(&snapshot).await {
                warn!(publisher = %name, error = %err.chain(), "Status publish failed");
            }
            tokio::time::sleep(min_interval).await;
        }
    })
}
