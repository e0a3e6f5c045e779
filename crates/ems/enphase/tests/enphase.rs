use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_enphase::{
    build, parse_api_v1_production, parse_cloud_summary, parse_meters_readings, parse_production,
};
use twc_testkit::wiremock::matchers::{header, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, assert_w, fixture};

#[test]
fn production_json_fw8_1_41_exporting() {
    let r = parse_production(&fixture!("production_json_fw8.1.41_exporting.json")).unwrap();
    assert_reading(&r, Some(13028.54), Some(5216.08), Some(-7812.46));
    assert_eq!(r.phase_voltages, Some(vec![246.894]));
}

#[test]
fn production_json_fw4_10_35_importing() {
    let r = parse_production(&fixture!("production_json_fw4.10.35_importing.json")).unwrap();
    assert_reading(&r, Some(165.53), Some(806.41), Some(640.87));
}

#[test]
fn production_json_fw7_6_175_with_cts() {
    let r = parse_production(&fixture!("production_json_fw7.6.175_with_cts.json")).unwrap();
    assert_reading(&r, Some(488.15), Some(476.69), Some(-11.47));
}

#[test]
fn production_json_fw7_6_175_3phase() {
    let r = parse_production(&fixture!("production_json_fw7.6.175_3phase.json")).unwrap();
    assert_reading(&r, Some(0.0), Some(209.08), Some(215.57));
    let v = r.phase_voltages.unwrap();
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|x| (230.0..245.0).contains(x)), "{v:?}");
}

#[test]
fn production_json_fw7_6_114_no_cts() {
    let r = parse_production(&fixture!("production_json_fw7.6.114_no_cts.json")).unwrap();
    assert_reading(&r, Some(586.0), None, None);
}

#[test]
fn api_v1_production_fw8_1_41() {
    let r = parse_api_v1_production(&fixture!("api_v1_production_fw8.1.41.json")).unwrap();
    assert_w("generation", r.generation_w, 12997.0);
}

#[test]
fn ivp_meters_readings_fw4_10_35() {
    let r = parse_meters_readings(&fixture!("ivp_meters_readings_fw4.10.35.json")).unwrap();
    assert_reading(&r, Some(166.49), None, Some(566.86));
}

#[test]
fn ivp_meters_readings_fw7_6_175_with_cts() {
    let r =
        parse_meters_readings(&fixture!("ivp_meters_readings_fw7.6.175_with_cts.json")).unwrap();
    assert_reading(&r, Some(488.93), None, Some(-36.16));
}

#[test]
fn api_v2_systems_summary_cloud() {
    let r =
        parse_cloud_summary(&fixture!("api_v2_systems_summary_cloud_RECONSTRUCTED.json")).unwrap();
    assert_w("generation", r.generation_w, 3322.0);
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.enphase", t).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("")).err().unwrap();
    assert!(e.to_string().contains("url"), "{e}");
    let e = build(&cfg("system_id = \"1\"")).err().unwrap();
    assert!(e.to_string().contains("api_key"), "{e}");
    let e = build(&cfg("url = \"http://h\"\nsystem_id = \"1\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("not both"), "{e}");
    build(&cfg("system_id = \"1\"\napi_key = \"k\"\nuser_id = \"u\"")).unwrap();
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\ntoken = \"jwt\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance_local() {
    twc_testkit::check_http_source(
        source,
        &[(
            "/production.json",
            fixture!("production_json_fw8.1.41_exporting.json"),
        )],
    )
    .await;
}

#[tokio::test]
async fn conformance_cloud() {
    twc_testkit::check_http_source(
        |base| build(&cfg(&format!("system_id = \"123\"\napi_key = \"k\"\nuser_id = \"u\"\ncloud_url = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"))).unwrap(),
        &[("/api/v2/systems/123/summary", fixture!("api_v2_systems_summary_cloud_RECONSTRUCTED.json"))],
    )
    .await;
}

#[tokio::test]
async fn local_sends_bearer_and_details() {
    let s = MockServer::start().await;
    Mock::given(path("/production.json"))
        .and(query_param("details", "1"))
        .and(header("authorization", "Bearer jwt"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture!("production_json_fw4.10.35_importing.json")),
        )
        .mount(&s)
        .await;
    let r = source(&s.uri()).read().await.unwrap();
    assert_reading(&r, Some(165.53), Some(806.41), Some(640.87));
}

#[tokio::test]
async fn cloud_respects_its_call_budget_and_hides_the_key() {
    let s = MockServer::start().await;
    Mock::given(path("/api/v2/systems/123/summary"))
        .and(query_param("key", "SECRETKEY"))
        .and(query_param("user_id", "u"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture!("api_v2_systems_summary_cloud_RECONSTRUCTED.json")),
        )
        .mount(&s)
        .await;
    let src = build(&cfg(&format!(
        "system_id = \"123\"\napi_key = \"SECRETKEY\"\nuser_id = \"u\"\ncloud_url = \"{}\"",
        s.uri()
    )))
    .unwrap();
    let a = src.read().await.unwrap();
    let b = src.read().await.unwrap();
    assert_eq!(a.measured_at, b.measured_at);
    assert_eq!(s.received_requests().await.unwrap().len(), 1);

    let s2 = MockServer::start().await;
    Mock::given(path("/api/v2/systems/123/summary"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s2)
        .await;
    let src = build(&cfg(&format!(
        "system_id = \"123\"\napi_key = \"SECRETKEY\"\nuser_id = \"u\"\ncloud_url = \"{}\"",
        s2.uri()
    )))
    .unwrap();
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(!e.chain().contains("SECRETKEY"), "{}", e.chain());
}

fn unix_ago(secs: i64) -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - secs
}

/// A recorded production.json with only the `readingTime`s rewritten: `(list, selector key,
/// selector value, seconds ago)`.
fn production_aged(fixture: Vec<u8>, times: &[(&str, &str, &str, i64)]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture).unwrap();
    for (list, key, want, ago) in times {
        for e in v[*list].as_array_mut().unwrap() {
            if e[*key] == *want {
                e["readingTime"] = unix_ago(*ago).into();
            }
        }
    }
    serde_json::to_vec(&v).unwrap()
}

async fn read_local(body: Vec<u8>) -> twc_core::model::EnergyReading {
    let s = MockServer::start().await;
    twc_testkit::serve_fixture(&s, "/production.json", body).await;
    source(&s.uri()).read().await.unwrap()
}

#[tokio::test]
async fn r12_local_reading_is_as_old_as_its_oldest_entry_used() {
    let f = || fixture!("production_json_fw7.6.175_with_cts.json");
    // CTs read 5 s ago; the microinverters 10 minutes ago, but with a CT they are not used.
    let r = read_local(production_aged(
        f(),
        &[
            ("production", "type", "inverters", 600),
            ("production", "measurementType", "production", 5),
            ("consumption", "measurementType", "total-consumption", 5),
            ("consumption", "measurementType", "net-consumption", 5),
        ],
    ))
    .await;
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 5.0).abs() < 2.0, "age {age}");
    // The consumption CT stopped updating 2 minutes ago: the whole reading is that old.
    let r = read_local(production_aged(
        f(),
        &[
            ("production", "measurementType", "production", 5),
            ("consumption", "measurementType", "total-consumption", 120),
            ("consumption", "measurementType", "net-consumption", 5),
        ],
    ))
    .await;
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 120.0).abs() < 3.0, "age {age}");
    // Without CTs the microinverters' readingTime counts (the other entry says 0 = not said).
    let r = read_local(production_aged(
        fixture!("production_json_fw7.6.114_no_cts.json"),
        &[("production", "type", "inverters", 600)],
    ))
    .await;
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 3.0, "age {age}");
}

#[test]
fn r12_recorded_gateway_answers_are_as_old_as_their_times() {
    let year = std::time::Duration::from_secs(365 * 86_400);
    for r in [
        parse_production(&fixture!("production_json_fw8.1.41_exporting.json")).unwrap(),
        parse_meters_readings(&fixture!("ivp_meters_readings_fw7.6.175_with_cts.json")).unwrap(),
        parse_cloud_summary(&fixture!("api_v2_systems_summary_cloud_RECONSTRUCTED.json")).unwrap(),
    ] {
        assert!(r.measured_at.elapsed() > year);
    }
}

#[tokio::test]
async fn r12_cloud_reading_counts_from_last_report_and_keeps_its_age_when_reserved() {
    let s = MockServer::start().await;
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture!("api_v2_systems_summary_cloud_RECONSTRUCTED.json"))
            .unwrap();
    // The gateway last reported to Enlighten 10 minutes ago.
    v["last_report_at"] = unix_ago(600).into();
    twc_testkit::serve_fixture(
        &s,
        "/api/v2/systems/123/summary",
        serde_json::to_vec(&v).unwrap(),
    )
    .await;
    let src = build(&cfg(&format!(
        "system_id = \"123\"\napi_key = \"k\"\nuser_id = \"u\"\ncloud_url = \"{}\"",
        s.uri()
    )))
    .unwrap();
    let a = src.read().await.unwrap();
    assert_w("generation_w", a.generation_w, 3322.0);
    let age = a.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 3.0, "age {age}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Re-served from the call budget's cache: same value, same (growing) age.
    let b = src.read().await.unwrap();
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
    assert_eq!(b.measured_at, a.measured_at);
    assert!(b.measured_at.elapsed().as_secs_f64() > 601.0);
}
