//! ENTSO-E A44 against (reconstructed) XML answers from a mock server, with failures.

use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig, Registry};
use twc_tariff_entsoe::{build, build_entsoe};
use twc_testkit::wiremock::matchers::{method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate, Times};

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

/// `resp` for the A44 request the plugin makes for DE-LU over `(periodStart, periodEnd)`;
/// `expect`: how often it must be asked (`..`: any number of times).
async fn serve_a44(
    period: (&str, &str),
    resp: ResponseTemplate,
    expect: impl Into<Times>,
) -> MockServer {
    let server = MockServer::start().await;
    let mock = Mock::given(method("GET"))
        .and(path("/api"))
        .and(query_param("securityToken", TOKEN))
        .and(query_param("documentType", "A44"))
        .and(query_param("in_Domain", "10Y1001A1001A82H"))
        .and(query_param("out_Domain", "10Y1001A1001A82H"))
        .and(query_param("periodStart", period.0))
        .and(query_param("periodEnd", period.1))
        .respond_with(resp);
    mock.expect(expect).mount(&server).await;
    server
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[tokio::test]
async fn a_25_hour_day_with_a_left_out_position() {
    let server = serve_a44(
        ("202410262200", "202410282200"),
        ResponseTemplate::new(200).set_body_bytes(fixture(OK)),
        ..,
    )
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
            ResponseTemplate::new(200).set_body_string(two().replace(
                ">1</classificationSequence",
                ">first</classificationSequence",
            )),
            ErrorKind::Protocol,
            "classificationSequence",
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

/// A 60-minute series (sequence 2) listed before a 15-minute series (sequence 1) for the same
/// day, the 15-minute one with no prices for 11:00–12:00Z: see tests/fixtures/README.md.
const TWO: &str = "a44_de_lu_2025-11-05_15min_and_60min_RECONSTRUCTED.xml";
/// 2025-11-04T23:00Z, midnight CET of the delivery day 2025-11-05.
const T2: i64 = 1_762_297_200;

fn bill(per_mwh: f64) -> f64 {
    (per_mwh / 1000.0 + 0.18) * 1.19
}

/// The answer `body` served for the request the plugin makes at `T2`, read into prices.
async fn prices_for(body: String) -> twc_core::plugin::Prices {
    let server = serve_a44(
        ("202511042300", "202511062300"),
        ResponseTemplate::new(200).set_body_string(body),
        1,
    )
    .await;
    let t = build_entsoe(&cfg(&server.uri())).unwrap();
    let p = t.prices_at(T2 + 30).await.unwrap();
    assert_eq!(p.currency, "EUR");
    assert_eq!(p.validate(), Ok(()));
    p
}

fn two() -> String {
    String::from_utf8(fixture(TWO)).unwrap()
}

/// The document with its two `TimeSeries` in the other order.
fn swapped_order(doc: &str) -> String {
    let first = doc.find("  <TimeSeries>").unwrap();
    let second = doc[first + 1..].find("  <TimeSeries>").unwrap() + first + 1;
    let end = doc.find("</Publication_MarketDocument>").unwrap();
    format!(
        "{}{}{}{}",
        &doc[..first],
        &doc[second..end],
        &doc[first..second],
        &doc[end..]
    )
}

fn assert_quarter_hours_with_the_gap_from_the_hourly_series(p: &twc_core::plugin::Prices) {
    // 48 quarter hours, the hour 11:00–12:00Z from the hourly series, 44 quarter hours.
    assert_eq!(p.slots.len(), 93);
    assert_eq!(p.slots[0].start_unix, T2);
    assert_eq!(p.slots[0].end_unix, T2 + 900);
    close(p.slots[0].price_per_kwh, bill(54.19));
    // Position 3 is left out (curve A03): it repeats position 2.
    close(p.slots[1].price_per_kwh, bill(52.19));
    close(p.slots[2].price_per_kwh, bill(52.19));
    assert_eq!(p.slots[2].start_unix, T2 + 1800);
    close(p.slots[3].price_per_kwh, bill(48.19));
    close(p.slots[47].price_per_kwh, bill(82.31));
    assert_eq!(p.slots[47].end_unix, T2 + 12 * 3600);
    // The gap: one hourly slot at the hourly series' price for 11:00Z.
    assert_eq!(p.slots[48].start_unix, T2 + 12 * 3600);
    assert_eq!(p.slots[48].end_unix, T2 + 13 * 3600);
    close(p.slots[48].price_per_kwh, bill(88.81));
    assert_eq!(p.slots[49].start_unix, T2 + 13 * 3600);
    assert_eq!(p.slots[49].end_unix - p.slots[49].start_unix, 900);
    close(p.slots[49].price_per_kwh, bill(93.0));
    assert_eq!(p.slots[92].end_unix, T2 + 24 * 3600);
    close(p.slots[92].price_per_kwh, bill(51.69));
    for w in p.slots.windows(2) {
        assert_eq!(w[0].end_unix, w[1].start_unix, "no gap, no overlap");
    }
}

#[tokio::test]
async fn the_15_minute_series_wins_over_the_hourly_one_whatever_the_order() {
    let doc = two();
    let as_listed = prices_for(doc.clone()).await;
    assert_quarter_hours_with_the_gap_from_the_hourly_series(&as_listed);
    let reordered = prices_for(swapped_order(&doc)).await;
    assert_eq!(reordered.slots, as_listed.slots);
    // Without classification sequences the finest resolution decides alone, in either order.
    let unclassified: String = doc
        .lines()
        .filter(|l| !l.contains("classificationSequence"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        prices_for(unclassified.clone()).await.slots,
        as_listed.slots
    );
    assert_eq!(
        prices_for(swapped_order(&unclassified)).await.slots,
        as_listed.slots
    );
}

#[tokio::test]
async fn a_gap_in_the_15_minute_series_is_filled_from_the_hourly_one() {
    let p = prices_for(two()).await;
    let gap: Vec<_> = p
        .slots
        .iter()
        .filter(|s| s.end_unix - s.start_unix == 3600)
        .collect();
    assert_eq!(
        gap.len(),
        1,
        "only the hour the 15-minute series leaves open"
    );
    assert_eq!(gap[0].start_unix, T2 + 12 * 3600);
    close(gap[0].price_per_kwh, bill(88.81));
}

/// `doc`, as listed and with its series swapped, gives the hourly series' 24 prices alone.
async fn assert_only_the_hourly_series_in_either_order(doc: &str) {
    for d in [doc.to_string(), swapped_order(doc)] {
        let p = prices_for(d).await;
        assert_eq!(p.slots.len(), 24);
        assert!(p.slots.iter().all(|s| s.end_unix - s.start_unix == 3600));
        close(p.slots[0].price_per_kwh, bill(51.69));
        close(p.slots[1].price_per_kwh, bill(50.0));
        close(p.slots[12].price_per_kwh, bill(88.81));
        close(p.slots[23].price_per_kwh, bill(54.69));
    }
}

#[tokio::test]
async fn sequence_1_wins_over_a_finer_sequence_2() {
    // The same series with their sequences exchanged: the hourly one is now sequence 1 (SDAC,
    // as before the 15-minute MTU) and the 15-minute one sequence 2 (as EXAA's separate
    // auction is published for DE-LU and AT). Sequence 2 must not override sequence 1.
    let seq = |n: u32| {
        format!(
            "<classificationSequence_AttributeInstanceComponent.position>{n}</classificationSequence_AttributeInstanceComponent.position>"
        )
    };
    let doc = two()
        .replace(&seq(1), "SEQ-ONE")
        .replace(&seq(2), &seq(1))
        .replace("SEQ-ONE", &seq(2));
    assert_only_the_hourly_series_in_either_order(&doc).await;
}

#[tokio::test]
async fn the_day_ahead_auction_wins_over_another_market_in_the_same_answer() {
    // The 15-minute series (sequence 1, listed second) marked as intraday (contract type A07),
    // as some areas' A44 answers carry: the hourly day-ahead series (A01) prices every hour,
    // however fine or well-sequenced the other is.
    let doc = two();
    let second = doc.rfind("<contract_MarketAgreement.type>A01").unwrap();
    let doc = format!(
        "{}{}",
        &doc[..second],
        doc[second..].replacen(">A01<", ">A07<", 1)
    );
    assert_only_the_hourly_series_in_either_order(&doc).await;
}
