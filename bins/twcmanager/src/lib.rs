//! The `twcmanager` binary as a library: CLI, configuration, tracing and start-up. Out-of-tree
//! plugins link themselves with `use my_plugin as _;` and call [`main`].
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod config;
mod plugins;

/// Build facts.
pub mod build {
    include!(concat!(env!("OUT_DIR"), "/features.rs"));
}

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tracing::{error, info, warn};
use twc_core::engine::{self, Command, SourceSpec};
use twc_core::logging::SinkOptions;
use twc_core::model::Settings;
use twc_core::plugin::{Kind, Registry};
use twc_core::settings_store::SettingsStore;

/// Exit status of `twcmanager run`, shown by `--help` (and in the README).
const EXIT_STATUS_HELP: &str = "\
Exit status of `run`:
  0  stopped by a signal (SIGINT, SIGTERM or SIGHUP): 0 A offered to every slave, sinks flushed
  1  error: the runtime, or a control surface that cannot start (e.g. the web UI's port is taken)
  2  the configuration or the saved settings are invalid (also `check-config`)
  3  stopped by a control command (MQTT control/stop): 0 A offered, sinks flushed";

/// Exit status when a control command stopped the engine: not 0, so a service manager sees
/// that the daemon did not stop on its request (systemd `Restart=on-failure` restarts it;
/// `RestartPreventExitStatus=3` keeps it stopped).
pub const EXIT_STOPPED_BY_COMMAND: u8 = 3;

/// Tesla Wall Connector Gen2 load-sharing master.
#[derive(Debug, Parser)]
#[command(name = "twcmanager", version, about, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the daemon.
    #[command(after_help = EXIT_STATUS_HELP)]
    Run {
        /// Configuration file (TOML), layered over the built-in defaults.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List the plugins compiled into this binary.
    Plugins,
    /// Check a configuration file and report every problem at once.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Print the built-in default configuration (every key, documented).
    DefaultConfig,
    /// Run simulated TWC slaves on a pseudo-terminal or TCP port, to try twcmanager (or any other
    /// master) without hardware.
    Sim(twc_sim::SimArgs),
    /// Listen to a bus without ever transmitting and print every frame decoded, to diagnose an
    /// installation (e.g. what a real master and its slaves say to each other).
    Spy(SpyArgs),
}

/// Options of `twcmanager spy`.
#[derive(Debug, clap::Args)]
struct SpyArgs {
    /// Serial port of the RS-485 adapter, e.g. /dev/ttyUSB0 or /dev/serial/by-id/….
    #[arg(long, required_unless_present = "tcp", conflicts_with = "tcp")]
    port: Option<String>,
    /// Baud rate of the serial port.
    #[arg(long, default_value_t = 9600)]
    baud: u32,
    /// An RS-485-to-Ethernet bridge to listen through instead, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    tcp: Option<String>,
    /// Print only the decoded text, without the frame bytes in hex.
    #[arg(long)]
    no_hex: bool,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Entry point used by `main.rs` and by out-of-tree binaries.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Blocking reader threads (serial ports, pseudo-terminals) must not delay the exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = Registry::collect().map_err(anyhow::Error::msg)?;
    match cli.command {
        Cmd::Plugins => {
            for (kind, name, summary) in registry.list() {
                println!("{:<8} {:<12} {}", kind.as_str(), name, summary);
            }
            if registry.list().is_empty() {
                println!("(no plugins: rebuild with features, e.g. --features full)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::DefaultConfig => {
            print!("{}", config::DEFAULT_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckConfig { file } => match load_and_build(Some(&file), &registry) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprintln!("{}: {} problem(s):", file.display(), errors.len());
                for e in errors {
                    eprintln!("  - {e}");
                }
                Ok(ExitCode::from(2))
            }
        },
        Cmd::Run { config } => run(config, &registry).await,
        Cmd::Sim(args) => {
            init_tracing(&serde_json::Value::Null);
            twc_sim::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Spy(args) => spy(args, &registry).await,
    }
}

/// A built control surface with its section, which [`start_control`] may need.
struct Control {
    name: String,
    surface: Box<dyn twc_core::plugin::ControlSurface>,
    config: twc_core::plugin::PluginConfig,
}

/// Built plugins, ready to start.
struct Built {
    resolved: config::Resolved,
    comms: Box<dyn twc_core::plugin::Comms>,
    sources: Vec<SourceSpec>,
    controls: Vec<Control>,
    loggers: Vec<(String, Box<dyn twc_core::plugin::Logger>)>,
    publishers: Vec<(String, Box<dyn twc_core::plugin::StatusPublisher>)>,
}

fn load_and_build(
    file: Option<&std::path::Path>,
    registry: &Registry,
) -> Result<Built, Vec<String>> {
    let raw = config::load(file)?;
    let resolved = config::resolve(raw, registry)?;
    let mut errors = Vec::new();
    let mut comms = None;
    let mut sources = Vec::new();
    let mut controls = Vec::new();
    let mut loggers = Vec::new();
    let mut publishers = Vec::new();
    for p in &resolved.plugins {
        let name = p.name.as_str();
        let r: Result<(), twc_core::plugin::BuildError> = match p.kind {
            Kind::Comms => (registry.comms[name].build)(&p.config).map(|c| comms = Some(c)),
            Kind::Ems => (registry.ems[name].build)(&p.config).map(|s| {
                sources.push(SourceSpec {
                    name: p.name.clone(),
                    source: s,
                    poll: p.poll.expect("ems plugins have poll settings"),
                })
            }),
            Kind::Control => {
                // The web API's getConfig shows the effective configuration (secrets scrubbed
                // there); only the http plugin knows this key, the others reject unknown keys.
                let mut cfg = p.config.clone();
                if name == "http" {
                    cfg.values
                        .insert("__effective_config".into(), resolved.raw.clone());
                }
                (registry.control[name].build)(&cfg).map(|surface| {
                    controls.push(Control {
                        name: p.name.clone(),
                        surface,
                        config: cfg,
                    })
                })
            }
            Kind::Logging => {
                (registry.logging[name].build)(&p.config).map(|l| loggers.push((p.name.clone(), l)))
            }
            Kind::Status => (registry.status[name].build)(&p.config)
                .map(|s| publishers.push((p.name.clone(), s))),
            Kind::Vehicle => (registry.vehicle[name].build)(&p.config).map(|_| ()),
        };
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    }
    // `[policy] webhooks` (the keys TWCManager users know) go to the webhook status plugin: the
    // engine only computes the policy, it makes no HTTP calls.
    let hooks = &resolved.engine.policy.rules;
    if !hooks.webhooks.is_empty() {
        #[cfg(feature = "status-webhook")]
        {
            let cfg = twc_status_webhook::plugin_config(
                "policy",
                &twc_status_webhook::from_policy(hooks),
            );
            match (registry.status["webhook"].build)(&cfg) {
                Ok(p) => publishers.push(("webhook".to_string(), p)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        #[cfg(not(feature = "status-webhook"))]
        errors.push(
            "[policy] webhooks are set but the webhook plugin is not compiled into this binary; rebuild with feature `status-webhook`".to_string(),
        );
    }
    match (errors.is_empty(), comms) {
        (true, Some(comms)) => Ok(Built {
            resolved,
            comms,
            sources,
            controls,
            loggers,
            publishers,
        }),
        (true, None) => Err(vec!["[comms] no bus transport could be built".into()]),
        (false, _) => Err(errors),
    }
}

/// Our crates, whose log level the configuration sets (dependencies log at `warn`).
fn own_crates() -> Vec<String> {
    let mut v: Vec<String> = ["twcmanager", "twc_core", "twc_sim", "twc_plugin_kit"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (kind, name) in config::KNOWN_PLUGINS {
        v.push(format!("twc_{}_{}", kind.as_str(), name));
    }
    v
}

fn init_tracing(raw: &serde_json::Value) {
    #[cfg(feature = "logging-console")]
    {
        // The console plugin owns the format and per-module levels (`[logging.console]`).
        match twc_logging_console::ConsoleConfig::from_section(raw.pointer("/logging/console")) {
            Ok(cfg) => {
                let crates = own_crates();
                let refs: Vec<&str> = crates.iter().map(String::as_str).collect();
                if twc_logging_console::init(&cfg, &refs).is_ok() {
                    return;
                }
            }
            Err(e) => eprintln!("warning: {e}; logging with the defaults"),
        }
    }
    use tracing_subscriber::EnvFilter;
    let console = raw.pointer("/logging/console");
    let level = console
        .and_then(|c| c.get("level"))
        .and_then(|l| l.as_str())
        .unwrap_or("info")
        .to_string();
    let json = console
        .and_then(|c| c.get("format"))
        .and_then(|f| f.as_str())
        .is_some_and(|f| f == "json");
    // Our crates at the configured level, dependencies at warn; RUST_LOG wins.
    let mut directives = "warn".to_string();
    for c in own_crates() {
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

async fn run(config: Option<PathBuf>, registry: &Registry) -> anyhow::Result<ExitCode> {
    let built = match load_and_build(config.as_deref(), registry) {
        Ok(b) => b,
        Err(errors) => {
            eprintln!("configuration has {} problem(s):", errors.len());
            for e in errors {
                eprintln!("  - {e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    init_tracing(&built.resolved.raw);
    let names: Vec<String> = built
        .resolved
        .plugins
        .iter()
        .map(|p| format!("{}.{}", p.kind, p.name))
        .collect();
    info!(
        config = %config.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in defaults".into()),
        plugins = %names.join(", "),
        "twcmanager {} starting",
        env!("CARGO_PKG_VERSION")
    );
    // Runtime settings: the saved file wins over [settings]' initial values.
    let s = &built.resolved.settings;
    let mut engine_cfg = built.resolved.engine.clone();
    let store = SettingsStore::new(&s.path);
    let settings = match store.load() {
        Ok(Some(saved)) => {
            let wiring = engine_cfg.master.wiring_max_all.amps();
            if let Err(e) = engine::validate_settings(&saved, wiring, &engine_cfg.policy) {
                eprintln!(
                    "error: the saved settings in {} do not fit the configuration: {e}; fix or delete the file",
                    store.path().display()
                );
                return Ok(ExitCode::from(2));
            }
            info!(path = %store.path().display(), "Loaded saved settings");
            saved
        }
        Ok(None) => Settings {
            non_scheduled_action: s.non_scheduled_action.clone(),
            non_scheduled_amps: s.non_scheduled_amps,
            ..Settings::default()
        },
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    engine_cfg.settings_store = Some(store);
    // From here on a signal means a clean stop, never the default action (SIGHUP would kill).
    let mut signals = Signals::install().context("installing signal handlers")?;
    // Control surfaces that cannot start are a start-up error, reported before the engine
    // sends anything on the bus.
    let mut controls = Vec::new();
    for c in built.controls {
        match start_control(c).await {
            Ok(c) => controls.push(c),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    // The sinks' health, for Status and /metrics: one handle for this runtime. (The HTTP surface
    // still reads it through `twc_core::logging::all_sinks()`; it becomes `SinkSet::new()` once
    // that reads `Status::sinks`.)
    let sink_set = twc_core::logging::all_sinks();
    engine_cfg.sinks = sink_set.clone();
    // Each event sink gets its own bounded queue with a spill file: a slow or failing sink never
    // blocks the engine, and records wait for it instead of being lost. They subscribe before
    // the engine's loop runs, so they see its first events too.
    let sink_opts = SinkOptions {
        queue_capacity: built.resolved.sink_queue_capacity,
        spill_dir: Some(PathBuf::from(&built.resolved.sink_spill_dir)),
        ..SinkOptions::default()
    };
    let mut sinks = Vec::new();
    let mut history = None;
    let loggers = built.loggers;
    let eng = engine::spawn_with(engine_cfg, built.comms, built.sources, settings, |handle| {
        for (name, logger) in loggers {
            if history.is_none() {
                history = logger.history();
            }
            let sink =
                twc_core::logging::spawn_engine_sink(handle, name, logger, sink_opts.clone());
            sink_set.add(sink.watcher());
            sinks.push(sink);
        }
    });
    let handle = eng.handle.clone();
    for (name, p) in built.publishers {
        let every = p.min_interval().unwrap_or(Duration::from_secs(1));
        engine::spawn_publisher(&handle, name, p, every);
    }
    for (name, mut c) in controls {
        if let Some(h) = &history {
            c.set_history(h.clone());
        }
        let h = handle.clone();
        tokio::spawn(async move {
            if let Err(e) = c.serve(h).await {
                error!(control = %name, error = %e.chain(), "Control surface stopped");
            }
        });
    }
    let mut engine_task = eng.task;
    let stopped_by = tokio::select! {
        sig = signals.recv() => Ok(sig),
        r = &mut engine_task => Err(r),
    };
    let code = match stopped_by {
        Ok(signal) => {
            info!(
                signal,
                "Signal received; offering 0 A to every slave before exiting"
            );
            match tokio::time::timeout(
                built.resolved.engine.shutdown_timeout + Duration::from_secs(5),
                handle.command(Command::Shutdown),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(error = %e, "Shutdown command failed"),
                Err(_) => warn!("Shutdown took too long; exiting anyway"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(3), engine_task).await;
            ExitCode::SUCCESS
        }
        // The engine ends only on Command::Shutdown, which a control surface sent (the 0 A
        // offer is done): end the process too, rather than stay up with no engine.
        Err(Ok(())) => {
            info!(
                code = EXIT_STOPPED_BY_COMMAND,
                "Engine stopped by a control command; flushing the event sinks and exiting"
            );
            ExitCode::from(EXIT_STOPPED_BY_COMMAND)
        }
        Err(Err(e)) => {
            error!(error = %e, "The engine failed; flushing the event sinks and exiting");
            ExitCode::FAILURE
        }
    };
    let n = sinks.len();
    for sink in sinks {
        // Writes what it can, saves the rest to its spill file for the next start.
        sink.close().await;
    }
    info!(sinks = n, "Event sinks flushed");
    info!("Stopped");
    Ok(code)
}

/// Prepare a control surface before the engine starts. The web UI binds its port here, so a
/// taken port ends the start-up (naming the key and the fix) instead of leaving a bus master
/// without its UI. Other surfaces have nothing that can fail at start-up: the MQTT one connects
/// in the background and retries while the broker is away.
async fn start_control(
    c: Control,
) -> Result<(String, Box<dyn twc_core::plugin::ControlSurface>), String> {
    #[cfg(feature = "control-http")]
    if c.name == "http" {
        let cfg = twc_control_http::HttpConfig::from_plugin_config(&c.config)
            .map_err(|e| e.to_string())?;
        let bound = twc_control_http::HttpControl::new(cfg)
            .bind()
            .await
            .map_err(|e| {
                // The context already names the section; drop the "http: " prefix.
                let chain = e.chain();
                chain
                    .strip_prefix(&format!("{}: ", e.plugin))
                    .map(str::to_string)
                    .unwrap_or(chain)
            })?;
        return Ok((c.name, Box::new(bound)));
    }
    let _ = &c.config;
    Ok((c.name, c.surface))
}

async fn spy(args: SpyArgs, registry: &Registry) -> anyhow::Result<ExitCode> {
    let (name, values) = match (&args.port, &args.tcp) {
        (Some(port), _) => (
            "rs485",
            serde_json::json!({ "port": port, "baud": args.baud }),
        ),
        (None, Some(addr)) => ("tcp", serde_json::json!({ "connect": addr })),
        (None, None) => anyhow::bail!("spy: give --port DEVICE or --tcp HOST:PORT"),
    };
    let Some(plugin) = registry.comms.get(name) else {
        anyhow::bail!(
            "spy: the {name} transport is not compiled in; rebuild with feature `comms-{name}`"
        );
    };
    let serde_json::Value::Object(values) = values else {
        anyhow::bail!("spy: internal error building the {name} config");
    };
    let cfg = twc_core::plugin::PluginConfig::new(format!("comms.{name}"), values);
    let mut comms = (plugin.build)(&cfg).map_err(|e| anyhow::anyhow!("spy: {e}"))?;
    let mut signals = Signals::install().context("installing signal handlers")?;
    eprintln!(
        "Listening on {} (never transmitting); Ctrl-C to stop",
        comms.describe()
    );
    let opts = twc_core::spy::SpyOptions {
        hex: !args.no_hex,
        limit: args.count,
    };
    tokio::select! {
        r = twc_core::spy::run(comms.as_mut(), opts, |line| println!("{line}")) => {
            r.map_err(|e| anyhow::anyhow!("spy: {}", e.chain()))?;
        }
        _ = signals.recv() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The signals that stop the daemon cleanly: SIGINT, SIGTERM and SIGHUP (no reload: a changed
/// configuration takes a restart). Installed once, so none of them can kill the process by its
/// default action while it runs.
struct Signals {
    #[cfg(unix)]
    unix: [(tokio::signal::unix::Signal, &'static str); 3],
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                unix: [
                    (signal(SignalKind::interrupt())?, "SIGINT"),
                    (signal(SignalKind::terminate())?, "SIGTERM"),
                    (signal(SignalKind::hangup())?, "SIGHUP"),
                ],
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The name of the next signal received.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let [(int, a), (term, b), (hup, c)] = &mut self.unix;
            tokio::select! {
                _ = int.recv() => a,
                _ = term.recv() => b,
                _ = hup.recv() => c,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use twc_core::plugin::Registry;

    /// The registry holds exactly the plugins the enabled features name: a feature without its
    /// link line, or a plugin missing from `KNOWN_PLUGINS`, fails here.
    #[test]
    fn registry_matches_enabled_features() {
        let registry = Registry::collect().expect("no duplicate plugin names");
        let got: BTreeSet<String> = registry
            .list()
            .into_iter()
            .map(|(k, n, _)| format!("{k}-{n}"))
            .collect();
        let expected: BTreeSet<String> = crate::build::ENABLED_FEATURES
            .iter()
            .filter(|f| {
                crate::config::KNOWN_PLUGINS
                    .iter()
                    .any(|(k, n)| format!("{k}-{n}") == **f)
            })
            .map(|f| f.to_string())
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_default_config_is_valid_apart_from_the_transport() {
        let registry = Registry::collect().expect("registry");
        let raw = crate::config::load(None).expect("default.toml parses");
        match crate::config::resolve(raw, &registry) {
            Ok(_) => panic!("no transport is enabled by default, so resolving must fail"),
            Err(errors) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                assert!(
                    errors[0].starts_with("[comms] exactly one bus transport"),
                    "{errors:?}"
                );
            }
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_the_key() {
        let registry = Registry::collect().expect("registry");
        let dir = std::env::temp_dir().join(format!("twc-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.toml");
        std::fs::write(
            &f,
            "[wiring]\nmax_amps_all_twcs = -5\nmax_amps_per_twc = 16\nmin_amps_per_twc = 32\n\
             [site]\nphases = 2\nvoltgae = 230\n[master]\ntwcid = \"XYZ\"\n[bogus]\nx = 1\n\
             [ems.nosuchthing]\nenabled = true\n",
        )
        .unwrap();
        let raw = crate::config::load(Some(&f)).expect("parses as TOML");
        let errors = crate::config::resolve(raw, &registry).expect_err("invalid");
        let all = errors.join("\n");
        for needle in [
            "[bogus] is not a known section",
            "[site] unknown field `voltgae`",
            "[master] twcid",
            "[ems.nosuchthing] unknown ems plugin",
            "[comms] exactly one bus transport",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn safety_escalation_keys_are_checked_and_reach_the_master() {
        let registry = Registry::collect().expect("registry");
        let mut raw = crate::config::load(None).expect("defaults");
        raw["comms"]["dummy"] = serde_json::json!({ "enabled": true });
        raw["master"]["follow_grace_secs"] = serde_json::json!(0);
        raw["master"]["escalate_stop_secs"] = serde_json::json!(3);
        raw["master"]["max_pending_commands"] = serde_json::json!(0);
        let all = crate::config::resolve(raw.clone(), &registry)
            .expect_err("invalid")
            .join("\n");
        for needle in [
            "[master] follow_grace_secs = 0",
            "[master] max_pending_commands = 0",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        raw["master"]["follow_grace_secs"] = serde_json::json!(10);
        raw["master"]["escalate_stop_secs"] = serde_json::json!(0);
        raw["master"]["max_pending_commands"] = serde_json::json!(4);
        let ok = crate::config::resolve(raw, &registry).expect("valid");
        let m = &ok.engine.master;
        assert_eq!(
            (
                m.follow_grace.as_secs(),
                m.escalate_stop_after,
                m.max_pending_commands
            ),
            (10, None, 4)
        );
    }

    #[test]
    fn site_sources_must_name_enabled_sources() {
        let registry = Registry::collect().expect("registry");
        let mut raw = crate::config::load(None).expect("defaults");
        raw["comms"]["dummy"] = serde_json::json!({ "enabled": true });
        raw["site"]["sources"] = serde_json::json!({ "generation": "fronius" });
        let errors = crate::config::resolve(raw, &registry).expect_err("fronius is not enabled");
        assert!(
            errors.iter().any(|e| e.contains("site.sources.generation")),
            "{errors:?}"
        );
    }
}
