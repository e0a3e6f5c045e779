//! A plugin section's errors name the section and the key, whatever went wrong with it.

use serde::Deserialize;
use twc_core::plugin::PluginConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Cfg {
    url: String,
    #[serde(default)]
    feed: u32,
    #[serde(default)]
    http: Http,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Http {
    #[serde(default)]
    timeout_secs: f64,
}

fn error(text: &str) -> String {
    PluginConfig::from_toml("ems.demo", text)
        .unwrap()
        .parse::<Cfg>()
        .expect_err("refused")
        .to_string()
}

#[test]
fn a_wrong_type_names_its_key_and_the_section() {
    let e = error("url = \"http://x\"\nfeed = \"solar\"");
    assert!(
        e.contains("ems.demo") && e.contains("feed") && e.contains("u32"),
        "{e}"
    );
    let e = error("url = \"http://x\"\nhttp = { timeout_secs = \"soon\" }");
    assert!(e.contains("http.timeout_secs"), "{e}");
}

#[test]
fn unknown_and_missing_keys_are_named_once() {
    let e = error("url = \"http://x\"\nfeeed = 3");
    assert!(e.contains("feeed") && !e.contains("feeed: "), "{e}");
    let e = error("feed = 3");
    assert!(e.contains("`url`"), "{e}");
}
