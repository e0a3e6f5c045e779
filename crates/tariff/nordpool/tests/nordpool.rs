//! Nord Pool against a (reconstructed) day-ahead answer from a mock server, with failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry};
use twc_tariff_nordpool::{build, build_nordpool};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate, Times};

const OK: &str = "dayahead_se3_2024-10-27_RECONSTRUCTED.json";
const T0: i64 = 1_729_980_000; // 2024-10-26T22:00Z = 2024-10-27 00:00 CEST

fn fixture(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn cfg(url: &str, extra: serde_json::Value) -> PluginConfig {
    let mut v = serde_json::json!({
        "url": format!("{url}/api/DayAheadPrices"), "area": "SE3", "currency": "SEK",
        "vat_pct": 25.0, "http": {"timeout_secs": 0.5, "retries": 0}
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    PluginConfig::new("tariff.nordpool", v.as_object().unwrap().clone())
}

async fn serve(today: ResponseTemplate, tomorrow: ResponseTemplate) -> MockServer {
    serve_days([("2024-10-27", today), ("2024-10-28", tomorrow)], ..).await
}

/// Each delivery day's answer to the request the plugin makes for SE3 in SEK; `expect`: how
/// often each must be asked (`..`: any number of times).
async fn serve_days(
    days: [(&str, ResponseTemplate); 2],
    expect: impl Into<Times> + Clone,
) -> MockServer {
    let server = MockServer::start().await;
    for (date, resp) in days {
        let mock = Mock::given(method("GET"))
            .and(path("/api/DayAheadPrices"))
            .and(query_param("date", date))
            .and(query_param("market", "DayAhead"))
            .and(query_param("deliveryArea", "SE3"))
            .and(query_param("currency", "SEK"))
            .respond_with(resp);
        mock.expect(expect.clone()).mount(&server).await;
    }
    server
}

#[tokio::test]
async fn the_25_hour_day_with_vat_and_tomorrow_not_published() {
    let server = serve(
        ResponseTemplate::new(200).set_body_bytes(fixture(OK)),
        ResponseTemplate::new(204),
    )
    .await;
    let t = build_nordpool(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    let p = t.prices_at(T0 + 60).await.unwrap();
    assert_eq!(p.currency, "SEK");
    assert_eq!(p.slots.len(), 25);
    assert!((p.slots[0].price_per_kwh - 0.5154375).abs() < 1e-9);
    assert_eq!(p.slots[24].end_unix, T0 + 25 * 3600);
    assert_eq!(p.validate(), Ok(()));
    // Tomorrow failing on its own (500) still gives today's prices.
    let server = serve(
        ResponseTemplate::new(200).set_body_bytes(fixture(OK)),
        ResponseTemplate::new(500),
    )
    .await;
    let t = build_nordpool(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    assert_eq!(t.prices_at(T0).await.unwrap().slots.len(), 25);
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let full = fixture(OK);
    let eur = String::from_utf8(full.clone())
        .unwrap()
        .replace("\"SEK\"", "\"EUR\"");
    let cases = [
        (ResponseTemplate::new(204), ErrorKind::Protocol, "no price"),
        (ResponseTemplate::new(401), ErrorKind::Auth, "401"),
        (ResponseTemplate::new(500), ErrorKind::Transient, "500"),
        (
            ResponseTemplate::new(200).set_body_string("garbage"),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_bytes(full[..full.len() / 2].to_vec()),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_string(eur),
            ErrorKind::Protocol,
            "EUR",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_bytes(full.clone())
                .set_delay(Duration::from_secs(3)),
            ErrorKind::Transient,
            "timed out",
        ),
    ];
    for (resp, kind, text) in cases {
        let server = serve(resp, ResponseTemplate::new(204)).await;
        let t = build_nordpool(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
        let e = t.prices_at(T0).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
        assert!(e.chain().contains(text), "{}", e.chain());
    }
    // A wrong area: the answer has no price for it.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture(OK)))
        .mount(&server)
        .await;
    let t = build_nordpool(&cfg(&server.uri(), serde_json::json!({"area": "NO1"}))).unwrap();
    assert!(t.prices_at(T0).await.unwrap_err().chain().contains("NO1"));
}

#[test]
fn config_errors_name_the_key() {
    let e = |extra| {
        build(&cfg("http://127.0.0.1:1", extra))
            .err()
            .unwrap()
            .to_string()
    };
    assert!(e(serde_json::json!({"area": "SE 3"})).contains("area"));
    assert!(e(serde_json::json!({"currency": "kr"})).contains("currency"));
    assert!(e(serde_json::json!({"vat_pct": -1.0})).contains("vat_pct"));
    assert!(Registry::collect().unwrap().tariff.contains_key("nordpool"));
}

/// A recorded Nord Pool answer (data portal `DayAheadPrices`, delivery day 2024-11-05, SE3 and
/// SE4 in SEK), as kept by Home Assistant's tests: see tests/fixtures/README.md.
const REAL: &str = "dayahead_se3_se4_2024-11-05_ha_REAL.json";
/// 2024-11-04T23:00Z = 2024-11-05 00:00 CET, the start of the recorded delivery day.
const REAL_T0: i64 = 1_730_761_200;

#[tokio::test]
async fn a_recorded_answer_for_se3() {
    let server = serve_days(
        [
            (
                "2024-11-05",
                ResponseTemplate::new(200).set_body_bytes(fixture(REAL)),
            ),
            ("2024-11-06", ResponseTemplate::new(204)),
        ],
        1,
    )
    .await;
    let t = build_nordpool(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
    let p = t.prices_at(REAL_T0 + 60).await.unwrap();
    assert_eq!(p.currency, "SEK");
    assert_eq!(p.validate(), Ok(()));
    // 24 hours of a day without a clock change, from 23:00Z to 23:00Z.
    assert_eq!(p.slots.len(), 24);
    assert_eq!(p.slots[0].start_unix, REAL_T0);
    assert_eq!(p.slots[23].end_unix, REAL_T0 + 24 * 3600);
    assert!(p.slots.iter().all(|s| s.end_unix - s.start_unix == 3600));
    // SEK/MWh from the file, / 1000 per kWh, + 25 % VAT.
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} != {b}");
    close(p.slots[0].price_per_kwh, 0.25073 * 1.25); // 250.73
    close(p.slots[17].price_per_kwh, 2.51265 * 1.25); // 2512.65 at 16:00Z, the day's peak
    close(p.slots[23].price_per_kwh, 0.28914 * 1.25); // 289.14
    assert_eq!(p.slots[17].start_unix, 1_730_822_400);
}
