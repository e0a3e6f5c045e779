//! The policy sections of the config file: `[policy]`, `[green]` and `[grid]`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The config sections this module reads, for the binary's list of known sections.
pub const SECTIONS: &[&str] = &["policy", "green", "grid"];

/// Everything the policy engine takes from the config file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// `[policy]`: the rule list, its extensions and webhooks.
    pub rules: RulesConfig,
    /// `[green]`: green-energy tracking.
    pub green: GreenConfig,
    /// `[grid]`: the grid-import limit.
    pub grid: GridConfig,
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// TWCManager's daytime "Track Green Energy" entry (after Scheduled Charging, before
    /// Non-Scheduled Charging). TWCManager has it on; off here so that a fixed non-scheduled
    /// action means what it says.
    pub daytime_green: bool,
    /// When daytime is: `"sun"` (sunrise–sunset from the home location; falls back to the hours
    /// below until a location is set) or `"hours"`.
    pub green_window: String,
    /// Daytime start, local hour (0..24, fractional allowed), for `green_window = "hours"`.
    pub green_start_hour: f64,
    /// Daytime end, local hour.
    pub green_end_hour: f64,
    /// The daytime green entry stays matched this long after it last matched (TWCManager's
    /// `greenEnergyLatch`), minutes.
    pub green_latch_minutes: f64,
    /// Local time for schedules and hours: `"local"` (the system's zone) or a fixed offset such
    /// as `"+01:00"`.
    pub utc_offset: String,
    /// Replace the built-in list by `custom` (TWCManager's `policy.override`).
    pub replace_builtin: bool,
    /// Your own policies.
    pub custom: Vec<CustomPolicy>,
    /// Extra conditions (all must hold) on a built-in policy, by its name.
    pub restrictions: BTreeMap<String, Vec<Condition>>,
    /// HTTP calls made when a policy becomes active or stops being active.
    pub webhooks: Vec<Webhook>,
    /// Timeout of one webhook call, seconds.
    pub webhook_timeout_secs: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            daytime_green: false,
            green_window: "sun".into(),
            green_start_hour: 6.0,
            green_end_hour: 20.0,
            green_latch_minutes: 0.0,
            utc_offset: "local".into(),
            replace_builtin: false,
            custom: Vec::new(),
            restrictions: BTreeMap::new(),
            webhooks: Vec::new(),
            webhook_timeout_secs: 10,
        }
    }
}

/// Where a custom policy goes in the list (TWCManager's extension points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Before Charge Now.
    Emergency,
    /// After Charge Now, before Scheduled Charging.
    #[default]
    Before,
    /// After the daytime green entry, before Non-Scheduled Charging.
    After,
}

/// A policy of your own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPolicy {
    /// Its name (shown in the status).
    pub name: String,
    /// Where it goes.
    #[serde(default)]
    pub position: Position,
    /// All must hold for it to match.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Fixed site amps; absent = follow green energy.
    #[serde(default)]
    pub amps: Option<f64>,
    /// Stay matched this long after the conditions last held, minutes.
    #[serde(default)]
    pub latch_minutes: f64,
    /// Flex amps while this policy is active (green only); absent = the runtime setting.
    #[serde(default)]
    pub flex_amps: Option<f64>,
}

/// Comparison operators (TWCManager's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// >
    Gt,
    /// ≥
    Gte,
    /// <
    Lt,
    /// ≤
    Lte,
    /// =
    Eq,
    /// ≠
    Ne,
}

/// One condition: `{ match = "time.hour", op = "gte", value = 22 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// What to look at; see [`crate::policy::VALUE_NAMES`].
    #[serde(rename = "match")]
    pub what: String,
    /// How to compare.
    pub op: Op,
    /// The value compared against (number, string or boolean).
    pub value: Value,
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The policy name it belongs to, or `"*"` for every policy.
    pub policy: String,
    /// `"enter"` (becomes active) or `"exit"` (stops being active).
    #[serde(default = "default_event")]
    pub event: String,
    /// The URL.
    pub url: String,
    /// `"POST"` (the status as JSON) or `"GET"`.
    #[serde(default = "default_method")]
    pub method: String,
}

fn default_event() -> String {
    "enter".into()
}
fn default_method() -> String {
    "POST".into()
}

/// `[green]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GreenConfig {
    /// Charging starts after the surplus has covered the minimum this long without a break, s.
    pub start_delay_secs: f64,
    /// After a car was stopped for lack of surplus, the next start needs the surplus this long
    /// (anti-cycling under passing clouds; 0 = the start delay), s.
    pub restart_delay_secs: f64,
    /// Charging stops after the surplus has been short this long, s. Time short by only part of
    /// the minimum counts in proportion (at least 20 %), and time with enough surplus counts
    /// back, so passing clouds do not stop the car but a real lack of sun does.
    pub stop_delay_secs: f64,
    /// Flex amps (the runtime setting) may also be used to start charging, not only to keep it.
    pub flex_to_start: bool,
    /// Watts always left for export (a safety margin against meter lag), W.
    pub reserve_w: f64,
    /// `"car_first"` or `"battery_first"`: with `battery_first`, while the home battery's state
    /// of charge is below `battery_first_below_soc`, `battery_charge_w` of the surplus is left for
    /// the battery.
    pub battery_priority: String,
    /// See `battery_priority`, %.
    pub battery_first_below_soc: f64,
    /// What the battery may charge with, W (reserved for it under `battery_first`).
    pub battery_charge_w: f64,
    /// `"solar"` (charge from the surplus only) or `"min_solar"` (always the minimum while a car
    /// is connected and the meter is fresh, the surplus on top).
    pub mode: String,
    /// Follow the grid meter where there is one: the surplus is the chargers' draw minus the
    /// grid power, and a correction learned from the measured export makes up for cars that draw
    /// less than offered. `false`: feed-forward from generation and consumption when both are
    /// known.
    pub closed_loop: bool,
    /// Forecast start: the window of the short-window surplus forecast (a causal double
    /// exponential smoothing of the past readings), s. A car starts once the surplus covers the
    /// minimum now, the energy expected over the next window covers the minimum's, and the
    /// surplus has held for a quarter of `start_delay_secs`. 0 = start after `start_delay_secs`
    /// above the minimum without a break.
    pub forecast_secs: f64,
    /// Cost stop: the expected cost of stopping and starting again, Wh of grid import. While
    /// short of the minimum, the car stops as soon as the import the hold has cost in this dip
    /// plus the import expected until the forecast is back at the minimum exceeds it;
    /// `stop_delay_secs` stays the upper bound. 0 = stop after the weighted stop count only.
    pub restart_cost_wh: f64,
    /// Drop reserve: the window over which the falls of the surplus between consecutive
    /// readings are remembered, s. While charging above the minimum, the offer is lowered by
    /// the largest fall in the window (at most `drop_reserve_max_w`), so a surplus that keeps
    /// jumping down under broken clouds is not followed into the grid; a smooth surplus keeps
    /// no margin. 0 = off. See `policy/drop_reserve.rs`.
    pub drop_reserve_secs: f64,
    /// The most the drop reserve keeps back, W.
    pub drop_reserve_max_w: f64,
    /// Low sun: with a home location, in the first and last this many minutes of daylight (and
    /// at night) a car does not start and a surplus short of the minimum is not held; the car
    /// stops at once, since the sun will not bring the surplus back within the stop delay.
    /// 0 = off.
    pub low_sun_minutes: f64,
}

impl Default for GreenConfig {
    fn default() -> Self {
        GreenConfig {
            start_delay_secs: 60.0,
            restart_delay_secs: 0.0,
            stop_delay_secs: 300.0,
            flex_to_start: false,
            reserve_w: 0.0,
            battery_priority: "car_first".into(),
            battery_first_below_soc: 80.0,
            battery_charge_w: 0.0,
            mode: "solar".into(),
            closed_loop: true,
            forecast_secs: 300.0,
            restart_cost_wh: 0.0,
            drop_reserve_secs: 0.0,
            drop_reserve_max_w: 300.0,
            low_sun_minutes: 30.0,
        }
    }
}

/// `[grid]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridConfig {
    /// Most the site may import, A per phase (the main fuse, say). Applies under every policy.
    pub max_import_amps: Option<f64>,
    /// Most the site may import, W in total. Both may be set; the stricter holds.
    pub max_import_w: Option<f64>,
    /// Site amps for the chargers while a grid limit is set but no fresh reading shows the grid.
    pub safe_amps: f64,
}

impl Default for GridConfig {
    fn default() -> Self {
        GridConfig {
            max_import_amps: None,
            max_import_w: None,
            safe_amps: 0.0,
        }
    }
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    root: &Value,
    name: &str,
    errors: &mut Vec<String>,
) -> T {
    match root.get(name) {
        None => T::default(),
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            errors.push(format!("[{name}] {e}"));
            T::default()
        }),
    }
}

impl PolicyConfig {
    /// Read `[policy]`, `[green]` and `[grid]` from the merged config and validate them against
    /// the wiring limit for all TWCs (A). Every problem is reported, naming the key.
    pub fn from_sections(root: &Value, wiring_max_all: f64) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let cfg = PolicyConfig {
            rules: section(root, "policy", &mut errors),
            green: section(root, "green", &mut errors),
            grid: section(root, "grid", &mut errors),
        };
        // Sections that did not parse are defaults here, so this reports the others' problems.
        errors.extend(cfg.validate(wiring_max_all));
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// Every problem with the values, naming the key.
    pub fn validate(&self, wiring_max_all: f64) -> Vec<String> {
        let mut e = Vec::new();
        let r = &self.rules;
        if !matches!(r.green_window.as_str(), "sun" | "hours") {
            e.push(format!(
                "[policy] green_window = {:?}: expected \"sun\" or \"hours\"",
                r.green_window
            ));
        }
        for (k, v) in [
            ("green_start_hour", r.green_start_hour),
            ("green_end_hour", r.green_end_hour),
        ] {
            if !(0.0..=24.0).contains(&v) {
                e.push(format!("[policy] {k} = {v}: expected a local hour 0..=24"));
            }
        }
        if !(r.green_latch_minutes.is_finite() && r.green_latch_minutes >= 0.0) {
            e.push(format!(
                "[policy] green_latch_minutes = {}: expected minutes ≥ 0",
                r.green_latch_minutes
            ));
        }
        if r.utc_offset != "local" && parse_offset(&r.utc_offset).is_none() {
            e.push(format!(
                "[policy] utc_offset = {:?}: expected \"local\" or an offset such as \"+01:00\"",
                r.utc_offset
            ));
        }
        if r.replace_builtin && r.custom.is_empty() {
            e.push("[policy] replace_builtin = true needs at least one [[policy.custom]]".into());
        }
        for (i, c) in r.custom.iter().enumerate() {
            if c.name.trim().is_empty() {
                e.push(format!("[policy] custom[{i}].name must not be empty"));
            }
            if let Some(a) = c.amps
                && !(a.is_finite() && (0.0..=wiring_max_all).contains(&a))
            {
                e.push(format!(
                    "[policy] custom[{i}] ({}) amps = {a}: expected 0..={wiring_max_all} (the wiring limit for all TWCs)",
                    c.name
                ));
            }
            if let Some(f) = c.flex_amps
                && !(f.is_finite() && (0.0..=wiring_max_all).contains(&f))
            {
                e.push(format!(
                    "[policy] custom[{i}] ({}) flex_amps = {f}: expected 0..={wiring_max_all}",
                    c.name
                ));
            }
            if !(c.latch_minutes.is_finite() && c.latch_minutes >= 0.0) {
                e.push(format!(
                    "[policy] custom[{i}] ({}) latch_minutes must be ≥ 0",
                    c.name
                ));
            }
            for cond in &c.conditions {
                if let Err(m) = super::check_condition(cond) {
                    e.push(format!("[policy] custom[{i}] ({}): {m}", c.name));
                }
            }
        }
        for (name, conds) in &r.restrictions {
            if !super::BUILTIN_NAMES.contains(&name.as_str()) {
                e.push(format!(
                    "[policy.restrictions] {name:?} is not a built-in policy; expected one of: {}",
                    super::BUILTIN_NAMES.join(", ")
                ));
            }
            for cond in conds {
                if let Err(m) = super::check_condition(cond) {
                    e.push(format!("[policy.restrictions] {name:?}: {m}"));
                }
            }
        }
        for (i, w) in r.webhooks.iter().enumerate() {
            if !matches!(w.event.as_str(), "enter" | "exit") {
                e.push(format!(
                    "[policy] webhooks[{i}].event = {:?}: expected \"enter\" or \"exit\"",
                    w.event
                ));
            }
            if !matches!(w.method.to_ascii_uppercase().as_str(), "GET" | "POST") {
                e.push(format!(
                    "[policy] webhooks[{i}].method = {:?}: expected \"GET\" or \"POST\"",
                    w.method
                ));
            }
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                e.push(format!(
                    "[policy] webhooks[{i}].url = {:?}: expected an http:// or https:// URL",
                    w.url
                ));
            }
        }
        let g = &self.green;
        for (k, v) in [
            ("start_delay_secs", g.start_delay_secs),
            ("stop_delay_secs", g.stop_delay_secs),
            ("restart_delay_secs", g.restart_delay_secs),
            ("reserve_w", g.reserve_w),
            ("battery_charge_w", g.battery_charge_w),
            ("forecast_secs", g.forecast_secs),
            ("restart_cost_wh", g.restart_cost_wh),
            ("drop_reserve_secs", g.drop_reserve_secs),
            ("drop_reserve_max_w", g.drop_reserve_max_w),
            ("low_sun_minutes", g.low_sun_minutes),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                e.push(format!("[green] {k} = {v}: expected a number ≥ 0"));
            }
        }
        if !matches!(g.battery_priority.as_str(), "car_first" | "battery_first") {
            e.push(format!(
                "[green] battery_priority = {:?}: expected \"car_first\" or \"battery_first\"",
                g.battery_priority
            ));
        }
        if !matches!(g.mode.as_str(), "solar" | "min_solar") {
            e.push(format!(
                "[green] mode = {:?}: expected \"solar\" or \"min_solar\"",
                g.mode
            ));
        }
        if !(0.0..=100.0).contains(&g.battery_first_below_soc) {
            e.push(format!(
                "[green] battery_first_below_soc = {}: expected a percentage 0..=100",
                g.battery_first_below_soc
            ));
        }
        let gr = &self.grid;
        if let Some(a) = gr.max_import_amps
            && !(a.is_finite() && a >= 0.0)
        {
            e.push(format!("[grid] max_import_amps = {a}: expected amps ≥ 0"));
        }
        if let Some(w) = gr.max_import_w
            && !(w.is_finite() && w >= 0.0)
        {
            e.push(format!("[grid] max_import_w = {w}: expected watts ≥ 0"));
        }
        if !(gr.safe_amps.is_finite() && (0.0..=wiring_max_all).contains(&gr.safe_amps)) {
            e.push(format!(
                "[grid] safe_amps = {}: expected 0..={wiring_max_all} (the wiring limit for all TWCs)",
                gr.safe_amps
            ));
        }
        e
    }
}

/// Parse `"+01:00"`, `"-05:30"`, `"Z"` into seconds east of UTC.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}
