//! The plugin's sections in config/default.toml and example.toml parse, and bad values name the key.
use twc_control_webipc::{WebIpc, WebIpcConfig};
use twc_testkit::default_toml_section;

#[test]
fn default_and_example_sections_parse() {
    let d: WebIpcConfig = default_toml_section("control", "webipc").parse().unwrap();
    assert_eq!(d.key_path, "/etc/twcmanager");
    assert_eq!(d.mode, "666");
    let t: toml::Table = include_str!("../example.toml").parse().unwrap();
    let mut section = t["control"]["webipc"].as_table().unwrap().clone();
    assert_eq!(
        section.remove("enabled").and_then(|v| v.as_bool()),
        Some(true)
    );
    let e: WebIpcConfig = section.try_into().unwrap();
    assert_eq!(e.key_path, "/etc/twcmanager");
}

#[test]
fn a_missing_key_path_and_a_bad_mode_are_named() {
    let cfg = WebIpcConfig {
        key_path: "/no/such/dir/for/twcmanager".into(),
        ..WebIpcConfig::default()
    };
    let e = WebIpc::new("control.webipc", &cfg).unwrap_err().to_string();
    assert!(e.contains("key_path") && e.contains("must exist"), "{e}");
    let cfg = WebIpcConfig {
        mode: "rw".into(),
        ..WebIpcConfig::default()
    };
    let e = WebIpc::new("control.webipc", &cfg).unwrap_err().to_string();
    assert!(e.contains("mode"), "{e}");
}
