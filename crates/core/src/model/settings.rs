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
    /// Scheduled charging windows.
    pub schedule: Schedule,
    /// Named consumption offsets, by name.
    pub consumption_offsets: std::collections::BTreeMap<String, ConsumptionOffset>,
    /// Home location, when set.
    pub home: Option<HomeLocation>,
    /// Free-form settings stored by TWCManager's `setSetting` API (strings, as upstream).
    pub extra: std::collections::BTreeMap<String, String>,
    /// Green tracking: amps a car that already charges may draw from the grid below the minimum
    /// to keep charging (TWCManager's `greenEnergyFlexAmps`).
    pub flex_amps: f64,
    /// Runtime grid-import limit (TWCManager's `maxAmpsAllowedFromGrid`); never above the
    /// installer's `[grid]` limit in the config. `None` = only the config's limit applies.
    pub max_grid_import: Option<GridLimit>,
    /// VINs allowed to charge; when non-empty, every other car (and a car without a VIN) gets 0 A.
    pub vin_allow: Vec<String>,
    /// VINs never allowed to charge (0 A, logged).
    pub vin_deny: Vec<String>,
    /// Sharing priority by VIN or by TWCID (4 hex digits); higher is served first, default 0.
    pub priorities: std::collections::BTreeMap<String, i32>,
}

/// A grid-import limit: amps per phase or watts in total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridLimit {
    /// The value, in `unit` (≥ 0).
    pub value: f64,
    /// `"A"` (per phase) or `"W"` (total).
    pub unit: OffsetUnit,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            charge_now: None,
            non_scheduled_amps: 6.0,
            non_scheduled_action: "charge".into(),
            schedule: Schedule::default(),
            consumption_offsets: Default::default(),
            home: None,
            extra: Default::default(),
            flex_amps: 0.0,
            max_grid_import: None,
            vin_allow: Vec::new(),
            vin_deny: Vec::new(),
            priorities: Default::default(),
        }
    }
}

/// One scheduled-charging window on one weekday (TWCManager's `ScheduledCharging`, per day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleWindow {
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// Start, minutes after local midnight (0..=1439).
    pub start_minute: u16,
    /// End, minutes after local midnight (0..=1439); a window that ends before it starts runs
    /// past midnight into the next day.
    pub end_minute: u16,
}

/// Scheduled charging: fixed amps inside per-weekday windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Schedule {
    /// True when the schedule applies.
    pub enabled: bool,
    /// Amps for the whole site inside a window.
    pub amps: f64,
    /// Windows, at most one per weekday.
    pub windows: Vec<ScheduleWindow>,
    /// TWCManager's flex start: start late enough to finish by the end minute.
    pub flex_start: bool,
    /// Battery size used by flex start, kWh.
    pub flex_battery_kwh: f64,
    /// Amps per ISO weekday (1 = Monday … 7 = Sunday) overriding `amps` for that day's window.
    pub day_amps: std::collections::BTreeMap<u8, f64>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            enabled: false,
            amps: 0.0,
            windows: Vec::new(),
            flex_start: false,
            flex_battery_kwh: 100.0,
            day_amps: Default::default(),
        }
    }
}

/// A named consumption offset (TWCManager's `consumptionOffset`): added to consumption (positive)
/// or to generation (negative) before green tracking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsumptionOffset {
    /// The value, in `unit`.
    pub value: f64,
    /// `"A"` or `"W"`.
    pub unit: OffsetUnit,
}

/// Unit of a [`ConsumptionOffset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetUnit {
    /// Amps (per phase, at the site voltage).
    A,
    /// Watts.
    W,
}

/// The home location, for sunrise/sunset and "at home" checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HomeLocation {
    /// Latitude, degrees (−90..=90).
    pub lat: f64,
    /// Longitude, degrees (−180..=180).
    pub lon: f64,
}
