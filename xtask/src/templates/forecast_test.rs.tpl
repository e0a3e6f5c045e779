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

fn forecast(base: &str) -> plugin::__CAMEL__ {
    let cfg = PluginConfig::from_toml(
        "forecast.__NAME__",
        &format!(
            "url = \"{base}{}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}",
            plugin::PATH
        ),
    )
    .unwrap();
    plugin::build_forecast(&cfg).unwrap()
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
            .any(|(k, n, s)| *k == Kind::Forecast && *n == plugin::NAME && !s.is_empty()),
        "not registered: {:?}",
        registry.list()
    );
}

#[test]
fn the_example_builds_and_the_default_section_names_what_it_lacks() {
    let example =
        PluginConfig::from_toml("forecast.__NAME__", include_str!("../example.toml")).unwrap();
    assert!(plugin::build(&example).is_ok(), "example.toml must build");
    let default = twc_testkit::default_toml_section("forecast", plugin::NAME);
    match plugin::build(&default) {
        Ok(_) => {}
        Err(e) => assert!(e.to_string().contains("url"), "{e}"),
    }
    let bad =
        PluginConfig::from_toml("forecast.__NAME__", "url = \"http://x\"\nrefresh_minutes = 1")
            .unwrap();
    let e = plugin::build(&bad).err().expect("refresh_minutes 1 is refused");
    assert!(e.to_string().contains("refresh_minutes"), "{e}");
}

#[tokio::test]
async fn the_fixture_gives_its_forecast() {
    let server = serve(ResponseTemplate::new(200).set_body_bytes(fixture!("sample.json"))).await;
    let f = forecast(&server.uri()).forecast_at(T0).await.expect("a forecast");
    assert_eq!(f.source, plugin::NAME);
    assert_eq!(f.slots.len(), 3);
    assert_eq!(f.slots[1].watts, 2500.0);
    // 1.2 + 2.5 + 0.8 kWh over the three hours.
    let kwh = f.energy_kwh(T0, T0 + 3 * 3600).unwrap();
    assert!((kwh - 4.5).abs() < 1e-9, "{kwh}");
}

#[tokio::test]
async fn failures_are_errors_of_the_right_kind() {
    let cases = [
        (ResponseTemplate::new(503), ErrorKind::Transient),
        (ResponseTemplate::new(401), ErrorKind::Auth),
        (
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200)
                .set_body_string(r#"{"forecast":[{"start":1,"end":2,"watts":-5}]}"#),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"forecast":[]}"#),
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
        let e = forecast(&server.uri()).forecast_at(T0).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
    }
}
