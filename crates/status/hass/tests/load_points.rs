//! A Wall Connector Gen3 (an external load point) as Home Assistant sensor states, next to the
//! Gen2 slaves'.

use twc_core::model::{CentiAmps, Status};
use twc_testkit::load_points::{gen3_charging_na, gen3_unreachable};

fn states(lp: twc_core::model::LoadPointStatus) -> Vec<twc_status_hass::SensorState> {
    let s = Status {
        wiring_max_all: CentiAmps::from_amps(48),
        load_points: vec![lp],
        ..Status::default()
    };
    twc_status_hass::render(&s)
}

#[test]
fn a_gen3_has_sensors_with_units_and_classes() {
    let st = states(gen3_charging_na());
    let get = |e: &str| {
        st.iter()
            .find(|s| s.entity == e)
            .unwrap_or_else(|| panic!("no {e}"))
            .body
            .clone()
    };
    let p = get("sensor.twcmanager_gen3_garage_charger_load_w");
    assert_eq!(p["state"], "7704");
    assert_eq!(p["attributes"]["unit_of_measurement"], "W");
    assert_eq!(p["attributes"]["device_class"], "power");
    let t = get("sensor.twcmanager_gen3_garage_handle_temp_c");
    assert_eq!(t["state"], "30.6");
    assert_eq!(t["attributes"]["device_class"], "temperature");
    assert_eq!(
        get("sensor.twcmanager_gen3_garage_charger_state")["state"],
        "charging"
    );
    assert_eq!(
        get("sensor.twcmanager_gen3_garage_current_phase_b")["state"],
        "31.9"
    );
    let u = states(gen3_unreachable());
    let amps = u
        .iter()
        .find(|s| s.entity == "sensor.twcmanager_gen3_garage_amps_in_use")
        .unwrap();
    assert_eq!(amps.body["state"], "unknown");
}
