//! The Gen3 plugin against recorded fixtures on a mock server, and the emulated meter read by a
//! Modbus RTU client over a pseudo-terminal, as the Gen3 reads it.

use std::time::Duration;
use twc_control_gen3::{api, measurement, meter, read_extra, read_vitals};
use twc_core::model::{CentiAmps, LoadPointState};
use twc_plugin_kit::http::{HttpClient, HttpOptions};
use twc_testkit::{fixture, serve_fixture, serve_status};
use wiremock::MockServer;

fn client() -> HttpClient {
    let o = HttpOptions {
        timeout_secs: 0.5,
        retries: 0,
        ..HttpOptions::default()
    };
    HttpClient::new("gen3", "control.gen3", &o).unwrap()
}

#[test]
fn every_evse_state_code_maps() {
    let codes: serde_json::Value =
        serde_json::from_slice(&fixture!("evse_state_codes.json")).unwrap();
    let s = codes.to_string();
    for (c, name) in [
        (0, "booting"),
        (1, "not_connected"),
        (2, "connected"),
        (4, "ready"),
        (6, "negotiating"),
        (7, "error"),
        (8, "charging_finished"),
        (9, "waiting_car"),
        (10, "charging_reduced"),
        (11, "charging"),
    ] {
        assert_eq!(api::state_name(c), name);
        assert!(s.contains(name), "{name} in the fixture");
    }
    assert_eq!(api::load_point_state(11), LoadPointState::Charging);
    assert_eq!(api::load_point_state(10), LoadPointState::Charging);
    assert_eq!(api::load_point_state(9), LoadPointState::Connected);
    assert_eq!(api::load_point_state(1), LoadPointState::Idle);
    assert_eq!(api::load_point_state(7), LoadPointState::Error);
    assert_eq!(api::load_point_state(0), LoadPointState::Unknown);
    assert_eq!(api::load_point_state(3), LoadPointState::Unknown);
}

#[test]
fn fixtures_decode_to_the_readme_values() {
    let na = api::parse_vitals(&fixture!("vitals_charging_1phase_NA_RECONSTRUCTED.json")).unwrap();
    assert_eq!(na.wiring(), api::Wiring::SplitPhase);
    assert!((na.power_w() - 7704.0).abs() < 10.0, "{}", na.power_w());
    let eu = api::parse_vitals(&fixture!("vitals_charging_3phase_EU_RECONSTRUCTED.json")).unwrap();
    assert_eq!(eu.wiring(), api::Wiring::ThreePhase);
    assert!((eu.power_w() - 11_038.0).abs() < 30.0, "{}", eu.power_w());
    let idle = api::parse_vitals(&fixture!("vitals_idle_fw21.18.1_twcmanager_docs.json")).unwrap();
    assert_eq!(api::load_point_state(idle.evse_state), LoadPointState::Idle);
    // vehicle_connected says true, evse_state 1 says no car: the state wins.
    let nc =
        api::parse_vitals(&fixture!("vitals_connected_not_charging_test_fixture.json")).unwrap();
    let m = measurement(&nc, &serde_json::Value::Null);
    assert_eq!(m.state, LoadPointState::Idle);
    assert_eq!(m.details["alerts"], serde_json::json!(["alert1", "alert2"]));
    let w =
        api::parse_vitals(&fixture!("vitals_connected_waiting_car_RECONSTRUCTED.json")).unwrap();
    assert_eq!(
        measurement(&w, &serde_json::Value::Null).state,
        LoadPointState::Connected
    );
    let wifi = api::parse_wifi(&fixture!("wifi_status_base64_ssid_test_fixture.json")).unwrap();
    assert_eq!(wifi.wifi_ssid.as_deref(), Some("TestNetwork"));
    let l = api::parse_lifetime(&fixture!("lifetime_test_fixture.json")).unwrap();
    assert_eq!((l.energy_wh, l.charge_starts), (Some(386_204.0), Some(175)));
    let v = api::parse_version(&fixture!("version_test_fixture.json")).unwrap();
    assert_eq!(
        v.firmware_version.as_deref(),
        Some("21.29.1+g4152353e50f744")
    );
}

#[test]
fn garbage_and_a_string_state_are_errors_not_readings() {
    assert!(api::parse_vitals(b"<html>").is_err());
    assert!(
        api::parse_vitals(b"{\"evse_state\":\"charging\",\"vehicle_current_a\":1,\"grid_v\":230}")
            .is_err()
    );
    let t = fixture!("vitals_charging_3phase_EU_RECONSTRUCTED.json");
    assert!(api::parse_vitals(&t[..t.len() / 2]).is_err());
}

#[tokio::test]
async fn the_mock_gen3_serves_every_endpoint_and_its_failures() {
    let s = MockServer::start().await;
    serve_fixture(
        &s,
        "/api/1/vitals",
        fixture!("vitals_charging_1phase_NA_RECONSTRUCTED.json"),
    )
    .await;
    serve_fixture(
        &s,
        "/api/1/lifetime",
        fixture!("lifetime_test_fixture.json"),
    )
    .await;
    serve_fixture(&s, "/api/1/version", fixture!("version_test_fixture.json")).await;
    serve_fixture(
        &s,
        "/api/1/wifi_status",
        fixture!("wifi_status_base64_ssid_test_fixture.json"),
    )
    .await;
    let c = client();
    let v = read_vitals(&c, &s.uri()).await.unwrap();
    let m = measurement(&v, &read_extra(&c, &s.uri()).await);
    assert_eq!(m.draw, CentiAmps::from_f64(31.9));
    assert_eq!(m.state, LoadPointState::Charging);
    assert_eq!(m.details["wiring"], "split_phase");
    assert_eq!(m.details["lifetime"]["energy_wh"], 386_204.0);
    assert_eq!(m.details["wifi"]["ssid"], "TestNetwork");
    assert_eq!(m.details["firmware"], "21.29.1+g4152353e50f744");

    for (status, body) in [(500u16, &b"oops"[..]), (200, b"not json"), (404, b"")] {
        let s = MockServer::start().await;
        serve_status(&s, "GET", "/api/1/vitals", status, body).await;
        assert!(read_vitals(&c, &s.uri()).await.is_err(), "{status}");
    }
    let s = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/api/1/vitals"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_bytes(fixture!("vitals_charging_3phase_EU_RECONSTRUCTED.json"))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&s)
        .await;
    let e = read_vitals(&c, &s.uri()).await.unwrap_err();
    assert_eq!(e.kind(), twc_core::plugin::ErrorKind::Transient, "{e}");
}

#[test]
fn the_meter_reports_the_circuit_minus_the_target() {
    assert_eq!(meter::house_amps(32.0, 20.0), 12.0);
    assert_eq!(meter::house_amps(32.0, 0.0), 32.0);
    assert_eq!(meter::house_amps(32.0, 40.0), 0.0);
    // CRC of a known Modbus request (unit 1, FC 3, addr 0, 1 register): 84 0A.
    assert_eq!(
        meter::crc16(&[1, 3, 0, 0, 0, 1]).to_le_bytes(),
        [0x84, 0x0A]
    );
}

/// A Modbus RTU client reads the emulated meter over a pseudo-terminal, as a Gen3 would, and a
/// simulated Gen3 sets its draw from what it reads: the policy's current reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_rtu_client_reads_the_meter_over_a_pty() {
    use tokio_modbus::prelude::*;
    let (pty, stream) = twc_sim::open_pty(None).unwrap();
    let m = meter::Meter::new();
    m.set_house(meter::house_amps(32.0, 20.0), 1, 240.0);
    let served = m.clone();
    let path = pty.path().to_string_lossy().to_string();
    std::thread::spawn(move || {
        let mut p = meter::open_port(&path, 115_200).unwrap();
        let _ = served.serve(&mut p, 1);
    });
    let mut ctx = rtu::attach_slave(stream, Slave(1));
    let read = |regs: &[u16], at: usize| {
        f32::from_be_bytes([
            (regs[at] >> 8) as u8,
            regs[at] as u8,
            (regs[at + 1] >> 8) as u8,
            regs[at + 1] as u8,
        ])
    };
    let id = ctx.read_holding_registers(1, 16).await.unwrap().unwrap();
    assert_eq!(id[0], u16::from_be_bytes(*b"EN"));
    assert_eq!(id[1], u16::from_be_bytes([b'C', 0]));
    assert_eq!(
        &id[10..16],
        &[0x5742, 0x4931, 0x3030, 0x312D, 0x4343, 0x4443]
    ); // WBI1001-CCDC
    let p = ctx.read_holding_registers(0x88, 10).await.unwrap().unwrap();
    assert_eq!(read(&p, 0), 12.0 * 240.0);
    assert_eq!(read(&p, 2), 0.0);
    assert_eq!(read(&p, 8), 12.0 * 240.0);
    let c = ctx.read_holding_registers(0xF4, 10).await.unwrap().unwrap();
    assert_eq!(read(&c, 0), 12.0);
    // A simulated Gen3 on a 32 A circuit: it draws what the circuit leaves after the house.
    let gen3_draw = |house_w: f32| (32.0 - house_w / 240.0).max(0.0);
    assert_eq!(gen3_draw(read(&p, 8)), 20.0);
    // The engine gives it 0 A: the meter shows the whole circuit and it stops.
    m.set_house(meter::house_amps(32.0, 0.0), 1, 240.0);
    let p = ctx.read_input_registers(0x90, 2).await.unwrap().unwrap();
    assert_eq!(gen3_draw(read(&p, 0)), 0.0);
    // Out of the map: an exception, not a made-up value.
    assert!(ctx.read_holding_registers(0xFF, 4).await.unwrap().is_err());
    assert!(m.reads() >= 5);
    m.stop();
}
