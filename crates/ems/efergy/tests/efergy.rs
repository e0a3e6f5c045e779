//! Efergy Engage against its recorded `getCurrentValuesSummary` replies, served by a mock server.

use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_efergy::{self as plugin, build, parse_summary};
use twc_testkit::wiremock::matchers::{path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture};

const SUMMARY: &str = "/mobile_proxy/getCurrentValuesSummary";

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn single_sensor_is_1628_w_consumption() {
    let r = parse_summary(&fixture!("getCurrentValuesSummary_single.json"), None).unwrap();
    assert_reading(&r, None, Some(1628.0), None);
    // Recorded in 2017: old, never fresh.
    assert!(r.age_secs(Instant::now()) > 1.0);
}

#[test]
fn multi_takes_the_first_power_sensor_or_the_configured_sid() {
    let body = fixture!("getCurrentValuesSummary_multi.json");
    let r = parse_summary(&body, None).unwrap();
    assert_reading(&r, None, Some(218.0), None);
    let r = parse_summary(&body, Some("728386")).unwrap();
    assert_reading(&r, None, Some(218.0), None);
    let r = parse_summary(&body, Some("0")).unwrap();
    assert_reading(&r, None, Some(1808.0), None);
    let numeric = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"sid\": \"728387\"", "\"sid\": 728387");
    let r = parse_summary(numeric.as_bytes(), Some("728387")).unwrap();
    assert_reading(&r, None, Some(312.0), None);
    let e = parse_summary(&body, Some("999")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("728386") && e.message.contains("999"),
        "{e}"
    );
}

fn dated(point_age_ms: i64, age_secs: u64) -> Vec<u8> {
    String::from_utf8(fixture!("getCurrentValuesSummary_single.json"))
        .unwrap()
        .replace("1486247500000", &(unix_ms_now() - point_age_ms).to_string())
        .replace("\"age\": 5", &format!("\"age\": {age_secs}"))
        .into_bytes()
}

#[test]
fn the_older_of_the_point_time_and_age_dates_the_value() {
    let r = parse_summary(&dated(5_000, 5), None).unwrap();
    let age = r.age_secs(Instant::now());
    assert!((4.0..9.0).contains(&age), "age {age}");
    // A sensor that stopped reporting: the summary's age says so even when the point looks new.
    let r = parse_summary(&dated(5_000, 600), None).unwrap();
    let age = r.age_secs(Instant::now());
    assert!((599.0..605.0).contains(&age), "age {age}");
    let r = parse_summary(&dated(120_000, 3), None).unwrap();
    let age = r.age_secs(Instant::now());
    assert!((119.0..125.0).contains(&age), "age {age}");
}

#[test]
fn r12_garbage_and_refusals_never_read_as_zero() {
    let single = String::from_utf8(fixture!("getCurrentValuesSummary_single.json")).unwrap();
    let cases: Vec<(&str, String, ErrorKind)> = vec![
        (
            "null value",
            single.replace(": 1628", ": null"),
            ErrorKind::Protocol,
        ),
        (
            "negative value",
            single.replace(": 1628", ": -1628"),
            ErrorKind::Protocol,
        ),
        (
            "text value",
            single.replace(": 1628", ": \"n/a\""),
            ErrorKind::Protocol,
        ),
        (
            "no data points",
            single.replace(
                "[\n      {\n        \"1486247500000\": 1628\n      }\n    ]",
                "[]",
            ),
            ErrorKind::Protocol,
        ),
        (
            "key not a time",
            single.replace("1486247500000", "yesterday"),
            ErrorKind::Protocol,
        ),
        ("no sensors", "[]".into(), ErrorKind::Protocol),
        (
            "no power sensor",
            single.replace("\"PWER\"", "\"TEMP\""),
            ErrorKind::Protocol,
        ),
        (
            "bad token",
            r#"{"error":{"id":400,"desc":"bad token","more":""}}"#.into(),
            ErrorKind::Auth,
        ),
        (
            "other error",
            r#"{"status":"error","description":"server busy"}"#.into(),
            ErrorKind::Protocol,
        ),
    ];
    for (what, body, kind) in cases {
        match parse_summary(body.as_bytes(), None) {
            Ok(r) => panic!("{what}: gave a reading {r:?}"),
            Err(e) => assert_eq!(e.kind, kind, "{what}: {e}"),
        }
    }
}

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.efergy", body).unwrap()
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "token = \"TOKEN123\"\nurl = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        source,
        &[(SUMMARY, fixture!("getCurrentValuesSummary_multi.json"))],
    )
    .await;
}

#[tokio::test]
async fn sends_the_token_and_never_shows_it_in_errors() {
    let s = MockServer::start().await;
    Mock::given(path(SUMMARY))
        .and(query_param("token", "TOKEN123"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(dated(2_000, 2)))
        .mount(&s)
        .await;
    let r = source(&s.uri()).read().await.unwrap();
    assert_reading(&r, None, Some(1628.0), None);
    s.reset().await;
    Mock::given(path(SUMMARY))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s)
        .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(!e.chain().contains("TOKEN123"), "{}", e.chain());
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty())
    );
}

#[test]
fn the_examples_build_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).expect("example.toml");
    build(&twc_testkit::example_file_section(
        "efergy.toml",
        "ems",
        plugin::NAME,
    ))
    .expect("config/examples/efergy.toml");
    let e = build(&twc_testkit::default_toml_section("ems", plugin::NAME))
        .err()
        .unwrap();
    assert!(e.to_string().contains("token"), "{e}");
    for (body, key) in [
        ("token = \"\"", "token"),
        ("token = \"a b\"", "token"),
        ("token = \"t\"\nurl = \"engage.efergy.com\"", "url"),
        ("token = \"t\"\nsid = \"\"", "sid"),
        ("token = \"t\"\ntokn = \"t\"", "tokn"),
    ] {
        let e = build(&cfg(body))
            .err()
            .unwrap_or_else(|| panic!("{body} built"));
        assert!(e.to_string().contains(key), "{body}: {e}");
    }
}
