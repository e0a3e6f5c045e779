#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::modbus::{ModbusTcp, check_address, i16_from, sunspec_scaled};
use twc_plugin_kit::{HttpSource, MinInterval, ParseError, min_interval_for, num, timestamp};

/// Registry name.
pub const NAME: &str = "solaredge";
/// Default cloud API base.
pub const CLOUD_URL: &str = "https://monitoringapi.solaredge.com";
/// SolarEdge's documented daily call limit per site and key.
pub const DAILY_CALL_LIMIT: u32 = 300;
/// First register of the SunSpec inverter model (C_SunSpec_DID) in SolarEdge's map.
pub const INVERTER_BASE: u16 = 40069;
/// First register of meter 1's SunSpec meter model (C_SunSpec_DID); meters 2 and 3 follow at
/// steps of [`METER_STEP`].
pub const METER1_BASE: u16 = 40188;
/// Distance between the meter blocks.
pub const METER_STEP: u16 = 174;

type ParseFn = fn(&[u8]) -> Result<EnergyReading, ParseError>;

/// `[ems.solaredge]`: either `api_key` + `site_id` (cloud) or `modbus` (local).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SolaredgeConfig {
    /// Cloud: monitoring API key.
    pub api_key: Option<Secret>,
    /// Cloud: site id.
    pub site_id: Option<String>,
    /// Cloud: API base URL.
    #[serde(default = "cloud_url")]
    pub cloud_url: String,
    /// Cloud: calls per day this source may use (SolarEdge allows 300 per site; lower it when
    /// other tools use the same key). The poll interval is stretched to fit.
    #[serde(default = "daily")]
    pub calls_per_day: u32,
    /// Cloud: read `/overview` (generation only) instead of `/currentPowerFlow`.
    #[serde(default)]
    pub overview: bool,
    /// Local: inverter `host:port` (Modbus TCP enabled in SetApp; port 1502 or 502).
    pub modbus: Option<String>,
    /// Local: Modbus unit id.
    #[serde(default = "unit")]
    pub unit: u8,
    /// Local: which meter (1–3) sits at the grid connection; 0 = no meter.
    #[serde(default = "meter")]
    pub meter: u8,
    /// Local: the meter reports import as positive (SolarEdge meters normally report export as
    /// positive, which is turned around by default).
    #[serde(default)]
    pub meter_import_positive: bool,
    /// Modbus timeout, seconds.
    #[serde(default = "timeout")]
    pub modbus_timeout_secs: f64,
    /// HTTP options (cloud).
    #[serde(default)]
    pub http: HttpOptions,
}

fn cloud_url() -> String {
    CLOUD_URL.to_string()
}
fn daily() -> u32 {
    DAILY_CALL_LIMIT
}
fn unit() -> u8 {
    1
}
fn meter() -> u8 {
    1
}
fn timeout() -> f64 {
    3.0
}

fn connected(v: &Value, from: &str, to: &str) -> bool {
    v.get("connections")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("from")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.eq_ignore_ascii_case(from))
                    && c.get("to")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case(to))
            })
        })
}

/// Parse `/site/{id}/currentPowerFlow`. `currentPower` values are magnitudes in `unit` (kW or W);
/// directions come from `connections`: `GRID→Load` = import, `LOAD→Grid` = export,
/// `STORAGE→Load` = discharge, `*→STORAGE` = charge.
pub fn parse_power_flow(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let f = num::pointer(&v, "/siteCurrentPowerFlow")?;
    let unit = f.get("unit").and_then(Value::as_str).unwrap_or("kW");
    let factor = num::unit_factor(unit)
        .ok_or_else(|| ParseError::protocol(format!("unknown unit {unit:?}")))?;
    let mag = |k: &str| -> Result<Option<f64>, ParseError> {
        match f.get(k) {
            None => Ok(None),
            Some(e) => Ok(num::pointer_f64(e, "/currentPower")?.map(|x| x.abs() * factor)),
        }
    };
    let grid = mag("GRID")?.map(|g| {
        if connected(f, "LOAD", "Grid")
            || connected(f, "PV", "Grid")
            || connected(f, "STORAGE", "Grid")
        {
            -g
        } else if connected(f, "GRID", "Load") || connected(f, "GRID", "STORAGE") {
            g
        } else {
            0.0
        }
    });
    let battery = mag("STORAGE")?.map(|b| {
        if connected(f, "STORAGE", "Load") || connected(f, "STORAGE", "Grid") {
            b
        } else if connected(f, "PV", "STORAGE")
            || connected(f, "GRID", "STORAGE")
            || connected(f, "LOAD", "STORAGE")
        {
            -b
        } else {
            0.0
        }
    });
    let soc = f
        .pointer("/STORAGE/chargeLevel")
        .map(num::value_f64)
        .transpose()?
        .flatten();
    Ok(EnergyReading {
        // No PV entry means PV was not measured, not 0 W.
        generation_w: mag("PV")?,
        consumption_w: mag("LOAD")?,
        grid_w: grid,
        battery_w: battery,
        battery_soc_pct: soc,
        ..EnergyReading::default()
    })
}

/// Parse `/site/{id}/overview`: generation = `currentPower.power` (W), dated by
/// `lastUpdateTime` (when the site last sent data), which SolarEdge gives in the site's local
/// time without an offset: it is read in this machine's time zone (the controller sits at the
/// site), the earlier time when the clocks go back.
pub fn parse_overview(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let at = match v.pointer("/overview/lastUpdateTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(timestamp::instant_of(
            timestamp::parse_naive_in(t, &chrono::Local)
                .map_err(|e| e.context("lastUpdateTime"))?,
        )),
        Some(_) => return Err(ParseError::protocol("lastUpdateTime is not text")),
    };
    let mut r = EnergyReading {
        generation_w: Some(num::require_power_w(&v, "/overview/currentPower/power")?.max(0.0)),
        ..EnergyReading::default()
    };
    if let Some(t) = at {
        r.measured_at = r.measured_at.min(t);
    }
    Ok(r)
}

/// Decode the SunSpec inverter block read from [`INVERTER_BASE`] (16 registers): AC power (W)
/// and the phase-to-neutral voltages that are implemented.
pub fn decode_inverter(regs: &[u16]) -> Result<(f64, Option<Vec<f64>>), ParseError> {
    if regs.len() < 16 {
        return Err(ParseError::protocol("inverter block too short"));
    }
    let did = regs[0];
    if !(101..=103).contains(&did) {
        return Err(ParseError::protocol(format!(
            "no SunSpec inverter model at {INVERTER_BASE} (found {did})"
        )));
    }
    let power = sunspec_scaled(i16_from(regs[14]), i16_from(regs[15])).ok_or_else(|| {
        ParseError::protocol("the inverter gives no AC power (SunSpec sentinel value)")
    })?;
    let vsf = i16_from(regs[13]);
    let volts: Vec<f64> = regs[10..13]
        .iter()
        .filter(|r| **r != 0xFFFF)
        .filter_map(|r| sunspec_scaled(*r as i16, vsf).filter(|v| *v > 50.0))
        .collect();
    Ok((power.max(0.0), (!volts.is_empty()).then_some(volts)))
}

/// Decode the SunSpec meter block read from a meter base (23 registers): total real power (W, in
/// the meter's sign) and phase voltages.
pub fn decode_meter(regs: &[u16]) -> Result<(f64, Option<Vec<f64>>), ParseError> {
    if regs.len() < 23 {
        return Err(ParseError::protocol("meter block too short"));
    }
    let did = regs[0];
    if !(201..=204).contains(&did) {
        return Err(ParseError::protocol(format!(
            "no SunSpec meter model (found {did}); is the meter number right?"
        )));
    }
    let power = sunspec_scaled(i16_from(regs[18]), i16_from(regs[22]))
        .ok_or_else(|| ParseError::protocol("the meter gives no power (SunSpec sentinel value)"))?;
    let vsf = i16_from(regs[15]);
    let volts: Vec<f64> = regs[8..11]
        .iter()
        .filter(|r| **r != 0x8000 && **r != 0xFFFF)
        .filter_map(|r| sunspec_scaled(i16_from(*r), vsf).filter(|v| *v > 50.0))
        .collect();
    Ok((power, (!volts.is_empty()).then_some(volts)))
}

/// The local Modbus source.
pub struct SolaredgeModbus {
    bus: ModbusTcp,
    meter: u8,
    import_positive: bool,
}

#[async_trait]
impl EmsSource for SolaredgeModbus {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let perr = |e: ParseError| e.into_plugin(NAME, "modbus");
        let inv = self.bus.read_holding(INVERTER_BASE, 16).await?;
        // The registers carry no time: the first (oldest) answer dates the reading.
        let at = tokio::time::Instant::now();
        let (generation, inv_volts) = decode_inverter(&inv).map_err(perr)?;
        let mut r = EnergyReading {
            generation_w: Some(generation),
            phase_voltages: inv_volts,
            ..EnergyReading::default()
        };
        if self.meter > 0 {
            let base = METER1_BASE + METER_STEP * u16::from(self.meter - 1);
            let m = self.bus.read_holding(base, 23).await?;
            let (p, volts) = decode_meter(&m).map_err(perr)?;
            let grid = if self.import_positive { p } else { -p };
            r.grid_w = Some(grid);
            r.consumption_w = Some((generation + grid).max(0.0));
            if volts.is_some() {
                r.phase_voltages = volts;
            }
        }
        r.measured_at = at;
        Ok(r)
    }
}

/// Build from `[ems.solaredge]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: SolaredgeConfig = cfg.parse()?;
    let s = &cfg.section;
    match (&c.api_key, &c.modbus) {
        (Some(key), None) => {
            let Some(site) = &c.site_id else {
                return Err(BuildError::new(
                    s,
                    "site_id is missing (cloud mode needs api_key and site_id)",
                ));
            };
            if site.is_empty() || !site.chars().all(|ch| ch.is_ascii_digit()) {
                return Err(BuildError::new(
                    s,
                    format!("site_id must be digits, got {site:?}"),
                ));
            }
            if c.calls_per_day == 0 || c.calls_per_day > DAILY_CALL_LIMIT {
                return Err(BuildError::new(
                    s,
                    format!(
                        "calls_per_day must be 1..={DAILY_CALL_LIMIT}, got {}",
                        c.calls_per_day
                    ),
                ));
            }
            check_url(s, "cloud_url", &c.cloud_url)?;
            let client = HttpClient::new(NAME, s, &c.http)?;
            let (path, parse): (&str, ParseFn) = if c.overview {
                ("overview", parse_overview)
            } else {
                ("currentPowerFlow", parse_power_flow)
            };
            let url = format!(
                "{}?api_key={}",
                join(&c.cloud_url, &format!("/site/{site}/{path}")),
                key.expose()
            );
            // A retry is a call too: budget for every attempt.
            let calls_per_read = 1 + c.http.retries;
            let min = min_interval_for(c.calls_per_day, calls_per_read);
            Ok(Box::new(MinInterval::new(
                HttpSource::new(client, Request::get(url), parse),
                min,
            )))
        }
        (None, Some(addr)) => {
            check_address(s, "modbus", addr)?;
            if c.meter > 3 {
                return Err(BuildError::new(
                    s,
                    format!("meter must be 0 (none) or 1..=3, got {}", c.meter),
                ));
            }
            if !(c.modbus_timeout_secs > 0.0 && c.modbus_timeout_secs <= 60.0) {
                return Err(BuildError::new(
                    s,
                    format!(
                        "modbus_timeout_secs must be between 0 and 60, got {}",
                        c.modbus_timeout_secs
                    ),
                ));
            }
            Ok(Box::new(SolaredgeModbus {
                bus: ModbusTcp::new(
                    NAME,
                    addr,
                    c.unit,
                    Duration::from_secs_f64(c.modbus_timeout_secs),
                ),
                meter: c.meter,
                import_positive: c.meter_import_positive,
            }))
        }
        (Some(_), Some(_)) => Err(BuildError::new(
            s,
            "set either api_key (cloud) or modbus (local), not both",
        )),
        (None, None) => Err(BuildError::new(
            s,
            "set api_key and site_id (cloud) or modbus = \"host:1502\" (local)",
        )),
    }
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "SolarEdge cloud API (within its call budget) or local Modbus TCP with meter",
        example: include_str!("../example.toml"), build }
}
