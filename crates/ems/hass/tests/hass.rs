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

/// A recorded state with its `last_updated`/`last_reported` moved to `ages` seconds ago (only the
/// timestamps are rewritten; `None` removes the field, as before Home Assistant 2024.3).
fn aged(fixture: Vec<u8>, updated_secs_ago: i64, reported_secs_ago: Option<i64>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture).unwrap();
    let at = |s: i64| (chrono::Utc::now() - chrono::TimeDelta::seconds(s)).to_rfc3339();
    v["last_updated"] = at(updated_secs_ago).into();
    match reported_secs_ago {
        Some(s) => v["last_reported"] = at(s).into(),
        None => {
            v.as_object_mut().unwrap().remove("last_reported");
        }
    }
    serde_json::to_vec(&v).unwrap()
}

async fn serve_states(s: &MockServer, solar: Vec<u8>, house: Vec<u8>) {
    s.reset().await;
    twc_testkit::serve_fixture(s, "/api/states/sensor.solar_power", solar).await;
    twc_testkit::serve_fixture(s, "/api/states/sensor.house_consumption_power", house).await;
}

#[tokio::test]
async fn r12_a_state_not_updated_for_ten_minutes_is_ten_minutes_old() {
    let s = MockServer::start().await;
    let src = source(&s.uri());
    // The integration behind sensor.solar_power stopped 10 minutes ago; Home Assistant still
    // answers with its last state. The reading is as old as its oldest value.
    serve_states(
        &s,
        aged(
            fixture!("states_sensor_pv_generation_RECONSTRUCTED.json"),
            600,
            Some(600),
        ),
        aged(
            fixture!("states_sensor_grid_consumption_RECONSTRUCTED.json"),
            2,
            Some(2),
        ),
    )
    .await;
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.74), None);
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 5.0, "age {age}");
    // With a 30 s stale_after the engine would not use it.
    assert!(r.age_secs(tokio::time::Instant::now()) > 30.0);

    // The recorded state itself (2021) is far too old to count.
    serve_states(
        &s,
        fixture!("states_sensor_pv_generation_RECONSTRUCTED.json"),
        fixture!("states_sensor_grid_consumption_RECONSTRUCTED.json"),
    )
    .await;
    let r = src.read().await.unwrap();
    assert!(r.measured_at.elapsed() > std::time::Duration::from_secs(365 * 86_400));
}

#[tokio::test]
async fn r12_last_reported_counts_when_newer_than_last_updated() {
    let s = MockServer::start().await;
    let src = source(&s.uri());
    // A steady 1111 W: the state was last *changed* an hour ago but re-reported 3 s ago.
    serve_states(
        &s,
        aged(
            fixture!("states_sensor_pv_generation_RECONSTRUCTED.json"),
            3600,
            Some(3),
        ),
        aged(
            fixture!("states_sensor_grid_consumption_RECONSTRUCTED.json"),
            1,
            Some(1),
        ),
    )
    .await;
    let age = src
        .read()
        .await
        .unwrap()
        .measured_at
        .elapsed()
        .as_secs_f64();
    assert!((age - 3.0).abs() < 2.0, "age {age}");

    // Before 2024.3 there is no last_reported: last_updated counts.
    serve_states(
        &s,
        aged(
            fixture!("states_sensor_pv_generation_RECONSTRUCTED.json"),
            900,
            None,
        ),
        aged(
            fixture!("states_sensor_grid_consumption_RECONSTRUCTED.json"),
            1,
            None,
        ),
    )
    .await;
    let age = src
        .read()
        .await
        .unwrap()
        .measured_at
        .elapsed()
        .as_secs_f64();
    assert!((age - 900.0).abs() < 5.0, "age {age}");
}

#[test]
fn r12_malformed_last_updated_is_an_error() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture!("states_sensor_pv_generation_RECONSTRUCTED.json"))
            .unwrap();
    v["last_updated"] = "yesterday".into();
    let e = twc_ems_hass::parse_state_measured(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("last_updated"), "{e}");
}
