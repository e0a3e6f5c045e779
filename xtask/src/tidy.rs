//! Layout rules, checked by `cargo xtask tidy` (and in `cargo xtask ci`), and the plugin template.

use std::fs;
use std::path::Path;

const KINDS: [&str; 6] = ["comms", "ems", "control", "logging", "status", "vehicle"];

/// Plugin features declared by the bin (`<kind>-<name> = ["dep:…"]`).
pub(crate) fn bin_plugin_features(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            let is_plugin = KINDS.iter().any(|kind| k.starts_with(&format!("{kind}-")));
            (is_plugin && v.contains("dep:")).then(|| k.to_string())
        })
        .collect()
}

/// Every rule, every violation.
pub(crate) fn check(root: &Path) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let bin_manifest =
        fs::read_to_string(root.join("bins/twcmanager/Cargo.toml")).unwrap_or_default();
    // Whitespace-normalised, so rustfmt's line breaks after attributes do not matter.
    let bin_links = fs::read_to_string(root.join("bins/twcmanager/src/plugins.rs"))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let root_manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    for f in [
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "config/default.toml",
        "docs/ARCHITECTURE.md",
    ] {
        if !root.join(f).exists() {
            errs.push(format!("{f} is missing"));
        }
    }
    for kind in KINDS {
        let Ok(dir) = fs::read_dir(root.join("crates").join(kind)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = format!("crates/{kind}/{name}");
            let manifest = match fs::read_to_string(path.join("Cargo.toml")) {
                Ok(m) => m,
                Err(_) => {
                    errs.push(format!("{rel}: no Cargo.toml"));
                    continue;
                }
            };
            for f in ["README.md", "example.toml", "src/lib.rs"] {
                if !path.join(f).exists() {
                    errs.push(format!("{rel}: {f} is missing"));
                }
            }
            if !path.join("tests").is_dir() {
                errs.push(format!("{rel}: tests/ is missing"));
            }
            let package = format!("twc-{kind}-{name}");
            if !manifest.contains(&format!("name = \"{package}\"")) {
                errs.push(format!("{rel}: package must be named {package}"));
            }
            for key in [
                "version.workspace = true",
                "edition.workspace = true",
                "license.workspace = true",
            ] {
                if !manifest.contains(key) {
                    errs.push(format!("{rel}: Cargo.toml must inherit `{key}`"));
                }
            }
            if !manifest.contains("[lints]") {
                errs.push(format!(
                    "{rel}: Cargo.toml must have `[lints] workspace = true`"
                ));
            }
            // Plugins never depend on other plugins (dev-dependencies on sim/testkit are fine).
            let deps = manifest.split("[dev-dependencies]").next().unwrap_or("");
            for other in KINDS {
                for line in deps.lines() {
                    let l = line.trim_start();
                    if l.starts_with(&format!("twc-{other}-")) {
                        errs.push(format!(
                            "{rel}: depends on another plugin ({})",
                            l.split([' ', '.', '=']).next().unwrap_or(l)
                        ));
                    }
                }
            }
            let lib = fs::read_to_string(path.join("src/lib.rs")).unwrap_or_default();
            let submits = lib.matches("inventory::submit!").count()
                + lib
                    .matches("submit! {")
                    .count()
                    .saturating_sub(lib.matches("inventory::submit! {").count());
            if submits != 1 {
                errs.push(format!(
                    "{rel}: src/lib.rs must have exactly one inventory::submit! (found {submits})"
                ));
            }
            let feature = format!("{kind}-{name}");
            if !bin_manifest.contains(&format!("{feature} = [\"dep:{package}\"]")) {
                errs.push(format!("{rel}: bins/twcmanager/Cargo.toml has no feature `{feature} = [\"dep:{package}\"]`"));
            }
            let crate_ident = package.replace('-', "_");
            if !bin_links.contains(&format!(
                "feature = \"{feature}\")] use {crate_ident} as _;"
            )) {
                errs.push(format!(
                    "{rel}: bins/twcmanager/src/plugins.rs has no link line for `{feature}`"
                ));
            }
            if !root_manifest.contains(&format!("\"{rel}\""))
                && !root_manifest.contains(&format!("\"crates/{kind}/*\""))
            {
                errs.push(format!("{rel}: not a workspace member"));
            }
        }
    }
    errs.extend(crate::core_deps::check(root));
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// `cargo xtask new-plugin <kind> <name>`: a compiling crate, its feature and its link line.
pub(crate) fn generate_plugin(root: &Path, kind: &str, name: &str) -> Result<(), String> {
    if !KINDS.contains(&kind) {
        return Err(format!("kind must be one of {}", KINDS.join(", ")));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err("name must be one lowercase word (letters and digits), e.g. `fronius`".into());
    }
    let dir = root.join("crates").join(kind).join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let package = format!("twc-{kind}-{name}");
    let ident = package.replace('-', "_");
    let camel: String = name[..1].to_uppercase() + &name[1..];
    let (descriptor, tr, method) = match kind {
        "comms" => (
            "CommsPlugin",
            "Comms",
            "    async fn send(&mut self, _frame: &twc_core::protocol::Frame) -> Result<(), PluginError> {\n        Err(PluginError::new(ErrorKind::Unsupported, NAME, \"send is not written yet\"))\n    }\n    async fn recv(&mut self) -> Result<twc_core::plugin::Received, PluginError> {\n        Err(PluginError::new(ErrorKind::Unsupported, NAME, \"recv is not written yet\"))\n    }\n",
        ),
        "ems" => (
            "EmsPlugin",
            "EmsSource",
            "    async fn read(&self) -> Result<twc_core::model::EnergyReading, PluginError> {\n        Err(PluginError::new(ErrorKind::Unsupported, NAME, \"read is not written yet\"))\n    }\n",
        ),
        "control" => (
            "ControlPlugin",
            "ControlSurface",
            "    async fn serve(self: Box<Self>, _engine: twc_core::engine::EngineHandle) -> Result<(), PluginError> {\n        Err(PluginError::new(ErrorKind::Unsupported, NAME, \"serve is not written yet\"))\n    }\n",
        ),
        "logging" => (
            "LoggingPlugin",
            "Logger",
            "    async fn record(&self, _event: &twc_core::model::Event) -> Result<(), PluginError> {\n        Err(PluginError::new(ErrorKind::Unsupported, NAME, \"record is not written yet\"))\n    }\n",
        ),
        "status" => (
            "StatusPlugin",
            "StatusPublisher",
            "    async fn publish(&self, _status: &twc_core::model::Status) -> Result<(), PluginError> {\n        Err(PluginError::new(ErrorKind::Unsupported, NAME, \"publish is not written yet\"))\n    }\n",
        ),
        _ => {
            return Err("vehicle plugins: copy an existing one (the trait has six methods)".into());
        }
    };
    fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    fs::create_dir_all(dir.join("tests")).map_err(|e| e.to_string())?;
    let w = |p: &str, s: String| fs::write(dir.join(p), s).map_err(|e| e.to_string());
    w(
        "Cargo.toml",
        format!(
            "[package]\nname = \"{package}\"\ndescription = \"twcmanager {kind} plugin: {name}\"\nversion.workspace = true\nedition.workspace = true\nrust-version.workspace = true\nlicense.workspace = true\nrepository.workspace = true\npublish.workspace = true\n\n[dependencies]\ntwc-core.workspace = true\nasync-trait.workspace = true\ninventory.workspace = true\nserde.workspace = true\n\n[lints]\nworkspace = true\n"
        ),
    )?;
    w(
        "README.md",
        format!(
            "# {package}\n\n## What it talks to\n\n## Tested against\n\n## Configuration\n\n```toml\n[{kind}.{name}]\nenabled = true\n```\n\n## Limitations\n"
        ),
    )?;
    w(
        "example.toml",
        "# The keys of this plugin's section, with example values.\n".to_string(),
    )?;
    w(
        "src/lib.rs",
        format!(
            "#![doc = include_str!(\"../README.md\")]\n\nuse serde::Deserialize;\nuse twc_core::plugin::{{BuildError, ErrorKind, PluginConfig, PluginError, {descriptor}, {tr}}};\n\nconst NAME: &str = \"{name}\";\n\n/// `[{kind}.{name}]`.\n#[derive(Debug, Deserialize)]\n#[serde(deny_unknown_fields)]\npub struct {camel}Config {{}}\n\n/// The plugin.\npub struct {camel} {{\n    _config: {camel}Config,\n}}\n\n#[async_trait::async_trait]\nimpl {tr} for {camel} {{\n{method}}}\n\nfn build(cfg: &PluginConfig) -> Result<Box<dyn {tr}>, BuildError> {{\n    Ok(Box::new({camel} {{ _config: cfg.parse()? }}))\n}}\n\ninventory::submit! {{\n    {descriptor} {{ name: NAME, summary: \"{name}\", example: include_str!(\"../example.toml\"), build }}\n}}\n"
        ),
    )?;
    w(
        "tests/config.rs",
        format!(
            "#[test]\nfn example_config_parses() {{\n    let cfg = twc_core::plugin::PluginConfig::from_toml(\"{kind}.{name}\", include_str!(\"../example.toml\")).unwrap();\n    let _: {ident}::{camel}Config = cfg.parse().unwrap();\n}}\n"
        ),
    )?;
    // Wire it: member, feature, link line.
    let rootm = root.join("Cargo.toml");
    let m = fs::read_to_string(&rootm).map_err(|e| e.to_string())?;
    let m = m.replacen(
        "members = [\n",
        &format!("members = [\n    \"crates/{kind}/{name}\",\n"),
        1,
    );
    fs::write(&rootm, m).map_err(|e| e.to_string())?;
    let binm = root.join("bins/twcmanager/Cargo.toml");
    let b = fs::read_to_string(&binm).map_err(|e| e.to_string())?;
    let b = b.replacen(
        "[features]\n",
        &format!("[features]\n{kind}-{name} = [\"dep:{package}\"]\n"),
        1,
    );
    let b = b.replacen("[dependencies]\n", &format!("[dependencies]\n{package} = {{ path = \"../../crates/{kind}/{name}\", optional = true }}\n"), 1);
    fs::write(&binm, b).map_err(|e| e.to_string())?;
    let links = root.join("bins/twcmanager/src/plugins.rs");
    let mut l = fs::read_to_string(&links).map_err(|e| e.to_string())?;
    l.push_str(&format!(
        "#[cfg(feature = \"{kind}-{name}\")] use {ident} as _;\n"
    ));
    fs::write(&links, l).map_err(|e| e.to_string())?;
    eprintln!(
        "created crates/{kind}/{name} ({package}), feature `{kind}-{name}`; add it to the `{kind}` group and `full` in bins/twcmanager/Cargo.toml, write the plugin, then `cargo xtask tidy`"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tree_is_tidy() {
        if let Err(errs) = super::check(&crate::root()) {
            panic!("tidy problems:\n{}", errs.join("\n"));
        }
    }

    #[test]
    fn plugin_features_are_found() {
        let m = "[features]\ndefault = [\"comms-dummy\"]\ncomms-dummy = [\"dep:twc-comms-dummy\"]\nems = [\"ems-fronius\"]\nems-fronius = [\"dep:twc-ems-fronius\"]\n";
        assert_eq!(
            super::bin_plugin_features(m),
            vec!["comms-dummy", "ems-fronius"]
        );
    }
}
