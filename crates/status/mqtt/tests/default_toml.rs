//! The [status.mqtt] section of config/default.toml parses with this crate's config struct, so the
//! documented keys cannot drift from the code.

use twc_core::plugin::PluginConfig;

#[test]
fn default_toml_section_parses() {
    check(twc_testkit::default_toml_section("status", "mqtt"));
}

fn check(cfg: PluginConfig) {
    let c: twc_status_mqtt::MqttStatusConfig = cfg.parse().unwrap();
    let d = twc_status_mqtt::MqttStatusConfig::default();
    assert_eq!(c.rate_limit_secs, d.rate_limit_secs);
    assert_eq!(c.discovery_prefix, d.discovery_prefix);
    assert_eq!(c.charge_now_secs, d.charge_now_secs);
    assert!(twc_status_mqtt::MqttStatus::new("status.mqtt", c).is_ok());
}
