//! Telegram against a local Bot API stand-in: the request format, every failure path, config
//! errors.

use twc_core::plugin::{Kind, Logger, PluginConfig, Registry};
use twc_logging_telegram as plugin;
use twc_testkit::notify::{NotifierCase, check_notifier};

const TOKEN: &str = "123456789:AAHsecretSecretSecret_-x";

fn build(text: &str) -> Box<dyn Logger> {
    let cfg = PluginConfig::from_toml("logging.telegram", text).expect("TOML");
    Box::new(plugin::notifier(&cfg).expect("builds"))
}

#[tokio::test]
async fn sends_the_message_and_survives_every_failure() {
    let req = check_notifier(NotifierCase {
        build,
        toml: "api_url = \"{server}\"\nbot_token = \"123456789:AAHsecretSecretSecret_-x\"\nchat_id = -100123",
        path: "/bot123456789:AAHsecretSecretSecret_-x/sendMessage",
        ok_body: r#"{"ok":true,"result":{"message_id":42,"from":{"id":123456789,"is_bot":true,"first_name":"twc","username":"twc_bot"},"chat":{"id":-100123,"title":"Garage","type":"group"},"date":1764950000,"text":"x"}}"#,
        secret: TOKEN,
        credentials_key: "bot_token",
    })
    .await;
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["chat_id"], -100123);
    assert_eq!(
        body["text"],
        "Charging ended at TWC 7777\nThe car 5YJ3E1EA0KF000001 charged 12.35 kWh in 1 h 25 min."
    );
    assert_eq!(body["disable_notification"], true);
}

#[test]
fn bad_config_names_the_key_and_never_the_token() {
    let err = |t: &str| {
        plugin::config(&PluginConfig::from_toml("logging.telegram", t).unwrap())
            .unwrap_err()
            .to_string()
    };
    let e = err("bot_token = \"not a token secretvalue\"\nchat_id = 1");
    assert!(e.contains("bot_token") && !e.contains("secretvalue"), "{e}");
    assert!(err(&format!("bot_token = \"{TOKEN}\"")).contains("chat_id"));
    assert!(err(&format!("bot_token = \"{TOKEN}\"\nchat_id = \"garage\"")).contains("chat_id"));
    assert!(
        err(&format!(
            "bot_token = \"{TOKEN}\"\nchat_id = 1\napi_url = \"x\""
        ))
        .contains("api_url")
    );
    assert!(
        err(&format!(
            "bot_token = \"{TOKEN}\"\nchat_id = 1\nretries = 99"
        ))
        .contains("retries = 99")
    );
    for ok in [
        "chat_id = 1",
        "chat_id = \"@garage\"",
        "chat_id = \"-100123\"",
    ] {
        plugin::config(
            &PluginConfig::from_toml(
                "logging.telegram",
                &format!("bot_token = \"{TOKEN}\"\n{ok}"),
            )
            .unwrap(),
        )
        .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
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
        PluginConfig::from_toml("logging.telegram", include_str!("../example.toml")).unwrap();
    plugin::config(&example).expect("example.toml builds");
    let default = twc_testkit::default_toml_section("logging", plugin::NAME);
    let e = plugin::config(&default).unwrap_err().to_string();
    assert!(e.contains("bot_token"), "{e}");
}
