#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use tracing::info;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use twc_core::logging::{Mute, RecordType, describe};
use twc_core::model::Event;
use twc_core::plugin::{
    BuildError, Logger, LoggingPlugin, PluginConfig, PluginError, TracingPlugin,
};

const NAME: &str = "console";

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Time, level, message and fields, for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[logging.console]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Level of twcmanager's own crates.
    #[serde(default = "default_level")]
    pub level: String,
    /// Output format.
    #[serde(default)]
    pub format: Format,
    /// Colours (human format), when stdout is a terminal and `NO_COLOR` is not set.
    #[serde(default = "default_true")]
    pub ansi: bool,
    /// Levels per module (target prefix).
    #[serde(default)]
    pub levels: BTreeMap<String, String>,
    /// Per-type mute switches for printed events.
    #[serde(default = "default_mute")]
    pub mute: Mute,
}

fn default_level() -> String {
    "info".into()
}
fn default_true() -> bool {
    true
}
/// The engine already logs links, offers and policy changes at info; by default the console adds
/// only the session summaries (with VIN and kWh) and faults.
fn default_mute() -> Mute {
    Mute {
        green_energy: true,
        slave_status: true,
        slave_power: true,
        policy: true,
        ..Mute::default()
    }
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            level: default_level(),
            format: Format::Human,
            ansi: true,
            levels: BTreeMap::new(),
            mute: default_mute(),
        }
    }
}

impl ConsoleConfig {
    /// Read `[logging.console]` from the merged config (a missing section gives the defaults).
    pub fn from_section(section: Option<&serde_json::Value>) -> Result<Self, BuildError> {
        let mut map = match section {
            Some(serde_json::Value::Object(m)) => m.clone(),
            Some(_) => return Err(BuildError::new("logging.console", "expected a table")),
            None => serde_json::Map::new(),
        };
        for k in ["enabled", "interval_secs", "stale_after_secs"] {
            map.remove(k);
        }
        let c: ConsoleConfig = PluginConfig::new("logging.console", map).parse()?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), BuildError> {
        level("level", &self.level)?;
        for (module, l) in &self.levels {
            level(&format!("levels.{module:?}"), l)?;
            if module.is_empty() || module.contains([',', '=', ' ']) {
                return Err(BuildError::new(
                    "logging.console",
                    format!("levels: {module:?} is not a module path such as \"twc_core::master\""),
                ));
            }
        }
        Ok(())
    }

    /// The filter directives: `warn` for dependencies, `level` for `own_crates`, then `levels`.
    pub fn directives(&self, own_crates: &[&str]) -> String {
        let mut d = String::from("warn");
        for c in own_crates {
            d.push_str(&format!(",{c}={}", self.level));
        }
        for (m, l) in &self.levels {
            d.push_str(&format!(",{m}={l}"));
        }
        d
    }
}

fn level(key: &str, l: &str) -> Result<LevelFilter, BuildError> {
    LevelFilter::from_str(l).map_err(|_| {
        BuildError::new(
            "logging.console",
            format!("{key} must be one of off, error, warn, info, debug, trace; got {l:?}"),
        )
    })
}

/// The filter: `RUST_LOG` (passed as `rust_log`) when set and valid, else the config's directives.
pub fn filter(cfg: &ConsoleConfig, own_crates: &[&str], rust_log: Option<&str>) -> EnvFilter {
    if let Some(env) = rust_log.filter(|s| !s.trim().is_empty()) {
        if let Ok(f) = EnvFilter::try_new(env) {
            return f;
        }
        eprintln!("RUST_LOG={env:?} is not a valid filter; using [logging.console]");
    }
    EnvFilter::try_new(cfg.directives(own_crates)).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The subscriber for `cfg`, writing to `writer` (the bin passes `std::io::stdout`; tests a
/// buffer).
pub fn subscriber<W>(
    cfg: &ConsoleConfig,
    own_crates: &[&str],
    rust_log: Option<&str>,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter(cfg, own_crates, rust_log))
        .with_writer(writer);
    match cfg.format {
        Format::Json => Box::new(b.json().with_current_span(false).finish()),
        Format::Human => Box::new(b.with_ansi(cfg.ansi).with_target(true).finish()),
    }
}

/// Install the global subscriber on stdout; `RUST_LOG` wins over the config. Call once, early.
/// `own_crates` are the crate names logged at `level` (`twc_core`, `twcmanager`, each plugin).
pub fn init(cfg: &ConsoleConfig, own_crates: &[&str]) -> Result<(), String> {
    let env = std::env::var("RUST_LOG").ok();
    // Colours only on a terminal, and never with NO_COLOR set (https://no-color.org): a service
    // manager's journal or a piped log file gets plain text.
    let cfg = &ConsoleConfig {
        ansi: cfg.ansi
            && std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        ..cfg.clone()
    };
    tracing::subscriber::set_global_default(subscriber(
        cfg,
        own_crates,
        env.as_deref(),
        std::io::stdout,
    ))
    .map_err(|e| format!("a tracing subscriber is already installed: {e}"))
}

/// Prints events at info through `tracing` (so they go wherever the subscriber sends them).
pub struct ConsoleSink {
    mute: Mute,
}

impl ConsoleSink {
    /// A sink with these mute switches.
    pub fn new(mute: Mute) -> Self {
        ConsoleSink { mute }
    }
}

#[async_trait]
impl Logger for ConsoleSink {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        if self.mute.allows(event) {
            let record = RecordType::of(event).as_str();
            info!(
                kind = "logging",
                plugin = NAME,
                record,
                "{}",
                describe(event)
            );
        }
        Ok(())
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    let c: ConsoleConfig = cfg.parse()?;
    c.validate()?;
    Ok(Box::new(ConsoleSink::new(c.mute)))
}

/// [`TracingPlugin::init`]: the section's format and levels, or the defaults with a warning
/// when the section is bad (`check-config` reports it; logging must still start).
fn init_from_section(
    section: Option<&serde_json::Value>,
    own_crates: &[&str],
) -> Result<(), String> {
    let cfg = ConsoleConfig::from_section(section).unwrap_or_else(|e| {
        eprintln!("warning: {e}; logging with the defaults");
        ConsoleConfig::default()
    });
    init(&cfg, own_crates)
}

inventory::submit! {
    TracingPlugin { name: NAME, init: init_from_section }
}

inventory::submit! {
    LoggingPlugin { name: NAME, summary: "Console output: tracing subscriber (human or JSON, levels per module) and events at info",
        example: include_str!("../example.toml"), build }
}
