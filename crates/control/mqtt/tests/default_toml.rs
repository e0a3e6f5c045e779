//! The [control.mqtt] section of config/default.toml parses with this crate's config struct, so the
//! documented keys cannot drift from the code.

use twc_core::plugin::PluginConfig;

#[test]
fn default_toml_section_parses() {
    check(twc_testkit::default_toml_section("control", "mqtt"));
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
