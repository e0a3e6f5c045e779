//! The generic webhook against a local receiver: the JSON body, every failure path, config
//! errors.

use twc_core::plugin::{Kind, Logger, PluginConfig, Registry};
use twc_logging_notify_webhook as plugin;
use twc_testkit::notify::{NotifierCase, check_notifier};

fn build(text: &str) -> Box<dyn Logger> {
    let cfg = PluginConfig::from_toml("logging.notify_webhook", text).expect("TOML");
    Box::new(plugin::notifier(&cfg).expect("builds"))
}

#[tokio::test]
async fn posts_json_and_survives_every_failure() {
    let req = check_notifier(NotifierCase {
        build,
        toml: "url = \"{server}/hooks/twc\"\nbearer_token = \"hook-secret-42\"",
        path: "/hooks/twc",
        ok_body: "{}",
        secret: "hook-secret-42",
        credentials_key: "bearer_token",
    })
    .await;
    assert_eq!(
        req.headers.get("authorization").unwrap().to_str().unwrap(),
        "Bearer hook-secret-42"
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["topic"], "session_ended");
    assert_eq!(body["title"], "Charging ended at TWC 7777");
    assert_eq!(body["priority"], "low");
    assert_eq!(body["at"], "2026-11-02T18:25:00Z");
    assert_eq!(body["event"]["type"], "session_ended");
    assert_eq!(body["event"]["session"]["energy_kwh"], 12.345);
}

#[test]
fn bad_config_names_the_key() {
    let err = |t: &str| {
        plugin::config(&PluginConfig::from_toml("logging.notify_webhook", t).unwrap())
            .unwrap_err()
            .to_string()
    };
    assert!(err("url = \"\"").contains("url"));
    assert!(err("url = \"ftp://x\"").contains("url = \"ftp://x\""));
    assert!(err("url = \"http://x\"\nmax_per_hour = 0").contains("max_per_hour"));
    assert!(err("url = \"http://x\"\nheaders = {}").contains("headers"));
}

#[test]
fn registers_and_the_example_and_default_sections_build() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, _)| *k == Kind::Logging && *n == plugin::NAME)
    );
    let example =
        PluginConfig::from_toml("logging.notify_webhook", include_str!("../example.toml")).unwrap();
    plugin::config(&example).expect("example.toml builds");
    let default = twc_testkit::default_toml_section("logging", plugin::NAME);
    let e = plugin::config(&default).unwrap_err().to_string();
    assert!(e.contains("url"), "{e}");
}
