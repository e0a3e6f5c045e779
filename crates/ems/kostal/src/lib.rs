#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError};
use twc_plugin_kit::ParseError;
use twc_plugin_kit::modbus::{ModbusTcp, WordOrder, check_address, f32_from, i16_from, pair};

/// Registry name.
pub const NAME: &str = "kostal";
/// Register telling the word order of floats (0 = CDAB, 1 = ABCD).
pub const REG_BYTE_ORDER: u16 = 5;
/// Start of the power block (100 total DC power … 116 home consumption from PV).
pub const REG_POWER_BLOCK: u16 = 100;
/// Start of the phase block (150 cos phi … 170 voltage phase 3).
pub const REG_PHASE_BLOCK: u16 = 150;
/// Powermeter total active power (+ import).
pub const REG_GRID: u16 = 252;
/// Battery state of charge (U16, %).
pub const REG_BATTERY_SOC: u16 = 514;
/// Battery power (S16, W, + discharge).
pub const REG_BATTERY_POWER: u16 = 582;

/// Word order setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrderSetting {
    /// Read register 5 once and follow it.
    #[default]
    Auto,
    /// Big-endian (SunSpec setting).
    Abcd,
    /// Word-swapped (Kostal's default "little-endian").
    Cdab,
}

/// `[ems.kostal]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KostalConfig {
    /// Inverter `host:port` (Modbus TCP enabled on the inverter; port 1502).
    pub modbus: String,
    /// Modbus unit id.
    #[serde(default = "unit")]
    pub unit: u8,
    /// Word order of float registers.
    #[serde(default)]
    pub word_order: OrderSetting,
    /// Read the battery (PLENTICORE with battery): SOC (514) and power (582).
    #[serde(default)]
    pub battery: bool,
    /// Timeout, seconds.
    #[serde(default = "timeout")]
    pub modbus_timeout_secs: f64,
}

fn unit() -> u8 {
    71
}
fn timeout() -> f64 {
    3.0
}

/// The word order register 5 announces.
pub fn decode_order(reg5: u16) -> Result<WordOrder, ParseError> {
    match reg5 {
        0 => Ok(WordOrder::Cdab),
        1 => Ok(WordOrder::Abcd),
        x => Err(ParseError::protocol(format!(
            "register 5 (byte order) is {x}, expected 0 or 1"
        ))),
    }
}

fn float(block: &[u16], base: u16, reg: u16, order: WordOrder) -> Result<f64, ParseError> {
    let v = f64::from(f32_from(pair(block, usize::from(reg - base))?, order));
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ParseError::protocol(format!(
            "register {reg} is not a finite float"
        )))
    }
}

/// Decode the power block (18 registers from 100), the grid pair (252) and the phase block
/// (22 registers from 150). Generation = total DC power (100, as TWCManager; the AC figure at 172
/// would include battery discharge); consumption = home from battery (106) + grid (108) + PV (116);
/// grid = powermeter (252, + import); voltages 158/164/170.
pub fn decode(
    power: &[u16],
    grid: &[u16],
    phases: &[u16],
    order: WordOrder,
) -> Result<EnergyReading, ParseError> {
    let p = |reg| float(power, REG_POWER_BLOCK, reg, order);
    let generation = p(100)?.max(0.0);
    let consumption = p(106)? + p(108)? + p(116)?;
    let grid = float(grid, REG_GRID, REG_GRID, order)?;
    let volts: Vec<f64> = [158, 164, 170]
        .into_iter()
        .map(|r| float(phases, REG_PHASE_BLOCK, r, order))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|v| *v > 50.0)
        .collect();
    Ok(EnergyReading {
        generation_w: Some(generation),
        consumption_w: Some(consumption.max(0.0)),
        grid_w: Some(grid),
        phase_voltages: (!volts.is_empty()).then_some(volts),
        ..EnergyReading::default()
    })
}

/// The running source.
pub struct Kostal {
    bus: ModbusTcp,
    setting: OrderSetting,
    /// 0 unknown, 1 ABCD, 2 CDAB.
    detected: AtomicU8,
    battery: bool,
}

impl Kostal {
    async fn order(&self) -> Result<WordOrder, PluginError> {
        match self.setting {
            OrderSetting::Abcd => return Ok(WordOrder::Abcd),
            OrderSetting::Cdab => return Ok(WordOrder::Cdab),
            OrderSetting::Auto => {}
        }
        match self.detected.load(Ordering::Relaxed) {
            1 => return Ok(WordOrder::Abcd),
            2 => return Ok(WordOrder::Cdab),
            _ => {}
        }
        let r = self.bus.read_holding(REG_BYTE_ORDER, 1).await?;
        let o = decode_order(r.first().copied().unwrap_or(u16::MAX))
            .map_err(|e| e.into_plugin(NAME, "modbus"))?;
        self.detected
            .store(if o == WordOrder::Abcd { 1 } else { 2 }, Ordering::Relaxed);
        Ok(o)
    }
}

#[async_trait]
impl EmsSource for Kostal {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let order = self.order().await?;
        let power = self.bus.read_holding(REG_POWER_BLOCK, 18).await?;
        // The registers carry no time: the first (oldest) answer dates the reading.
        let at = tokio::time::Instant::now();
        let grid = self.bus.read_holding(REG_GRID, 2).await?;
        let phases = self.bus.read_holding(REG_PHASE_BLOCK, 22).await?;
        let mut r =
            decode(&power, &grid, &phases, order).map_err(|e| e.into_plugin(NAME, "modbus"))?;
        if self.battery {
            let soc = self.bus.read_holding(REG_BATTERY_SOC, 1).await?;
            let bat = self.bus.read_holding(REG_BATTERY_POWER, 1).await?;
            r.battery_soc_pct = soc.first().map(|s| f64::from(*s));
            r.battery_w = bat.first().map(|b| f64::from(i16_from(*b)));
        }
        r.measured_at = at;
        Ok(r)
    }
}

/// Build from `[ems.kostal]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: KostalConfig = cfg.parse()?;
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
    Ok(Box::new(Kostal {
        bus: ModbusTcp::new(
            NAME,
            &c.modbus,
            c.unit,
            Duration::from_secs_f64(c.modbus_timeout_secs),
        ),
        setting: c.word_order,
        detected: AtomicU8::new(0),
        battery: c.battery,
    }))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "KOSTAL PLENTICORE plus / PIKO IQ over Modbus TCP",
        example: include_str!("../example.toml"), build }
}
