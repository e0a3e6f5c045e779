//! What control surfaces send the engine, and the handle they send it through.

use super::*;

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
    /// The cars as the vehicles task sees them ([`crate::vehicles`]): shown in `Status`, and a
    /// car below its minimum state of charge at a TWC gets the full allowed current.
    SetVehicles(Vec<crate::vehicles::VehicleStatus>),
    /// The latest grid prices from a tariff plugin (validated with
    /// [`Prices::validate`](crate::plugin::Prices::validate)); `None` clears them (the plugin
    /// failed for longer than its prices reach).
    SetPrices(Option<crate::plugin::Prices>),
    /// The latest solar forecast from a forecast plugin (validated with
    /// [`Forecast::validate`](crate::plugin::Forecast::validate)); `None` clears it.
    SetForecast(Option<crate::plugin::Forecast>),
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
    /// Set (`Some`) or clear (`None`) a limit from an outside controller (an OCPP central
    /// system's charging profile, …), named `source` so that controllers do not clear each
    /// other's limits. `slave = None` limits the whole site's budget, `Some` one slave. It only
    /// ever lowers: the policy, the wiring and the grid limits still apply on top, and every
    /// limit set is in force at once (the lowest wins). Not saved: a restart clears it, and the
    /// controller sets it again.
    SetExternalLimit {
        /// Who sets it (`"ocpp"`, …).
        source: String,
        /// `None` = the site's budget; `Some` = one slave.
        slave: Option<TwcId>,
        /// Amps (≥ 0), or `None` to clear.
        amps: Option<f64>,
    },
    /// Add a charge plan, or replace the one with the same id (validated; saved with the
    /// settings).
    SetPlan(Box<crate::planner::ChargePlan>),
    /// Delete the charge plan with this id.
    DeletePlan(String),
    /// A plugin's report on one external load point (a charger that is not a Gen2 slave): its
    /// limits and latest measurement. The engine budgets it next to the slaves and shows it,
    /// with the current it gives it, in `Status::load_points`.
    ReportLoadPoint(Box<crate::model::LoadPointReport>),
    /// Forget a load point (its plugin stops).
    RemoveLoadPoint {
        /// Its name.
        name: String,
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

pub(super) type Reply = oneshot::Sender<Result<Settings, CommandError>>;

pub(super) struct Request {
    pub(super) cmd: Command,
    pub(super) reply: oneshot::Sender<Result<Settings, CommandError>>,
}

/// A cheap, cloneable handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) cmd: mpsc::Sender<Request>,
    pub(super) status: watch::Receiver<Status>,
    pub(super) settings: watch::Receiver<Settings>,
    pub(super) events: broadcast::Sender<Event>,
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
    /// The engine's runtime settings as they are now: a command's change is here before the
    /// command returns. Reading them sends nothing to the engine.
    pub fn settings(&self) -> Settings {
        self.settings.borrow().clone()
    }
    /// A receiver that sees every settings change.
    pub fn watch_settings(&self) -> watch::Receiver<Settings> {
        self.settings.clone()
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
