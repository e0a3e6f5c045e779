//! Layout rules, checked by `cargo xtask tidy` (and in `cargo xtask ci`), and the plugin template.

use std::fs;
use std::path::Path;

pub(crate) const KINDS: [&str; 8] = [
    "comms", "ems", "control", "logging", "status", "vehicle", "tariff", "forecast",
];

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
    let bin_toml: toml::Table = bin_manifest.parse().unwrap_or_default();
    let default_toml: toml::Table = fs::read_to_string(root.join("config/default.toml"))
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
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
            if UNSAFE_ALLOWED.contains(&rel.as_str()) {
                // The workspace forbids unsafe code; these crates deny it and allow it in
                // src/sys.rs alone.
                unsafe_confined(&path, &rel, &manifest, &mut errs);
            } else if !manifest.contains("[lints]") {
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
            // One descriptor of the plugin's kind; a `TracingPlugin` (the log subscriber) is extra.
            let submits = lib
                .split("submit!")
                .skip(1)
                .filter(|rest| {
                    !rest
                        .trim_start()
                        .trim_start_matches('{')
                        .trim_start()
                        .starts_with("TracingPlugin")
                })
                .count();
            if submits != 1 {
                errs.push(format!(
                    "{rel}: src/lib.rs must have exactly one inventory::submit! (found {submits})"
                ));
            }
            let feature = format!("{kind}-{name}");
            if !bin_manifest.contains(&format!("{feature} = [\"dep:{package}\"]")) {
                errs.push(format!("{rel}: bins/twcmanager/Cargo.toml has no feature `{feature} = [\"dep:{package}\"]`"));
            }
            let dep = bin_toml
                .get("dependencies")
                .and_then(|d| d.get(&package))
                .and_then(|d| d.as_table());
            let dep_ok = dep.is_some_and(|d| {
                d.get("optional").and_then(|o| o.as_bool()) == Some(true)
                    && d.get("path").and_then(|p| p.as_str())
                        == Some(&format!("../../crates/{kind}/{name}"))
            });
            if !dep_ok {
                errs.push(format!(
                    "{rel}: bins/twcmanager/Cargo.toml has no optional dependency `{package} = {{ path = \"../../crates/{kind}/{name}\", optional = true }}`"
                ));
            }
            let in_group = bin_toml
                .get("features")
                .and_then(|f| f.get(kind))
                .and_then(|g| g.as_array())
                .is_some_and(|g| g.iter().any(|f| f.as_str() == Some(feature.as_str())));
            if !in_group {
                errs.push(format!(
                    "{rel}: bins/twcmanager/Cargo.toml: feature `{feature}` is not in the `{kind}` group (and so not in `full`)"
                ));
            }
            if default_toml.get(kind).and_then(|k| k.get(&name)).is_none() {
                errs.push(format!(
                    "{rel}: config/default.toml has no [{kind}.{name}] section"
                ));
            }
            if !root_manifest.contains(&format!("\"{rel}\""))
                && !root_manifest.contains(&format!("\"crates/{kind}/*\""))
            {
                errs.push(format!("{rel}: not a workspace member"));
            }
        }
    }
    let full = bin_toml
        .get("features")
        .and_then(|f| f.get("full"))
        .and_then(|g| g.as_array())
        .cloned()
        .unwrap_or_default();
    for kind in KINDS {
        if !full.iter().any(|f| f.as_str() == Some(kind)) {
            errs.push(format!(
                "bins/twcmanager/Cargo.toml: the `full` feature must include the `{kind}` group"
            ));
        }
    }
    errs.extend(crate::docs::check(root));
    errs.extend(crate::core_deps::check(root));
    errs.extend(crate::file_size::check(root));
    errs.extend(crate::spans::check(root));
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Plugin crates that need unsafe code (a system interface with no safe binding), confined to
/// src/sys.rs.
const UNSAFE_ALLOWED: &[&str] = &["crates/control/webipc"];

fn unsafe_confined(path: &Path, rel: &str, manifest: &str, errs: &mut Vec<String>) {
    if !manifest.contains("unsafe_code = \"deny\"") {
        errs.push(format!(
            "{rel}: Cargo.toml must set [lints.rust] unsafe_code = \"deny\""
        ));
    }
    let lib = fs::read_to_string(path.join("src/lib.rs")).unwrap_or_default();
    if !lib.contains("#![deny(unsafe_code)]") {
        errs.push(format!(
            "{rel}: src/lib.rs must start with #![deny(unsafe_code)]"
        ));
    }
    let Ok(entries) = fs::read_dir(path.join("src")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "sys.rs" {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap_or_default();
        if text.contains("unsafe ") || text.contains("allow(unsafe_code)") {
            errs.push(format!(
                "{rel}: src/{name} uses unsafe code; keep it in src/sys.rs"
            ));
        }
    }
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
