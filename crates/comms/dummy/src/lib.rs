#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use tokio::io::DuplexStream;
use twc_core::model::CentiAmps;
use twc_core::plugin::{BuildError, Comms, CommsPlugin, PluginConfig};
use twc_core::protocol::{ProtocolVersion, TwcId};
use twc_core::transport::StreamComms;
use twc_sim::{FleetSpec, SimHandle, duplex_pair_named};

/// Registry name and config section suffix.
pub const NAME: &str = "dummy";

/// `[comms.dummy]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DummyConfig {
    /// Number of simulated slaves (1–4; a real bus holds at most 3).
    pub slaves: usize,
    /// TWCID of each slave, in order: 4 hex digits (`"4142"`) or, as TWCManager's Dummy
    /// `twcID`, 2 ASCII characters whose bytes are the ID (`"AB"` = `4142`). Missing entries get
    /// a random ID.
    pub ids: Option<Vec<String>>,
    /// Each slave's rated maximum, A.
    pub max_amps: u16,
    /// Protocol version of every slave: 1 or 2.
    pub protocol: u8,
    /// A car plugged into each slave, in order; missing entries mean no car. Default: a car on the
    /// first slave only.
    pub cars_plugged_in: Option<Vec<bool>>,
    /// VIN of each car; `""` for a non-Tesla. Missing entries get a generated valid VIN.
    pub vins: Option<Vec<String>>,
    /// Onboard charger limit of every car, A.
    pub car_max_amps: u16,
    /// How fast a car raises its draw toward the offer, A/s.
    pub ramp_amps_per_sec: f64,
}

impl Default for DummyConfig {
    fn default() -> Self {
        DummyConfig {
            slaves: 2,
            ids: None,
            max_amps: 32,
            protocol: 2,
            cars_plugged_in: None,
            vins: None,
            car_max_amps: 32,
            ramp_amps_per_sec: 2.0,
        }
    }
}

impl DummyConfig {
    /// Parse and check a `[comms.dummy]` section; every error names the key.
    pub fn from_plugin_config(cfg: &PluginConfig) -> Result<Self, BuildError> {
        let c: DummyConfig = cfg.parse()?;
        c.validate(&cfg.section)?;
        Ok(c)
    }

    fn validate(&self, section: &str) -> Result<(), BuildError> {
        let err = |m: String| Err(BuildError::new(section, m));
        if !(1..=4).contains(&self.slaves) {
            return err(format!("slaves: expected 1 to 4, got {}", self.slaves));
        }
        if !(1..=80).contains(&self.max_amps) {
            return err(format!("max_amps: expected 1 to 80, got {}", self.max_amps));
        }
        if !matches!(self.protocol, 1 | 2) {
            return err(format!("protocol: expected 1 or 2, got {}", self.protocol));
        }
        // Per-slave lists: shorter than `slaves` is fine (the rest get the default), longer is
        // a mistake (an entry for a slave that does not exist).
        let too_long = |key: &str, n: usize| {
            err(format!(
                "{key}: {n} entries for {} slaves (set slaves = {n}, or remove entries; missing entries take the default)",
                self.slaves
            ))
        };
        if let Some(ids) = &self.ids {
            if ids.len() > self.slaves {
                return too_long("ids", ids.len());
            }
            let mut seen = Vec::new();
            for s in ids {
                let id = match parse_id(s) {
                    Ok(id) => id,
                    Err(m) => return err(format!("ids: {m}")),
                };
                if seen.contains(&id) {
                    return err(format!("ids: {id} appears twice"));
                }
                seen.push(id);
            }
        }
        if let Some(cars) = &self.cars_plugged_in
            && cars.len() > self.slaves
        {
            return too_long("cars_plugged_in", cars.len());
        }
        if let Some(vins) = &self.vins {
            if vins.len() > self.slaves {
                return too_long("vins", vins.len());
            }
            for v in vins {
                if !v.is_empty() && (v.len() != 17 || !v.is_ascii()) {
                    return err(format!(
                        "vins: expected 17 ASCII characters or \"\" (non-Tesla), got {v:?}"
                    ));
                }
            }
        }
        if !(1..=80).contains(&self.car_max_amps) {
            return err(format!(
                "car_max_amps: expected 1 to 80, got {}",
                self.car_max_amps
            ));
        }
        if !self.ramp_amps_per_sec.is_finite() || self.ramp_amps_per_sec <= 0.0 {
            return err(format!(
                "ramp_amps_per_sec: expected a number > 0, got {}",
                self.ramp_amps_per_sec
            ));
        }
        Ok(())
    }

    /// The simulated slaves this config describes.
    pub fn fleet(&self) -> FleetSpec {
        FleetSpec {
            count: self.slaves,
            version: if self.protocol == 1 {
                ProtocolVersion::V1
            } else {
                ProtocolVersion::V2
            },
            max_amps: CentiAmps::from_amps(self.max_amps),
            plugged_in: self.cars_plugged_in.clone().unwrap_or_else(|| vec![true]),
            vins: self
                .vins
                .iter()
                .flatten()
                .map(|v| (!v.is_empty()).then(|| v.to_ascii_uppercase()))
                .collect(),
            car_max_amps: CentiAmps::from_amps(self.car_max_amps),
            ramp_amps_per_sec: self.ramp_amps_per_sec,
            // Checked by `validate`; an unparsable entry (unvalidated config) is left random.
            ids: self
                .ids
                .iter()
                .flatten()
                .map_while(|s| parse_id(s).ok())
                .collect(),
            ..FleetSpec::default()
        }
    }
}

/// A TWCID from the `ids` key: 4 hex digits, or TWCManager's 2-character `twcID` whose ASCII
/// bytes are the ID (`"AB"` → `4142`).
pub fn parse_id(s: &str) -> Result<TwcId, String> {
    let t = s.trim();
    let id = match t.as_bytes() {
        [a, b] if t.is_ascii() => TwcId::from_u16(u16::from_be_bytes([*a, *b])),
        _ => t.parse::<TwcId>().map_err(|_| {
            format!(
                "expected 4 hex digits (\"4142\") or 2 ASCII characters as TWCManager's twcID (\"AB\"), got {s:?}"
            )
        })?,
    };
    if matches!(id.as_u16(), 0x0000 | 0xFFFF) {
        return Err(format!(
            "{id} is reserved (0000 and FFFF are not slave IDs)"
        ));
    }
    Ok(id)
}

/// Start the simulated slaves (in a spawned task) and return the master's end of the bus with a
/// handle to the slaves. Must be called inside a tokio runtime.
pub fn spawn(cfg: &DummyConfig) -> Result<(StreamComms<DuplexStream>, SimHandle), BuildError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(BuildError::new(
            format!("comms.{NAME}"),
            "the dummy bus must be built inside the tokio runtime",
        ));
    }
    let slaves = cfg.fleet().build();
    for s in &slaves {
        tracing::info!(
            kind = "comms",
            plugin = NAME,
            slave = %s.slave.id,
            protocol = s.slave.version.number(),
            max = %s.slave.max_amps,
            car = s.car.plugged_in,
            "Simulated slave on the dummy bus"
        );
    }
    Ok(duplex_pair_named(slaves, NAME))
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Comms>, BuildError> {
    let c = DummyConfig::from_plugin_config(cfg)?;
    let (comms, _handle) = spawn(&c)?;
    Ok(Box::new(comms))
}

inventory::submit!(CommsPlugin {
    name: NAME,
    summary: "Simulated TWC slaves with cars on an in-process bus (no hardware needed)",
    example: include_str!("../example.toml"),
    build,
});
