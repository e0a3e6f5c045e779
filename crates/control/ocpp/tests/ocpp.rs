//! Conformance and fixture tests.

use twc_control_ocpp as plugin;
use twc_core::plugin::{Kind, PluginConfig, Registry};

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Control && *n == plugin::NAME && !s.is_empty()),
        "not registered: {:?}",
        registry.list()
    );
}

#[test]
fn the_example_and_the_default_section_build() {
    let example = PluginConfig::from_toml("control.ocpp", include_str!("../example.toml")).unwrap();
    assert!(plugin::build(&example).is_ok(), "example.toml must build");
    let default = twc_testkit::default_toml_section("control", plugin::NAME);
    assert!(
        plugin::build(&default).is_ok(),
        "the default section must build"
    );
}

#[test]
fn bad_config_names_the_key() {
    for (body, key) in [
        ("url = \"http://cs:9000\"", "url"),
        ("charge_point_id = \"a b\"", "charge_point_id"),
        ("id_tag = \"123456789012345678901\"", "id_tag"),
        (
            "url = \"wss://cs:9000\"\nca_file = \"/nonexistent.pem\"",
            "ca_file",
        ),
        ("url = \"ws://cs:x/\"", "port"),
        ("urll = \"ws://cs:9000\"", "urll"),
        ("mode = \"central\"", "allow_unknown"),
        ("mode = \"hub\"", "mode"),
        (
            "mode = \"central\"\ncentral.allow_unknown = true\ncentral.listen = \"nope\"",
            "central.listen",
        ),
        (
            "mode = \"both\"\ncentral.allow_unknown = true\ncentral.stale_after_secs = 5.0",
            "central.stale_after_secs",
        ),
        (
            "mode = \"central\"\n[[central.chargers]]\nid = \"a b\"\nmax_amps = 16.0",
            "central.chargers[0].id",
        ),
        (
            "mode = \"central\"\n[[central.chargers]]\nid = \"a\"\nmax_amps = 100.0",
            "central.chargers[0].max_amps",
        ),
        (
            "mode = \"central\"\ncentral.allow_unknown = true\ncentral.profile = \"TxProfile\"",
            "TxProfile",
        ),
    ] {
        let cfg = PluginConfig::from_toml("control.ocpp", body).unwrap();
        let e = plugin::build(&cfg).err().expect(body).to_string();
        assert!(e.contains(key) && e.contains("control.ocpp"), "{body}: {e}");
    }
}

#[test]
fn default_section_matches_the_defaults() {
    let c: plugin::OcppConfig = twc_testkit::default_toml_section("control", plugin::NAME)
        .parse()
        .unwrap();
    let d = plugin::OcppConfig::default();
    assert_eq!(format!("{c:?}"), format!("{d:?}"));
}
