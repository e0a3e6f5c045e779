//! The [logging.files] sections of config/default.toml and config/examples/files.toml parse.

use twc_core::plugin::PluginConfig;

fn section(file: &str) -> PluginConfig {
    let path = format!("{}/../../../config/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = doc["logging"]["files"].clone();
    PluginConfig::from_toml("logging.files", &toml::to_string(&body).unwrap()).unwrap()
}

#[test]
fn default_and_example_sections_parse() {
    for file in ["default.toml", "examples/files.toml"] {
        section(file)
            .parse::<twc_logging_files::FilesConfig>()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
