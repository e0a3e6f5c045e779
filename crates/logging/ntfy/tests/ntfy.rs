//! ntfy against a local stand-in: the request format, every failure path, config errors.

use twc_core::plugin::{Kind, Logger, PluginConfig, Registry};
use twc_logging_ntfy as plugin;
use twc_testkit::notify::{NotifierCase, check_notifier};

fn build(text: &str) -> Box<dyn Logger> {
    let cfg = PluginConfig::from_toml("logging.ntfy", text).expect("TOML");
    Box::new(plugin::notifier(&cfg).expect("builds"))
}

#[tokio::test]
async fn posts_to_the_topic_with_headers_and_survives_every_failure() {
    let req = check_notifier(NotifierCase {
        build,
        toml: "server = \"{server}\"\ntopic = \"garage\"\ntoken = \"tk_secret123secret\"",
        path: "/garage",
        ok_body: r#"{"id":"sPs71M8A2T","time":1764950000,"expires":1764993200,"event":"message","topic":"garage","message":"x"}"#,
        secret: "tk_secret123secret",
        credentials_key: "token",
    })
    .await;
    let h = |k: &str| req.headers.get(k).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(h("title").as_deref(), Some("Charging ended at TWC 7777"));
    assert_eq!(h("priority").as_deref(), Some("2"));
    assert_eq!(h("tags").as_deref(), Some("white_check_mark"));
    assert_eq!(
        h("authorization").as_deref(),
        Some("Bearer tk_secret123secret")
    );
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "The car 5YJ3E1EA0KF000001 charged 12.35 kWh in 1 h 25 min."
    );
}

#[test]
fn bad_config_names_the_key() {
    let err = |t: &str| {
        plugin::config(&PluginConfig::from_toml("logging.ntfy", t).unwrap())
            .unwrap_err()
            .to_string()
    };
    assert!(err("topic = \"\"").contains("topic"));
    assert!(err("topic = \"a/b\"").contains("topic = \"a/b\""));
    assert!(err("topic = \"x\"\nserver = \"ntfy.sh\"").contains("server"));
    assert!(err("topic = \"x\"\nevents = [\"faults\"]").contains("events[0]"));
    assert!(err("topic = \"x\"\ntokn = \"a\"").contains("tokn"));
    // A secret is not echoed in Debug output.
    let c = plugin::config(
        &PluginConfig::from_toml("logging.ntfy", "topic = \"x\"\ntoken = \"tk_abc\"").unwrap(),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("tk_abc"));
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
    let example = PluginConfig::from_toml("logging.ntfy", include_str!("../example.toml")).unwrap();
    plugin::config(&example).expect("example.toml builds");
    // The default section is disabled and has no topic: it parses, and names the missing topic.
    let default = twc_testkit::default_toml_section("logging", plugin::NAME);
    let e = plugin::config(&default).unwrap_err().to_string();
    assert!(e.contains("topic"), "{e}");
}
