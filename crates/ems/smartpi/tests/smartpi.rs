//! Fixture, conformance and configuration tests of the SmartPi source.

use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_smartpi::{NAME, build, parse_now};
use twc_testkit::wiremock::MockServer;
use twc_testkit::{assert_reading, assert_w, fixture};

fn importing() -> Vec<u8> {
    fixture!("api_all_power_now_importing.json")
}

fn exporting() -> Vec<u8> {
    fixture!("api_all_power_now_exporting_RECONSTRUCTED.json")
}

fn all_values() -> Vec<u8> {
    fixture!("api_all_all_now_3phase_mixed_RECONSTRUCTED.json")
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.smartpi", t).unwrap()
}

fn source(base: &str, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\n{extra}\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[test]
fn importing_is_positive_grid_power() {
    // TWCManager: consumption 473.06 (only with showConsumption), generation 0.
    let r = parse_now(&importing(), false).unwrap();
    assert_reading(&r, None, None, Some(473.06));
    assert_eq!(r.phase_currents_a, None);
    assert_eq!(r.phase_voltages, None);
}

#[test]
fn exporting_is_negative_grid_power() {
    // TWCManager: generation 3033.41; it is export at the grid connection.
    let r = parse_now(&exporting(), false).unwrap();
    assert_reading(&r, None, None, Some(-3033.41));
    let r = parse_now(&exporting(), true).unwrap();
    assert_reading(&r, None, None, Some(3033.41));
}

#[test]
fn all_values_give_signed_currents_and_voltages() {
    // L1 and L2 import, L3 exports: the net is what the meter bills.
    let r = parse_now(&all_values(), false).unwrap();
    assert_w("grid_w", r.grid_w, 168.92613 + 212.23642 - 91.89515);
    assert_eq!(r.phase_currents_a, Some(vec![0.7412, 0.9231, -0.4002]));
    assert_eq!(r.phase_voltages, Some(vec![228.1, 229.9, 229.6]));
}

#[test]
fn the_dataset_time_is_when_it_was_measured() {
    let r = parse_now(&importing(), false).unwrap();
    assert!(
        r.age_secs(Instant::now()) > 365.0 * 86_400.0,
        "a 2021 value is stale"
    );
    let t = (chrono::Local::now() - chrono::TimeDelta::seconds(20)).format("%Y-%m-%d %H:%M:%S");
    let body = String::from_utf8(importing())
        .unwrap()
        .replace("2021-03-22 19:36:38", &t.to_string());
    let r = parse_now(body.as_bytes(), false).unwrap();
    let age = r.age_secs(Instant::now());
    assert!((19.0..23.0).contains(&age), "age {age}");
}

#[test]
fn invalid_answers_are_errors_never_zero() {
    let s = String::from_utf8(importing()).unwrap();
    for (body, kind) in [
        (
            s.replace("\"data\":168.92613", "\"data\":null"),
            ErrorKind::Transient,
        ),
        (
            s.replace("\"data\":168.92613", "\"data\":\"NaN\""),
            ErrorKind::Protocol,
        ),
        (
            s.replace("\"unity\":\"W\"", "\"unity\":\"kWh\""),
            ErrorKind::Protocol,
        ),
        (
            s.replace("\"type\":\"power\"", "\"type\":\"energy\""),
            ErrorKind::Protocol,
        ),
        (
            s.replace(
                "\"time\":\"2021-03-22 19:36:38\",\"phases\"",
                "\"time\":\"soon\",\"phases\"",
            ),
            ErrorKind::Protocol,
        ),
        (r#"{"datasets":[]}"#.to_string(), ErrorKind::Protocol),
        (
            r#"{"datasets":[{"phases":[{"phase":4,"values":[]}]}]}"#.to_string(),
            ErrorKind::Protocol,
        ),
        (r#"{"error":"not found"}"#.to_string(), ErrorKind::Protocol),
    ] {
        let e = parse_now(body.as_bytes(), false).unwrap_err();
        assert_eq!(e.kind, kind, "{body}: {e}");
    }
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(|b| source(b, ""), &[("/api/all/power/now", importing())]).await;
}

#[tokio::test]
async fn conformance_with_all_values() {
    twc_testkit::check_http_source(
        |b| source(b, "all_values = true"),
        &[("/api/all/all/now", all_values())],
    )
    .await;
}

#[tokio::test]
async fn reads_from_the_device() {
    let s = MockServer::start().await;
    twc_testkit::serve_fixture(&s, "/api/all/all/now", all_values()).await;
    let r = source(&s.uri(), "all_values = true").read().await.unwrap();
    assert_eq!(r.phase_currents_a, Some(vec![0.7412, 0.9231, -0.4002]));
    // A firmware without /api/all/all/now: a configuration error, not a reading.
    let e = source(&s.uri(), "").read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn registers_itself() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == NAME && !s.is_empty())
    );
}

#[test]
fn example_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    for (t, key) in [
        ("url = \"http://h\"\nserverPort = 1080", "serverPort"),
        ("url = \"smartpi.local\"", "url"),
        ("all_values = true", "url"),
    ] {
        let e = build(&cfg(t)).err().unwrap();
        assert!(e.to_string().contains(key), "{t}: {e}");
    }
}

#[tokio::test]
async fn r12_a_hung_smartpi_reads_as_old_as_its_dataset() {
    let s = MockServer::start().await;
    let t = (chrono::Local::now() - chrono::TimeDelta::seconds(600)).format("%Y-%m-%d %H:%M:%S");
    let body = String::from_utf8(importing())
        .unwrap()
        .replace("2021-03-22 19:36:38", &t.to_string());
    twc_testkit::serve_fixture(&s, "/api/all/power/now", body.into_bytes()).await;
    let r = source(&s.uri(), "").read().await.unwrap();
    let age = r.age_secs(Instant::now());
    assert!((599.0..603.0).contains(&age), "age {age}");
}
