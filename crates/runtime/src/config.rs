//! Layered configuration: the embedded `config/default.toml` < the user's file (`--config`) <
//! environment `TWCMANAGER__SECTION__KEY`. Everything is resolved once at start-up and every
//! problem is reported at once, naming the key and the expected value. Core's own sections are
//! validated by [`twc_core::config`]; this module adds the plugin sections.

use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;
use twc_core::config::{CORE_SECTIONS, CoreConfig};
use twc_core::engine::EngineConfig;
use twc_core::plugin::{Kind, PluginConfig, PollSettings, Registry};

pub use twc_core::config::SettingsSection;

/// The documented defaults (`twcmanager default-config`), embedded.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// One enabled plugin, with its parsed section.
#[derive(Debug, Clone)]
pub struct EnabledPlugin {
    /// Which kind.
    pub kind: Kind,
    /// Registry name.
    pub name: String,
    /// Its section minus core's keys.
    pub config: PluginConfig,
    /// Poll settings (EMS only).
    pub poll: Option<PollSettings>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Engine settings.
    pub engine: EngineConfig,
    /// `[settings]`.
    pub settings: SettingsSection,
    /// Enabled plugins, in config order within each kind.
    pub plugins: Vec<EnabledPlugin>,
    /// The whole merged config as JSON (for `getConfig`, with secrets to be scrubbed).
    pub raw: Value,
    /// Events each logging sink holds in memory before spilling to disk.
    pub sink_queue_capacity: usize,
    /// Where logging sinks spill events they cannot write yet.
    pub sink_spill_dir: String,
}

/// Load and merge the layers. `file` = `None` uses only defaults and environment.
pub fn load(file: Option<&Path>) -> Result<Value, Vec<String>> {
    let mut b = config::Config::builder().add_source(config::File::from_str(
        DEFAULT_TOML,
        config::FileFormat::Toml,
    ));
    if let Some(f) = file {
        if !f.exists() {
            return Err(vec![format!(
                "config file {} does not exist (copy config/demo.toml or config/default.toml to start)",
                f.display()
            )]);
        }
        b = b.add_source(config::File::from(f).format(config::FileFormat::Toml));
    }
    b = b.add_source(
        config::Environment::with_prefix("TWCMANAGER")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    let cfg = b.build().map_err(|e| vec![e.to_string()])?;
    cfg.try_deserialize::<Value>()
        .map_err(|e| vec![e.to_string()])
}

/// Resolve the merged config against the linked plugins. `known` lists every plugin the
/// project knows (the bin's plugin features), so that a plugin left out of this build is
/// "rebuild with feature `…`" rather than "unknown plugin". Every problem is collected.
pub fn resolve(
    root: Value,
    registry: &Registry,
    known: &[(Kind, &str)],
) -> Result<Resolved, Vec<String>> {
    let mut errors = Vec::new();
    let Some(top) = root.as_object() else {
        return Err(vec!["the configuration must be a TOML table".into()]);
    };
    for key in top.keys() {
        let known =
            CORE_SECTIONS.contains(&key.as_str()) || Kind::ALL.iter().any(|k| k.as_str() == key);
        if !known {
            let mut all: Vec<&str> = CORE_SECTIONS.to_vec();
            all.extend(Kind::ALL.iter().map(|k| k.as_str()));
            errors.push(format!(
                "[{key}] is not a known section; expected one of: {}",
                all.join(", ")
            ));
        }
    }
    let core = CoreConfig::from_sections(&root).map_err(|e| errors.extend(e));
    let plugins = resolve_plugins(top, registry, known, &mut errors);
    let sources = match &core {
        Ok(c) => Some(c.engine.sources.clone()),
        Err(()) => twc_core::config::site_sources(&root),
    };
    if let Some(sources) = sources {
        let ems: Vec<&str> = plugins
            .iter()
            .filter(|p| p.kind == Kind::Ems)
            .map(|p| p.name.as_str())
            .collect();
        if let Err(e) = sources.validate(&ems) {
            errors.extend(e);
        }
    }
    // One tariff: two price lists for one grid connection would contradict each other. One
    // forecast: two services forecasting the same array would be counted twice (a site with two
    // arrays configures them in one plugin where the service supports planes).
    for (kind, what) in [(Kind::Tariff, "tariff"), (Kind::Forecast, "solar forecast")] {
        let on: Vec<String> = plugins
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| format!("[{kind}.{}]", p.name))
            .collect();
        if on.len() > 1 {
            errors.push(format!(
                "[{kind}] at most one {what} may be enabled, found {}: {}; set enabled = false on all but one",
                on.len(),
                on.join(" and ")
            ));
        }
    }
    let comms = plugins.iter().filter(|p| p.kind == Kind::Comms).count();
    if comms != 1 {
        errors.push(format!(
            "[comms] exactly one bus transport must be enabled, found {comms}; available: {}",
            registry.names(Kind::Comms).join(", ")
        ));
    }
    match core {
        Ok(core) if errors.is_empty() => Ok(Resolved {
            engine: core.engine,
            settings: core.settings,
            plugins,
            raw: root,
            sink_queue_capacity: core.sink_queue_capacity,
            sink_spill_dir: core.sink_spill_dir,
        }),
        _ => Err(errors),
    }
}

fn resolve_plugins(
    top: &Map<String, Value>,
    registry: &Registry,
    known: &[(Kind, &str)],
    errors: &mut Vec<String>,
) -> Vec<EnabledPlugin> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let Some(v) = top.get(kind.as_str()) else {
            continue;
        };
        let Some(table) = v.as_object() else {
            errors.push(format!(
                "[{kind}] expected a table of plugin sections such as [{kind}.<name>]"
            ));
            continue;
        };
        let linked = registry.names(kind);
        for (name, body) in table {
            let section = format!("{kind}.{name}");
            let Some(body) = body.as_object() else {
                errors.push(format!("[{section}] expected a table"));
                continue;
            };
            let enabled = match body.get("enabled") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    errors.push(format!(
                        "[{section}] enabled = {other}: expected true or false"
                    ));
                    continue;
                }
            };
            if !linked.contains(&name.as_str()) {
                let known = known.iter().any(|(k, n)| *k == kind && n == name);
                if known {
                    if enabled {
                        errors.push(format!(
                            "[{section}] this plugin is not compiled into this binary; rebuild with feature `{kind}-{name}` (cargo build -p twcmanager --features {kind}-{name})"
                        ));
                    }
                } else {
                    errors.push(format!(
                        "[{section}] unknown {kind} plugin {name:?}; compiled in: {}",
                        if linked.is_empty() {
                            "none".to_string()
                        } else {
                            linked.join(", ")
                        }
                    ));
                }
                continue;
            }
            if !enabled {
                continue;
            }
            let mut values = body.clone();
            values.remove("enabled");
            let mut poll = None;
            if kind == Kind::Ems {
                let interval = take_secs(&mut values, "interval_secs", 10, &section, errors);
                let stale = take_secs(
                    &mut values,
                    "stale_after_secs",
                    (interval * 3).max(30),
                    &section,
                    errors,
                );
                poll = Some(PollSettings {
                    interval: Duration::from_secs(interval.max(1)),
                    stale_after: Duration::from_secs(stale.max(1)),
                });
            }
            out.push(EnabledPlugin {
                kind,
                name: name.clone(),
                config: PluginConfig::new(section, values),
                poll,
            });
        }
    }
    out
}

fn take_secs(
    values: &mut Map<String, Value>,
    key: &str,
    default: u64,
    section: &str,
    errors: &mut Vec<String>,
) -> u64 {
    match values.remove(key) {
        None => default,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => n,
            _ => {
                errors.push(format!(
                    "[{section}] {key} = {v}: expected a whole number of seconds > 0"
                ));
                default
            }
        },
    }
}
