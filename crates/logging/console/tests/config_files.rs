//! The [logging.console] sections of config/default.toml and config/examples/console.toml parse.

use twc_core::plugin::PluginConfig;

fn section(file: &str) -> PluginConfig {
    let path = format!("{}/../../../config/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = doc["logging"]["console"].clone();
    PluginConfig::from_toml("logging.console", &toml::to_string(&body).unwrap()).unwrap()
}

#[test]
fn default_and_example_sections_parse() {
    for file in ["default.toml", "examples/console.toml"] {
        section(file)
            .parse::<twc_logging_console::ConsoleConfig>()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
