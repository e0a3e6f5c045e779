//! The process's log subscriber: installed by the linked [`TracingPlugin`] (the console logger)
//! from its section, or a plain one when none is linked. Our crates log at the configured level,
//! dependencies at `warn`; `RUST_LOG` wins.

use twc_core::plugin::{Kind, Registry, TracingPlugin};

/// Our crates, whose log level the configuration sets: the daemon's, core's, the runtime's, the
/// simulator's, the kit's and every plugin's the project knows (`known`: the bin's plugin list).
pub fn own_crates(known: &[(Kind, &str)]) -> Vec<String> {
    let mut v: Vec<String> = [
        crate::LOG_TARGET,
        "twc_core",
        "twc_runtime",
        "twc_sim",
        "twc_plugin_kit",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (kind, name) in known {
        v.push(format!("twc_{}_{}", kind.as_str(), name));
    }
    v
}

/// Install the global subscriber once, early, from the merged configuration `raw`. A second call
/// (or a subscriber installed by the caller) leaves the first in place.
pub fn init_tracing(raw: &serde_json::Value, registry: &Registry, known: &[(Kind, &str)]) {
    let crates = own_crates(known);
    let refs: Vec<&str> = crates.iter().map(String::as_str).collect();
    if let Some(TracingPlugin { name, init }) = registry.tracing {
        let section = raw.pointer(&format!("/logging/{name}"));
        if init(section, &refs).is_ok() {
            return;
        }
    }
    plain(raw.pointer("/logging/console"), &refs);
}

/// Without a tracing plugin: `level` and `format = "json"` of `[logging.console]` still apply.
fn plain(section: Option<&serde_json::Value>, own: &[&str]) {
    use tracing_subscriber::EnvFilter;
    let level = section
        .and_then(|c| c.get("level"))
        .and_then(|l| l.as_str())
        .unwrap_or("info");
    let json = section
        .and_then(|c| c.get("format"))
        .and_then(|f| f.as_str())
        .is_some_and(|f| f == "json");
    let mut directives = "warn".to_string();
    for c in own {
        directives.push_str(&format!(",{c}={level}"));
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
