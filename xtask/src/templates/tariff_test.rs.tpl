//! The service's recorded reply (tests/fixtures) served by a local mock server: values, the
//! failure modes, config errors.

use __IDENT__ as plugin;
use std::time::Duration;
use twc_core::plugin::{ErrorKind, Kind, PluginConfig, Registry};
use twc_testkit::fixture;
use twc_testkit::wiremock::matchers::{method, path};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

/// The first slot's start in tests/fixtures/sample.json.
const T0: i64 = 1_779_998_400;

fn tariff(base: &str) -> plugin::__CAMEL__ {
    let cfg = PluginConfig::from_toml(
        "tariff.__NAME__",
        &format!(
            "url = \"{base}{}\"\nmarkup_per_kwh = 0.1\nvat_pct = 20\nhttp = {{ timeout_secs = 0.5, retries = 0 }}",
            plugin::PATH
        ),
    )
    .unwrap();
    plugin::build_tariff(&cfg).unwrap()
}

async fn serve(resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(plugin::PATH))
        .respond_with(resp)
        .mount(&server)
        .await;
    server
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Tariff && *n == plugin::NAME && !s.is_empty()),
        "not registered: {:?}",
        registry.list()
    );
}

#[test]
fn the_example_builds_and_the_default_section_names_what_it_lacks() {
    let example =
        PluginConfig::from_toml("tariff.__NAME__", include_str!("../example.toml")).unwrap();
    assert!(plugin::build(&example).is_ok(), "example.toml must build");
    let default = twc_testkit::default_toml_section("tariff", plugin::NAME);
    match plugin::build(&default) {
        Ok(_) => {}
        Err(e) => assert!(e.to_string().contains("url"), "{e}"),
    }
    let bad = PluginConfig::from_toml("tariff.__NAME__", "url = \"http://x\"\nvat_pct = 120")
        .unwrap();
    let e = plugin::build(&bad).err().expect("vat_pct 120 is refused");
    assert!(e.to_string().contains("vat_pct"), "{e}");
}

#[tokio::test]
async fn the_fixture_gives_its_prices_with_markup_and_vat() {
    let server = serve(ResponseTemplate::new(200).set_body_bytes(fixture!("sample.json"))).await;
    let p = tariff(&server.uri()).prices_at(T0).await.expect("prices");
    assert_eq!(p.source, plugin::NAME);
    assert_eq!(p.slots.len(), 3);
    assert_eq!(p.slots[0].start_unix, T0);
    assert_eq!(p.slots[0].end_unix, T0 + 3600);
    // (0.25 + 0.1) × 1.2
    assert!((p.slots[0].price_per_kwh - 0.42).abs() < 1e-9, "{p:?}");
    // An hour later the first slot has ended.
    let later = tariff(&server.uri()).prices_at(T0 + 3600).await.unwrap();
    assert_eq!(later.slots.len(), 2);
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let cases = [
        (ResponseTemplate::new(500), ErrorKind::Transient),
        (ResponseTemplate::new(401), ErrorKind::Auth),
        (
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"prices":[{"start":1}]}"#),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"prices":[]}"#),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200)
                .set_body_bytes(fixture!("sample.json"))
                .set_delay(Duration::from_secs(2)),
            ErrorKind::Transient,
        ),
    ];
    for (resp, kind) in cases {
        let server = serve(resp).await;
        let e = tariff(&server.uri()).prices_at(T0).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
    }
}
