//! External load points: chargers the engine budgets and commands that are not Gen2 slaves on
//! the bus (a Tesla Wall Connector Gen3 behind an emulated meter, later OCPP charge points).
//!
//! A plugin (a control surface, which holds an [`crate::engine::EngineHandle`]) reports each of
//! its load points with [`crate::engine::Command::ReportLoadPoint`]; the engine budgets it
//! next to the slaves and shows it in [`crate::model::Status::load_points`], whose
//! `allocated` field is the current the plugin must make the charger follow.
//!
//! Safety: a load point whose draw is unknown or older than its `stale_after_secs` counts at
//! its `max` in the wiring and grid budgets (never at 0); a fresh one counts at
//! `max(draw, allocated)`, since it may rise to what it was given before it is seen to. One
//! controlled through its car counts at `max` until the car's draw confirms it follows what it
//! was told, then at `max(draw, allocated, told)`.

use super::CentiAmps;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a load point is doing, as the plugin reads it from the charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoadPointState {
    /// Not known (booting, unreachable, a code we do not know).
    #[default]
    Unknown,
    /// No car.
    Idle,
    /// A car is connected and not charging.
    Connected,
    /// A car is charging.
    Charging,
    /// The charger reports an error.
    Error,
}

/// What a plugin reports for one load point (on every poll, and when the charger stops
/// answering: `measured = None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPointReport {
    /// Unique name, `<plugin>.<unit>` (`gen3.garage`).
    pub name: String,
    /// What kind of charger (`gen3`, `ocpp`).
    pub kind: String,
    /// The most it can draw per phase: min(its breaker setting, the wiring for it).
    pub max: CentiAmps,
    /// The least worth giving it (below this the car stops).
    pub min: CentiAmps,
    /// True when the plugin makes the charger follow `allocated`; false = monitoring only
    /// (its draw is budgeted, never commanded).
    pub controllable: bool,
    /// A measurement older than this many seconds is stale (budgeted at `max`).
    pub stale_after_secs: f64,
    /// The latest measurement, or `None` when the charger did not answer.
    pub measured: Option<LoadPointMeasurement>,
    /// A plugin's own problem to show (the charger does not follow, the meter port failed).
    pub problem: Option<String>,
    /// Controlled through this car (VIN) instead of the charger: the vehicles task tells the
    /// car to start, stop and draw `allocated`; the load point counts at `max` until the car's
    /// measured draw confirms it follows what it was told.
    #[serde(default)]
    pub via_car: Option<String>,
}

/// One measurement of a load point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPointMeasurement {
    /// The highest current of its phases.
    pub draw: CentiAmps,
    /// Its state.
    pub state: LoadPointState,
    /// Everything else the charger tells (per-phase currents and voltages, temperatures,
    /// alerts, session and lifetime energy, firmware, Wi-Fi), shown as is by every surface.
    pub details: serde_json::Value,
}

/// One load point as every surface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadPointStatus {
    /// Unique name.
    pub name: String,
    /// Kind (`gen3`, …).
    pub kind: String,
    /// The most it can draw.
    pub max: CentiAmps,
    /// The least worth giving it.
    pub min: CentiAmps,
    /// Whether the engine's allocation is followed (false = monitoring only).
    pub controllable: bool,
    /// Its draw when fresh; `None` when unknown or stale.
    pub draw: Option<CentiAmps>,
    /// State from the latest measurement.
    pub state: LoadPointState,
    /// True when the latest measurement is missing or older than its bound.
    pub stale: bool,
    /// When it was last measured.
    pub measured_at: Option<DateTime<Utc>>,
    /// The current the policy gives it: what its plugin makes it follow.
    pub allocated: CentiAmps,
    /// What it counts for in the wiring and grid budgets: `max` when stale or unknown,
    /// otherwise `max(draw, allocated)` (`draw` alone when only monitored).
    pub reserved: CentiAmps,
    /// The plugin's problem, if any (a charger that does not follow, an unreachable unit).
    pub problem: Option<String>,
    /// The car (VIN) it is controlled through, if any.
    #[serde(default)]
    pub via_car: Option<String>,
    /// Everything else the charger tells.
    pub details: serde_json::Value,
}
