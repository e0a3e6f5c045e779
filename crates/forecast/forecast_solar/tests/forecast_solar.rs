//! forecast.solar against (reconstructed) answers from a mock server: slots, local time across
//! the DST change, the rate limit, failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry, SolarForecast};
use twc_forecast_forecast_solar::{build, build_forecast_solar, parse};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const OK: &str = "estimate_berlin_dst_end_RECONSTRUCTED.json";
const PATH: &str = "/estimate/52.52/13.4/35/0/9.6";

fn fixture(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn cfg(url: &str, extra: serde_json::Value) -> PluginConfig {
    let mut v = serde_json::json!({
        "url": url, "latitude": 52.52, "longitude": 13.4, "declination": 35.0,
        "azimuth": 0.0, "kwp": 9.6, "http": {"timeout_secs": 0.5, "retries": 0}
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    PluginConfig::new("forecast.forecast_solar", v.as_object().unwrap().clone())
}

async fn serve(p: &str, resp: ResponseTemplate, times: Option<u64>) -> MockServer {
    let server = MockServer::start().await;
    let m = Mock::given(method("GET"))
        .and(path(p.to_string()))
        .respond_with(resp);
    let m = match times {
        Some(n) => m.expect(n),
        None => m,
    };
    m.mount(&server).await;
    server
}

#[test]
fn slots_follow_local_time_across_the_dst_change() {
    let e = parse(&fixture(OK)).unwrap();
    let f = e.forecast;
    assert_eq!(f.validate(), Ok(()));
    assert_eq!(f.slots.len(), 24);
    assert_eq!(f.slots[0].start_unix, 1_729_922_191, "07:56:31 CEST");
    assert_eq!(
        f.slots.last().unwrap().end_unix,
        1_730_041_382,
        "16:03:02 CET"
    );
    assert_eq!(e.remaining, Some(11));
    assert_eq!(e.period_secs, Some(3600));
    // Local days: the 26th from 22:00 UTC on the 25th, the 27th (25 hours) from 22:00 UTC on
    // the 26th to 23:00 UTC on the 27th.
    let d26 = f.energy_kwh(1_729_893_600, 1_729_980_000).unwrap();
    let d27 = f.energy_kwh(1_729_980_000, 1_730_070_000).unwrap();
    assert!((d26 - 32.802).abs() < 0.001, "{d26}");
    assert!((d27 - 25.062).abs() < 0.001, "{d27}");
    // Sunday 12:00 CET = 11:00 UTC: the point of 12:00 local, between the 11:00 and 13:00 slots.
    let noon = f
        .slots
        .iter()
        .find(|s| s.start_unix == 1_730_026_800)
        .unwrap();
    assert!(noon.watts > 3000.0 && noon.watts < 4380.0, "{}", noon.watts);
    // The night between is one slot of 0 W.
    assert!(
        f.slots
            .iter()
            .any(|s| s.watts == 0.0 && s.end_unix - s.start_unix > 10 * 3600)
    );
}

#[tokio::test]
async fn served_forecast_and_the_rate_limit() {
    let server = serve(
        PATH,
        ResponseTemplate::new(200).set_body_bytes(fixture(OK)),
        None,
    )
    .await;
    let p = build_forecast_solar(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    assert_eq!(p.forecast().await.unwrap().slots.len(), 24);
    assert_eq!(p.refresh_interval(), Duration::from_secs(3600));
    // The last call of the period: the answer is used, then no call until the period is over.
    let server = serve(
        PATH,
        ResponseTemplate::new(200).set_body_bytes(fixture("estimate_last_call_RECONSTRUCTED.json")),
        Some(1),
    )
    .await;
    let p = build_forecast_solar(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    assert!(p.forecast().await.is_ok());
    let e = p.forecast().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.chain().contains("rate limit"), "{}", e.chain());
    server.verify().await;
}

#[tokio::test]
async fn a_429_holds_calls_for_an_hour() {
    let server = serve(
        PATH,
        ResponseTemplate::new(429).set_body_bytes(fixture("error_429_RECONSTRUCTED.json")),
        Some(1),
    )
    .await;
    let p = build_forecast_solar(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    let e = p.forecast().await.unwrap_err();
    assert!(e.chain().contains("429"), "{}", e.chain());
    let held = p.forecast().await.unwrap_err();
    assert!(held.chain().contains("rate limit"), "{}", held.chain());
    assert!(
        held.chain().contains("another 3599 s") || held.chain().contains("another 3600 s"),
        "{}",
        held.chain()
    );
    server.verify().await;
}

#[tokio::test]
async fn failures_and_the_key_never_shows() {
    let key = "s3cr3tKEY";
    let full = fixture(OK);
    let cases = [
        (ResponseTemplate::new(500), ErrorKind::Transient, "500"),
        (ResponseTemplate::new(401), ErrorKind::Auth, "401"),
        (ResponseTemplate::new(200).set_body_string("{\"result\":"), ErrorKind::Protocol, ""),
        (ResponseTemplate::new(200).set_body_bytes(full[..full.len() / 3].to_vec()), ErrorKind::Protocol, ""),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"result":{"watts":{}},"message":{"code":0,"info":{"timezone":"Europe/Berlin"}}}"#),
            ErrorKind::Protocol,
            "fewer than two",
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"result":null,"message":{"code":400,"type":"error","text":"Invalid latitude"}}"#),
            ErrorKind::Protocol,
            "Invalid latitude",
        ),
        (ResponseTemplate::new(200).set_body_bytes(full.clone()).set_delay(Duration::from_secs(3)), ErrorKind::Transient, "timed out"),
    ];
    for (resp, kind, text) in cases {
        let server = serve(&format!("/{key}{PATH}"), resp, None).await;
        let p =
            build_forecast_solar(&cfg(&server.uri(), serde_json::json!({"api_key": key}))).unwrap();
        let e = p.forecast().await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
        assert!(e.chain().contains(text), "{}", e.chain());
        assert!(!e.chain().contains(key), "{}", e.chain());
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
    assert!(e(serde_json::json!({"declination": 95.0})).contains("declination"));
    assert!(e(serde_json::json!({"azimuth": 270.0})).contains("azimuth"));
    assert!(e(serde_json::json!({"kwp": 0.0})).contains("kwp"));
    assert!(e(serde_json::json!({"refresh_minutes": 1})).contains("refresh_minutes"));
    assert!(
        Registry::collect()
            .unwrap()
            .forecast
            .contains_key("forecast_solar")
    );
}

/// A recorded forecast.solar answer (Leiden, 2024-04-26 and 27, asked with `time=iso8601`), as
/// kept by the `forecast_solar` Python library's tests: see tests/fixtures/README.md.
const REAL: &str = "estimate_leiden_iso8601_ha_libs_REAL.json";

#[tokio::test]
async fn a_recorded_answer_with_iso8601_times() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/estimate/52.16/4.47/20/10/2.16"))
        .and(query_param("time", "iso8601"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture(REAL)))
        .expect(1)
        .mount(&server)
        .await;
    let extra = serde_json::json!({
        "latitude": 52.16, "longitude": 4.47, "declination": 20.0, "azimuth": 10.0, "kwp": 2.16
    });
    let p = build_forecast_solar(&cfg(&server.uri(), extra)).unwrap();
    let f = p.forecast().await.unwrap();
    assert_eq!(f.validate(), Ok(()));
    // 33 points (sunrise, full hours, sunset on two days): 32 slots, the night one of them.
    assert_eq!(f.slots.len(), 32);
    assert_eq!(f.slots[0].start_unix, 1_714_105_217, "06:20:17+02:00");
    assert_eq!(
        f.slots.last().unwrap().end_unix,
        1_714_244_465,
        "21:01:05+02:00 on the 27th"
    );
    // 11:00 to 12:00 CEST on the 26th: the mean of 869 W and 773 W.
    let s = f
        .slots
        .iter()
        .find(|s| s.start_unix == 1_714_122_000)
        .unwrap();
    assert_eq!((s.end_unix, s.watts), (1_714_125_600, 821.0));
    // The trapezoid of each local day (Europe/Amsterdam, CEST), close to forecast.solar's own
    // watt_hours_day (6660 and 5338 Wh).
    let d26 = f.energy_kwh(1_714_082_400, 1_714_168_800).unwrap();
    let d27 = f.energy_kwh(1_714_168_800, 1_714_255_200).unwrap();
    assert!((d26 - 6.655_167).abs() < 1e-6, "{d26}");
    assert!((d27 - 5.335_023).abs() < 1e-6, "{d27}");
    let e = parse(&fixture(REAL)).unwrap();
    assert_eq!((e.remaining, e.period_secs), (Some(11), Some(3600)));
    server.verify().await;
}
