//! Records the enabled Cargo features, so `twcmanager plugins` and a test can check that the
//! registry holds exactly the plugins the features imply.
fn main() {
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let text = format!(
        "/// Cargo features this binary was built with.\npub const ENABLED_FEATURES: &[&str] = &{features:?};\n"
    );
    std::fs::write(out.join("features.rs"), text).expect("OUT_DIR is writable");
}
