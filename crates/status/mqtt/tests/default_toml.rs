//! The [status.mqtt] section of config/default.toml parses with this crate's config struct, so the
//! documented keys cannot drift from the code.

use twc_core::plugin::PluginConfig;

#[test]
fn default_toml_section_parses() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../config/default.toml"
    ));
    let v: toml::Value = toml::from_str(text).unwrap();
    let section = v["status"]["mqtt"].clone();
    assert_eq!(
        section["enabled"].as_bool(),
        Some(false),
        "disabled by default"
    );
    let body = toml::to_string(&section).unwrap();
    let cfg = PluginConfig::from_toml("status.mqtt", &body).unwrap();
    check(cfg);
}

fn check(cfg: PluginConfig) {
    let c: twc_status_mqtt::MqttStatusConfig = cfg.parse().unwrap();
    let d = twc_status_mqtt::MqttStatusConfig::default();
    assert_eq!(c.rate_limit_secs, d.rate_limit_secs);
    assert_eq!(c.discovery_prefix, d.discovery_prefix);
    assert_eq!(c.charge_now_secs, d.charge_now_secs);
    assert!(twc_status_mqtt::MqttStatus::new("status.mqtt", c).is_ok());
}
