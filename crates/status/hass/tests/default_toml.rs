//! The [status.hass] section of config/default.toml parses with this crate's config struct, so the
//! documented keys cannot drift from the code.

use twc_core::plugin::PluginConfig;

#[test]
fn default_toml_section_parses() {
    check(twc_testkit::default_toml_section("status", "hass"));
}

fn check(cfg: PluginConfig) {
    let c: twc_status_hass::HassStatusConfig = cfg.parse().unwrap();
    let d = twc_status_hass::HassStatusConfig::default();
    assert_eq!(
        (c.batch_secs, c.resend_secs, c.retry_secs, c.timeout_secs),
        (d.batch_secs, d.resend_secs, d.retry_secs, d.timeout_secs)
    );
    // The default has no token: enabling it without one is a config error that names the key.
    let e = twc_status_hass::HassStatus::new("status.hass", c.clone())
        .err()
        .unwrap();
    assert!(e.to_string().contains("token"), "{e}");
    let with_token = twc_status_hass::HassStatusConfig {
        token: twc_core::plugin::Secret::new("x"),
        ..c
    };
    assert!(twc_status_hass::HassStatus::new("status.hass", with_token).is_ok());
}
