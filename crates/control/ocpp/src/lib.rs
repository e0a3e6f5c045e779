#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use twc_core::engine::EngineHandle;
use twc_core::plugin::{
    BuildError, ControlPlugin, ControlSurface, ErrorKind, PluginConfig, PluginError, Secret,
};

mod calls;
pub mod central;
pub mod link;
pub mod profile;
pub mod rpc;
mod session;
pub mod station;
pub mod store;

/// The registry name: the section is `[control.ocpp]`, the bin's feature `control-ocpp`.
pub const NAME: &str = "ocpp";

/// What the plugin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// twcmanager is a charge point of the central system at `url`.
    #[default]
    ChargePoint,
    /// twcmanager is the central system of OCPP chargers (`[control.ocpp.central]`).
    Central,
    /// Both at once.
    Both,
}

/// `[control.ocpp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcppConfig {
    /// `charge_point`, `central` or `both`.
    pub mode: Mode,
    /// Central-system mode: chargers that connect to us.
    pub central: central::CentralConfig,
    /// The central system's endpoint, `ws://…` or `wss://…`; the charge point id is appended.
    pub url: String,
    /// Our charge point id (the last path segment of the URL, the basic-auth user by default).
    pub charge_point_id: String,
    /// Basic-auth user (security profiles 1 and 2); empty = `charge_point_id`.
    pub username: String,
    /// Basic-auth password; empty = no `Authorization` header (profile 0).
    pub password: Secret,
    /// CA certificates (PEM) for `wss://`; empty = the system's bundle.
    pub ca_file: String,
    /// BootNotification `chargePointVendor`.
    pub vendor: String,
    /// BootNotification `chargePointModel`.
    pub model: String,
    /// The idTag of a transaction that no remote start named and whose car gave no VIN.
    pub id_tag: String,
    /// Use the car's VIN as the idTag when the TWC reports it.
    pub vin_as_id_tag: bool,
    /// Send Authorize for the idTag before a transaction we start.
    pub authorize: bool,
    /// Heartbeat interval until the central system sets one, seconds.
    pub heartbeat_interval_secs: u64,
    /// MeterValues during a transaction, every this many seconds (0 = none).
    pub meter_interval_secs: u64,
    /// Where the queue of transaction messages, open transactions and charging profiles are kept.
    pub state_file: String,
    /// How long to wait for the answer to a request, seconds.
    pub call_timeout_secs: u64,
    /// Longest wait between connection attempts, seconds.
    pub reconnect_max_secs: u64,
}

impl Default for OcppConfig {
    fn default() -> Self {
        OcppConfig {
            mode: Mode::default(),
            central: central::CentralConfig::default(),
            url: "ws://127.0.0.1:9000".into(),
            charge_point_id: "twcmanager".into(),
            username: String::new(),
            password: Secret::default(),
            ca_file: String::new(),
            vendor: "twcmanager".into(),
            model: "TWC Gen2".into(),
            id_tag: "twcmanager".into(),
            vin_as_id_tag: true,
            authorize: false,
            heartbeat_interval_secs: 300,
            meter_interval_secs: 60,
            state_file: "twcmanager-ocpp.json".into(),
            call_timeout_secs: 30,
            reconnect_max_secs: 60,
        }
    }
}

/// The plugin.
pub struct Ocpp {
    cfg: OcppConfig,
    target: link::Target,
}

impl Ocpp {
    /// Check a config (`section` names it in errors).
    pub fn new(section: &str, cfg: OcppConfig) -> Result<Ocpp, BuildError> {
        let target = link::Target::new(
            section,
            &cfg.url,
            &cfg.charge_point_id,
            &cfg.username,
            cfg.password.expose(),
            &cfg.ca_file,
        )?;
        if cfg.id_tag.is_empty() || cfg.id_tag.len() > 20 {
            return Err(BuildError::new(
                section,
                format!("id_tag must be 1 to 20 characters, got {:?}", cfg.id_tag),
            ));
        }
        if cfg.state_file.is_empty() {
            return Err(BuildError::new(
                section,
                "state_file must name a file, such as \"/var/lib/twcmanager/ocpp.json\"",
            ));
        }
        if cfg.call_timeout_secs == 0 || cfg.reconnect_max_secs == 0 {
            return Err(BuildError::new(
                section,
                "call_timeout_secs and reconnect_max_secs must be at least 1",
            ));
        }
        if cfg.mode != Mode::ChargePoint {
            cfg.central.check(section)?;
        }
        Ok(Ocpp { cfg, target })
    }
}

#[twc_core::async_trait]
impl ControlSurface for Ocpp {
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        match self.cfg.mode {
            Mode::ChargePoint => self.charge_point(engine).await,
            Mode::Central => central::run(self.cfg.central.clone(), engine).await,
            Mode::Both => {
                let cs =
                    twc_core::plugin::spawn(central::run(self.cfg.central.clone(), engine.clone()));
                let r = self.charge_point(engine).await;
                cs.abort();
                r
            }
        }
    }
}

impl Ocpp {
    async fn charge_point(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        let store = store::Store::open(Path::new(&self.cfg.state_file))
            .map_err(|e| PluginError::new(ErrorKind::Config, NAME, e.to_string()))?;
        let timing = session::Timing {
            call_timeout: Duration::from_secs(self.cfg.call_timeout_secs),
            reconnect_max: Duration::from_secs(self.cfg.reconnect_max_secs),
        };
        let station = station::Station::new(self.cfg.clone(), store);
        session::run(self.target.clone(), station, engine, timing).await
    }
}

/// Build from the section.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn ControlSurface>, BuildError> {
    Ok(Box::new(Ocpp::new(&cfg.section, cfg.parse()?)?))
}

inventory::submit! {
    ControlPlugin {
        name: NAME,
        summary: "OCPP 1.6J charge point: every TWC a connector in a central system, its charging profiles a limit",
        example: include_str!("../example.toml"),
        build,
    }
}
