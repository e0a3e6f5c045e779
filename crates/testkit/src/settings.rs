//! The settings-validation table: inputs every surface must accept or refuse alike, with the
//! reason. Each case is a JSON merge patch (RFC 7386) over `Settings::default()`, checked
//! against [`case_limits`]. Core checks [`twc_core::model::Settings::validate`] and the engine's
//! `PatchSettings` / `ReplaceSettings` with it; the HTTP and MQTT layers run the same table
//! through their own requests.

use serde_json::{Value, json};
use twc_core::model::SettingsLimits;

/// One input and what must happen to it.
#[derive(Debug, Clone)]
pub struct SettingsCase {
    /// What the case checks.
    pub name: &'static str,
    /// A merge patch over `Settings::default()`.
    pub patch: Value,
    /// `None` = accepted; `Some(text)` = refused with a reason that contains `text`.
    pub refused: Option<&'static str>,
}

/// Wiring limit for all TWCs in the table, A.
pub const CASE_WIRING_AMPS: u16 = 32;
/// `[grid] max_import_amps` in the table, A (no `max_import_w`).
pub const CASE_GRID_MAX_IMPORT_AMPS: f64 = 40.0;

/// The limits the table is written for: 32 A wiring, `[grid] max_import_amps = 40`.
pub fn case_limits() -> SettingsLimits {
    SettingsLimits {
        wiring_max_all: f64::from(CASE_WIRING_AMPS),
        grid_max_import_amps: Some(CASE_GRID_MAX_IMPORT_AMPS),
        grid_max_import_w: None,
    }
}

fn ok(name: &'static str, patch: Value) -> SettingsCase {
    SettingsCase {
        name,
        patch,
        refused: None,
    }
}

fn no(name: &'static str, patch: Value, reason: &'static str) -> SettingsCase {
    SettingsCase {
        name,
        patch,
        refused: Some(reason),
    }
}

fn window(weekday: u8, start: u16, end: u16) -> Value {
    json!({"weekday": weekday, "start_minute": start, "end_minute": end})
}

/// The table.
pub fn settings_cases() -> Vec<SettingsCase> {
    let many_offsets: serde_json::Map<String, Value> = (0..65)
        .map(|i| (format!("o{i}"), json!({"value": 1.0, "unit": "W"})))
        .collect();
    let many_vins: Vec<String> = (0..101).map(|i| format!("VIN{i}")).collect();
    vec![
        ok("nothing changed", json!({})),
        ok(
            "amps at the wiring limit",
            json!({"non_scheduled_amps": 32.0}),
        ),
        no(
            "amps above the wiring limit",
            json!({"non_scheduled_amps": 32.5}),
            "wiring limit",
        ),
        no(
            "negative amps",
            json!({"non_scheduled_amps": -1.0}),
            "non_scheduled_amps must be a number ≥ 0",
        ),
        ok("green action", json!({"non_scheduled_action": "green"})),
        no(
            "unknown action",
            json!({"non_scheduled_action": "fast"}),
            "non_scheduled_action",
        ),
        ok("flex amps", json!({"flex_amps": 2.0})),
        no(
            "flex amps above the wiring limit",
            json!({"flex_amps": 33.0}),
            "flex_amps",
        ),
        no(
            "charge now above the wiring limit",
            json!({"charge_now": {"amps": 33.0, "until_unix": 0}}),
            "charge_now.amps",
        ),
        ok(
            "a schedule with a window past midnight and day amps",
            json!({"schedule": {"enabled": true, "amps": 16.0, "windows": [window(1, 420, 1020), window(7, 1380, 360)], "day_amps": {"6": 10.0}}}),
        ),
        no(
            "an enabled schedule without amps",
            json!({"schedule": {"enabled": true, "amps": 0.0}}),
            "greater than 0 when the schedule is enabled",
        ),
        no(
            "two windows on one weekday",
            json!({"schedule": {"windows": [window(1, 0, 60), window(1, 120, 180)]}}),
            "more than one window",
        ),
        no(
            "an empty window",
            json!({"schedule": {"windows": [window(2, 60, 60)]}}),
            "is empty",
        ),
        no(
            "weekday 8",
            json!({"schedule": {"windows": [window(8, 0, 60)]}}),
            "weekday 8",
        ),
        no(
            "minute 1440",
            json!({"schedule": {"windows": [window(3, 0, 1440)]}}),
            "0..=1439",
        ),
        no(
            "day amps on weekday 0",
            json!({"schedule": {"day_amps": {"0": 6.0}}}),
            "weekday 0",
        ),
        no(
            "day amps above the wiring limit",
            json!({"schedule": {"day_amps": {"1": 40.0}}}),
            "day_amps[1]",
        ),
        no(
            "schedule amps above the wiring limit",
            json!({"schedule": {"amps": 33.0}}),
            "schedule.amps",
        ),
        no(
            "a flex battery over 1000 kWh",
            json!({"schedule": {"flex_battery_kwh": 1001.0}}),
            "flex_battery_kwh",
        ),
        ok(
            "offsets at their bounds",
            json!({"consumption_offsets": {"heat": {"value": -400.0, "unit": "A"}, "pv": {"value": 100000.0, "unit": "W"}}}),
        ),
        no(
            "an offset over 400 A",
            json!({"consumption_offsets": {"x": {"value": 401.0, "unit": "A"}}}),
            "±400",
        ),
        no(
            "an offset over 100 kW",
            json!({"consumption_offsets": {"x": {"value": -100001.0, "unit": "W"}}}),
            "±100000",
        ),
        no(
            "an offset of 0",
            json!({"consumption_offsets": {"x": {"value": 0.0, "unit": "W"}}}),
            "other than 0",
        ),
        no(
            "an offset without a name",
            json!({"consumption_offsets": {" ": {"value": 1.0, "unit": "W"}}}),
            "must not be empty",
        ),
        no(
            "an offset name with /",
            json!({"consumption_offsets": {"a/b": {"value": 1.0, "unit": "W"}}}),
            "must not contain",
        ),
        no(
            "an offset name of 32 characters",
            json!({"consumption_offsets": {"abcdefghijklmnopqrstuvwxyz012345": {"value": 1.0, "unit": "W"}}}),
            "shorter than 32",
        ),
        no(
            "65 offsets",
            json!({"consumption_offsets": many_offsets}),
            "at most 64",
        ),
        ok(
            "home at the bounds",
            json!({"home": {"lat": 90.0, "lon": -180.0}}),
        ),
        no(
            "latitude 91",
            json!({"home": {"lat": 91.0, "lon": 0.0}}),
            "home location",
        ),
        ok(
            "grid limit at the configured one",
            json!({"max_grid_import": {"value": 40.0, "unit": "A"}}),
        ),
        no(
            "grid limit above the configured one",
            json!({"max_grid_import": {"value": 41.0, "unit": "A"}}),
            "[grid] max_import_amps",
        ),
        ok(
            "grid limit in W at its bound",
            json!({"max_grid_import": {"value": 1000000.0, "unit": "W"}}),
        ),
        no(
            "grid limit in W above its bound",
            json!({"max_grid_import": {"value": 1000001.0, "unit": "W"}}),
            "at most 1000 A or 1000000 W",
        ),
        no(
            "a negative grid limit",
            json!({"max_grid_import": {"value": -1.0, "unit": "A"}}),
            "max_grid_import",
        ),
        ok(
            "a VIN allow list",
            json!({"vin_allow": ["5YJ3E1EA0KF000316"]}),
        ),
        no(
            "a malformed VIN",
            json!({"vin_deny": ["not a vin!"]}),
            // Not the VIN itself: HTTP upper-cases VINs before the engine sees them.
            "in vin_deny: expected 1 to 17 letters and digits",
        ),
        no(
            "101 VINs",
            json!({"vin_allow": many_vins}),
            "at most 100 VINs",
        ),
        ok("a priority by TWCID", json!({"priorities": {"7777": 5}})),
        no(
            "a priority without a key",
            json!({"priorities": {" ": 1}}),
            "priority keys",
        ),
        ok("a free-form setting", json!({"extra": {"key": "value"}})),
        no(
            "a free-form setting with /",
            json!({"extra": {"a/b": "x"}}),
            "must not contain",
        ),
    ]
}

/// An engine configured with [`case_limits`] on a bus with nothing on it, for running the table
/// through a surface: send each case, then reset with `ReplaceSettings(Settings::default())`.
pub async fn engine_for_cases() -> twc_runtime::Running {
    use twc_core::engine::EngineConfig;
    use twc_core::master::MasterConfig;
    use twc_core::model::{CentiAmps, Settings};
    let mut cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(CASE_WIRING_AMPS),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    cfg.policy.grid.max_import_amps = Some(CASE_GRID_MAX_IMPORT_AMPS);
    let (ours, theirs) = tokio::io::duplex(4096);
    // Keep the other end open for the engine's lifetime (a closed bus would only be retried).
    std::mem::forget(theirs);
    let comms = Box::new(twc_core::transport::StreamComms::new(ours, "cases"));
    twc_runtime::start(twc_runtime::Parts::new(cfg, comms, Settings::default()))
        .await
        .expect("nothing attached that could fail to start")
}

/// Check one surface's outcome for a case: `Ok(())` when it matches the table, else what differs.
pub fn check_outcome(case: &SettingsCase, got: Result<(), String>) -> Result<(), String> {
    match (case.refused, got) {
        (None, Ok(())) => Ok(()),
        (Some(want), Err(reason)) if reason.contains(want) => Ok(()),
        (None, Err(reason)) => Err(format!(
            "{}: refused ({reason}), expected accepted",
            case.name
        )),
        (Some(want), Ok(())) => Err(format!(
            "{}: accepted, expected refused with {want:?}",
            case.name
        )),
        (Some(want), Err(reason)) => Err(format!(
            "{}: refused with {reason:?}, expected a reason containing {want:?}",
            case.name
        )),
    }
}
