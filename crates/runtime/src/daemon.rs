//! `twcmanager run` as a library: a configuration file in, the runtime assembled from the linked
//! plugins, run until a signal, stopped in order.

use crate::config::{self, Resolved};
use crate::{LOG_TARGET, Parts, Signals, Stopped};
use std::path::Path;
use tracing::info;
use twc_core::engine::{self, SourceSpec};
use twc_core::model::Settings;
use twc_core::plugin::{
    BuildError, Comms, ControlSurface, Kind, Logger, PluginConfig, Registry, StatusPublisher,
};
use twc_core::settings_store::SettingsStore;

/// The plugins of a configuration, built and ready to start.
pub struct Built {
    /// The resolved configuration.
    pub resolved: Resolved,
    comms: Box<dyn Comms>,
    sources: Vec<SourceSpec>,
    controls: Vec<(String, Box<dyn ControlSurface>)>,
    loggers: Vec<(String, Box<dyn Logger>)>,
    publishers: Vec<(String, Box<dyn StatusPublisher>)>,
    vehicles: Vec<(String, Box<dyn twc_core::plugin::VehicleApi>)>,
    vehicles_config: twc_core::vehicles::VehiclesConfig,
    tariffs: Vec<(String, Box<dyn twc_core::plugin::TariffSource>)>,
    forecasts: Vec<(String, Box<dyn twc_core::plugin::SolarForecast>)>,
}

/// Load `file` over the defaults (`None` = defaults and environment only), resolve it against
/// the linked plugins (`known`: see [`config::resolve`]) and build every enabled plugin. On
/// error, every problem found.
pub fn build(
    file: Option<&Path>,
    registry: &Registry,
    known: &[(Kind, &str)],
) -> Result<Built, Vec<String>> {
    let raw = config::load(file)?;
    let resolved = config::resolve(raw, registry, known)?;
    let mut errors = Vec::new();
    let mut comms = None;
    let mut sources = Vec::new();
    let mut controls = Vec::new();
    let mut loggers = Vec::new();
    let mut publishers = Vec::new();
    let mut vehicles = Vec::new();
    let mut tariffs = Vec::new();
    let mut forecasts = Vec::new();
    // The web API's getConfig shows the effective configuration (secrets scrubbed there).
    let effective = std::sync::Arc::new(resolved.raw.clone());
    for p in &resolved.plugins {
        let name = p.name.as_str();
        let mut cfg = p.config.clone();
        cfg.effective_config = Some(effective.clone());
        let cfg = &cfg;
        let r: Result<(), BuildError> = match p.kind {
            Kind::Comms => (registry.comms[name].build)(cfg).map(|c| comms = Some(c)),
            Kind::Ems => (registry.ems[name].build)(cfg).map(|s| {
                sources.push(SourceSpec {
                    name: p.name.clone(),
                    source: s,
                    poll: p.poll.expect("ems plugins have poll settings"),
                })
            }),
            Kind::Control => {
                (registry.control[name].build)(cfg).map(|c| controls.push((p.name.clone(), c)))
            }
            Kind::Logging => {
                (registry.logging[name].build)(cfg).map(|l| loggers.push((p.name.clone(), l)))
            }
            Kind::Status => {
                (registry.status[name].build)(cfg).map(|s| publishers.push((p.name.clone(), s)))
            }
            Kind::Vehicle => {
                (registry.vehicle[name].build)(cfg).map(|v| vehicles.push((p.name.clone(), v)))
            }
            Kind::Tariff => {
                (registry.tariff[name].build)(cfg).map(|t| tariffs.push((p.name.clone(), t)))
            }
            Kind::Forecast => {
                (registry.forecast[name].build)(cfg).map(|f| forecasts.push((p.name.clone(), f)))
            }
        };
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    }
    // `[policy] webhooks` (the keys TWCManager users know) go to the webhook status plugin: the
    // engine only computes the policy, it makes no HTTP calls.
    let rules = &resolved.engine.policy.rules;
    if !rules.webhooks.is_empty() {
        match registry.status.get("webhook") {
            Some(plugin) => {
                let mut values = serde_json::Map::new();
                values.insert(
                    "webhooks".into(),
                    serde_json::to_value(&rules.webhooks).unwrap_or_default(),
                );
                values.insert("timeout_secs".into(), rules.webhook_timeout_secs.into());
                match (plugin.build)(&PluginConfig::new("policy", values)) {
                    Ok(p) => publishers.push(("webhook".to_string(), p)),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            None => errors.push(
                "[policy] webhooks are set but the webhook plugin is not compiled into this binary; rebuild with feature `status-webhook`".to_string(),
            ),
        }
    }
    let vehicles_config = match twc_core::vehicles::VehiclesConfig::from_root(&resolved.raw) {
        Ok(c) => c,
        Err(e) => {
            errors.extend(e);
            Default::default()
        }
    };
    match (errors.is_empty(), comms) {
        (true, Some(comms)) => Ok(Built {
            vehicles,
            tariffs,
            forecasts,
            vehicles_config,
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

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failed {
    /// Exit status: 2 for saved settings that do not fit the configuration, 1 otherwise.
    pub code: u8,
    /// What failed, naming the file or key and the fix.
    pub message: String,
}

/// Run `built` until a signal or a control command stops it. `config` names the file in the
/// start-up log line. Installs the signal handlers (from here on a signal means a clean stop).
pub async fn run(built: Built, config: Option<&Path>) -> Result<Stopped, Failed> {
    let names: Vec<String> = built
        .resolved
        .plugins
        .iter()
        .map(|p| format!("{}.{}", p.kind, p.name))
        .collect();
    info!(
        target: LOG_TARGET,
        config = %config.map(|p| p.display().to_string()).unwrap_or_else(|| "built-in defaults".into()),
        plugins = %names.join(", "),
        "twcmanager {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let mut engine_cfg = built.resolved.engine.clone();
    let settings = load_settings(&built.resolved, &mut engine_cfg)?;
    let mut signals = Signals::install().map_err(|e| Failed {
        code: 1,
        message: format!("installing signal handlers: {e}"),
    })?;
    let parts = Parts {
        sink_options: crate::sink_options(&built.resolved),
        controls: built.controls,
        loggers: built.loggers,
        publishers: built.publishers,
        sources: built.sources,
        vehicles: built.vehicles,
        vehicles_config: built.vehicles_config,
        tariffs: built.tariffs,
        forecasts: built.forecasts,
        ..Parts::new(engine_cfg, built.comms, settings)
    };
    let running = crate::start(parts).await.map_err(|e| Failed {
        code: 1,
        message: e.message,
    })?;
    Ok(running.run_until(signals.recv()).await)
}

/// Check the saved settings file of a resolved configuration (when it exists) against its
/// limits, as `run` does at start; for `import-config` and tools.
pub fn check_saved_settings(resolved: &Resolved) -> Result<(), String> {
    let mut cfg = resolved.engine.clone();
    load_settings(resolved, &mut cfg)
        .map(|_| ())
        .map_err(|e| e.message)
}

/// Runtime settings: the saved file wins over `[settings]`' initial values. Sets the engine's
/// store, so changes are saved.
fn load_settings(
    resolved: &Resolved,
    engine_cfg: &mut twc_core::engine::EngineConfig,
) -> Result<Settings, Failed> {
    let s = &resolved.settings;
    let store = SettingsStore::new(&s.path);
    let settings = match store.load() {
        Ok(Some(saved)) => {
            let wiring = engine_cfg.master.wiring_max_all.amps();
            if let Err(e) = engine::validate_settings(&saved, wiring, &engine_cfg.policy) {
                return Err(Failed {
                    code: 2,
                    message: format!(
                        "the saved settings in {} do not fit the configuration: {e}; fix or delete the file",
                        store.path().display()
                    ),
                });
            }
            info!(target: LOG_TARGET, path = %store.path().display(), "Loaded saved settings");
            Settings {
                home: saved.home.or(s.home),
                ..saved
            }
        }
        Ok(None) => Settings {
            non_scheduled_action: s.non_scheduled_action.clone(),
            non_scheduled_amps: s.non_scheduled_amps,
            home: s.home,
            ..Settings::default()
        },
        Err(e) => {
            return Err(Failed {
                code: 2,
                message: e.to_string(),
            });
        }
    };
    engine_cfg.settings_store = Some(store);
    Ok(settings)
}
