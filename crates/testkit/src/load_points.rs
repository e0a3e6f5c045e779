//! External load points as the surfaces' tests use them: a Wall Connector Gen3 charging on a
//! North-American split-phase circuit, with exactly the details the Gen3 plugin makes of its
//! fixtures (`vitals_charging_1phase_NA_RECONSTRUCTED.json`, `lifetime_test_fixture.json`,
//! `version_test_fixture.json`, `wifi_status_base64_ssid_test_fixture.json`);
//! `crates/control/gen3/tests/surfaces.rs` checks that the plugin makes exactly these, so the
//! surfaces' tests cannot drift from what a real Gen3 shows.

use serde_json::{Value, json};
use twc_core::model::{CentiAmps, LoadPointState, LoadPointStatus};

/// The details the Gen3 plugin reports for the fixtures named above.
pub fn gen3_details_charging_na() -> Value {
    json!({
        "evse_state": 11,
        "state_name": "charging",
        "wiring": "split_phase",
        "phases": 1,
        "power_w": 31.9 * 241.5 * 1.0,
        "vehicle_current_a": 31.9,
        "currents_a": [31.8, 31.9, 0.1],
        "voltages_v": [241.5, 241.5, 118.7],
        "grid_v": 241.5,
        "grid_hz": 59.991,
        "session_energy_wh": 11562.4,
        "session_s": 5421.0,
        "temperatures_c": {"pcba": 41.2, "handle": 30.6, "mcu": 45.1},
        "alerts": [],
        "contactor_closed": true,
        "vehicle_connected": true,
        "uptime_s": 1_209_611.0,
        "lifetime": {
            "energy_wh": 386_204.0, "charge_starts": 175, "contactor_cycles": 175,
            "connector_cycles": 23, "alert_count": 1603, "thermal_foldbacks": 0,
            "charging_time_s": 183_022, "uptime_s": 1_945_056,
        },
        "firmware": "21.29.1+g4152353e50f744",
        "part_number": "1529455-02-D",
        "serial_number": "ACB12345678901",
        "wifi": {"ssid": "TestNetwork", "signal_pct": 44.0, "rssi_dbm": -68.0, "connected": true, "internet": true},
    })
}

/// `gen3.garage`: the Gen3 above, fresh, charging at 31.9 A of the 32 A the policy gives it
/// (its circuit: 48 A).
pub fn gen3_charging_na() -> LoadPointStatus {
    LoadPointStatus {
        via_car: None,
        name: "gen3.garage".into(),
        kind: "gen3".into(),
        max: CentiAmps::from_f64(48.0),
        min: CentiAmps::from_f64(6.0),
        controllable: true,
        draw: Some(CentiAmps::from_f64(31.9)),
        state: LoadPointState::Charging,
        stale: false,
        measured_at: Some(chrono::Utc::now()),
        allocated: CentiAmps::from_f64(32.0),
        reserved: CentiAmps::from_f64(32.0),
        problem: None,
        details: gen3_details_charging_na(),
    }
}

/// The same unit after it stopped answering: stale, its last details kept, a problem shown.
pub fn gen3_unreachable() -> LoadPointStatus {
    LoadPointStatus {
        draw: None,
        state: LoadPointState::Unknown,
        stale: true,
        reserved: CentiAmps::from_f64(48.0),
        allocated: CentiAmps::ZERO,
        problem: Some("not reachable: connection refused".into()),
        ..gen3_charging_na()
    }
}
