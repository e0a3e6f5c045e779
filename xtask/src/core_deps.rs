//! Tidy rule: core does no I/O. Its normal dependencies (the whole tree cargo resolves for it,
//! dev-dependencies and build-dependencies aside) may not include an HTTP, SQL or MQTT client;
//! those belong in plugin crates.

use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::process::Command;

/// The package whose dependencies are checked.
const CORE: &str = "twc-core";

/// Client crates core must not depend on, directly or through another crate.
pub(crate) const FORBIDDEN: &[&str] = &[
    // HTTP
    "reqwest",
    "hyper",
    "hyper-util",
    "ureq",
    "isahc",
    "surf",
    "curl",
    "attohttpc",
    "awc",
    // SQL
    "sqlx",
    "sqlx-core",
    "rusqlite",
    "libsqlite3-sys",
    "mysql",
    "mysql_async",
    "postgres",
    "tokio-postgres",
    "diesel",
    "sea-orm",
    // MQTT
    "rumqttc",
    "paho-mqtt",
    "mqtt-async-client",
];

/// Run `cargo metadata` in `root` and check [`CORE`]'s normal dependency tree.
pub(crate) fn check(root: &Path) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1"])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => {
            return vec![format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )];
        }
        Err(e) => return vec![format!("cannot run cargo metadata: {e}")],
    };
    match serde_json::from_slice::<Value>(&out) {
        Ok(meta) => forbidden_in(&meta, CORE),
        Err(e) => vec![format!("cargo metadata printed no JSON: {e}")],
    }
}

/// The forbidden crates in `package`'s normal dependency tree, as tidy messages (with the path
/// that pulls each in).
pub(crate) fn forbidden_in(meta: &Value, package: &str) -> Vec<String> {
    let empty = Vec::new();
    let packages = meta["packages"].as_array().unwrap_or(&empty);
    let name_of = |id: &str| -> String {
        packages
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or(id)
            .to_string()
    };
    let Some(start) = packages
        .iter()
        .find(|p| p["name"] == package && p["source"].is_null())
        .and_then(|p| p["id"].as_str())
    else {
        return vec![format!("cargo metadata lists no package {package}")];
    };
    let nodes = meta["resolve"]["nodes"].as_array().unwrap_or(&empty);
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([(start.to_string(), vec![package.to_string()])]);
    let mut errs = Vec::new();
    while let Some((id, path)) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().unwrap_or(&empty) {
            // Only normal dependencies: `kind` is null (dev and build deps say so).
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .any(|k| k["kind"].is_null());
            let Some(dep_id) = dep["pkg"].as_str() else {
                continue;
            };
            if !normal {
                continue;
            }
            let name = name_of(dep_id);
            let mut p = path.clone();
            p.push(name.clone());
            if FORBIDDEN.contains(&name.as_str()) {
                errs.push(format!(
                    "{package} depends on the I/O client crate `{name}` ({}); core does no network, SQL or MQTT I/O: move it to a plugin crate",
                    p.join(" → ")
                ));
                continue;
            }
            queue.push_back((dep_id.to_string(), p));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(core_deps: Value) -> Value {
        json!({
            "packages": [
                {"id": "core", "name": "twc-core", "source": null},
                {"id": "tok", "name": "tokio", "source": "registry"},
                {"id": "req", "name": "reqwest", "source": "registry"},
                {"id": "hyp", "name": "hyper", "source": "registry"},
                {"id": "wm", "name": "wiremock", "source": "registry"}
            ],
            "resolve": {"nodes": [
                {"id": "core", "deps": core_deps},
                {"id": "tok", "deps": []},
                {"id": "req", "deps": [{"pkg": "hyp", "dep_kinds": [{"kind": null}]}]},
                {"id": "wm", "deps": [{"pkg": "hyp", "dep_kinds": [{"kind": null}]}]},
                {"id": "hyp", "deps": []}
            ]}
        })
    }

    #[test]
    fn a_client_in_the_normal_tree_fails_and_dev_dependencies_do_not() {
        let clean = meta(json!([
            {"pkg": "tok", "dep_kinds": [{"kind": null}]},
            {"pkg": "wm", "dep_kinds": [{"kind": "dev"}]}
        ]));
        assert_eq!(forbidden_in(&clean, "twc-core"), Vec::<String>::new());
        let direct = meta(json!([{"pkg": "req", "dep_kinds": [{"kind": null}]}]));
        let e = forbidden_in(&direct, "twc-core");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("`reqwest` (twc-core → reqwest)"), "{e:?}");
        // Through another crate: the path names it.
        let indirect = meta(json!([{"pkg": "wm", "dep_kinds": [{"kind": null}]}]));
        let e = forbidden_in(&indirect, "twc-core");
        assert!(e[0].contains("twc-core → wiremock → hyper"), "{e:?}");
    }

    #[test]
    fn the_workspace_core_has_no_client_dependency() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(check(root), Vec::<String>::new());
    }
}
