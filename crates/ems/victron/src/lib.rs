#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError};
use twc_plugin_kit::ParseError;
use twc_plugin_kit::modbus::{ModbusTcp, check_address, i16_from};

/// The registry name: the section is `[ems.victron]`, the bin's feature `ems-victron`.
pub const NAME: &str = "victron";
/// Unit id of `com.victronenergy.system` on a GX device.
pub const SYSTEM_UNIT: u8 = 100;
/// First register of the system block read in one request: 808 PV AC-coupled on output L1 …
/// 822 grid L3.
pub const REG_SYSTEM_BLOCK: u16 = 808;
/// Registers in the system block (808..=822).
pub const SYSTEM_BLOCK_LEN: u16 = 15;
/// Battery power (int16, W, + charging) and state of charge (uint16, %): 842, 843.
pub const REG_BATTERY: u16 = 842;
/// PV DC-coupled power (uint16, W).
pub const REG_PV_DC: u16 = 850;
/// First register of the grid meter block (`com.victronenergy.grid`): 2600 L1 power …
/// 2621 L3 current.
pub const REG_GRID_METER_BLOCK: u16 = 2600;
/// Registers in the grid meter block (2600..=2621).
pub const GRID_METER_BLOCK_LEN: u16 = 22;

/// Where PV power is measured in a Victron system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PvSource {
    /// AC-coupled PV inverters on the inverter/charger's output (808–810).
    AcOutput,
    /// AC-coupled PV inverters on its input, the grid side (811–813).
    AcInput,
    /// DC-coupled PV: solar chargers (850).
    Dc,
}

fn all_pv() -> Vec<PvSource> {
    vec![PvSource::AcOutput, PvSource::AcInput, PvSource::Dc]
}
fn system_unit() -> u8 {
    SYSTEM_UNIT
}
fn yes() -> bool {
    true
}
fn three() -> u8 {
    3
}
fn timeout() -> f64 {
    3.0
}

/// `[ems.victron]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VictronConfig {
    /// The GX device's `host:port` (Modbus TCP service enabled; port 502).
    pub modbus: String,
    /// Unit id of `com.victronenergy.system` (100; 0 is the same service).
    #[serde(default = "system_unit")]
    pub unit: u8,
    /// Which PV measurements make up generation (default: all three).
    #[serde(default = "all_pv")]
    pub pv_sources: Vec<PvSource>,
    /// Read battery power and state of charge (842, 843).
    #[serde(default = "yes")]
    pub battery: bool,
    /// Unit id of the grid meter (`com.victronenergy.grid`), for per-phase currents and voltages;
    /// none = no per-phase values.
    #[serde(default)]
    pub grid_meter_unit: Option<u8>,
    /// Phases of the grid connection (1–3): how many per-phase values the grid meter gives.
    #[serde(default = "three")]
    pub phases: u8,
    /// Timeout of each Modbus step, seconds.
    #[serde(default = "timeout")]
    pub modbus_timeout_secs: f64,
}

/// A uint16 watt register; 0xFFFF is "not available".
fn u16_value(reg: u16) -> Option<f64> {
    (reg != u16::MAX).then_some(f64::from(reg))
}

/// An int16 register; 0x7FFF and 0x8000 are "not available".
fn i16_value(reg: u16) -> Option<f64> {
    let v = i16_from(reg);
    (v != i16::MAX && v != i16::MIN).then_some(f64::from(v))
}

/// Sum of the registers, or `None` when any of them is "not available".
fn sum(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().sum()
}

fn at(block: &[u16], start: u16, reg: u16) -> Result<u16, ParseError> {
    block
        .get(usize::from(reg - start))
        .copied()
        .ok_or_else(|| ParseError::protocol(format!("register {reg} missing from the answer")))
}

fn pair(block: &[u16], start: u16) -> Result<[u16; 2], ParseError> {
    Ok([at(block, start, start)?, at(block, start, start + 1)?])
}

/// Decode the system block (808..=822), the battery pair (842, 843) and the DC PV register (850)
/// into a reading. Generation sums the selected PV measurements, consumption the three AC
/// consumption phases (positive, unlike TWCManager), grid the three grid phases (+ import);
/// battery power is turned to + discharging. A value the GX marks "not available" is missing,
/// never 0; a reading with no power value at all is an error.
pub fn decode_system(
    system: &[u16],
    battery: Option<[u16; 2]>,
    pv_dc: Option<u16>,
    pv_sources: &[PvSource],
) -> Result<EnergyReading, ParseError> {
    let reg = |r| at(system, REG_SYSTEM_BLOCK, r);
    let mut gen_parts = Vec::new();
    for src in pv_sources {
        match src {
            PvSource::AcOutput => {
                for r in 808..=810 {
                    gen_parts.push(u16_value(reg(r)?));
                }
            }
            PvSource::AcInput => {
                for r in 811..=813 {
                    gen_parts.push(u16_value(reg(r)?));
                }
            }
            PvSource::Dc => gen_parts.push(pv_dc.and_then(u16_value)),
        }
    }
    let generation = if gen_parts.is_empty() {
        None
    } else {
        sum(gen_parts)
    };
    let consumption = sum((817..=819)
        .map(|r| reg(r).map(u16_value))
        .collect::<Result<Vec<_>, _>>()?);
    let grid = sum((820..=822)
        .map(|r| reg(r).map(i16_value))
        .collect::<Result<Vec<_>, _>>()?);
    let (battery_w, soc) = match battery {
        None => (None, None),
        Some([p, s]) => {
            let soc = u16_value(s);
            if let Some(pct) = soc
                && pct > 100.0
            {
                return Err(ParseError::protocol(format!(
                    "register 843 (state of charge) is {pct}, not a percentage"
                )));
            }
            // The GX counts battery power + when charging; ours is + when discharging.
            (i16_value(p).map(|w| -w), soc)
        }
    };
    if generation.is_none() && consumption.is_none() && grid.is_none() && battery_w.is_none() {
        return Err(ParseError::protocol(
            "every power register reads \"not available\"",
        ));
    }
    Ok(EnergyReading {
        generation_w: generation,
        consumption_w: consumption,
        grid_w: grid,
        battery_w,
        battery_soc_pct: soc,
        ..EnergyReading::default()
    })
}

/// Per-phase voltages (V) and currents (A, + import), each `None` when not all phases are known.
pub type PhaseValues = (Option<Vec<f64>>, Option<Vec<f64>>);

/// Decode the grid meter block (2600..=2621) into per-phase voltages and currents for the first
/// `phases` phases. The meter's currents may be magnitudes, so each current takes the sign of its
/// phase's power (+ import); a phase marked "not available" drops the whole list (never a shifted
/// or zero phase).
pub fn decode_grid_meter(meter: &[u16], phases: u8) -> Result<PhaseValues, ParseError> {
    let reg = |r| at(meter, REG_GRID_METER_BLOCK, r);
    let mut volts = Vec::new();
    let mut amps = Vec::new();
    for i in 0..u16::from(phases) {
        let power = i16_value(reg(2600 + i)?);
        volts.push(u16_value(reg(2616 + 2 * i)?).map(|v| v / 10.0));
        amps.push(
            i16_value(reg(2617 + 2 * i)?)
                .zip(power)
                .map(|(a, p)| (a / 10.0).abs() * if p < 0.0 { -1.0 } else { 1.0 }),
        );
    }
    Ok((volts.into_iter().collect(), amps.into_iter().collect()))
}

/// The running source.
pub struct Victron {
    bus: ModbusTcp,
    config: VictronConfig,
}

impl Victron {
    fn err(e: ParseError) -> PluginError {
        e.into_plugin(NAME, "modbus")
    }
}

#[async_trait]
impl EmsSource for Victron {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let c = &self.config;
        let system = self
            .bus
            .read_input(REG_SYSTEM_BLOCK, SYSTEM_BLOCK_LEN)
            .await?;
        // The registers carry no time: the first answer dates the reading.
        let measured_at = tokio::time::Instant::now();
        let battery = if c.battery {
            let r = self.bus.read_input(REG_BATTERY, 2).await?;
            Some(pair(&r, REG_BATTERY).map_err(Self::err)?)
        } else {
            None
        };
        let pv_dc = if c.pv_sources.contains(&PvSource::Dc) {
            let r = self.bus.read_input(REG_PV_DC, 1).await?;
            Some(at(&r, REG_PV_DC, REG_PV_DC).map_err(Self::err)?)
        } else {
            None
        };
        let mut r = decode_system(&system, battery, pv_dc, &c.pv_sources).map_err(Self::err)?;
        if let Some(unit) = c.grid_meter_unit {
            let meter = self
                .bus
                .read_input_from(unit, REG_GRID_METER_BLOCK, GRID_METER_BLOCK_LEN)
                .await?;
            let (volts, amps) = decode_grid_meter(&meter, c.phases).map_err(Self::err)?;
            r.phase_voltages = volts;
            r.phase_currents_a = amps;
        }
        r.measured_at = measured_at;
        Ok(r)
    }
}

/// Build from `[ems.victron]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: VictronConfig = cfg.parse()?;
    check_address(&cfg.section, "modbus", &c.modbus)?;
    if !(c.modbus_timeout_secs > 0.0 && c.modbus_timeout_secs <= 60.0) {
        return Err(BuildError::new(
            &cfg.section,
            format!(
                "modbus_timeout_secs must be between 0 and 60, got {}",
                c.modbus_timeout_secs
            ),
        ));
    }
    if !(1..=3).contains(&c.phases) {
        return Err(BuildError::new(
            &cfg.section,
            format!("phases must be 1, 2 or 3, got {}", c.phases),
        ));
    }
    let mut seen = Vec::new();
    for s in &c.pv_sources {
        if seen.contains(s) {
            return Err(BuildError::new(
                &cfg.section,
                format!(
                    "pv_sources names {s:?} twice; each of \"ac_output\", \"ac_input\", \"dc\" at most once"
                ),
            ));
        }
        seen.push(*s);
    }
    Ok(Box::new(Victron {
        bus: ModbusTcp::new(
            NAME,
            &c.modbus,
            c.unit,
            Duration::from_secs_f64(c.modbus_timeout_secs),
        ),
        config: c,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "Victron GX (Cerbo, Venus) over Modbus TCP: PV, consumption, grid, battery",
        example: include_str!("../example.toml"),
        build,
    }
}
