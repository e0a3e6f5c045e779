//! Layered configuration: the embedded `config/default.toml` < the user's file (`--config`) <
//! environment `TWCMANAGER__SECTION__KEY`. Everything is resolved once at start-up and every
//! problem is reported at once, naming the key and the expected value.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;
use twc_core::engine::EngineConfig;
use twc_core::master::MasterConfig;
use twc_core::model::CentiAmps;
use twc_core::plugin::{Kind, PluginConfig, PollSettings, Registry};
use twc_core::protocol::TwcId;

/// The documented defaults, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Sections core reads itself; every other top-level section must be a plugin kind.
pub const CORE_SECTIONS: &[&str] = &[
    "master", "wiring", "site", "engine", "settings", "policy", "green", "grid",
];

/// Every plugin the project knows, with the bin feature that compiles it in. Used to tell a user
/// "rebuild with feature `ems-enphase`" rather than "unknown plugin".
pub const KNOWN_PLUGINS: &[(Kind, &str)] = &[
    (Kind::Comms, "dummy"),
    (Kind::Comms, "rs485"),
    (Kind::Comms, "tcp"),
    (Kind::Ems, "sim"),
    (Kind::Ems, "fronius"),
    (Kind::Ems, "solaredge"),
    (Kind::Ems, "enphase"),
    (Kind::Ems, "powerwall"),
    (Kind::Ems, "hass"),
    (Kind::Ems, "mqtt"),
    (Kind::Ems, "url"),
    (Kind::Ems, "openhab"),
    (Kind::Ems, "iotawatt"),
    (Kind::Ems, "kostal"),
    (Kind::Control, "http"),
    (Kind::Control, "mqtt"),
    (Kind::Logging, "console"),
    (Kind::Logging, "files"),
    (Kind::Logging, "csv"),
    (Kind::Logging, "sqlite"),
    (Kind::Logging, "mysql"),
    (Kind::Logging, "sentry"),
    (Kind::Status, "mqtt"),
    (Kind::Status, "hass"),
    (Kind::Status, "webhook"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterSection {
    twcid: String,
    sign: String,
    heartbeat_interval_ms: u64,
    frame_gap_ms: u64,
    slave_timeout_secs: u64,
    kwh_interval_secs: u64,
    link_ready_bursts: bool,
    max_slaves: usize,
    foreign_master_hold_secs: u64,
    query_vin: bool,
    follow_grace_secs: u64,
    escalate_stop_secs: u64,
    max_pending_commands: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WiringSection {
    max_amps_all_twcs: f64,
    max_amps_per_twc: f64,
    min_amps_per_twc: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    voltage: f64,
    phases: u8,
    consumption_includes_chargers: bool,
    #[serde(default)]
    sources: twc_core::combine::SourcesConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSection {
    tick_ms: u64,
    slave_status_interval_secs: u64,
    shutdown_timeout_secs: u64,
    sink_queue_capacity: usize,
    sink_spill_dir: String,
}

/// `[settings]`: where runtime settings live and their initial values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsSection {
    /// Settings file (runtime changes from the UI and APIs).
    pub path: String,
    /// Initial non-scheduled action.
    pub non_scheduled_action: String,
    /// Initial non-scheduled amps.
    pub non_scheduled_amps: f64,
}

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

fn section<T: for<'de> Deserialize<'de>>(
    root: &Value,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let v = root.get(name).cloned().unwrap_or(Value::Object(Map::new()));
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(format!("[{name}] {e}"));
            None
        }
    }
}

fn amps(errors: &mut Vec<String>, key: &str, v: f64, max: f64) -> CentiAmps {
    if !v.is_finite() || v < 0.0 || v > max {
        errors.push(format!(
            "{key} = {v}: expected a number of amps between 0 and {max}"
        ));
        CentiAmps::ZERO
    } else {
        CentiAmps::from_f64(v)
    }
}

/// Resolve the merged config against the linked plugins. Every problem is collected.
pub fn resolve(root: Value, registry: &Registry) -> Result<Resolved, Vec<String>> {
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
    let master: Option<MasterSection> = section(&root, "master", &mut errors);
    let wiring: Option<WiringSection> = section(&root, "wiring", &mut errors);
    let site: Option<SiteSection> = section(&root, "site", &mut errors);
    let eng: Option<EngineSection> = section(&root, "engine", &mut errors);
    let settings: Option<SettingsSection> = section(&root, "settings", &mut errors);

    let mut engine = EngineConfig::default();
    if let Some(m) = &master {
        let mut mc = MasterConfig::default();
        if !m.twcid.is_empty() {
            match m.twcid.parse::<TwcId>() {
                Ok(id) if id.0 != [0, 0] && id.0 != [0xFF, 0xFF] => mc.id = Some(id),
                Ok(_) => errors.push("[master] twcid: 0000 and FFFF are not valid TWCIDs".into()),
                Err(e) => errors.push(format!("[master] twcid: {e}, or \"\" for a random one")),
            }
        }
        if !m.sign.is_empty() {
            match u8::from_str_radix(&m.sign, 16) {
                Ok(s) if m.sign.len() == 2 => mc.sign = Some(s),
                _ => errors.push(format!(
                    "[master] sign = {:?}: expected 2 hex digits such as \"77\", or \"\" for a random one",
                    m.sign
                )),
            }
        }
        if !(200..=5000).contains(&m.heartbeat_interval_ms) {
            errors.push(format!(
                "[master] heartbeat_interval_ms = {}: expected 200..=5000 (slaves stop a car after ~30 s without heartbeats)",
                m.heartbeat_interval_ms
            ));
        }
        if !(20..=1000).contains(&m.frame_gap_ms) {
            errors.push(format!(
                "[master] frame_gap_ms = {}: expected 20..=1000",
                m.frame_gap_ms
            ));
        }
        if !(5..=120).contains(&m.slave_timeout_secs) {
            errors.push(format!(
                "[master] slave_timeout_secs = {}: expected 5..=120",
                m.slave_timeout_secs
            ));
        }
        if !(1..=3).contains(&m.max_slaves) {
            errors.push(format!(
                "[master] max_slaves = {}: expected 1..=3 (the protocol allows three slaves per master)",
                m.max_slaves
            ));
        }
        mc.heartbeat_interval = Duration::from_millis(m.heartbeat_interval_ms);
        mc.frame_gap = Duration::from_millis(m.frame_gap_ms);
        mc.slave_timeout = Duration::from_secs(m.slave_timeout_secs);
        mc.kwh_interval = Duration::from_secs(m.kwh_interval_secs.max(10));
        mc.link_ready_bursts = m.link_ready_bursts;
        mc.max_slaves = m.max_slaves;
        mc.foreign_master_hold = Duration::from_secs(m.foreign_master_hold_secs);
        mc.query_vin = m.query_vin;
        if !(1..=60).contains(&m.follow_grace_secs) {
            errors.push(format!(
                "[master] follow_grace_secs = {}: expected 1..=60",
                m.follow_grace_secs
            ));
        }
        if m.escalate_stop_secs != 0 && m.escalate_stop_secs < m.follow_grace_secs {
            errors.push(format!(
                "[master] escalate_stop_secs = {}: expected 0 (never) or at least follow_grace_secs ({})",
                m.escalate_stop_secs, m.follow_grace_secs
            ));
        }
        if !(1..=256).contains(&m.max_pending_commands) {
            errors.push(format!(
                "[master] max_pending_commands = {}: expected 1..=256",
                m.max_pending_commands
            ));
        }
        mc.follow_grace = Duration::from_secs(m.follow_grace_secs);
        mc.escalate_stop_after =
            (m.escalate_stop_secs > 0).then(|| Duration::from_secs(m.escalate_stop_secs));
        mc.max_pending_commands = m.max_pending_commands;
        engine.master = mc;
    }
    if let Some(w) = &wiring {
        engine.master.wiring_max_all = amps(
            &mut errors,
            "[wiring] max_amps_all_twcs",
            w.max_amps_all_twcs,
            240.0,
        );
        engine.master.wiring_max_per_twc = amps(
            &mut errors,
            "[wiring] max_amps_per_twc",
            w.max_amps_per_twc,
            80.0,
        );
        engine.min_amps_per_twc = amps(
            &mut errors,
            "[wiring] min_amps_per_twc",
            w.min_amps_per_twc,
            80.0,
        );
        if w.min_amps_per_twc > w.max_amps_per_twc {
            errors.push(format!(
                "[wiring] min_amps_per_twc = {} is above max_amps_per_twc = {}: no car could ever charge",
                w.min_amps_per_twc, w.max_amps_per_twc
            ));
        }
    }
    if let Some(s) = &site {
        if !(100.0..=480.0).contains(&s.voltage) {
            errors.push(format!(
                "[site] voltage = {}: expected volts per phase, 100..=480",
                s.voltage
            ));
        }
        if s.phases != 1 && s.phases != 3 {
            errors.push(format!("[site] phases = {}: expected 1 or 3", s.phases));
        }
        engine.voltage = s.voltage;
        engine.phases = s.phases;
        engine.consumption_includes_chargers = s.consumption_includes_chargers;
        engine.sources = s.sources.clone();
    }
    if let Some(e) = &eng {
        if !(100..=10_000).contains(&e.tick_ms) {
            errors.push(format!(
                "[engine] tick_ms = {}: expected 100..=10000",
                e.tick_ms
            ));
        }
        engine.tick = Duration::from_millis(e.tick_ms);
        engine.slave_status_interval = Duration::from_secs(e.slave_status_interval_secs.max(1));
        engine.shutdown_timeout = Duration::from_secs(e.shutdown_timeout_secs);
        if e.sink_queue_capacity < 100 {
            errors.push(format!(
                "[engine] sink_queue_capacity = {}: expected at least 100 events",
                e.sink_queue_capacity
            ));
        }
    }
    if let Some(s) = &settings {
        if !matches!(s.non_scheduled_action.as_str(), "charge" | "stop" | "green") {
            errors.push(format!(
                "[settings] non_scheduled_action = {:?}: expected \"charge\", \"stop\" or \"green\"",
                s.non_scheduled_action
            ));
        }
        if let Some(w) = &wiring
            && (s.non_scheduled_amps > w.max_amps_all_twcs || s.non_scheduled_amps < 0.0)
        {
            errors.push(format!(
                    "[settings] non_scheduled_amps = {}: expected 0..={} (the wiring limit for all TWCs)",
                    s.non_scheduled_amps, w.max_amps_all_twcs
                ));
        }
    }

    // [policy], [green], [grid]: the policy engine's own sections, validated by twc-core.
    match twc_core::policy::PolicyConfig::from_sections(&root, engine.master.wiring_max_all.amps())
    {
        Ok(p) => engine.policy = p,
        Err(e) => errors.extend(e),
    }

    let plugins = resolve_plugins(top, registry, &mut errors);
    if let Some(s) = &site {
        let ems: Vec<&str> = plugins
            .iter()
            .filter(|p| p.kind == Kind::Ems)
            .map(|p| p.name.as_str())
            .collect();
        if let Err(e) = s.sources.validate(&ems) {
            errors.extend(e);
        }
    }
    let comms = plugins.iter().filter(|p| p.kind == Kind::Comms).count();
    if comms != 1 {
        errors.push(format!(
            "[comms] exactly one bus transport must be enabled, found {comms}; available: {}",
            registry.names(Kind::Comms).join(", ")
        ));
    }
    if errors.is_empty() {
        let eng = eng.expect("parsed without errors");
        Ok(Resolved {
            engine,
            settings: settings.expect("parsed without errors"),
            plugins,
            raw: root,
            sink_queue_capacity: eng.sink_queue_capacity,
            sink_spill_dir: eng.sink_spill_dir,
        })
    } else {
        Err(errors)
    }
}

fn resolve_plugins(
    top: &Map<String, Value>,
    registry: &Registry,
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
                let known = KNOWN_PLUGINS.iter().any(|(k, n)| *k == kind && n == name);
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
