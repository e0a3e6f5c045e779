use serde::{Deserialize, Serialize};

/// Charge at a fixed current until a wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChargeNow {
    /// Amps for the whole site (before sharing among slaves).
    pub amps: f64,
    /// Unix time (seconds) at which Charge Now ends.
    pub until_unix: i64,
}

/// Runtime settings: what the UI and the APIs change while running (as opposed to the config
/// file). Persisted by the engine's settings store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Active Charge Now request, if any.
    pub charge_now: Option<ChargeNow>,
    /// Amps offered to the site when no other policy applies (TWCManager's
    /// `nonScheduledAmpsMax`), used with `non_scheduled_action = "charge"`.
    pub non_scheduled_amps: f64,
    /// What to do outside schedules: `"charge"` (fixed amps), `"stop"` or `"green"`.
    pub non_scheduled_action: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            charge_now: None,
            non_scheduled_amps: 6.0,
            non_scheduled_action: "charge".into(),
        }
    }
}
