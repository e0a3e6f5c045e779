//! Conformance and fixture tests.

use twc_core::plugin::{ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_dsmrreader as plugin;

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
fn the_example_and_the_default_section_build() {
    let example =
        PluginConfig::from_toml("ems.dsmrreader", include_str!("../example.toml")).unwrap();
    assert!(plugin::build(&example).is_ok(), "example.toml must build");
    let default = twc_testkit::default_toml_section("ems", plugin::NAME);
    assert!(
        plugin::build(&default).is_ok(),
        "the default section must build"
    );
}

#[test]
fn a_fixture_decodes_and_garbage_is_a_protocol_error() {
    plugin::decode(&twc_testkit::fixture!("sample.json")).expect("the fixture decodes");
    let e = plugin::decode(b"<html>garbage").expect_err("garbage");
    assert_eq!(e.kind(), ErrorKind::Protocol);
}
