//! The twcmanager runtime: the engine with its event sinks, status publishers and control
//! surfaces, started in the right order and stopped in the right order. The `twcmanager` binary,
//! `examples/embed-core` and any program embedding twc-core use the same assembly:
//!
//! - [`start`] takes built [`Parts`]: control surfaces take what can fail at start-up first
//!   (the web UI's port) before the engine sends anything on the bus; event sinks subscribe
//!   before the engine's loop runs, so they see its first events; then publishers and control
//!   surfaces start.
//! - [`Running::run_until`] waits for a signal (or the engine ending by a control command),
//!   offers 0 A to every slave, waits for the engine, then closes the sinks (each writes what it
//!   can and spills the rest for the next start).
//! - [`daemon`] does the same from a configuration file, as `twcmanager run` does.
//!
//! Core's own configuration sections are validated in [`twc_core::config`]; plugin sections and
//! the layering of files and environment are in [`config`].

pub mod config;
pub mod daemon;
mod log_init;
pub mod outlook;
pub mod privileges;
mod signals;

pub use log_init::{init_tracing, own_crates};

pub use signals::Signals;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};
use twc_core::engine::{self, Command, EngineConfig, EngineHandle, SourceSpec};
use twc_core::history::HistoryQuery;
use twc_core::logging::{SinkHandle, SinkOptions};
use twc_core::model::Settings;
use twc_core::plugin::{Comms, ControlSurface, Logger, StatusPublisher};

/// The target of the runtime's log lines: they are the daemon's (`twcmanager`), whichever crate
/// assembles it, so their lines and level settings stay those of the binary.
pub const LOG_TARGET: &str = "twcmanager";

/// Exit status when a control command stopped the engine: not 0, so a service manager sees
/// that the daemon did not stop on its request (systemd `Restart=on-failure` restarts it;
/// `RestartPreventExitStatus=3` keeps it stopped).
pub const EXIT_STOPPED_BY_COMMAND: u8 = 3;

/// Everything the runtime starts, built (from a configuration by [`daemon::build`], or by hand).
pub struct Parts {
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// Runtime settings the engine starts with.
    pub settings: Settings,
    /// The bus transport.
    pub comms: Box<dyn Comms>,
    /// Energy sources.
    pub sources: Vec<SourceSpec>,
    /// Control surfaces, by name.
    pub controls: Vec<(String, Box<dyn ControlSurface>)>,
    /// Event sinks, by name; the first with a history serves it to the control surfaces.
    pub loggers: Vec<(String, Box<dyn Logger>)>,
    /// Status publishers, by name.
    pub publishers: Vec<(String, Box<dyn StatusPublisher>)>,
    /// The sinks' queues and spill directory.
    pub sink_options: SinkOptions,
    /// How often each publisher gets the status.
    pub publish_interval: Duration,
    /// Vehicle APIs, by name: with any, the vehicles task runs ([`twc_core::vehicles`]).
    pub vehicles: Vec<(String, Box<dyn twc_core::plugin::VehicleApi>)>,
    /// What the policy does with cars (`[vehicles]`).
    pub vehicles_config: twc_core::vehicles::VehiclesConfig,
    /// Tariff plugins, by name (a configuration enables at most one): each gets a task that
    /// hands its prices to the engine ([`outlook`]).
    pub tariffs: Vec<(String, Box<dyn twc_core::plugin::TariffSource>)>,
    /// Solar forecast plugins, by name (a configuration enables at most one).
    pub forecasts: Vec<(String, Box<dyn twc_core::plugin::SolarForecast>)>,
}

impl Parts {
    /// An engine on `comms` with nothing else attached.
    pub fn new(engine: EngineConfig, comms: Box<dyn Comms>, settings: Settings) -> Self {
        Parts {
            engine,
            settings,
            comms,
            sources: Vec::new(),
            controls: Vec::new(),
            loggers: Vec::new(),
            publishers: Vec::new(),
            sink_options: SinkOptions::default(),
            publish_interval: Duration::from_secs(1),
            vehicles: Vec::new(),
            vehicles_config: Default::default(),
            tariffs: Vec::new(),
            forecasts: Vec::new(),
        }
    }
}

/// A control surface that could not take what it needs at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    /// The surface's name.
    pub control: String,
    /// What failed, naming the key and the fix.
    pub message: String,
}

/// Why the runtime stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A signal (or the caller's future): 0 A offered to every slave, sinks flushed.
    Signal(&'static str),
    /// A control command stopped the engine (0 A already offered); sinks flushed.
    ByCommand,
    /// The engine failed; sinks flushed.
    EngineFailed,
}

impl Stopped {
    /// The process exit status: 0, [`EXIT_STOPPED_BY_COMMAND`] or 1.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Stopped::Signal(_) => ExitCode::SUCCESS,
            Stopped::ByCommand => ExitCode::from(EXIT_STOPPED_BY_COMMAND),
            Stopped::EngineFailed => ExitCode::FAILURE,
        }
    }
}

/// The engine and what is attached to it, running.
pub struct Running {
    /// Commands and status.
    pub handle: EngineHandle,
    task: tokio::task::JoinHandle<()>,
    sinks: Vec<SinkHandle>,
    shutdown_timeout: Duration,
}

/// Start everything in order (see the crate docs). A control surface that cannot take what it
/// needs ends the start-up before the engine sends anything on the bus.
pub async fn start(parts: Parts) -> Result<Running, StartError> {
    let mut controls = Vec::new();
    for (name, mut c) in parts.controls {
        if let Err(e) = c.prepare().await {
            // The message names the section already; drop the "<plugin>: " prefix.
            let chain = e.chain();
            let message = chain
                .strip_prefix(&format!("{}: ", e.plugin))
                .map(str::to_string)
                .unwrap_or(chain);
            return Err(StartError {
                control: name,
                message,
            });
        }
        controls.push((name, c));
    }
    let shutdown_timeout = parts.engine.shutdown_timeout;
    let mut sinks = Vec::new();
    let mut history = None;
    let (loggers, opts) = (parts.loggers, parts.sink_options);
    // The sinks' health, for Status (and so /metrics): one set for this runtime.
    let sink_set = twc_core::logging::SinkSet::new();
    let mut engine_cfg = parts.engine;
    engine_cfg.sinks = sink_set.clone();
    let eng = engine::spawn_with(
        engine_cfg,
        parts.comms,
        parts.sources,
        parts.settings,
        |handle| (sinks, history) = spawn_sinks(handle, loggers, &opts, &sink_set),
    );
    let handle = eng.handle.clone();
    for (name, p) in parts.publishers {
        // A publisher may ask for every change (the webhooks), or use the runtime's pace.
        let every = p.min_interval().unwrap_or(parts.publish_interval);
        engine::spawn_publisher(&handle, name, p, every);
    }
    let clock = outlook::WallClock::system();
    for (name, t) in parts.tariffs {
        outlook::spawn_tariff(handle.clone(), name, t, clock);
    }
    for (name, f) in parts.forecasts {
        outlook::spawn_forecast(handle.clone(), name, f, clock);
    }
    let vehicles = (!parts.vehicles.is_empty())
        .then(|| twc_core::vehicles::spawn(parts.vehicles, parts.vehicles_config, handle.clone()));
    for (name, mut c) in controls {
        if let Some(h) = &history {
            c.set_history(h.clone());
        }
        if let Some(v) = &vehicles {
            c.set_vehicles(v.clone());
        }
        let h = handle.clone();
        let span = twc_core::plugin::plugin_span("control", &name);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = c.serve(h).await {
                    error!(target: LOG_TARGET, control = %name, error = %e.chain(), "Control surface stopped");
                }
            },
            span,
        ));
    }
    Ok(Running {
        handle,
        task: eng.task,
        sinks,
        shutdown_timeout,
    })
}

/// Each event sink gets its own bounded queue with a spill file: a slow or failing sink never
/// blocks the engine, and records wait for it instead of being lost. Called before the engine's
/// loop runs. Each sink's health goes into `set` (which `Status::sinks` reads), and the first
/// history a database sink offers goes to the control surfaces.
fn spawn_sinks(
    handle: &EngineHandle,
    loggers: Vec<(String, Box<dyn Logger>)>,
    opts: &SinkOptions,
    set: &twc_core::logging::SinkSet,
) -> (Vec<SinkHandle>, Option<Arc<dyn HistoryQuery>>) {
    let mut sinks = Vec::new();
    let mut history = None;
    for (name, logger) in loggers {
        if history.is_none() {
            history = logger.history();
        }
        let sink = twc_core::logging::spawn_engine_sink(handle, name, logger, opts.clone());
        set.add(sink.watcher());
        sinks.push(sink);
    }
    (sinks, history)
}

impl Running {
    /// Run until `stop` yields (a signal's name) or the engine ends, then stop in order.
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = &'static str>,
    ) -> Stopped {
        let stopped_by = tokio::select! {
            sig = stop => Ok(sig),
            r = &mut self.task => Err(r),
        };
        let stopped = match stopped_by {
            Ok(signal) => {
                info!(
                    target: LOG_TARGET,
                    signal,
                    "Signal received; offering 0 A to every slave before exiting"
                );
                self.stop_engine().await;
                Stopped::Signal(signal)
            }
            // The engine ends only on Command::Shutdown, which a control surface sent (the 0 A
            // offer is done): end the process too, rather than stay up with no engine.
            Err(Ok(())) => {
                info!(
                    target: LOG_TARGET,
                    code = EXIT_STOPPED_BY_COMMAND,
                    "Engine stopped by a control command; flushing the event sinks and exiting"
                );
                Stopped::ByCommand
            }
            Err(Err(e)) => {
                error!(target: LOG_TARGET, error = %e, "The engine failed; flushing the event sinks and exiting");
                Stopped::EngineFailed
            }
        };
        self.close_sinks().await;
        stopped
    }

    /// Stop now: 0 A to every slave, wait for the engine, flush the sinks.
    pub async fn shutdown(mut self) {
        self.stop_engine().await;
        self.close_sinks().await;
    }

    /// Whether the engine has ended (only a control command's `Shutdown` ends it).
    pub fn engine_finished(&self) -> bool {
        self.task.is_finished()
    }

    async fn stop_engine(&mut self) {
        match tokio::time::timeout(
            self.shutdown_timeout + Duration::from_secs(5),
            self.handle.command(Command::Shutdown),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(target: LOG_TARGET, error = %e, "Shutdown command failed"),
            Err(_) => warn!(target: LOG_TARGET, "Shutdown took too long; exiting anyway"),
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut self.task).await;
    }

    async fn close_sinks(&mut self) {
        let n = self.sinks.len();
        for sink in self.sinks.drain(..) {
            // Writes what it can, saves the rest to its spill file for the next start.
            sink.close().await;
        }
        info!(target: LOG_TARGET, sinks = n, "Event sinks flushed");
        info!(target: LOG_TARGET, "Stopped");
    }
}

/// Sink options from the resolved configuration.
pub(crate) fn sink_options(resolved: &config::Resolved) -> SinkOptions {
    SinkOptions {
        queue_capacity: resolved.sink_queue_capacity,
        spill_dir: Some(PathBuf::from(&resolved.sink_spill_dir)),
        ..SinkOptions::default()
    }
}
