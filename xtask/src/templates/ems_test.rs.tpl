//! Conformance and fixture tests: the device's recorded reply (tests/fixtures) served by a local
//! mock server.

use __IDENT__ as plugin;
use twc_core::plugin::{EmsSource, Kind, PluginConfig, Registry};
use twc_testkit::fixture;

fn source(base: &str) -> Box<dyn EmsSource> {
    let cfg = PluginConfig::from_toml(
        "ems.__NAME__",
        &format!("url = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"),
    )
    .unwrap();
    plugin::build(&cfg).unwrap()
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty()),
        "not registered: {:?}",
        registry.list()
    );
}

#[test]
fn the_example_builds_and_the_default_section_names_what_it_lacks() {
    let example = PluginConfig::from_toml("ems.__NAME__", include_str!("../example.toml")).unwrap();
    assert!(plugin::build(&example).is_ok(), "example.toml must build");
    let default = twc_testkit::default_toml_section("ems", plugin::NAME);
    match plugin::build(&default) {
        Ok(_) => {}
        Err(e) => assert!(e.to_string().contains("url"), "{e}"),
    }
}

/// Good reply, then 401/403/500/503, garbage, empty, truncated and too slow: each an error of
/// the right kind, never a reading.
#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(source, &[(plugin::PATH, fixture!("sample.json"))]).await;
}

#[tokio::test]
async fn the_fixture_gives_its_values() {
    let server = twc_testkit::wiremock::MockServer::start().await;
    twc_testkit::serve_fixture(&server, plugin::PATH, fixture!("sample.json")).await;
    let r = source(&server.uri()).read().await.expect("a reading");
    twc_testkit::assert_w("grid", r.grid_w, 1234.5);
    assert_eq!(r.generation_w, None);
}
