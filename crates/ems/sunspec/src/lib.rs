#![doc = include_str!("../README.md")]

pub mod map;
pub mod model;

use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::Duration;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError};
use twc_plugin_kit::ParseError;
use twc_plugin_kit::modbus::{ModbusTcp, check_address};

use map::{BASES, ModelAt, SunSpecMap, discover};
use model::{InverterValues, MeterValues, ModelKind, all_known, decode_inverter, decode_meter};

/// The registry name: the section is `[ems.sunspec]`, the bin's feature `ems-sunspec`.
pub const NAME: &str = "sunspec";

/// How the meter counts the direction of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MeterSign {
    /// + import from the grid, − export (SunSpec's convention; Fronius).
    #[default]
    ImportPositive,
    /// + export to the grid, − import (SolarEdge).
    ExportPositive,
}

fn one() -> u8 {
    1
}
fn yes() -> bool {
    true
}
fn timeout() -> f64 {
    3.0
}

/// `[ems.sunspec]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SunSpecConfig {
    /// The device's `host:port` (usually port 502; SolarEdge 1502, Kostal 1502).
    pub modbus: String,
    /// Unit id of the inverter (and of the meter unless `meter_unit` says otherwise).
    #[serde(default = "one")]
    pub unit: u8,
    /// Read an inverter model (101–103, 111–113) for generation.
    #[serde(default = "yes")]
    pub inverter: bool,
    /// Read a meter model (201–204, 211–214) at the grid connection for grid power.
    #[serde(default = "yes")]
    pub meter: bool,
    /// Unit id of the meter when it is not `unit` (Fronius: 200).
    #[serde(default)]
    pub meter_unit: Option<u8>,
    /// How the meter signs its power.
    #[serde(default)]
    pub meter_sign: MeterSign,
    /// Base address of the SunSpec map (40000, 0 or 50000); none = try each in that order.
    #[serde(default)]
    pub base_address: Option<u16>,
    /// Timeout of connecting and of each request, seconds.
    #[serde(default = "timeout")]
    pub modbus_timeout_secs: f64,
}

/// A model found in a map, with what it is.
type Found = (ModelAt, ModelKind);

/// Where the models were found (kept until a read shows the map changed).
#[derive(Debug, Default, Clone, Copy)]
struct Located {
    inverter: Option<Found>,
    meter: Option<Found>,
}

/// The running source.
pub struct SunSpec {
    bus: ModbusTcp,
    config: SunSpecConfig,
    bases: Vec<u16>,
    located: Mutex<Located>,
}

/// Combine what the inverter and the meter say into a reading in our signs: generation = the
/// inverter's AC power (≥ 0), grid = the meter's power turned to + import, consumption =
/// generation + grid when both are known; per-phase currents take the sign of their phase's
/// power (+ import), or count as import when the meter has no per-phase power; voltages come
/// from the meter, else from the inverter. A point that is not implemented is missing, never 0;
/// a reading with no power at all is an error.
pub fn combine(
    inverter: Option<&InverterValues>,
    meter: Option<&MeterValues>,
    sign: MeterSign,
) -> Result<EnergyReading, ParseError> {
    let s = match sign {
        MeterSign::ImportPositive => 1.0,
        MeterSign::ExportPositive => -1.0,
    };
    let generation = inverter.and_then(|i| i.power_w).map(|w| w.max(0.0));
    let grid = meter.and_then(|m| m.power_w).map(|w| w * s);
    if generation.is_none() && grid.is_none() {
        return Err(ParseError::protocol(
            "no power value is implemented (AC power and meter power read \"not implemented\")",
        ));
    }
    let consumption = generation.zip(grid).map(|(g, n)| (g + n).max(0.0));
    let currents = meter.and_then(|m| {
        let signed: Vec<Option<f64>> = m
            .phase_currents_a
            .iter()
            .zip(&m.phase_power_w)
            .map(|(a, p)| {
                a.map(|a| match p {
                    Some(p) if p * s < 0.0 => -a.abs(),
                    _ => a.abs(),
                })
            })
            .collect();
        all_known(&signed)
    });
    let volts = meter
        .and_then(|m| all_known(&m.phase_voltages))
        .or_else(|| inverter.and_then(|i| i.phase_voltages.clone()));
    Ok(EnergyReading {
        generation_w: generation,
        consumption_w: consumption,
        grid_w: grid,
        phase_voltages: volts,
        phase_currents_a: currents,
        ..EnergyReading::default()
    })
}

fn no_model(unit: u8, what: &str, ids: &str, map: &SunSpecMap) -> PluginError {
    PluginError::new(
        ErrorKind::Config,
        NAME,
        format!(
            "unit {unit}: the SunSpec map at {} has no {what} model ({ids}); models found: {}",
            map.base,
            map.ids()
        ),
    )
}

impl SunSpec {
    fn meter_unit(&self) -> u8 {
        self.config.meter_unit.unwrap_or(self.config.unit)
    }

    fn located(&self) -> Located {
        self.located.lock().map(|l| *l).unwrap_or_default()
    }

    fn store(&self, l: Located) {
        if let Ok(mut g) = self.located.lock() {
            *g = l;
        }
    }

    /// Find the models the configuration asks for, once.
    async fn locate(&self) -> Result<Located, PluginError> {
        let c = &self.config;
        let mut l = self.located();
        let need_inverter = c.inverter && l.inverter.is_none();
        let need_meter = c.meter && l.meter.is_none();
        if !need_inverter && !need_meter {
            return Ok(l);
        }
        let mut inverter_map = None;
        if need_inverter {
            let map = discover(&self.bus, c.unit, &self.bases).await?;
            let m = map
                .find(|id| ModelKind::inverter(id).is_some())
                .ok_or_else(|| no_model(c.unit, "inverter", "101-103, 111-113", &map))?;
            l.inverter = ModelKind::inverter(m.id).map(|k| (m, k));
            inverter_map = Some(map);
        }
        if need_meter {
            let unit = self.meter_unit();
            let map = match inverter_map {
                Some(map) if unit == c.unit => map,
                _ => discover(&self.bus, unit, &self.bases).await?,
            };
            let m = map
                .find(|id| ModelKind::meter(id).is_some())
                .ok_or_else(|| no_model(unit, "meter", "201-204, 211-214", &map))?;
            l.meter = ModelKind::meter(m.id).map(|k| (m, k));
        }
        self.store(l);
        Ok(l)
    }

    async fn block(&self, unit: u8, found: &Found) -> Result<Vec<u16>, PluginError> {
        self.bus
            .read_holding_from(unit, found.0.addr, found.1.registers())
            .await
    }

    /// A decode error; a model that moved makes the next read look again.
    fn decode_err(&self, unit: u8, e: ParseError) -> PluginError {
        if e.kind == ErrorKind::Transient {
            self.store(Located::default());
        }
        e.into_plugin(NAME, &format!("unit {unit}"))
    }
}

#[async_trait]
impl EmsSource for SunSpec {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let l = self.locate().await?;
        let unit = self.config.unit;
        let mut measured_at = None;
        let inverter = match &l.inverter {
            Some(found) => {
                let block = self.block(unit, found).await?;
                // The registers carry no time: the first answer dates the reading.
                measured_at.get_or_insert_with(tokio::time::Instant::now);
                Some(decode_inverter(&block, &found.1).map_err(|e| self.decode_err(unit, e))?)
            }
            None => None,
        };
        let meter = match &l.meter {
            Some(found) => {
                let unit = self.meter_unit();
                let block = self.block(unit, found).await?;
                measured_at.get_or_insert_with(tokio::time::Instant::now);
                Some(decode_meter(&block, &found.1).map_err(|e| self.decode_err(unit, e))?)
            }
            None => None,
        };
        let mut r = combine(inverter.as_ref(), meter.as_ref(), self.config.meter_sign)
            .map_err(|e| e.into_plugin(NAME, "sunspec"))?;
        if let Some(at) = measured_at {
            r.measured_at = at;
        }
        Ok(r)
    }
}

/// Build from `[ems.sunspec]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: SunSpecConfig = cfg.parse()?;
    let bad = |msg: String| BuildError::new(&cfg.section, msg);
    check_address(&cfg.section, "modbus", &c.modbus)?;
    if !(c.modbus_timeout_secs > 0.0 && c.modbus_timeout_secs <= 60.0) {
        return Err(bad(format!(
            "modbus_timeout_secs must be between 0 and 60, got {}",
            c.modbus_timeout_secs
        )));
    }
    if !c.inverter && !c.meter {
        return Err(bad(
            "inverter and meter are both false: set at least one to true".into(),
        ));
    }
    if c.meter_unit.is_some() && !c.meter {
        return Err(bad("meter_unit is set but meter = false".into()));
    }
    let bases = match c.base_address {
        None => BASES.to_vec(),
        Some(b) if BASES.contains(&b) => vec![b],
        Some(b) => {
            return Err(bad(format!(
                "base_address must be 40000, 0 or 50000 (or left out to try each), got {b}"
            )));
        }
    };
    Ok(Box::new(SunSpec {
        bus: ModbusTcp::new(
            NAME,
            &c.modbus,
            c.unit,
            Duration::from_secs_f64(c.modbus_timeout_secs),
        ),
        config: c,
        bases,
        located: Mutex::new(Located::default()),
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "SunSpec Modbus TCP inverter and meter (SMA, Fronius, SolarEdge, Kostal, …)",
        example: include_str!("../example.toml"),
        build,
    }
}
