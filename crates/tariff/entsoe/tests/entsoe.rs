//! ENTSO-E A44 against (reconstructed) XML answers from a mock server, with failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry};
use twc_tariff_entsoe::{build, build_entsoe};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

const OK: &str = "a44_de_lu_2024-10-27_RECONSTRUCTED.xml";
const T0: i64 = 1_729_980_000; // 2024-10-26T22:00Z
const TOKEN: &str = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";

fn fixture(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn cfg(url: &str) -> PluginConfig {
    let v = serde_json::json!({
        "url": format!("{url}/api"), "security_token": TOKEN, "bidding_zone": "10Y1001A1001A82H",
        "markup_per_kwh": 0.18, "vat_pct": 19.0, "http": {"timeout_secs": 0.5, "retries": 0}
    });
    PluginConfig::new("tariff.entsoe", v.as_object().unwrap().clone())
}

async fn serve(resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api"))
        .respond_with(resp)
        .mount(&server)
        .await;
    server
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[tokio::test]
async fn a_25_hour_day_with_a_left_out_position() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api"))
        .and(query_param("securityToken", TOKEN))
        .and(query_param("documentType", "A44"))
        .and(query_param("in_Domain", "10Y1001A1001A82H"))
        .and(query_param("out_Domain", "10Y1001A1001A82H"))
        .and(query_param("periodStart", "202410262200"))
        .and(query_param("periodEnd", "202410282200"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture(OK)))
        .mount(&server)
        .await;
    let t = build_entsoe(&cfg(&server.uri())).unwrap();
    let p = t.prices_at(T0 + 30).await.unwrap();
    assert_eq!(p.currency, "EUR");
    assert_eq!(p.slots.len(), 25);
    close(p.slots[0].price_per_kwh, (0.0985 + 0.18) * 1.19);
    close(p.slots[4].price_per_kwh, (0.08211 + 0.18) * 1.19);
    close(p.slots[14].price_per_kwh, (-0.00512 + 0.18) * 1.19);
    assert_eq!(p.slots[24].end_unix, T0 + 25 * 3600);
    assert_eq!(p.validate(), Ok(()));
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let full = fixture(OK);
    let cases = [
        (
            ResponseTemplate::new(200).set_body_bytes(fixture("ack_no_data_RECONSTRUCTED.xml")),
            ErrorKind::Protocol,
            "No matching data",
        ),
        (ResponseTemplate::new(401), ErrorKind::Auth, "401"),
        (ResponseTemplate::new(503), ErrorKind::Transient, "503"),
        (
            ResponseTemplate::new(200).set_body_string("{\"json\": true}"),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_bytes(full[..full.len() / 2].to_vec()),
            ErrorKind::Protocol,
            "",
        ),
        (
            ResponseTemplate::new(200).set_body_string(
                String::from_utf8(full.clone())
                    .unwrap()
                    .replace(">MWH<", ">KWH<"),
            ),
            ErrorKind::Protocol,
            "MWH",
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
        let t = build_entsoe(&cfg(&server.uri())).unwrap();
        let e = t.prices_at(T0).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
        assert!(e.chain().contains(text), "{}", e.chain());
        assert!(
            !e.chain().contains(TOKEN),
            "the token never shows: {}",
            e.chain()
        );
    }
}

#[test]
fn config_errors_name_the_key() {
    let e = |k: &str, v: serde_json::Value| {
        let mut c = cfg("http://127.0.0.1:1");
        c.values.insert(k.into(), v);
        build(&c).err().unwrap().to_string()
    };
    assert!(e("security_token", "".into()).contains("security_token"));
    assert!(e("bidding_zone", "DE".into()).contains("bidding_zone"));
    assert!(e("vat_pct", 101.0.into()).contains("vat_pct"));
    assert!(Registry::collect().unwrap().tariff.contains_key("entsoe"));
}
