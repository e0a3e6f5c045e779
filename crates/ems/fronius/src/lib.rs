#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{ParseError, num, timestamp};

/// Registry name.
pub const NAME: &str = "fronius";
/// The power flow endpoint.
pub const POWERFLOW: &str = "/solar_api/v1/GetPowerFlowRealtimeData.fcgi?Scope=System";

/// `[ems.fronius]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FroniusConfig {
    /// Base URL of each datalogger, e.g. `http://192.168.1.50`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Single-datalogger shorthand for `urls`.
    pub url: Option<String>,
    /// Also read this Smart Meter (`GetMeterRealtimeData.cgi`, usually 0) on the first datalogger
    /// for per-phase voltages and, at the grid, per-phase currents.
    pub meter_device: Option<u32>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn status_ok(v: &Value) -> Result<(), ParseError> {
    match v.pointer("/Head/Status/Code").and_then(Value::as_i64) {
        None | Some(0) => Ok(()),
        Some(code) => {
            let reason = v
                .pointer("/Head/Status/Reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            Err(ParseError::protocol(format!(
                "Solar API status code {code} {reason}"
            )))
        }
    }
}

/// When the datalogger took the data: `Head.Timestamp` (RFC 3339 with offset), if present.
fn head_time(v: &Value) -> Result<Option<Instant>, ParseError> {
    match v.pointer("/Head/Timestamp") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => Ok(Some(timestamp::instant_of(
            timestamp::parse_rfc3339(t).map_err(|e| e.context("Head.Timestamp"))?,
        ))),
        Some(_) => Err(ParseError::protocol("Head.Timestamp is not text")),
    }
}

/// Set `r.measured_at` to `at` when it is older.
fn date(mut r: EnergyReading, at: Option<Instant>) -> EnergyReading {
    if let Some(t) = at {
        r.measured_at = r.measured_at.min(t);
    }
    r
}

/// Parse `GetPowerFlowRealtimeData.fcgi`; the reading is dated by `Head.Timestamp`.
pub fn parse_powerflow(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    status_ok(&v)?;
    let at = head_time(&v)?;
    let site = num::pointer(&v, "/Body/Data/Site")?;
    // P_PV is null when the inverters sleep: that is a measured 0 W, not a failure.
    let generation = num::pointer_power_w(site, "/P_PV")?.unwrap_or(0.0).max(0.0);
    let load = match site.get("P_Load") {
        Some(x) => num::value_power_w(x).map_err(|e| e.context("P_Load"))?,
        None => None,
    };
    let grid = match site.get("P_Grid") {
        Some(x) => num::value_power_w(x).map_err(|e| e.context("P_Grid"))?,
        None => None,
    };
    let battery = match site.get("P_Akku") {
        Some(x) => num::value_power_w(x).map_err(|e| e.context("P_Akku"))?,
        None => None,
    };
    let soc = v
        .pointer("/Body/Data/Inverters")
        .and_then(Value::as_object)
        .and_then(|m| m.values().find_map(|i| i.get("SOC")))
        .map(num::value_f64)
        .transpose()?
        .flatten();
    Ok(date(
        EnergyReading {
            generation_w: Some(generation),
            consumption_w: load.map(|l| -l),
            grid_w: grid,
            battery_w: battery,
            battery_soc_pct: soc,
            ..EnergyReading::default()
        },
        at,
    ))
}

/// Parse `GetMeterRealtimeData.cgi?Scope=Device`: at the grid (`Meter_Location_Current` 0) the
/// meter gives grid power (+ import) and phases; in the load path (1) it gives consumption
/// (Fronius reports consumption there as negative). The reading is dated by the older of the
/// meter's `TimeStamp` (Unix seconds of its last reading) and `Head.Timestamp`.
pub fn parse_meter(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    status_ok(&v)?;
    let d = num::pointer(&v, "/Body/Data")?;
    let meter_time = match d.get("TimeStamp") {
        None | Some(Value::Null) => None,
        Some(x) => Some(timestamp::instant_of_unix_secs(
            x.as_f64()
                .ok_or_else(|| ParseError::protocol("TimeStamp is not a number"))?,
        )),
    };
    let at = timestamp::oldest(head_time(&v)?, meter_time);
    let p = num::require_power_w(d, "/PowerReal_P_Sum")?;
    let loc = num::pointer_f64(d, "/Meter_Location_Current")?;
    let phases = |prefix: &str| -> Option<Vec<f64>> {
        let v: Vec<f64> = (1..=3)
            .filter_map(|i| d.get(format!("{prefix}{i}")).and_then(Value::as_f64))
            .collect();
        (!v.is_empty()).then_some(v)
    };
    let mut r = EnergyReading {
        phase_voltages: phases("Voltage_AC_Phase_"),
        ..EnergyReading::default()
    };
    match loc {
        Some(0.0) => {
            r.grid_w = Some(p);
            r.phase_currents_a = phases("Current_AC_Phase_");
        }
        Some(1.0) => r.consumption_w = Some(-p),
        other => {
            return Err(ParseError::protocol(format!(
                "unsupported Meter_Location_Current {other:?}"
            )));
        }
    }
    Ok(date(r, at))
}

/// Parse `GetInverterRealtimeData.cgi … CommonInverterData`: AC power and voltage. A sleeping
/// inverter reports no `PAC` at all, which is 0 W. Dated by `Head.Timestamp`.
pub fn parse_inverter(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    status_ok(&v)?;
    let at = head_time(&v)?;
    let d = num::pointer(&v, "/Body/Data")?;
    let pac = match d.pointer("/PAC/Value") {
        Some(x) => num::value_power_w(x)?.unwrap_or(0.0),
        None if d.get("DeviceStatus").is_some() => 0.0,
        None => return Err(ParseError::protocol("missing PAC and DeviceStatus")),
    };
    let uac = d
        .pointer("/UAC/Value")
        .map(num::value_f64)
        .transpose()?
        .flatten();
    Ok(date(
        EnergyReading {
            generation_w: Some(pac),
            phase_voltages: uac.map(|u| vec![u]),
            ..EnergyReading::default()
        },
        at,
    ))
}

/// Add up readings from several dataloggers; a quantity counts only when all of them have it.
pub fn sum_readings(rs: &[EnergyReading]) -> EnergyReading {
    fn all(rs: &[EnergyReading], f: impl Fn(&EnergyReading) -> Option<f64>) -> Option<f64> {
        rs.iter().map(f).sum::<Option<f64>>()
    }
    EnergyReading {
        generation_w: all(rs, |r| r.generation_w),
        consumption_w: all(rs, |r| r.consumption_w),
        grid_w: all(rs, |r| r.grid_w),
        battery_w: all(rs, |r| r.battery_w),
        battery_soc_pct: if rs.len() == 1 {
            rs[0].battery_soc_pct
        } else {
            None
        },
        measured_at: rs
            .iter()
            .map(|r| r.measured_at)
            .min()
            .unwrap_or_else(Instant::now),
        ..EnergyReading::default()
    }
}

/// The running source.
pub struct Fronius {
    client: HttpClient,
    requests: Vec<Request>,
    meter: Option<Request>,
}

#[async_trait]
impl EmsSource for Fronius {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let mut rs = Vec::with_capacity(self.requests.len());
        for req in &self.requests {
            let mut r = self.client.fetch(req, parse_powerflow).await?;
            // Never fresher than the answer (Head.Timestamp may be missing or ahead of us).
            r.measured_at = r.measured_at.min(Instant::now());
            rs.push(r);
        }
        let mut r = sum_readings(&rs);
        if let Some(req) = &self.meter {
            let m = self.client.fetch(req, parse_meter).await?;
            r.phase_voltages = m.phase_voltages;
            r.phase_currents_a = m.phase_currents_a;
            r.measured_at = r.measured_at.min(m.measured_at);
        }
        Ok(r)
    }
}

/// Build from `[ems.fronius]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: FroniusConfig = cfg.parse()?;
    let mut urls = c.urls.clone();
    urls.extend(c.url.clone());
    if urls.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "urls is missing: list each datalogger, e.g. urls = [\"http://192.168.1.50\"]",
        ));
    }
    for u in &urls {
        check_url(&cfg.section, "urls", u)?;
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    Ok(Box::new(Fronius {
        client,
        requests: urls
            .iter()
            .map(|u| Request::get(join(u, POWERFLOW)))
            .collect(),
        meter: c.meter_device.map(|d| {
            Request::get(join(
                &urls[0],
                &format!("/solar_api/v1/GetMeterRealtimeData.cgi?Scope=Device&DeviceId={d}"),
            ))
        }),
    }))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "Fronius Solar API v1 power flow (one or more dataloggers)",
        example: include_str!("../example.toml"), build }
}
