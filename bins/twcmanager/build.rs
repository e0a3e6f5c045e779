//! The plugin list exists once: the plugin features of this crate's Cargo.toml
//! (`<kind>-<name> = ["dep:twc-<kind>-<name>"]`). From them this writes `plugins.rs` into
//! OUT_DIR: every plugin the project knows (for "rebuild with feature …"), the enabled features
//! (so `twcmanager plugins` and a test can check the registry), and one link line per enabled
//! plugin — a plugin crate the binary never names is not linked, and its `inventory`
//! registration would silently vanish.
use std::fmt::Write as _;

const KINDS: [(&str, &str); 8] = [
    ("comms", "Comms"),
    ("ems", "Ems"),
    ("control", "Control"),
    ("logging", "Logging"),
    ("status", "Status"),
    ("vehicle", "Vehicle"),
    ("tariff", "Tariff"),
    ("forecast", "Forecast"),
];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string("Cargo.toml")
        .expect("Cargo.toml is readable")
        .parse()
        .expect("Cargo.toml parses");
    // Cargo's CARGO_FEATURE_ variables spell `-` and `_` alike (and upper-case them), so the
    // enabled features are the manifest's features whose spelling matches one of them.
    let set: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .collect();
    let features = manifest.get("features").and_then(|f| f.as_table());
    let mut enabled: Vec<String> = features
        .into_iter()
        .flatten()
        .map(|(feature, _)| feature.clone())
        .filter(|feature| set.contains(&feature.replace('_', "-")))
        .collect();
    enabled.sort();
    let mut known = String::new();
    let mut links = String::new();
    for (feature, deps) in features.into_iter().flatten() {
        let Some((kind, name)) = feature.split_once('-') else {
            continue;
        };
        let Some((_, variant)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        let deps: Vec<&str> = deps
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str()?.strip_prefix("dep:"))
            .collect();
        let [dep] = deps[..] else {
            continue;
        };
        writeln!(known, "    (Kind::{variant}, {name:?}),").expect("a String");
        if enabled.contains(feature) {
            writeln!(links, "use {} as _;", dep.replace('-', "_")).expect("a String");
        }
    }
    let text = format!(
        "/// Cargo features this binary was built with.\n\
         pub const ENABLED_FEATURES: &[&str] = &{enabled:?};\n\
         /// Every plugin the project knows: the plugin features of the bin's Cargo.toml.\n\
         pub const KNOWN_PLUGINS: &[(twc_core::plugin::Kind, &str)] = {{\n\
         \x20   use twc_core::plugin::Kind;\n    &[\n{known}    ]\n}};\n\
         /// The enabled plugins, linked.\n\
         mod link {{\n{links}}}\n"
    );
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("plugins.rs"), text).expect("OUT_DIR is writable");
}
