//! The vehicle API trait and what it returns (Tesla Fleet API, TeslaMate, …).
//!
//! A vehicle plugin reads cars (state of charge, limit, where they are) and, where it can,
//! commands them. The consumer is [`crate::vehicles`]: it matches cars to slaves by VIN and
//! applies the per-policy limits, the minimum state of charge and start/stop through the car.

use super::{ErrorKind, PluginError};
use async_trait::async_trait;

/// A vehicle known to a vehicle API.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vehicle {
    /// The API's id.
    pub id: String,
    /// VIN.
    pub vin: String,
    /// Display name.
    pub name: Option<String>,
}

/// A vehicle's charge state and whereabouts, as far as the API knows them. Every field is an
/// `Option`: unknown is never 0 %.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Default)]
pub struct ChargeState {
    /// State of charge, %.
    pub soc_pct: Option<f64>,
    /// Charge limit, %.
    pub limit_pct: Option<f64>,
    /// True while charging.
    pub charging: Option<bool>,
    /// True when plugged in.
    pub plugged_in: Option<bool>,
    /// True when at home (inside the plugin's home geofence).
    pub at_home: Option<bool>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `online`, `asleep`, `offline` (the API's words).
    #[serde(default)]
    pub state: Option<String>,
    /// The car's charging state in the API's words (`Charging`, `Stopped`, `Complete`,
    /// `Disconnected`, …).
    #[serde(default)]
    pub charging_state: Option<String>,
    /// Latitude, degrees.
    #[serde(default)]
    pub latitude: Option<f64>,
    /// Longitude, degrees.
    #[serde(default)]
    pub longitude: Option<f64>,
    /// What the car draws, A.
    #[serde(default)]
    pub actual_amps: Option<f64>,
    /// The most the car asks for by itself, A (Tesla: `charge_current_request_max`).
    #[serde(default)]
    pub max_amps: Option<f64>,
    /// Seconds since the values were measured (0 = just now), when the API says.
    #[serde(default)]
    pub age_secs: Option<f64>,
}

/// The state of a vehicle API's account (login), for the UI. Never holds a token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Default)]
pub struct AccountStatus {
    /// Registry name of the plugin.
    pub plugin: String,
    /// True when the plugin can log in from the web UI.
    pub login_supported: bool,
    /// True while it holds a usable token (or needs none).
    pub logged_in: bool,
    /// When the access token expires, Unix seconds.
    pub expires_unix: Option<i64>,
    /// The last account-level problem (refresh refused, …).
    pub last_error: Option<String>,
    /// True when the plugin can command cars (start, stop, limits); false for read-only
    /// telemetry such as TeslaMate.
    pub can_command: bool,
}

/// A vehicle API (Tesla, TeslaMate, …). Commands default to `Unsupported`, so a read-only
/// source implements only `list` and `charge_state`.
#[async_trait]
pub trait VehicleApi: Send + Sync {
    /// Vehicles on the account.
    async fn list(&self) -> Result<Vec<Vehicle>, PluginError>;
    /// Wake a vehicle.
    async fn wake(&self, vin: &str) -> Result<(), PluginError> {
        Err(unsupported(self.name(), "wake", vin))
    }
    /// Read its charge state. Must not wake a sleeping car: an asleep car answers with
    /// `state = "asleep"` and what is cached.
    async fn charge_state(&self, vin: &str) -> Result<ChargeState, PluginError>;
    /// Start charging.
    async fn start(&self, vin: &str) -> Result<(), PluginError> {
        Err(unsupported(self.name(), "charge_start", vin))
    }
    /// Stop charging.
    async fn stop(&self, vin: &str) -> Result<(), PluginError> {
        Err(unsupported(self.name(), "charge_stop", vin))
    }
    /// Set the charge limit, %.
    async fn set_limit(&self, vin: &str, pct: u8) -> Result<(), PluginError> {
        let _ = pct;
        Err(unsupported(self.name(), "set_charge_limit", vin))
    }
    /// Set the current the car asks for, A (charging below the TWC's minimum).
    async fn set_amps(&self, vin: &str, amps: u8) -> Result<(), PluginError> {
        let _ = amps;
        Err(unsupported(self.name(), "set_charging_amps", vin))
    }
    /// Registry name, for errors and Status.
    fn name(&self) -> &str {
        "vehicle"
    }
    /// The account's state for the UI. Default: no login needed, read-only.
    fn account(&self) -> AccountStatus {
        AccountStatus {
            plugin: self.name().to_string(),
            logged_in: true,
            ..AccountStatus::default()
        }
    }
    /// Start a login: the URL to send the user's browser to. `redirect_uri` is where the
    /// provider sends the browser back (the web UI's callback).
    fn login_url(&self, redirect_uri: &str) -> Result<String, PluginError> {
        let _ = redirect_uri;
        Err(PluginError::new(
            ErrorKind::Unsupported,
            self.name(),
            "this vehicle API has no login",
        ))
    }
    /// Finish a login with the provider's `code` and the `state` it echoed.
    async fn finish_login(&self, code: &str, state: &str) -> Result<(), PluginError> {
        let _ = (code, state);
        Err(PluginError::new(
            ErrorKind::Unsupported,
            self.name(),
            "this vehicle API has no login",
        ))
    }
}

fn unsupported(plugin: &str, what: &str, vin: &str) -> PluginError {
    PluginError::new(
        ErrorKind::Unsupported,
        plugin,
        format!("{what} {vin}: this vehicle API is read-only"),
    )
}
