use super::{CentiAmps, EnergyReading, Settings};
use crate::protocol::{DecodeStats, ProtocolVersion, TwcId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One slave as the master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaveStatus {
    /// Bus address.
    pub id: TwcId,
    /// Sign byte from its link-ready.
    pub sign: u8,
    /// Protocol version told from its link-ready length.
    pub version: ProtocolVersion,
    /// The unit's rated maximum from its link-ready.
    pub max_amps: CentiAmps,
    /// The most we may ever offer it: min(wiring max per TWC, rated max).
    pub cap_amps: CentiAmps,
    /// State byte of its last heartbeat.
    pub state: u8,
    /// Human name of `state`.
    pub state_name: String,
    /// The limit it reported in its last heartbeat.
    pub reported_limit: CentiAmps,
    /// What the car draws.
    pub actual: CentiAmps,
    /// The limit we last sent it.
    pub offered: CentiAmps,
    /// The limit the engine wants it to have (reached once lowering elsewhere allows).
    pub target: CentiAmps,
    /// Lifetime energy counter, kWh.
    pub lifetime_kwh: Option<u32>,
    /// Phase voltages, V.
    pub volts: [u16; 3],
    /// VIN of the car charging now.
    pub vin: Option<String>,
    /// VIN of the previous session.
    pub last_vin: Option<String>,
    /// Seconds since its last heartbeat reply.
    pub last_heartbeat_secs: f64,
    /// True once it has been silent longer than the timeout.
    pub timed_out: bool,
    /// True while the car draws ≥ 1 A.
    pub charging: bool,
    /// Energy of the current (or last) session, kWh, from the lifetime counter.
    pub session_kwh: f64,
    /// Seconds since the current session started, if charging.
    pub session_secs: Option<f64>,
    /// Firmware version, if the slave answered a query.
    pub firmware: Option<String>,
    /// True when the car draws noticeably more than the limit the slave reported.
    pub overdraw: bool,
    /// What its car draws, W (amps × the site's volts per phase × phases).
    #[serde(default)]
    pub power_w: f64,
}

/// The bus as the master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BusStatus {
    /// Our TWCID.
    pub master_id: TwcId,
    /// Our sign byte.
    pub master_sign: u8,
    /// True while we are allowed to transmit (false when another master was seen).
    pub transmitting: bool,
    /// The TWCID of another master heard on the bus, if any.
    pub foreign_master: Option<TwcId>,
    /// True while the comms link is up.
    pub link_up: bool,
    /// The last comms error, if any.
    pub last_error: Option<String>,
    /// Frames sent.
    pub frames_tx: u64,
    /// Framing counters.
    pub decode: DecodeStats,
    /// Valid frames whose code we do not know.
    pub unknown_messages: u64,
    /// Valid frames with a known code but a length that does not fit it.
    pub malformed_messages: u64,
    /// Heartbeats from slaves that never linked (ignored).
    pub unlinked_heartbeats: u64,
    /// Our own frames heard back (adapters that echo).
    pub echoes: u64,
    /// The last slave reply other than a heartbeat or link-ready (unescaped frame, hex), for
    /// diagnostics such as the debug page's queries.
    #[serde(default)]
    pub last_reply: Option<String>,
    /// How many such replies came so far.
    #[serde(default)]
    pub replies: u64,
}

/// The active policy and the budget it produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PolicyStatus {
    /// Name of the active policy (TWCManager's names where they exist).
    pub name: String,
    /// Why it matched, in words.
    pub reason: String,
    /// True when the budget follows green energy.
    pub is_green: bool,
    /// Amps the whole site may give the cars now, after every limit.
    pub budget: CentiAmps,
    /// The amps the policy asked for before limits.
    pub policy_amps: Option<f64>,
    /// Which limit bound the budget, if any (`"wiring"`, `"grid"`, `"stale"`).
    pub limited_by: Option<String>,
    /// Green surplus available to the chargers, W (after offsets and battery priority), when a
    /// fresh reading allowed computing it.
    #[serde(default)]
    pub surplus_w: Option<f64>,
    /// What the grid-import limit leaves the chargers, A (site total), when a limit is set.
    #[serde(default)]
    pub grid_headroom_amps: Option<f64>,
    /// Green tracking's start/stop state in words (`"off"`, `"starting in 40 s"`, `"charging"`,
    /// `"stopping in 90 s"`), while a green policy is active.
    #[serde(default)]
    pub green_state: Option<String>,
    /// The configured policies in the order they are tried, custom ones included (the first
    /// that matches wins): what `/api/v2/policy` lists.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// The site's power as the engine and its policy see it, so that every surface (web UI, APIs,
/// `/metrics`, history) shows the same numbers the policy used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SitePower {
    /// Volts per phase used to turn amps into watts (the slaves' plausible reports, else
    /// `[site] voltage`).
    pub voltage: f64,
    /// Phases the chargers use (`[site] phases`).
    pub phases: u8,
    /// What the chargers draw now, W: their amps × volts per phase × phases.
    pub charger_w: f64,
    /// Grid power now, W (positive = import): measured, or derived from consumption,
    /// generation, battery and (when consumption leaves them out) the chargers, as the policy
    /// derives it; `None` when unknown or stale.
    pub grid_w: Option<f64>,
}

/// One energy source's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SourceStatus {
    /// Registry name.
    pub name: String,
    /// Last successful reading.
    pub last: Option<EnergyReading>,
    /// Age of `last`, seconds.
    pub age_secs: Option<f64>,
    /// True when `last` is older than the source's staleness bound (or missing).
    pub stale: bool,
    /// Last error.
    pub last_error: Option<String>,
    /// Errors so far.
    pub errors: u64,
}

/// One snapshot of everything: the single source of truth every surface renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    /// When this snapshot was made (engine clock mapped to wall time).
    pub updated_at: Option<DateTime<Utc>>,
    /// The bus.
    pub bus: BusStatus,
    /// Linked slaves, sorted by id.
    pub slaves: Vec<SlaveStatus>,
    /// Policy and budget.
    pub policy: PolicyStatus,
    /// The combined reading the budget was computed from.
    pub reading: Option<EnergyReading>,
    /// Per-source health.
    pub sources: Vec<SourceStatus>,
    /// Runtime settings.
    pub settings: Settings,
    /// Wiring limit for all TWCs together.
    pub wiring_max_all: CentiAmps,
    /// Wiring limit per TWC.
    pub wiring_max_per_twc: CentiAmps,
    /// Never offer a car less than this (TWCManager's `minAmpsPerTWC`).
    #[serde(default)]
    pub min_amps_per_twc: CentiAmps,
    /// Logging sinks: queue depth, lag, errors and drops (empty when none run).
    #[serde(default)]
    pub sinks: Vec<crate::logging::SinkStatus>,
    /// The site's power as the policy sees it: what every surface shows.
    #[serde(default)]
    pub site: SitePower,
    /// Cars the vehicle plugins know (empty without one): state of charge, limit, where,
    /// the TWC they are at and the last command sent to them.
    #[serde(default)]
    pub vehicles: Vec<crate::vehicles::VehicleStatus>,
    /// Grid prices and the solar forecast as the tariff and forecast plugins last gave them
    /// (empty without them).
    #[serde(default)]
    pub outlook: crate::plugin::Outlook,
    /// Charge plans as last made: slots, expected cost and solar share, what each does now.
    #[serde(default)]
    pub plans: Vec<crate::planner::PlanStatus>,
    /// External load points (chargers that are not Gen2 slaves: a Wall Connector Gen3, …),
    /// sorted by name; their draw counts in the wiring and grid budgets.
    #[serde(default)]
    pub load_points: Vec<super::LoadPointStatus>,
    /// What the engine wants cars to draw through their API (charging below the TWC's
    /// minimum, chargers controlled through the car): the vehicles task sends it.
    #[serde(default)]
    pub car_currents: Vec<crate::vehicles::CarCurrent>,
}

impl Status {
    /// Sum of what the cars draw.
    pub fn total_actual(&self) -> CentiAmps {
        self.slaves.iter().map(|s| s.actual).sum()
    }
    /// Number of slaves whose car draws ≥ 1 A.
    pub fn cars_charging(&self) -> usize {
        self.slaves.iter().filter(|s| s.charging).count()
    }
}

/// A finished or running charge session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeSession {
    /// The slave.
    pub slave: TwcId,
    /// The car, when known.
    pub vin: Option<String>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Lifetime counter at start, kWh.
    pub start_kwh: Option<u32>,
    /// Energy so far, kWh.
    pub energy_kwh: f64,
    /// Car name, state of charge, solar share and cost (see [`super::SessionMetrics`]).
    #[serde(default)]
    pub metrics: super::SessionMetrics,
}

/// Something that happened; loggers and the UI consume these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A slave linked (or re-linked).
    SlaveLinked {
        /// When.
        at: DateTime<Utc>,
        /// Which.
        slave: TwcId,
        /// Its rated maximum.
        max_amps: CentiAmps,
        /// Its protocol version.
        version: ProtocolVersion,
    },
    /// A slave stopped answering.
    SlaveTimedOut {
        /// When.
        at: DateTime<Utc>,
        /// Which.
        slave: TwcId,
    },
    /// Periodic slave status (one per heartbeat round).
    SlaveStatus {
        /// When.
        at: DateTime<Utc>,
        /// Snapshot.
        slave: SlaveStatus,
    },
    /// Periodic status of an external load point (a Gen3, an OCPP charger), at the slaves'
    /// status interval.
    LoadPointStatus {
        /// When.
        at: DateTime<Utc>,
        /// Snapshot.
        load_point: Box<super::LoadPointStatus>,
    },
    /// The offer to a slave changed.
    OfferChanged {
        /// When.
        at: DateTime<Utc>,
        /// Which.
        slave: TwcId,
        /// Previous offer.
        from: CentiAmps,
        /// New offer.
        to: CentiAmps,
    },
    /// A charge session started.
    SessionStarted {
        /// When.
        at: DateTime<Utc>,
        /// Session.
        session: ChargeSession,
    },
    /// A charge session ended.
    SessionEnded {
        /// When.
        at: DateTime<Utc>,
        /// Session.
        session: ChargeSession,
    },
    /// A VIN was read from a slave.
    VinRead {
        /// When.
        at: DateTime<Utc>,
        /// Which slave.
        slave: TwcId,
        /// The VIN (empty when the car is not a Tesla).
        vin: String,
    },
    /// The active policy changed.
    PolicyChanged {
        /// When.
        at: DateTime<Utc>,
        /// Previous policy name.
        from: String,
        /// New policy name.
        to: String,
        /// Why.
        reason: String,
    },
    /// The site budget changed.
    BudgetChanged {
        /// When.
        at: DateTime<Utc>,
        /// New budget.
        budget: CentiAmps,
        /// The reading it came from, if any.
        reading: Option<EnergyReading>,
    },
    /// A new reading arrived from a source.
    Reading {
        /// When.
        at: DateTime<Utc>,
        /// Which source.
        source: String,
        /// The reading.
        reading: EnergyReading,
    },
    /// A charge plan will not reach its target by departure (`passed = false`, emitted when
    /// the planner first finds it infeasible) or did not (`passed = true`, when the departure
    /// passed with energy still missing).
    PlanMissed {
        /// When.
        at: DateTime<Utc>,
        /// The plan's id.
        plan: String,
        /// The departure it is about.
        departure: DateTime<Utc>,
        /// Energy still missing, kWh.
        missing_kwh: f64,
        /// Whether the departure has passed.
        passed: bool,
    },
    /// Something went wrong that the user should know about.
    Fault {
        /// When.
        at: DateTime<Utc>,
        /// Which part (`"bus"`, `"ems.fronius"`, …).
        component: String,
        /// What happened.
        message: String,
    },
}
