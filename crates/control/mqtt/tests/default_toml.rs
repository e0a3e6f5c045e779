//! The [control.mqtt] section of config/default.toml parses with this crate's config struct, so the
//! documented keys cannot drift from the code.

use twc_core::plugin::PluginConfig;

#[test]
fn default_toml_section_parses() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../config/default.toml"
    ));
    let v: toml::Value = toml::from_str(text).unwrap();
    let section = v["control"]["mqtt"].clone();
    assert_eq!(
        section["enabled"].as_bool(),
        Some(false),
        "disabled by default"
    );
    let body = toml::to_string(&section).unwrap();
    let cfg = PluginConfig::from_toml("control.mqtt", &body).unwrap();
    check(cfg);
}

fn check(cfg: PluginConfig) {
    let c: twc_control_mqtt::MqttControlConfig = cfg.parse().unwrap();
    let d = twc_control_mqtt::MqttControlConfig::default();
    assert_eq!(
        (c.url.as_str(), c.topic_prefix.as_str(), c.allow_stop),
        (d.url.as_str(), d.topic_prefix.as_str(), d.allow_stop)
    );
    assert_eq!(c.session_expiry_secs, d.session_expiry_secs);
    assert!(twc_control_mqtt::MqttControl::new("control.mqtt", c).is_ok());
}
