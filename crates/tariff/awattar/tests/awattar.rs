//! aWATTar against its (reconstructed) marketdata answers served by a mock server, with failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry};
use twc_tariff_awattar::{build, build_awattar};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const DST: &str = "marketdata_de_dst_end_RECONSTRUCTED.json";
const TONIGHT: &str = "marketdata_de_tonight_only_RECONSTRUCTED.json";
// 2024-10-26T22:00:00Z, local midnight in Germany.
const T0: i64 = 1_729_980_000;

fn fixture(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn cfg(url: &str) -> PluginConfig {
    let v = serde_json::json!({
        "url": format!("{url}/v1/marketdata"),
        "markup_per_kwh": 0.18,
        "vat_pct": 19.0,
        "feed_in_per_kwh": 0.081,
        "http": {"timeout_secs": 0.5, "retries": 0}
    });
    PluginConfig::new("tariff.awattar", v.as_object().unwrap().clone())
}

async fn serve(body: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/marketdata"))
        .respond_with(body)
        .mount(&server)
        .await;
    server
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[tokio::test]
async fn the_day_clocks_go_back_has_25_hourly_prices_with_markup_and_vat() {
    let server = MockServer::start().await;
    // The request asks from the current hour for 48 h, in milliseconds.
    Mock::given(method("GET"))
        .and(path("/v1/marketdata"))
        .and(query_param("start", (T0 * 1000).to_string()))
        .and(query_param("end", ((T0 + 48 * 3600) * 1000).to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture(DST)))
        .mount(&server)
        .await;
    let t = build_awattar(&cfg(&server.uri())).unwrap();
    let p = t.prices_at(T0 + 600).await.unwrap();
    assert_eq!(p.slots.len(), 25);
    assert_eq!(p.currency, "EUR");
    assert_eq!(p.feed_in_per_kwh, Some(0.081));
    close(p.slots[0].price_per_kwh, (0.0985 + 0.18) * 1.19);
    // 12:00 UTC: a negative market price, still positive on the bill.
    close(
        p.at(T0 + 14 * 3600).unwrap().price_per_kwh,
        (-0.00512 + 0.18) * 1.19,
    );
    // The last hour starts at 22:00 UTC, 23:00 CET: the local day had 25 hours.
    assert_eq!(p.slots[24].start_unix, T0 + 24 * 3600);
    assert_eq!(p.slots[24].end_unix, T0 + 25 * 3600);
    assert!(p.slots.iter().all(|s| s.end_unix - s.start_unix == 3600));
    assert_eq!(p.validate(), Ok(()));
}

#[tokio::test]
async fn past_hours_are_dropped_and_tomorrow_may_be_missing() {
    let server = serve(ResponseTemplate::new(200).set_body_bytes(fixture(TONIGHT))).await;
    let t = build_awattar(&cfg(&server.uri())).unwrap();
    let p = t.prices_at(T0 + 3600 + 5).await.unwrap();
    assert_eq!(p.slots.len(), 2, "the first hour has ended");
    // After the last hour: nothing from now on is an error, never an empty price list.
    let e = t.prices_at(T0 + 3 * 3600).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.chain().contains("no price"), "{}", e.chain());
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let cases = [
        (ResponseTemplate::new(500), ErrorKind::Transient, "500"),
        (ResponseTemplate::new(401), ErrorKind::Auth, "401"),
        (
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_bytes(fixture(DST)[..300].to_vec()),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"object":"list"}"#),
            ErrorKind::Protocol,
            "no data",
        ),
        (
            ResponseTemplate::new(200).set_body_string(
                r#"{"object":"list","data":[{"start_timestamp":1729980000000,"end_timestamp":1729983600000,"marketprice":98.5,"unit":"Eur/kWh"}]}"#,
            ),
            ErrorKind::Protocol,
            "unit",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_bytes(fixture(DST))
                .set_delay(Duration::from_secs(3)),
            ErrorKind::Transient,
            "timed out",
        ),
    ];
    for (resp, kind, text) in cases {
        let server = serve(resp).await;
        let t = build_awattar(&cfg(&server.uri())).unwrap();
        let e = t.prices_at(T0).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
        assert!(e.chain().contains(text), "{}", e.chain());
    }
}

#[test]
fn config_errors_name_the_key() {
    let e = |v: serde_json::Value| {
        build(&PluginConfig::new(
            "tariff.awattar",
            v.as_object().unwrap().clone(),
        ))
        .err()
        .unwrap()
        .to_string()
    };
    assert!(e(serde_json::json!({"country": "ch"})).contains("country"));
    assert!(e(serde_json::json!({"vat_pct": 190.0})).contains("vat_pct"));
    assert!(e(serde_json::json!({"url": "ftp://x"})).contains("url"));
    assert!(Registry::collect().unwrap().tariff.contains_key("awattar"));
}
