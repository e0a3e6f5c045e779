//! The eight plugin traits, their `inventory` registries, plugin configuration and errors.
//!
//! A plugin crate defines a config struct, a `build` function and one `inventory::submit!` of
//! the descriptor for its kind, e.g. [`EmsPlugin`]. The bin links the crates its features enable
//! and [`Registry::collect`] turns the registries into sorted maps, failing on duplicate names.

use crate::engine::EngineHandle;
use crate::model::{EnergyReading, Event, Status};
use crate::protocol::{Frame, FrameError};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The kinds of plugin, fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Bus transport.
    Comms,
    /// Energy source.
    Ems,
    /// Control surface (HTTP, MQTT, …).
    Control,
    /// Event sink.
    Logging,
    /// Status publisher.
    Status,
    /// Vehicle API.
    Vehicle,
    /// Grid prices (fixed, time-of-use, dynamic).
    Tariff,
    /// Solar generation forecast.
    Forecast,
}

impl Kind {
    /// All kinds, in config order.
    pub const ALL: [Kind; 8] = [
        Kind::Comms,
        Kind::Ems,
        Kind::Control,
        Kind::Logging,
        Kind::Status,
        Kind::Vehicle,
        Kind::Tariff,
        Kind::Forecast,
    ];
    /// The config section / feature prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Comms => "comms",
            Kind::Ems => "ems",
            Kind::Control => "control",
            Kind::Logging => "logging",
            Kind::Status => "status",
            Kind::Vehicle => "vehicle",
            Kind::Tariff => "tariff",
            Kind::Forecast => "forecast",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine does about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Try again later (timeouts, 5xx, a broken link).
    Transient,
    /// Credentials were refused; retrying will not help until the user acts.
    Auth,
    /// The configuration is wrong.
    Config,
    /// The peer answered something we cannot read.
    Protocol,
    /// The peer or firmware does not support the request.
    Unsupported,
}

/// An error from a plugin at run time.
#[derive(Debug, thiserror::Error)]
#[error("{plugin}: {context}")]
pub struct PluginError {
    kind: ErrorKind,
    /// Registry name of the plugin.
    pub plugin: String,
    /// What was being done, e.g. "GET powerflow: HTTP 503".
    pub context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl PluginError {
    /// A new error.
    pub fn new(kind: ErrorKind, plugin: impl Into<String>, context: impl Into<String>) -> Self {
        PluginError {
            kind,
            plugin: plugin.into(),
            context: context.into(),
            source: None,
        }
    }
    /// Attach the underlying error.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message with its source chain, for logs and Status.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }
}

/// A configuration problem that names the key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] {message}")]
pub struct BuildError {
    /// The config section, e.g. `ems.fronius`.
    pub section: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl BuildError {
    /// A new error for `section`.
    pub fn new(section: impl Into<String>, message: impl Into<String>) -> Self {
        BuildError {
            section: section.into(),
            message: message.into(),
        }
    }
}

/// A plugin's config section (`[<kind>.<name>]`) without the keys core consumes (`enabled`,
/// `interval_secs`, `stale_after_secs`).
#[derive(Clone, Default)]
pub struct PluginConfig {
    /// `"<kind>.<name>"`.
    pub section: String,
    /// The remaining keys.
    pub values: serde_json::Map<String, serde_json::Value>,
    /// The daemon's whole effective configuration, set by the runtime for every plugin (the web
    /// API's getConfig shows it with secrets scrubbed). Not in `Debug`: it holds secrets.
    pub effective_config: Option<std::sync::Arc<serde_json::Value>>,
}

impl fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginConfig")
            .field("section", &self.section)
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
}

impl PluginConfig {
    /// A config for `section` with `values`.
    pub fn new(
        section: impl Into<String>,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        PluginConfig {
            section: section.into(),
            values,
            effective_config: None,
        }
    }

    /// Parse from TOML text (the body of the section), for tests and examples.
    pub fn from_toml(section: &str, text: &str) -> Result<Self, BuildError> {
        let v: toml::Value =
            toml::from_str(text).map_err(|e| BuildError::new(section, e.to_string()))?;
        let json = serde_json::to_value(v).map_err(|e| BuildError::new(section, e.to_string()))?;
        match json {
            serde_json::Value::Object(mut m) => {
                for k in ["enabled", "interval_secs", "stale_after_secs"] {
                    m.remove(k);
                }
                Ok(PluginConfig::new(section, m))
            }
            _ => Err(BuildError::new(section, "expected a table")),
        }
    }

    /// Deserialize into the plugin's config struct (use `#[serde(deny_unknown_fields)]`); the
    /// error names the section and the key.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, BuildError> {
        let value = serde_json::Value::Object(self.values.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // A wrong type names its key (`unknown field` and `missing field` already do).
            if path == "." || inner.contains(&format!("`{path}`")) {
                BuildError::new(&self.section, inner)
            } else {
                BuildError::new(&self.section, format!("{path}: {inner}"))
            }
        })
    }
}

/// A secret config value whose `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is sent to its service.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// What a [`Comms`] receive produced: a checksummed frame, or a frame the codec dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A frame that passed framing and checksum.
    Frame(Frame),
    /// A frame the codec rejected (already counted by the codec).
    Dropped(FrameError),
}

/// A bus transport. Frame-level: the codec lives in core (see [`crate::transport`]).
#[async_trait]
pub trait Comms: Send {
    /// Send one frame.
    async fn send(&mut self, frame: &Frame) -> Result<(), PluginError>;
    /// Wait for the next frame. Must be cancel-safe: no frame is lost if the future is dropped.
    async fn recv(&mut self) -> Result<Received, PluginError>;
    /// Re-open the link after an error (device unplugged, TCP dropped). Default: nothing to do.
    async fn reconnect(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
    /// Where this transport talks to, for logs.
    fn describe(&self) -> String {
        String::new()
    }
    /// The transport's own decoder counters, when it has one (every [`crate::transport::StreamComms`]
    /// does): bytes outside any frame and partial frames dropped after a silence never reach the
    /// engine as a [`Received::Dropped`], so the engine copies those two counters from here.
    fn decode_stats(&self) -> Option<crate::protocol::DecodeStats> {
        None
    }
}

/// An energy source.
#[async_trait]
pub trait EmsSource: Send + Sync {
    /// Read the latest values. A failure is an error, never a reading of 0 W.
    async fn read(&self) -> Result<EnergyReading, PluginError>;
}

/// Something that controls the engine from outside (HTTP, MQTT, OCPP).
#[async_trait]
pub trait ControlSurface: Send {
    /// Run until the process ends.
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError>;
    /// Hand the surface a history source (a database logger's [`Logger::history`]) for graphs,
    /// before [`Self::serve`]. Default: ignored.
    fn set_history(&mut self, _history: std::sync::Arc<dyn crate::history::HistoryQuery>) {}
    /// Hand the surface the vehicles (cars, commands, login), before [`Self::serve`], when a
    /// vehicle plugin is enabled. Default: ignored.
    fn set_vehicles(&mut self, _vehicles: crate::vehicles::VehicleHandle) {}
    /// Take what can fail at start-up (the web UI binds its port here), before the engine sends
    /// anything on the bus: an error ends the start-up instead of leaving a bus master without
    /// the surface. Default: nothing to take (e.g. MQTT connects in the background and retries).
    async fn prepare(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// An event sink (CSV, SQL, …). Not to be confused with `tracing` output.
#[async_trait]
pub trait Logger: Send + Sync {
    /// Record one event. Called from the sink's own task and queue.
    async fn record(&self, event: &Event) -> Result<(), PluginError>;
    /// Flush buffered records (at shutdown).
    async fn flush(&self) -> Result<(), PluginError> {
        Ok(())
    }
    /// Most events [`Logger::record_batch`] takes at once (1 = one at a time).
    fn batch_size(&self) -> usize {
        1
    }
    /// Record several events in order. On `Err` the whole batch is retried, so a sink with
    /// `batch_size() > 1` writes a batch atomically (a transaction) or idempotently.
    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        for e in events {
            self.record(e).await?;
        }
        Ok(())
    }
    /// The history queries this sink can answer (database sinks), for graphs.
    fn history(&self) -> Option<std::sync::Arc<dyn crate::history::HistoryQuery>> {
        None
    }
}

/// Publishes status snapshots (MQTT, Home Assistant, …).
#[async_trait]
pub trait StatusPublisher: Send + Sync {
    /// Publish one snapshot. Called from the publisher's own task.
    async fn publish(&self, status: &Status) -> Result<(), PluginError>;
    /// The least time between two snapshots this publisher wants (`None` = the runtime's
    /// default). A publisher that reacts to every change, such as webhooks on a policy change,
    /// asks for `Duration::ZERO`.
    fn min_interval(&self) -> Option<Duration> {
        None
    }
}

mod outlook;
mod vehicle;
pub use outlook::{
    Forecast, ForecastSlot, Outlook, PriceSlot, Prices, SolarForecast, TariffSource,
};
pub use vehicle::{AccountStatus, ChargeState, Vehicle, VehicleApi};

macro_rules! descriptor {
    ($(#[$m:meta])* $name:ident, $kind:expr, $obj:ty) => {
        $(#[$m])*
        pub struct $name {
            /// Registry name = config section suffix = feature suffix.
            pub name: &'static str,
            /// One line for `twcmanager plugins`.
            pub summary: &'static str,
            /// The plugin's `example.toml`.
            pub example: &'static str,
            /// Build from config. Synchronous and cheap; slow work happens in the trait methods.
            pub build: fn(&PluginConfig) -> Result<$obj, BuildError>,
        }
        inventory::collect!($name);
        impl Descriptor for $name {
            fn kind(&self) -> Kind { $kind }
            fn name(&self) -> &'static str { self.name }
            fn summary(&self) -> &'static str { self.summary }
            fn example(&self) -> &'static str { self.example }
        }
    };
}

/// Common view of the eight descriptor types.
pub trait Descriptor: Sync {
    /// Which kind.
    fn kind(&self) -> Kind;
    /// Registry name.
    fn name(&self) -> &'static str;
    /// One-line summary.
    fn summary(&self) -> &'static str;
    /// Example config.
    fn example(&self) -> &'static str;
}

descriptor!(
    /// A registered bus transport.
    CommsPlugin, Kind::Comms, Box<dyn Comms>
);
descriptor!(
    /// A registered energy source.
    EmsPlugin, Kind::Ems, Box<dyn EmsSource>
);
descriptor!(
    /// A registered control surface.
    ControlPlugin, Kind::Control, Box<dyn ControlSurface>
);
descriptor!(
    /// A registered event sink.
    LoggingPlugin, Kind::Logging, Box<dyn Logger>
);
descriptor!(
    /// A registered status publisher.
    StatusPlugin, Kind::Status, Box<dyn StatusPublisher>
);
descriptor!(
    /// A registered vehicle API.
    VehiclePlugin, Kind::Vehicle, Box<dyn VehicleApi>
);
descriptor!(
    /// A registered tariff (grid prices).
    TariffPlugin, Kind::Tariff, Box<dyn TariffSource>
);
descriptor!(
    /// A registered solar forecast.
    ForecastPlugin, Kind::Forecast, Box<dyn SolarForecast>
);

/// A plugin that installs the process's `tracing` subscriber from its configuration section
/// (the console logger does: format, colours, levels per module). The runtime calls it once,
/// before anything logs; without one linked, the runtime installs a plain subscriber. At most one
/// may be linked.
pub struct TracingPlugin {
    /// The plugin's registry name (its section is `[logging.<name>]`).
    pub name: &'static str,
    /// Install the global subscriber from the section (absent: the defaults). `own_crates` are
    /// the crates logged at the configured level; every other crate logs at `warn`.
    pub init: fn(section: Option<&serde_json::Value>, own_crates: &[&str]) -> Result<(), String>,
}
inventory::collect!(TracingPlugin);

/// The linked plugins, one sorted map per kind.
pub struct Registry {
    /// Bus transports.
    pub comms: BTreeMap<&'static str, &'static CommsPlugin>,
    /// Energy sources.
    pub ems: BTreeMap<&'static str, &'static EmsPlugin>,
    /// Control surfaces.
    pub control: BTreeMap<&'static str, &'static ControlPlugin>,
    /// Event sinks.
    pub logging: BTreeMap<&'static str, &'static LoggingPlugin>,
    /// Status publishers.
    pub status: BTreeMap<&'static str, &'static StatusPlugin>,
    /// Vehicle APIs.
    pub vehicle: BTreeMap<&'static str, &'static VehiclePlugin>,
    /// Tariffs.
    pub tariff: BTreeMap<&'static str, &'static TariffPlugin>,
    /// Solar forecasts.
    pub forecast: BTreeMap<&'static str, &'static ForecastPlugin>,
    /// The plugin that installs the process's log subscriber, if one is linked.
    pub tracing: Option<&'static TracingPlugin>,
}

fn collect_kind<T: Descriptor + 'static>(
    iter: impl Iterator<Item = &'static T>,
    errors: &mut Vec<String>,
) -> BTreeMap<&'static str, &'static T> {
    let mut map = BTreeMap::new();
    for d in iter {
        if map.insert(d.name(), d).is_some() {
            errors.push(format!(
                "two {} plugins are registered as {:?}; rename one",
                d.kind(),
                d.name()
            ));
        }
    }
    map
}

impl Registry {
    /// Gather every linked plugin; fails when two plugins of one kind share a name.
    pub fn collect() -> Result<Registry, String> {
        let mut errors = Vec::new();
        let mut r = Registry {
            comms: collect_kind(inventory::iter::<CommsPlugin>(), &mut errors),
            ems: collect_kind(inventory::iter::<EmsPlugin>(), &mut errors),
            control: collect_kind(inventory::iter::<ControlPlugin>(), &mut errors),
            logging: collect_kind(inventory::iter::<LoggingPlugin>(), &mut errors),
            status: collect_kind(inventory::iter::<StatusPlugin>(), &mut errors),
            vehicle: collect_kind(inventory::iter::<VehiclePlugin>(), &mut errors),
            tariff: collect_kind(inventory::iter::<TariffPlugin>(), &mut errors),
            forecast: collect_kind(inventory::iter::<ForecastPlugin>(), &mut errors),
            tracing: None,
        };
        for t in inventory::iter::<TracingPlugin>() {
            if let Some(other) = r.tracing.replace(t) {
                errors.push(format!(
                    "two plugins install the log subscriber ({:?} and {:?}); link one",
                    other.name, t.name
                ));
            }
        }
        if errors.is_empty() {
            Ok(r)
        } else {
            Err(errors.join("; "))
        }
    }

    /// Every plugin as (kind, name, summary), sorted by kind then name.
    pub fn list(&self) -> Vec<(Kind, &'static str, &'static str)> {
        let mut v: Vec<(Kind, &'static str, &'static str)> = Vec::new();
        v.extend(self.comms.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(self.ems.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(self.control.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(self.logging.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(self.status.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(self.vehicle.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(self.tariff.values().map(|d| (d.kind(), d.name, d.summary)));
        v.extend(
            self.forecast
                .values()
                .map(|d| (d.kind(), d.name, d.summary)),
        );
        v.sort();
        v
    }

    /// Names registered for `kind`, sorted.
    pub fn names(&self, kind: Kind) -> Vec<&'static str> {
        self.list()
            .into_iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, n, _)| n)
            .collect()
    }
}

/// Common per-source settings core reads from an `[ems.<name>]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSettings {
    /// How often to read.
    pub interval: Duration,
    /// A reading older than this is stale.
    pub stale_after: Duration,
}

/// The tracing span every plugin task runs in: `plugin{kind=… plugin=…}`, the same two fields for
/// every kind, so one filter finds all of a plugin's lines (`RUST_LOG`, Loki, journald).
pub fn plugin_span(kind: &str, plugin: &str) -> tracing::Span {
    tracing::info_span!("plugin", kind, plugin)
}

/// Spawn a plugin's own task in the caller's span (the plugin's [`plugin_span`] when called from
/// its trait methods), so the task's lines carry the same `kind` and `plugin` fields. Plugins use
/// this, never `tokio::spawn` (a tidy rule checks).
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(tracing::Instrument::in_current_span(task))
}

/// [`spawn`] for blocking work (file and serial I/O) on tokio's blocking pool.
pub fn spawn_blocking<F, R>(work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
}
