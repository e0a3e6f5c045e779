//! Cars: matching them to slaves by VIN, the per-policy charge limit (set on entry, restored on
//! departure), the minimum state of charge, and start/stop through the car where the TWC cannot.
//!
//! The [`VehicleApi`](crate::plugin::VehicleApi) plugins do the talking; this module decides. It runs as its own task
//! ([`spawn`]) next to the engine: it watches the engine's [`Status`](crate::model::Status),
//! polls the cars, sends them commands and hands the engine what it needs for the budget
//! ([`Command::SetVehicles`](crate::engine::Command::SetVehicles): which cars are below their
//! minimum). Control surfaces reach it through a [`VehicleHandle`].

mod manager;
mod plan;

pub use manager::spawn;
pub use plan::{Action, CarView, SlaveView, below_min_soc, plan};

use crate::plugin::AccountStatus;
use crate::protocol::TwcId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot, watch};

/// The `[vehicles]` section: what the policy does with cars.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VehiclesConfig {
    /// Below this state of charge a car at a TWC charges at the full allowed current, whatever
    /// the sun (0 = off).
    pub min_soc_pct: f64,
    /// Charge limit per policy name (`"Charge Now" = 90`), 50–100 %; set when the policy
    /// starts, the car's own limit restored when it leaves or a policy without one applies.
    pub limits: BTreeMap<String, u8>,
    /// Stop a car through its API when its TWC cannot (protocol 1 slaves, cars that keep
    /// drawing at 0 A).
    pub stop_via_car: bool,
    /// Start a car through its API when its TWC offers current but the car does not draw.
    pub start_via_car: bool,
    /// How often a car at a TWC is read, seconds.
    pub poll_secs: u64,
    /// How often the other cars are read, seconds (TWCManager's `cloudUpdateInterval`).
    pub idle_poll_secs: u64,
    /// Least time between two start/stop commands to one car, seconds.
    pub command_interval_secs: u64,
    /// A car's data older than this is not used for the minimum state of charge, seconds.
    pub stale_after_secs: u64,
    /// Charge below the TWC's minimum (6 A) by telling the car (`set_charging_amps`) to draw
    /// less while its TWC is offered its minimum. Off by default.
    pub low_current: bool,
    /// The least a car is told to draw through its API, A (1–5).
    pub low_current_min_amps: f64,
    /// A car that draws more than it was told for this long makes the engine fall back (its
    /// TWC gets 0 A below 6 A, and this is reported), seconds.
    pub low_current_grace_secs: u64,
    /// Least time between two `set_charging_amps` commands to one car, seconds (the Fleet
    /// API's budget).
    pub amps_interval_secs: u64,
    /// Least time before a command that *lowers* a car's amps, seconds (never more than
    /// `amps_interval_secs`): a car that draws more than the surplus imports until it is told
    /// less, so a lowering need not wait the whole interval.
    pub amps_lower_interval_secs: u64,
}

impl Default for VehiclesConfig {
    fn default() -> Self {
        VehiclesConfig {
            min_soc_pct: 0.0,
            limits: BTreeMap::new(),
            stop_via_car: true,
            start_via_car: true,
            poll_secs: 300,
            idle_poll_secs: 1800,
            command_interval_secs: 60,
            stale_after_secs: 3600,
            low_current: false,
            low_current_min_amps: 2.0,
            low_current_grace_secs: 60,
            amps_interval_secs: 120,
            amps_lower_interval_secs: 10,
        }
    }
}

impl VehiclesConfig {
    /// Read and check `[vehicles]` of the merged configuration (absent: the defaults). Every
    /// problem is named with its key.
    pub fn from_root(root: &serde_json::Value) -> Result<Self, Vec<String>> {
        let Some(v) = root.get("vehicles") else {
            return Ok(VehiclesConfig::default());
        };
        let c: VehiclesConfig =
            serde_json::from_value(v.clone()).map_err(|e| vec![format!("[vehicles]: {e}")])?;
        let mut errors = Vec::new();
        if !(0.0..=100.0).contains(&c.min_soc_pct) {
            errors.push(format!(
                "[vehicles] min_soc_pct must be between 0 and 100 (0 = off), got {}",
                c.min_soc_pct
            ));
        }
        for (name, pct) in &c.limits {
            if name.trim().is_empty() {
                errors.push("[vehicles] limits: a policy name is empty".into());
            }
            if !(50..=100).contains(pct) {
                errors.push(format!(
                    "[vehicles] limits.\"{name}\" must be between 50 and 100 %, got {pct}"
                ));
            }
        }
        if !(1.0..=5.0).contains(&c.low_current_min_amps) {
            errors.push(format!(
                "[vehicles] low_current_min_amps must be between 1 and 5 A, got {}",
                c.low_current_min_amps
            ));
        }
        for (key, v) in [
            ("low_current_grace_secs", c.low_current_grace_secs),
            ("amps_interval_secs", c.amps_interval_secs),
            ("amps_lower_interval_secs", c.amps_lower_interval_secs),
            ("poll_secs", c.poll_secs),
            ("idle_poll_secs", c.idle_poll_secs),
            ("command_interval_secs", c.command_interval_secs),
            ("stale_after_secs", c.stale_after_secs),
        ] {
            if v == 0 {
                errors.push(format!("[vehicles] {key} must be at least 1"));
            }
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }
}

/// One car as every surface shows it (web UI, REST, MQTT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VehicleStatus {
    /// VIN.
    pub vin: String,
    /// Display name.
    pub name: Option<String>,
    /// The plugin that reads it.
    pub source: String,
    /// `online`, `asleep`, `offline`.
    pub state: Option<String>,
    /// State of charge, %.
    pub soc_pct: Option<f64>,
    /// Charge limit, %.
    pub limit_pct: Option<f64>,
    /// The car's charging state (`Charging`, `Stopped`, `Complete`, `Disconnected`, …).
    pub charging_state: Option<String>,
    /// Plugged in.
    pub plugged_in: Option<bool>,
    /// At home, from the plugin's geofence or from being at one of our TWCs.
    pub at_home: Option<bool>,
    /// Latitude, degrees.
    pub latitude: Option<f64>,
    /// Longitude, degrees.
    pub longitude: Option<f64>,
    /// The TWC it is plugged into, matched by VIN.
    pub slave: Option<TwcId>,
    /// Below `[vehicles] min_soc_pct` at a TWC with fresh data: charges at the full allowed
    /// current.
    pub below_min_soc: bool,
    /// Seconds since its data was read.
    pub data_age_secs: Option<f64>,
    /// Data older than `[vehicles] stale_after_secs` (or none yet).
    pub stale: bool,
    /// The last read error, if the last read failed.
    pub last_error: Option<String>,
    /// The limit the policy set, which is restored on departure.
    pub policy_limit_pct: Option<u8>,
    /// The car's own limit, remembered to restore it.
    pub own_limit_pct: Option<u8>,
    /// The last command sent to it.
    pub last_command: Option<CommandRecord>,
    /// Set only with `[vehicles] low_current` on and a vehicle API that can command it: the
    /// engine may then give its TWC a share below the TWC's minimum and tell the car.
    #[serde(default)]
    pub low_current: Option<LowCurrentCar>,
    /// The charging amps it last accepted from us (`None`: not lowered by us, or restored).
    #[serde(default)]
    pub told_amps: Option<u8>,
    /// The most it asks for by itself, A (`charge_current_request_max`): what it is set back
    /// to.
    #[serde(default)]
    pub max_amps: Option<f64>,
}

/// How a car may be told to charge below its TWC's minimum (from `[vehicles]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LowCurrentCar {
    /// The least it is told to draw, A.
    pub min_amps: f64,
    /// Drawing more than it was told for this long makes the engine fall back, seconds.
    pub grace_secs: u64,
}

/// What the engine wants a car to draw through its API (charging below the TWC's minimum, or a
/// charger controlled through the car): the vehicles task sends it, rate limited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarCurrent {
    /// VIN.
    pub vin: String,
    /// Where it charges: a TWCID (`3003`) or a load point (`gen3.garage`).
    pub at: String,
    /// `set_charging_amps` this, A; `None` = back to the car's own maximum.
    pub amps: Option<u8>,
    /// `Some(true)`: should charge (started through the car), `Some(false)`: stopped through
    /// the car; `None`: the charger starts and stops it.
    pub charge: Option<bool>,
    /// What it counts for in the budgets, A: the charger's offer (or maximum) until the car's
    /// measured draw confirms it follows.
    pub counted: crate::model::CentiAmps,
    /// True once its measured draw shows it follows what it was told.
    pub confirmed: bool,
    /// Why the engine fell back (the car draws more than it was told), shown to the user.
    pub problem: Option<String>,
}

/// One command sent to a car and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// What (`charge_start`, `set_charge_limit 80`, …).
    pub command: String,
    /// Why it was sent (`policy`, `api`, `minimum state of charge`, …).
    pub reason: String,
    /// True when the car accepted it.
    pub ok: bool,
    /// The result in words (`done` or the error).
    pub result: String,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// Everything the vehicles task knows, for the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VehicleOverview {
    /// One per vehicle plugin.
    pub accounts: Vec<AccountStatus>,
    /// Every car, sorted by VIN.
    pub vehicles: Vec<VehicleStatus>,
}

/// A command a user or API client sends a car.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarAction {
    /// `charge_start`.
    Start,
    /// `charge_stop`.
    Stop,
    /// `set_charge_limit`, %.
    SetLimit(u8),
    /// `set_charging_amps`, A.
    SetAmps(u8),
    /// `wake_up`.
    Wake,
}

impl std::fmt::Display for CarAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CarAction::Start => f.write_str("charge_start"),
            CarAction::Stop => f.write_str("charge_stop"),
            CarAction::SetLimit(p) => write!(f, "set_charge_limit {p}"),
            CarAction::SetAmps(a) => write!(f, "set_charging_amps {a}"),
            CarAction::Wake => f.write_str("wake_up"),
        }
    }
}

/// What control surfaces ask of the vehicles task.
#[derive(Debug, Clone)]
pub enum VehicleRequest {
    /// Send a command to one car (`None` = every car at home).
    Command {
        /// VIN, or `None` for every car at home.
        vin: Option<String>,
        /// What.
        action: CarAction,
    },
    /// TWCManager's `checkArrival`: read every car now.
    CheckArrival,
    /// TWCManager's `checkDeparture`: read every car now and restore limits of cars gone.
    CheckDeparture,
    /// Start a login: the URL for the user's browser.
    LoginUrl {
        /// Which plugin (`None` = the only one that can log in).
        plugin: Option<String>,
        /// The web UI's callback URL.
        redirect_uri: String,
    },
    /// Finish a login with the provider's answer.
    FinishLogin {
        /// Which plugin (`None` = the only one that can log in).
        plugin: Option<String>,
        /// The authorization code.
        code: String,
        /// The state the provider echoed.
        state: String,
    },
}

/// Why a vehicle request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VehicleError {
    /// The request is wrong (4xx): the reason names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such car or plugin.
    #[error("{0}")]
    NotFound(String),
    /// The car or the vehicle API failed (timeout, asleep, refused).
    #[error("{0}")]
    Failed(String),
    /// The vehicles task is not running.
    #[error("the vehicles task has stopped")]
    Stopped,
}

pub(crate) struct Job {
    pub(crate) req: VehicleRequest,
    pub(crate) reply: oneshot::Sender<Result<String, VehicleError>>,
}

/// What control surfaces hold to reach the vehicles task.
#[derive(Clone, Debug)]
pub struct VehicleHandle {
    pub(crate) tx: mpsc::Sender<Job>,
    pub(crate) overview: watch::Receiver<VehicleOverview>,
}

impl VehicleHandle {
    /// Send a request and wait for its result (a message for the user).
    pub async fn request(&self, req: VehicleRequest) -> Result<String, VehicleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job { req, reply: tx })
            .await
            .map_err(|_| VehicleError::Stopped)?;
        rx.await.map_err(|_| VehicleError::Stopped)?
    }
    /// Cars and accounts as they are now.
    pub fn overview(&self) -> VehicleOverview {
        self.overview.borrow().clone()
    }
    /// A receiver that sees every change.
    pub fn watch(&self) -> watch::Receiver<VehicleOverview> {
        self.overview.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_vehicles_section_is_checked_naming_each_key() {
        assert_eq!(
            VehiclesConfig::from_root(&json!({})).unwrap(),
            VehiclesConfig::default()
        );
        let c = VehiclesConfig::from_root(
            &json!({"vehicles": {"min_soc_pct": 30.0, "limits": {"Charge Now": 90}}}),
        )
        .unwrap();
        assert_eq!((c.min_soc_pct, c.limits["Charge Now"]), (30.0, 90));
        let e = VehiclesConfig::from_root(&json!({"vehicles": {
            "min_soc_pct": 130.0, "limits": {"Charge Now": 40}, "poll_secs": 0}}))
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.iter().any(|m| m.contains("min_soc_pct")));
        assert!(e.iter().any(|m| m.contains("limits.\"Charge Now\"")));
        assert!(e.iter().any(|m| m.contains("poll_secs")));
        let e = VehiclesConfig::from_root(&json!({"vehicles": {"min_soc": 30}})).unwrap_err();
        assert!(e[0].contains("min_soc"), "{e:?}");
    }

    #[test]
    fn charging_below_6_a_is_off_by_default_and_its_keys_are_checked() {
        let c = VehiclesConfig::default();
        assert!(!c.low_current);
        let c = VehiclesConfig::from_root(
            &json!({"vehicles": {"low_current": true, "low_current_min_amps": 3.0}}),
        )
        .unwrap();
        assert!(c.low_current && c.low_current_min_amps == 3.0);
        let e = VehiclesConfig::from_root(&json!({"vehicles": {
            "low_current_min_amps": 6.0, "low_current_grace_secs": 0, "amps_interval_secs": 0}}))
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("low_current_min_amps") && e[0].contains("between 1 and 5"));
        assert!(e.iter().any(|m| m.contains("low_current_grace_secs")));
        assert!(e.iter().any(|m| m.contains("amps_interval_secs")));
    }
}
