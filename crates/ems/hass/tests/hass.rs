use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_hass::{build, parse_state};
use twc_testkit::wiremock::matchers::{header, path};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture, serve_status};

#[test]
fn states_sensor_grid_consumption() {
    let w = parse_state(&fixture!(
        "states_sensor_grid_consumption_RECONSTRUCTED.json"
    ))
    .unwrap();
    assert!((w - 2814.74).abs() < 1e-9);
}

#[test]
fn states_sensor_pv_generation() {
    let w = parse_state(&fixture!("states_sensor_pv_generation_RECONSTRUCTED.json")).unwrap();
    assert_eq!(w, 1111.0);
}

#[test]
fn states_sensor_unavailable_is_an_error() {
    let e = parse_state(&fixture!("states_sensor_unavailable_RECONSTRUCTED.json")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.contains("sensor.solar_power"), "{e}");
}

#[test]
fn states_sun_doc_example_is_not_power() {
    // "below_horizon" with no unit: not a number.
    let e = parse_state(&fixture!("states_sun_doc_example.json")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
}

#[test]
fn states_unknown_entity_404_body_is_not_a_state() {
    assert!(parse_state(&fixture!("states_unknown_entity_404_RECONSTRUCTED.json")).is_err());
}

#[test]
fn kilowatts_and_wrong_units() {
    let kw =
        br#"{"entity_id":"sensor.pv","state":"1.5","attributes":{"unit_of_measurement":"kW"}}"#;
    assert_eq!(parse_state(kw).unwrap(), 1500.0);
    let kwh =
        br#"{"entity_id":"sensor.pv","state":"1.5","attributes":{"unit_of_measurement":"kWh"}}"#;
    assert_eq!(parse_state(kwh).unwrap_err().kind, ErrorKind::Config);
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.hass", t).unwrap()
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\ntoken = \"tok\"\ngeneration_entity = \"sensor.solar_power\"\nconsumption_entity = \"sensor.house_consumption_power\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("url = \"http://h\"\ntoken = \"t\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("generation_entity"), "{e}");
    let e = build(&cfg("url = \"http://h\"\ntoken = \"t\"\nentity = \"x\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("entity"), "{e}");
    let e = build(&cfg("url = \"http://h\"\ngeneration_entity = \"x\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("token"), "{e}");
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        source,
        &[
            (
                "/api/states/sensor.solar_power",
                fixture!("states_sensor_pv_generation_RECONSTRUCTED.json"),
            ),
            (
                "/api/states/sensor.house_consumption_power",
                fixture!("states_sensor_grid_consumption_RECONSTRUCTED.json"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn reads_with_bearer_token_and_fails_on_unavailable_or_unknown() {
    let s = MockServer::start().await;
    Mock::given(path("/api/states/sensor.solar_power"))
        .and(header("authorization", "Bearer tok"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture!("states_sensor_pv_generation_RECONSTRUCTED.json")),
        )
        .mount(&s)
        .await;
    Mock::given(path("/api/states/sensor.house_consumption_power"))
        .and(header("authorization", "Bearer tok"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture!(
            "states_sensor_grid_consumption_RECONSTRUCTED.json"
        )))
        .mount(&s)
        .await;
    let src = source(&s.uri());
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.74), None);

    s.reset().await;
    Mock::given(path("/api/states/sensor.solar_power"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture!("states_sensor_unavailable_RECONSTRUCTED.json")),
        )
        .mount(&s)
        .await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.to_string().contains("GET /api/states/sensor.solar_power"),
        "{e}"
    );

    s.reset().await;
    serve_status(
        &s,
        "GET",
        "/api/states/sensor.solar_power",
        404,
        &fixture!("states_unknown_entity_404_RECONSTRUCTED.json"),
    )
    .await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}
