//! Octopus Agile against a (reconstructed) unit-rates answer from a mock server, with failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry};
use twc_tariff_octopus::{build, build_octopus};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const OK: &str = "agile_c_dst_start_RECONSTRUCTED.json";
const PATH: &str =
    "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/standard-unit-rates/";
const T0: i64 = 1_711_836_000; // 2024-03-30T22:00:00Z

fn fixture(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn cfg(url: &str, extra: serde_json::Value) -> PluginConfig {
    let mut v = serde_json::json!({
        "url": url, "product_code": "AGILE-24-10-01", "region": "C",
        "http": {"timeout_secs": 0.5, "retries": 0}
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    PluginConfig::new("tariff.octopus", v.as_object().unwrap().clone())
}

async fn serve(resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(resp)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn half_hourly_rates_in_pounds_oldest_first() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .and(query_param("period_from", "2024-03-30T22:00:00Z"))
        .and(query_param("period_to", "2024-04-01T22:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture(OK)))
        .mount(&server)
        .await;
    let t = build_octopus(&cfg(
        &server.uri(),
        serde_json::json!({"feed_in_per_kwh": 0.15}),
    ))
    .unwrap();
    let p = t.prices_at(T0 + 60).await.unwrap();
    assert_eq!(p.currency, "GBP");
    assert_eq!(p.slots.len(), 16);
    assert_eq!(p.slots[0].start_unix, T0);
    assert!((p.slots[0].price_per_kwh - 0.1882).abs() < 1e-9);
    // 01:00Z: clocks go to BST; UTC slots run on without a gap.
    for w in p.slots.windows(2) {
        assert_eq!(w[0].end_unix, w[1].start_unix);
    }
    assert_eq!(p.feed_in_per_kwh, Some(0.15));
    let t = build_octopus(&cfg(
        &server.uri(),
        serde_json::json!({"include_vat": false}),
    ))
    .unwrap();
    let p = t.prices_at(T0).await.unwrap();
    assert!((p.slots[0].price_per_kwh - 0.179238).abs() < 1e-9);
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let full = fixture(OK);
    let cases = [
        (
            ResponseTemplate::new(404).set_body_bytes(fixture("error_404_RECONSTRUCTED.json")),
            ErrorKind::Config,
            "404",
        ),
        (ResponseTemplate::new(401), ErrorKind::Auth, "401"),
        (ResponseTemplate::new(503), ErrorKind::Transient, "503"),
        (
            ResponseTemplate::new(200).set_body_string("<html>"),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_bytes(full[..full.len() / 2].to_vec()),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_string(r#"{"count":0,"next":null,"previous":null,"results":[]}"#),
            ErrorKind::Protocol,
            "no price",
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
        let server = serve(resp).await;
        let t = build_octopus(&cfg(&server.uri(), serde_json::json!({}))).unwrap();
        let e = t.prices_at(T0).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
        assert!(e.chain().contains(text), "{}", e.chain());
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
    assert!(e(serde_json::json!({"region": "I"})).contains("region"));
    assert!(e(serde_json::json!({"region": "Z"})).contains("region"));
    assert!(e(serde_json::json!({"product_code": "agile"})).contains("product_code"));
    assert!(
        build(&cfg(
            "http://127.0.0.1:1",
            serde_json::json!({"region": null, "tariff_code": "E-1R-AGILE-24-10-01-C"})
        ))
        .is_ok()
    );
    assert!(Registry::collect().unwrap().tariff.contains_key("octopus"));
}
