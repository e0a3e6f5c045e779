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

mod actor;
mod car_current;
mod commands;
mod handle;
mod load_points;
mod plans;
mod readings;
mod recompute;
mod sessions;
mod status;
mod tasks;
mod validate;

pub use commands::{merge_patch, patch_settings};
pub use handle::{Command, CommandError, EngineHandle};
pub use readings::sanitize;
pub use tasks::{spawn_logger, spawn_publisher};
pub use validate::{settings_limits, validate_settings};

use handle::{Reply, Request};
use readings::SourceState;
use tasks::{BusIn, bus_task, ems_task, spawn_settings_writer};
use tracing::Instrument;

use crate::master::{Master, MasterConfig, MasterEvent, RequestError};
use crate::model::{
    BusStatus, CentiAmps, ChargeNow, ChargeSession, ConsumptionOffset, EnergyReading, Event,
    GridLimit, HomeLocation, PolicyStatus, Schedule, Settings, SettingsLimits, SitePower,
    SlaveStatus, SourceStatus, Status,
};
use crate::plugin::{
    Comms, EmsSource, Logger, PluginError, PollSettings, Received, StatusPublisher,
};
use crate::policy::{Context, PolicyConfig, PolicyEngine};
use crate::protocol::{DecodeStats, Frame, FrameError, TwcId};
use crate::settings_store::SettingsStore;
use crate::share::{self, Demand, ShareInput};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// `[plans]`: how the charge planner weighs the forecast.
    pub plans: crate::planner::PlansConfig,
    /// Where settings are saved after every settings-changing command (`None` = not saved).
    pub settings_store: Option<SettingsStore>,
    /// Wall-clock time at start (`None` = now); the simulator replays a day from its first
    /// timestamp.
    pub start_wall: Option<DateTime<Utc>>,
    /// Which source provides which quantity (`[site.sources]`).
    pub sources: crate::combine::SourcesConfig,
    /// The runtime's event sinks, whose health `Status::sinks` shows (empty = none).
    pub sinks: crate::logging::SinkSet,
    /// Where the wall-clock time comes from when `start_wall` is not set (`None` = the system
    /// clock, read on every use so an NTP step is followed at once). Tests set their own.
    pub clock: Option<WallClock>,
}

/// A wall clock: returns the current UTC time.
#[derive(Clone)]
pub struct WallClock(pub std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WallClock")
    }
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
            plans: crate::planner::PlansConfig::default(),
            settings_store: None,
            start_wall: None,
            clock: None,
            sources: crate::combine::SourcesConfig::default(),
            sinks: crate::logging::SinkSet::new(),
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
    let bus_task = tokio::spawn(
        bus_task(comms, bus_out_rx, bus_in_tx)
            .instrument(crate::plugin::plugin_span("comms", "bus")),
    );
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
        let span = crate::plugin::plugin_span("ems", &spec.name);
        tokio::spawn(ems_task(i, spec, read_tx.clone()).instrument(span));
    }
    drop(read_tx);
    let now = Instant::now();
    let policy_engine = PolicyEngine::new(cfg.policy.clone());
    let start_wall = cfg.start_wall.unwrap_or_else(Utc::now);
    // The settings as the engine holds them: read by the handle, saved by the writer task.
    let (settings_tx, settings_rx) = watch::channel(settings.clone());
    let settings_writer = cfg
        .settings_store
        .clone()
        .map(|store| spawn_settings_writer(store, settings_tx.subscribe()));
    let settings_tx = Some(settings_tx);
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
        last_wall: std::cell::Cell::new(None),
        policy_engine,
        denied_logged: BTreeMap::new(),
        vins_scratch: Vec::new(),
        vehicles: Vec::new(),
        draw_history: BTreeMap::new(),
        offer_lowered: BTreeMap::new(),
        paired: None,
        unpaired: VecDeque::new(),
        pair_pending: false,
        offer_in_force: None,
        battery_expected,
        std_start: std::time::Instant::now(),
        settings_tx,
        settings_writer,
        site: SitePower::default(),
        car_vin: BTreeMap::new(),
        external_limits: BTreeMap::new(),
        outlook: Default::default(),
        plans: Default::default(),
        load_points: BTreeMap::new(),
        failing_sinks: BTreeSet::new(),
        low_current: BTreeMap::new(),
        car_currents: Vec::new(),
        combine_problems: Vec::new(),
        sessions: BTreeMap::new(),
        session_wh: BTreeMap::new(),
        session_surplus: None,
        last_slave_event: BTreeMap::new(),
        logged_actual: BTreeMap::new(),
        lost_slaves: BTreeMap::new(),
        bus_out: bus_out_tx,
    };
    let handle = EngineHandle {
        cmd: cmd_tx,
        status: status_rx,
        settings: settings_rx,
        events: events_tx,
    };
    before_start(&handle);
    let task = tokio::spawn(core.run(cmd_rx, bus_in_rx, read_rx, bus_task));
    Engine { handle, task }
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
    /// The last simulated wall time [`Core::wall`] computed, with the instant it was for.
    last_wall: std::cell::Cell<Option<(Instant, DateTime<Utc>)>>,
    sessions: BTreeMap<TwcId, ChargeSession>,
    /// Energy of each open session integrated from the reported draw, Wh, and when last added
    /// to (the lifetime counter has whole kWh only).
    session_wh: BTreeMap<TwcId, (f64, Instant)>,
    /// PV surplus for the cars (`None` = the reading cannot tell) of the reading the policy last
    /// used, with when that reading was measured: splits session energy into solar and grid.
    session_surplus: Option<(Option<f64>, Instant)>,
    last_slave_event: BTreeMap<TwcId, Instant>,
    logged_actual: BTreeMap<TwcId, CentiAmps>,
    /// Slaves that timed out, as last seen and since when: shown with `timed_out` until they
    /// link again or [`LOST_SLAVE_SHOWN`] has passed (the master forgets them at once).
    lost_slaves: BTreeMap<TwcId, (SlaveStatus, Instant)>,
    bus_out: mpsc::Sender<Frame>,
    policy_engine: PolicyEngine,
    denied_logged: BTreeMap<TwcId, String>,
    /// The VINs of the cars that may charge, as given to the last evaluation (kept for their
    /// strings).
    vins_scratch: Vec<String>,
    /// Cars from the vehicles task ([`Command::SetVehicles`]).
    vehicles: Vec<crate::vehicles::VehicleStatus>,
    /// What each slave reported its car drew, A, with when: a reading is paired with the draw
    /// at the time it was *measured* (see [`Core::charger_for`]).
    draw_history: BTreeMap<TwcId, VecDeque<(Instant, f64)>>,
    /// When each slave's offer was lowered (the last 64 times): its reports after that show our
    /// own change, not what a reading measured before it saw (see [`Core::charger_for`]).
    offer_lowered: BTreeMap<TwcId, VecDeque<Instant>>,
    /// The last reading that could be paired, with the chargers' draw at its time.
    paired: Option<(EnergyReading, readings::Draw)>,
    /// Newer combined readings waiting for the slaves' reports after their measuring time, each
    /// with the most the chargers were seen able to draw since it arrived, A, and when it
    /// arrived.
    unpaired: VecDeque<(EnergyReading, f64, Instant)>,
    /// A newer reading waits for the slaves' next reports: re-evaluate on each heartbeat.
    pair_pending: bool,
    /// The drawing slaves' effective offers (centiamps, summed) and how many draw, with since
    /// when: the closed loop is given the offer a reading was measured under (see
    /// [`Core::offered_in_force`]).
    offer_in_force: Option<((u32, usize), Instant)>,
    /// True once a battery is configured or any source reported battery power: from then on a
    /// missing battery reading makes derived grid values unknown, never 0 W.
    battery_expected: bool,
    /// Real elapsed time next to tokio's, so the wall clock follows the system clock (NTP
    /// steps on a Pi without RTC) yet advances with paused time in tests.
    std_start: std::time::Instant,
    /// The site's power as the policy saw it at the last evaluation.
    site: SitePower,
    /// The settings as last changed, for the handle and the writer task (which saves the latest
    /// off the engine loop); dropped at shutdown so the writer ends.
    settings_tx: Option<watch::Sender<Settings>>,
    settings_writer: Option<JoinHandle<()>>,
    /// The last problems reported while combining sources (warned once per change).
    combine_problems: Vec<String>,
    /// The VIN of the car plugged into each slave, kept after its session ends.
    car_vin: BTreeMap<TwcId, String>,
    /// Limits set by outside controllers ([`Command::SetExternalLimit`]): by source, then by
    /// slave (`None` = the site's budget).
    external_limits: BTreeMap<(String, Option<TwcId>), CentiAmps>,
    /// Prices and solar forecast ([`Command::SetPrices`], [`Command::SetForecast`]).
    outlook: crate::plugin::Outlook,
    /// Charge plans as last made ([`crate::planner`]).
    plans: plans::PlansState,
    /// External load points ([`Command::ReportLoadPoint`]), by name.
    load_points: BTreeMap<String, load_points::LoadPointEntry>,
    /// Event sinks whose last write failed, already told as a fault (`status.rs`).
    failing_sinks: BTreeSet<String>,
    /// Slaves whose car is told to draw below their minimum ([`car_current`]).
    low_current: BTreeMap<TwcId, car_current::LowState>,
    /// What cars are to draw through their API, for `Status`.
    car_currents: Vec<crate::vehicles::CarCurrent>,
}

impl Core {
    /// Wall-clock time. A simulation (`start_wall` set) runs from its first timestamp on tokio's
    /// clock. Otherwise the system clock, so that a clock set by NTP after boot is followed, plus
    /// however far tokio's clock has run ahead of real time (only under paused time in tests).
    pub(super) fn wall(&self, now: Instant) -> DateTime<Utc> {
        let tokio_elapsed = now - self.start_instant;
        if self.cfg.start_wall.is_some() {
            // A function of `now` alone here: asked several times per turn of the loop with
            // the same `now`, computed once.
            if let Some((at, wall)) = self.last_wall.get()
                && at == now
            {
                return wall;
            }
            let wall = self.start_wall
                + chrono::Duration::from_std(tokio_elapsed).unwrap_or(chrono::Duration::zero());
            self.last_wall.set(Some((now, wall)));
            return wall;
        }
        let ahead = tokio_elapsed.saturating_sub(self.std_start.elapsed());
        let now_utc = self.cfg.clock.as_ref().map_or_else(Utc::now, |c| (c.0)());
        now_utc + chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::zero())
    }

    pub(super) fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }
}
