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
    /// Charge plans ("80 % by 07:00 on weekdays"), see [`crate::planner`].
    pub plans: Vec<crate::planner::ChargePlan>,
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
            plans: Vec::new(),
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

impl HomeLocation {
    /// True when both are finite and in range: lat −90..=90, lon −180..=180.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
    }
}

/// What the settings are checked against: the installation's limits from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SettingsLimits {
    /// `[wiring] max_amps_all_twcs`, A: no amps setting may be above it.
    pub wiring_max_all: f64,
    /// `[grid] max_import_amps`: a runtime grid-import limit in A may not be above it.
    pub grid_max_import_amps: Option<f64>,
    /// `[grid] max_import_w`: a runtime grid-import limit in W may not be above it.
    pub grid_max_import_w: Option<f64>,
}

/// Settings that [`Settings::validate`] refused, with the reason (naming the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// The bounds every surface (HTTP, MQTT, the settings file) is held to; the HTTP API's OpenAPI
/// document states the same ones.
pub mod bounds {
    /// Largest consumption offset in amps (±).
    pub const MAX_OFFSET_A: f64 = 400.0;
    /// Largest consumption offset in watts (±).
    pub const MAX_OFFSET_W: f64 = 100_000.0;
    /// Most consumption offsets stored.
    pub const MAX_OFFSETS: usize = 64;
    /// Offset names are shorter than this many characters.
    pub const MAX_OFFSET_NAME_CHARS: usize = 32;
    /// Largest runtime grid-import limit in amps.
    pub const MAX_GRID_IMPORT_A: f64 = 1000.0;
    /// Largest runtime grid-import limit in watts.
    pub const MAX_GRID_IMPORT_W: f64 = 1_000_000.0;
    /// Most VINs in each of the allow and deny lists.
    pub const MAX_VINS: usize = 100;
    /// Largest flex-start battery, kWh.
    pub const MAX_FLEX_BATTERY_KWH: f64 = 1000.0;
    /// Most free-form settings (`extra`) stored.
    pub const MAX_EXTRA: usize = 256;
    /// Longest free-form setting key, bytes.
    pub const MAX_EXTRA_KEY: usize = 64;
    /// Longest free-form setting value, bytes.
    pub const MAX_EXTRA_VALUE: usize = 1024;
    /// Characters TWCManager refuses in names and free-form settings.
    pub const UNSAFE_CHARS: &[char] = &[
        '@', '#', '$', '%', '^', '&', '*', '"', '+', '<', '>', ';', '/',
    ];
}

fn amps_ok(key: &str, amps: f64, wiring: f64) -> Result<(), SettingsError> {
    if !amps.is_finite() || amps < 0.0 {
        return Err(SettingsError(format!(
            "{key} must be a number ≥ 0, got {amps}"
        )));
    }
    if amps > wiring {
        return Err(SettingsError(format!(
            "{key} = {amps} A is above the wiring limit for all TWCs ({wiring} A)"
        )));
    }
    Ok(())
}

impl Settings {
    /// Check the settings as a whole against `limits`: the one validator of runtime settings.
    /// The engine applies it to every change (whatever surface it came from) and to the saved
    /// file at start; nothing is clamped (safety invariant 5). The reason names the key.
    pub fn validate(&self, limits: &SettingsLimits) -> Result<(), SettingsError> {
        let wiring = limits.wiring_max_all;
        let bad = |m: String| Err(SettingsError(m));
        amps_ok("non_scheduled_amps", self.non_scheduled_amps, wiring)?;
        if let Some(cn) = self.charge_now {
            amps_ok("charge_now.amps", cn.amps, wiring)?;
        }
        if !matches!(
            self.non_scheduled_action.as_str(),
            "charge" | "stop" | "green"
        ) {
            return bad(format!(
                "non_scheduled_action must be \"charge\", \"stop\" or \"green\", got {:?}",
                self.non_scheduled_action
            ));
        }
        amps_ok("flex_amps", self.flex_amps, wiring)?;
        self.schedule.validate(wiring)?;
        self.validate_offsets()?;
        self.validate_plans()?;
        if let Some(h) = self.home
            && !h.is_valid()
        {
            return bad(format!(
                "home location lat = {}, lon = {}: expected −90..=90 and −180..=180",
                h.lat, h.lon
            ));
        }
        if let Some(l) = self.max_grid_import {
            let (max, cfg, unit, cfg_key) = match l.unit {
                OffsetUnit::A => (
                    bounds::MAX_GRID_IMPORT_A,
                    limits.grid_max_import_amps,
                    "A",
                    "max_import_amps",
                ),
                OffsetUnit::W => (
                    bounds::MAX_GRID_IMPORT_W,
                    limits.grid_max_import_w,
                    "W",
                    "max_import_w",
                ),
            };
            if !(l.value.is_finite() && l.value >= 0.0 && l.value <= max) {
                return bad(format!(
                    "max_grid_import = {} {unit}: expected a number ≥ 0 (at most 1000 A or 1000000 W)",
                    l.value
                ));
            }
            if let Some(c) = cfg
                && l.value > c
            {
                return bad(format!(
                    "max_grid_import = {} {unit} is above the configured [grid] {cfg_key} = {c} {unit}",
                    l.value
                ));
            }
        }
        for (key, list) in [("vin_allow", &self.vin_allow), ("vin_deny", &self.vin_deny)] {
            if list.len() > bounds::MAX_VINS {
                return bad(format!("{key} holds at most {} VINs", bounds::MAX_VINS));
            }
            for v in list {
                if v.is_empty() || v.len() > 17 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return bad(format!(
                        "VIN {v:?} in {key}: expected 1 to 17 letters and digits"
                    ));
                }
            }
        }
        for k in self.priorities.keys() {
            if k.trim().is_empty() {
                return bad("priority keys must be a VIN or a TWCID, not empty".into());
            }
        }
        if self.extra.len() > bounds::MAX_EXTRA {
            return bad(format!(
                "at most {} free-form settings can be stored",
                bounds::MAX_EXTRA
            ));
        }
        for (k, v) in &self.extra {
            if k.trim().is_empty()
                || k.len() > bounds::MAX_EXTRA_KEY
                || v.len() > bounds::MAX_EXTRA_VALUE
            {
                return bad(format!(
                    "setting {:?}: the key must be 1..{} characters and the value at most {}",
                    k.chars().take(70).collect::<String>(),
                    bounds::MAX_EXTRA_KEY,
                    bounds::MAX_EXTRA_VALUE
                ));
            }
            if k.contains(bounds::UNSAFE_CHARS) || v.contains(bounds::UNSAFE_CHARS) {
                return bad(format!(
                    "setting {k:?}: the key and value must not contain any of @#$%^&*\"+<>;/"
                ));
            }
        }
        Ok(())
    }

    fn validate_plans(&self) -> Result<(), SettingsError> {
        if self.plans.len() > crate::planner::MAX_PLANS {
            return Err(SettingsError(format!(
                "plans: at most {} plans can be stored",
                crate::planner::MAX_PLANS
            )));
        }
        for (i, p) in self.plans.iter().enumerate() {
            p.validate().map_err(SettingsError)?;
            if self.plans[..i].iter().any(|q| q.id == p.id) {
                return Err(SettingsError(format!(
                    "plans: id {:?} is used twice; ids must be unique",
                    p.id
                )));
            }
        }
        Ok(())
    }

    fn validate_offsets(&self) -> Result<(), SettingsError> {
        let bad = |m: String| Err(SettingsError(m));
        if self.consumption_offsets.len() > bounds::MAX_OFFSETS {
            return bad(format!(
                "at most {} consumption offsets can be stored",
                bounds::MAX_OFFSETS
            ));
        }
        for (name, o) in &self.consumption_offsets {
            if name.trim().is_empty() {
                return bad("consumption offset names must not be empty".into());
            }
            if name.chars().count() >= bounds::MAX_OFFSET_NAME_CHARS {
                return bad(format!(
                    "consumption offset name {name:?} must be shorter than {} characters",
                    bounds::MAX_OFFSET_NAME_CHARS
                ));
            }
            if name.contains(bounds::UNSAFE_CHARS) || name.chars().any(char::is_control) {
                return bad(format!(
                    "consumption offset name {name:?} must not contain any of @#$%^&*\"+<>;/"
                ));
            }
            let max = match o.unit {
                OffsetUnit::A => bounds::MAX_OFFSET_A,
                OffsetUnit::W => bounds::MAX_OFFSET_W,
            };
            if !o.value.is_finite() || o.value == 0.0 || o.value.abs() > max {
                return bad(format!(
                    "consumption offset {name:?} = {} {:?}: expected a number other than 0 within ±{max}",
                    o.value, o.unit
                ));
            }
        }
        Ok(())
    }
}

impl Schedule {
    /// Check a schedule: amps within the wiring limit (above 0 when enabled), at most one window
    /// per weekday 1..=7, minutes 0..=1439 and start ≠ end, day amps within the wiring limit,
    /// the flex-start battery 0..=1000 kWh. Part of [`Settings::validate`].
    pub fn validate(&self, wiring: f64) -> Result<(), SettingsError> {
        let bad = |m: String| Err(SettingsError(m));
        amps_ok("schedule.amps", self.amps, wiring)?;
        if self.enabled && self.amps <= 0.0 {
            return bad("schedule.amps must be greater than 0 when the schedule is enabled".into());
        }
        let mut seen = [false; 8];
        for w in &self.windows {
            if !(1..=7).contains(&w.weekday) {
                return bad(format!(
                    "schedule window weekday {} is not 1 (Monday) … 7 (Sunday)",
                    w.weekday
                ));
            }
            if seen[usize::from(w.weekday)] {
                return bad(format!(
                    "schedule: weekday {} has more than one window",
                    w.weekday
                ));
            }
            seen[usize::from(w.weekday)] = true;
            if w.start_minute > 1439 || w.end_minute > 1439 {
                return bad(format!(
                    "schedule window on day {}: minutes must be 0..=1439, got {}–{}",
                    w.weekday, w.start_minute, w.end_minute
                ));
            }
            if w.start_minute == w.end_minute {
                return bad(format!(
                    "schedule window on day {} is empty (start = end)",
                    w.weekday
                ));
            }
        }
        for (d, a) in &self.day_amps {
            if !(1..=7).contains(d) {
                return bad(format!(
                    "schedule.day_amps: weekday {d} is not 1 (Monday) … 7 (Sunday)"
                ));
            }
            amps_ok(&format!("schedule.day_amps[{d}]"), *a, wiring)?;
        }
        if !(self.flex_battery_kwh.is_finite()
            && (0.0..=bounds::MAX_FLEX_BATTERY_KWH).contains(&self.flex_battery_kwh))
        {
            return bad(format!(
                "schedule.flex_battery_kwh must be a number from 0 to {}, got {}",
                bounds::MAX_FLEX_BATTERY_KWH,
                self.flex_battery_kwh
            ));
        }
        Ok(())
    }
}
