//! OpenWeatherMap One Call against its recorded reply, served by a mock server.

use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_openweathermap::{
    self as plugin, Weather, best_entry, build, cloud_factor, day_factor, estimate_w, heat_factor,
    parse_onecall,
};
use twc_testkit::wiremock::matchers::{path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_w, fixture};

const METRIC: &str = "onecall_excerpt_units_metric_DERIVED.json";
// current.dt, sunrise and sunset of the recorded reply (Greenwich, 25 October 2024).
const DT: i64 = 1729871958;
const SUNRISE: i64 = 1729838492;
const SUNSET: i64 = 1729874777;
const PEAK: [f64; 12] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
];

fn metric() -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{METRIC}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn at(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).unwrap()
}

#[test]
fn the_recorded_reply_is_an_estimate_late_in_an_overcast_afternoon() {
    let r = parse_onecall(&metric(), &PEAK, at(DT)).unwrap();
    // 17:59 local, 47 min before sunset: the day curve is at its floor of 0.2; 100 % clouds
    // leave 2/3; 14.7 °C costs nothing; October's peak is 10 kW.
    assert_w("generation_w", r.generation_w, 10_000.0 * 0.2 * (2.0 / 3.0));
    assert!(r.estimated, "a forecast is never a measurement");
    assert_eq!((r.consumption_w, r.grid_w), (None, None));
    // Counted from current.dt (2024): old, never fresh.
    assert!(r.age_secs(Instant::now()) > 1.0);
}

#[test]
fn midday_night_and_month() {
    let midday = SUNRISE + (SUNSET - SUNRISE) / 2;
    let observed_at_midday = String::from_utf8(metric())
        .unwrap()
        .replace(&DT.to_string(), &midday.to_string());
    let r = parse_onecall(observed_at_midday.as_bytes(), &PEAK, at(midday)).unwrap();
    // The closest entry is `current` (clouds 100 %).
    assert_w("midday", r.generation_w, 10_000.0 * (2.0 / 3.0));
    let r = parse_onecall(&metric(), &PEAK, at(SUNSET + 60)).unwrap();
    assert_w("after sunset", r.generation_w, 0.0);
    assert!(r.estimated);
    // The site's local month: the reply's timezone_offset (+1 h) moves 23:30 UTC on 31 October
    // into 1 November.
    let body = String::from_utf8(metric()).unwrap();
    let late = 1730417400; // 2024-10-31 23:30 UTC
    let shifted = body
        .replace(&DT.to_string(), &late.to_string())
        .replace(&SUNRISE.to_string(), &(late - 3600).to_string())
        .replace(&SUNSET.to_string(), &(late + 3600).to_string());
    let r = parse_onecall(shifted.as_bytes(), &PEAK, at(late)).unwrap();
    assert_w(
        "November peak at midday",
        r.generation_w,
        11_000.0 * (2.0 / 3.0),
    );
}

#[test]
fn factors() {
    assert_eq!(day_factor(SUNRISE - 1, SUNRISE, SUNSET), 0.0);
    assert_eq!(day_factor(SUNRISE + 60, SUNRISE, SUNSET), 0.2);
    let quarter = SUNRISE + (SUNSET - SUNRISE) / 4;
    assert!((day_factor(quarter, SUNRISE, SUNSET) - 0.5).abs() < 0.001);
    assert_eq!(
        day_factor(SUNRISE + (SUNSET - SUNRISE) * 47 / 100, SUNRISE, SUNSET),
        1.0
    );
    assert_eq!(cloud_factor(0.0), 1.0);
    assert!((cloud_factor(100.0) - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(heat_factor(25.0), 1.0);
    // 41 °C costs 10 %; TWCManager's cap would halve it.
    assert!((heat_factor(41.0) - 0.9).abs() < 1e-9);
    assert_eq!(heat_factor(120.0), 0.5);
    let w = Weather {
        sunrise: SUNRISE,
        sunset: SUNSET,
        clouds_pct: 0.0,
        temp_c: 41.0,
    };
    let midday = SUNRISE + (SUNSET - SUNRISE) / 2;
    assert!((estimate_w(5.0, midday, &w) - 4500.0).abs() < 0.01);
}

#[test]
fn the_closest_current_or_hourly_entry_is_used_never_daily() {
    let v: serde_json::Value = serde_json::from_slice(&metric()).unwrap();
    assert_eq!(best_entry(&v, DT).unwrap()["dt"], DT);
    assert_eq!(best_entry(&v, 1729904400 + 600).unwrap()["clouds"], 15);
    // Only a daily entry is near: no estimate.
    let e = best_entry(&v, 1730026800).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
}

#[test]
fn r12_kelvin_errors_and_garbage_never_estimate() {
    let kelvin = fixture!("onecall_excerpt_units_standard_ha_fixture.json");
    let e = parse_onecall(&kelvin, &PEAK, at(DT)).unwrap_err();
    assert!(e.message.contains("Kelvin"), "{e}");
    let body = String::from_utf8(metric()).unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "bad key",
            r#"{"cod":401,"message":"Invalid API key."}"#.into(),
        ),
        (
            "clouds over 100",
            body.replacen("\"clouds\": 100", "\"clouds\": 130", 1),
        ),
        (
            "clouds null",
            body.replacen("\"clouds\": 100", "\"clouds\": null", 1),
        ),
        (
            "temp text",
            body.replacen("\"temp\": 14.74", "\"temp\": \"warm\"", 1),
        ),
        ("no sunset", body.replacen("\"sunset\": 1729874777,", "", 1)),
        ("no current", "{\"hourly\": []}".into()),
    ];
    for (what, b) in cases {
        match parse_onecall(b.as_bytes(), &PEAK, at(DT)) {
            Ok(r) => panic!("{what}: gave a reading {r:?}"),
            Err(e) => assert_eq!(e.kind, ErrorKind::Protocol, "{what}: {e}"),
        }
    }
}

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.openweathermap", body).unwrap()
}

const SITE: &str = "api_key = \"KEY123\"\nlatitude = 51.4769\nlongitude = -0.0005\npeak_kw = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]";

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "{SITE}\nurl = \"{base}/data/3.0/onecall\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

/// The recorded reply as if observed now (its sun times stay those of the recording: night).
fn observed_now() -> Vec<u8> {
    String::from_utf8(metric())
        .unwrap()
        .replace(&DT.to_string(), &Utc::now().timestamp().to_string())
        .into_bytes()
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(source, &[("/data/3.0/onecall", observed_now())]).await;
}

#[tokio::test]
async fn asks_for_metric_units_at_the_site_and_stays_within_the_call_budget() {
    let s = MockServer::start().await;
    Mock::given(path("/data/3.0/onecall"))
        .and(query_param("lat", "51.4769"))
        .and(query_param("lon", "-0.0005"))
        .and(query_param("appid", "KEY123"))
        .and(query_param("units", "metric"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(observed_now()))
        .mount(&s)
        .await;
    let src = source(&s.uri());
    let first = src.read().await.unwrap();
    assert!(first.estimated);
    assert!(
        first.age_secs(Instant::now()) < 5.0,
        "dated by current.dt = now"
    );
    for _ in 0..3 {
        let again = src.read().await.unwrap();
        assert_eq!(again.measured_at, first.measured_at);
    }
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
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
        "openweathermap.toml",
        "ems",
        plugin::NAME,
    ))
    .expect("config/examples/openweathermap.toml");
    let e = build(&twc_testkit::default_toml_section("ems", plugin::NAME))
        .err()
        .unwrap();
    assert!(e.to_string().contains("api_key"), "{e}");
    let twelve = "[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]";
    for (body, key) in [
        (
            format!("api_key = \"\"\nlatitude = 1.0\nlongitude = 1.0\npeak_kw = {twelve}"),
            "api_key",
        ),
        (
            format!("api_key = \"k\"\nlatitude = 91.0\nlongitude = 1.0\npeak_kw = {twelve}"),
            "latitude",
        ),
        (
            format!("api_key = \"k\"\nlatitude = 1.0\nlongitude = 181.0\npeak_kw = {twelve}"),
            "longitude",
        ),
        (
            "api_key = \"k\"\nlatitude = 1.0\nlongitude = 1.0\npeak_kw = [5.0]".to_string(),
            "peak_kw",
        ),
        (
            format!(
                "api_key = \"k\"\nlatitude = 1.0\nlongitude = 1.0\npeak_kw = {}",
                twelve.replace("3.0", "-3.0")
            ),
            "peak_kw[2]",
        ),
        (
            format!(
                "api_key = \"k\"\nlatitude = 1.0\nlongitude = 1.0\npeak_kw = {twelve}\ncalls_per_day = 0"
            ),
            "calls_per_day",
        ),
        (
            format!(
                "api_key = \"k\"\nlatitude = 1.0\nlongitude = 1.0\npeak_kw = {twelve}\nPeakKW = 1"
            ),
            "PeakKW",
        ),
    ] {
        let e = build(&cfg(&body))
            .err()
            .unwrap_or_else(|| panic!("{body} built"));
        assert!(e.to_string().contains(key), "{body}: {e}");
    }
}
