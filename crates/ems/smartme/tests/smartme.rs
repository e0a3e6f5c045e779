//! Fixture, conformance and configuration tests of the smart-me source.

use std::time::Duration;
use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_smartme::{NAME, build, parse_device};
use twc_testkit::wiremock::matchers::{header, method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture};

fn exporting() -> Vec<u8> {
    fixture!("DeviceBySerial_grid_meter_exporting_RECONSTRUCTED.json")
}

fn importing() -> Vec<u8> {
    fixture!("DeviceBySerial_grid_meter_importing_RECONSTRUCTED.json")
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.smartme", t).unwrap()
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\nusername = \"me\"\npassword = \"pw\"\nserial = 1234567\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[test]
fn exporting_grid_meter() {
    let r = parse_device(&exporting(), false).unwrap();
    // TWCManager reports this as 2153 W generation; it is export at the grid connection.
    assert_reading(&r, None, None, Some(-2153.0));
    assert_eq!(r.phase_currents_a, Some(vec![-3.1, -3.2, -3.1]));
    assert_eq!(r.phase_voltages, Some(vec![231.2, 230.4, 232.0]));
}

#[test]
fn importing_grid_meter() {
    let r = parse_device(&importing(), false).unwrap();
    assert_reading(&r, None, None, Some(1704.0));
    assert_eq!(r.phase_currents_a, Some(vec![4.0, 1.8, 1.7]));
    assert_eq!(r.phase_voltages, Some(vec![229.8, 230.1, 229.5]));
}

#[test]
fn inverted_meter() {
    let r = parse_device(&importing(), true).unwrap();
    assert_reading(&r, None, None, Some(-1704.0));
    assert_eq!(r.phase_currents_a, Some(vec![-4.0, -1.8, -1.7]));
}

#[test]
fn value_date_is_when_it_was_measured() {
    // The fixtures are from 2022: years old, so clearly stale.
    let r = parse_device(&importing(), false).unwrap();
    assert!(r.age_secs(Instant::now()) > 3.0 * 365.0 * 86_400.0);
    // A value from 40 s ago is 40 s old.
    let at = (chrono::Utc::now() - chrono::TimeDelta::seconds(40)).to_rfc3339();
    let body = format!(r#"{{"ActivePower":0.5,"ActivePowerUnit":"kW","ValueDate":"{at}"}}"#);
    let r = parse_device(body.as_bytes(), false).unwrap();
    assert_reading(&r, None, None, Some(500.0));
    assert!((r.age_secs(Instant::now()) - 40.0).abs() < 2.0);
    // Without a ValueDate the answer's arrival counts.
    let r = parse_device(br#"{"ActivePower":120,"ActivePowerUnit":"W"}"#, false).unwrap();
    assert!(r.age_secs(Instant::now()) < 1.0);
    assert_eq!(r.phase_currents_a, None);
}

#[test]
fn missing_or_invalid_values_are_errors_never_zero() {
    for (body, kind) in [
        (
            &br#"{"ActivePower":null,"ActivePowerUnit":"kW"}"#[..],
            ErrorKind::Transient,
        ),
        (br#"{"ActivePowerUnit":"kW"}"#, ErrorKind::Transient),
        (br#"{"ActivePower":1.2}"#, ErrorKind::Protocol),
        (
            br#"{"ActivePower":1.2,"ActivePowerUnit":"kWh"}"#,
            ErrorKind::Protocol,
        ),
        (
            br#"{"ActivePower":"n/a","ActivePowerUnit":"kW"}"#,
            ErrorKind::Protocol,
        ),
        (
            br#"{"ActivePower":1.2,"ActivePowerUnit":"kW","ValueDate":"yesterday"}"#,
            ErrorKind::Protocol,
        ),
        (br#"[]"#, ErrorKind::Protocol),
        (b"", ErrorKind::Protocol),
    ] {
        let e = parse_device(body, false).unwrap_err();
        assert_eq!(e.kind, kind, "{}: {e}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(source, &[("/api/DeviceBySerial", importing())]).await;
}

#[tokio::test]
async fn sends_the_serial_and_basic_credentials() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/DeviceBySerial"))
        .and(query_param("serial", "1234567"))
        .and(header("authorization", "Basic bWU6cHc="))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(exporting()))
        .mount(&s)
        .await;
    let r = source(&s.uri()).read().await.unwrap();
    assert_reading(&r, None, None, Some(-2153.0));
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_error_without_the_password() {
    let s = MockServer::start().await;
    Mock::given(path("/api/DeviceBySerial"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s)
        .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    let text = e.chain();
    assert!(!text.contains("pw") && !text.contains("1234567"), "{text}");
}

#[tokio::test]
async fn a_slow_cloud_is_a_timeout() {
    let s = MockServer::start().await;
    Mock::given(path("/api/DeviceBySerial"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(importing())
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&s)
        .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
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
        (
            "username = \"u\"\npassword = \"p\"\nserial = 1\nserialNumber = 1",
            "serialNumber",
        ),
        ("username = \"u\"\npassword = \"p\"", "serial"),
        (
            "username = \"u\"\npassword = \"p\"\nserial = \"12 34\"",
            "serial must be",
        ),
        (
            "username = \"u\"\npassword = \"p\"\nserial = -1",
            "serial must be",
        ),
        (
            "username = \"u\"\npassword = \"p\"\nserial = true",
            "serial must be",
        ),
        ("username = \"\"\npassword = \"p\"\nserial = 1", "username"),
        (
            "url = \"smart-me.com\"\nusername = \"u\"\npassword = \"p\"\nserial = 1",
            "url",
        ),
    ] {
        let e = build(&cfg(t)).err().unwrap();
        assert!(e.to_string().contains(key), "{t}: {e}");
    }
}

#[tokio::test]
async fn r12_a_meter_silent_for_ten_minutes_reads_ten_minutes_old() {
    let s = MockServer::start().await;
    let at = (chrono::Utc::now() - chrono::TimeDelta::seconds(600)).to_rfc3339();
    let body = String::from_utf8(importing())
        .unwrap()
        .replace("2022-06-15T19:30:01.7654321Z", &at);
    twc_testkit::serve_fixture(&s, "/api/DeviceBySerial", body.into_bytes()).await;
    let r = source(&s.uri()).read().await.unwrap();
    let age = r.age_secs(Instant::now());
    assert!((599.0..603.0).contains(&age), "age {age}");
}
