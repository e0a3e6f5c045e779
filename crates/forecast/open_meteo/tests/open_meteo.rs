//! Open-Meteo against a (reconstructed) answer from a mock server: the PV model, slots, gaps,
//! failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry, SolarForecast};
use twc_forecast_open_meteo::{Panels, build, build_open_meteo, pv_watts};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const OK: &str = "forecast_berlin_2days_RECONSTRUCTED.json";

fn fixture(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn cfg(url: &str, extra: serde_json::Value) -> PluginConfig {
    let mut v = serde_json::json!({
        "url": format!("{url}/v1/forecast"), "latitude": 52.52, "longitude": 13.4, "tilt": 35.0,
        "azimuth": 0.0, "kwp": 9.6, "http": {"timeout_secs": 0.5, "retries": 0}
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    PluginConfig::new("forecast.open_meteo", v.as_object().unwrap().clone())
}

async fn serve(resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/forecast"))
        .respond_with(resp)
        .mount(&server)
        .await;
    server
}

#[test]
fn the_model() {
    let p = Panels {
        kwp: 10.0,
        performance_ratio: 0.8,
        inverter_kw: None,
    };
    // 1000 W/m² with the cell at 25 °C: kWp × PR.
    let at_25 = 25.0 - 1000.0 * 25.0 / 800.0;
    assert!((pv_watts(&p, 1000.0, Some(at_25)) - 8000.0).abs() < 1e-6);
    // Hotter cells give less; no temperature: no correction; night and negative: 0.
    assert!(pv_watts(&p, 1000.0, Some(30.0)) < 8000.0);
    assert_eq!(pv_watts(&p, 500.0, None), 4000.0);
    assert_eq!(pv_watts(&p, -3.0, None), 0.0);
    let capped = Panels {
        inverter_kw: Some(5.0),
        ..p
    };
    assert_eq!(pv_watts(&capped, 1000.0, None), 5000.0);
}

#[tokio::test]
async fn served_forecast_becomes_slots_ending_at_each_stamp() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/forecast"))
        .and(query_param(
            "hourly",
            "global_tilted_irradiance,temperature_2m",
        ))
        .and(query_param("tilt", "35"))
        .and(query_param("azimuth", "0"))
        .and(query_param("timeformat", "unixtime"))
        .and(query_param("timezone", "UTC"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture(OK)))
        .mount(&server)
        .await;
    let p = build_open_meteo(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    assert_eq!(p.refresh_interval(), Duration::from_secs(3600));
    let f = p.forecast().await.unwrap();
    assert_eq!(f.validate(), Ok(()));
    assert_eq!(f.slots.len(), 47, "the null value is a gap, not 0 W");
    assert_eq!(f.slots[0].start_unix, 1_729_980_000);
    let s = f
        .slots
        .iter()
        .find(|s| s.end_unix == 1_730_023_200)
        .unwrap();
    assert_eq!(s.start_unix, 1_730_019_600);
    assert!((s.watts - 4658.82).abs() < 0.01, "{}", s.watts);
    // The gap (slot ending at index 30's stamp) is unknown.
    let gap_end = 1_729_983_600 + 30 * 3600;
    assert!(f.slots.iter().all(|s| s.end_unix != gap_end));
    assert!(f.slots.iter().all(|s| s.watts >= 0.0));
    // Night is 0 W, known.
    assert_eq!(f.slots[0].watts, 0.0);
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let full = fixture(OK);
    let cases = [
        (ResponseTemplate::new(500), ErrorKind::Transient, "500"),
        (
            ResponseTemplate::new(400).set_body_bytes(fixture("error_400_RECONSTRUCTED.json")),
            ErrorKind::Protocol,
            "400",
        ),
        (
            ResponseTemplate::new(200).set_body_bytes(fixture("error_400_RECONSTRUCTED.json")),
            ErrorKind::Protocol,
            "tilt",
        ),
        (ResponseTemplate::new(200).set_body_string("not json"), ErrorKind::Protocol, ""),
        (ResponseTemplate::new(200).set_body_bytes(full[..full.len() / 2].to_vec()), ErrorKind::Protocol, ""),
        (
            ResponseTemplate::new(200).set_body_string(
                r#"{"hourly_units":{"global_tilted_irradiance":"W/m²"},"hourly":{"time":[1,2],"global_tilted_irradiance":[0.0]}}"#,
            ),
            ErrorKind::Protocol,
            "differ in length",
        ),
        (
            ResponseTemplate::new(200).set_body_string(
                r#"{"hourly_units":{"global_tilted_irradiance":"MJ/m²"},"hourly":{"time":[1],"global_tilted_irradiance":[0.0]}}"#,
            ),
            ErrorKind::Protocol,
            "W/m²",
        ),
        (ResponseTemplate::new(200).set_body_bytes(full.clone()).set_delay(Duration::from_secs(3)), ErrorKind::Transient, "timed out"),
    ];
    for (resp, kind, text) in cases {
        let server = serve(resp).await;
        let p = build_open_meteo(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
        let e = p.forecast().await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
        assert!(e.chain().contains(text), "{}", e.chain());
    }
}

#[test]
fn config_errors_name_the_key() {
    let e = |extra| {
        build(&cfg("http://127.0.0.1:1", extra))
            .err()
            .unwrap()
            .to_string()
    };
    assert!(e(serde_json::json!({"tilt": 91.0})).contains("tilt"));
    assert!(e(serde_json::json!({"performance_ratio": 1.5})).contains("performance_ratio"));
    assert!(e(serde_json::json!({"forecast_days": 9})).contains("forecast_days"));
    assert!(e(serde_json::json!({"latitude": 100.0})).contains("latitude"));
    assert!(
        Registry::collect()
            .unwrap()
            .forecast
            .contains_key("open_meteo")
    );
}
