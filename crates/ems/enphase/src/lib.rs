#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, MinInterval, ParseError, num, timestamp};

/// Registry name.
pub const NAME: &str = "enphase";
/// Local endpoint with CT (eim) and microinverter data.
pub const PRODUCTION: &str = "/production.json?details=1";
/// Default cloud API base.
pub const CLOUD_URL: &str = "https://api.enphaseenergy.com";

/// `[ems.enphase]`: either `url` (local gateway) or `system_id` + `api_key` + `user_id` (cloud).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnphaseConfig {
    /// Local gateway, e.g. `https://envoy.local` (fw 7+ is HTTPS with a self-signed certificate:
    /// set `http.accept_invalid_certs = true`).
    pub url: Option<String>,
    /// Bearer token (JWT) for gateway firmware 7 and later.
    pub token: Option<Secret>,
    /// Cloud: Enlighten system id.
    pub system_id: Option<String>,
    /// Cloud: API key.
    pub api_key: Option<Secret>,
    /// Cloud: user id.
    pub user_id: Option<String>,
    /// Cloud: API base URL.
    #[serde(default = "cloud_url")]
    pub cloud_url: String,
    /// Cloud: at most one request per this many seconds (the free plan allows about 10 000 a month).
    #[serde(default = "cloud_interval")]
    pub cloud_min_interval_secs: u64,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn cloud_url() -> String {
    CLOUD_URL.to_string()
}

fn cloud_interval() -> u64 {
    300
}

fn find<'a>(list: Option<&'a Value>, key: &str, want: &str) -> Option<&'a Value> {
    list?
        .as_array()?
        .iter()
        .find(|e| e.get(key).and_then(Value::as_str) == Some(want))
}

/// When an entry was read: `key` in Unix seconds; 0 or absent = not said.
fn reading_time(e: &Value, key: &str) -> Result<Option<Instant>, ParseError> {
    match e.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(t) if t > 0.0 => Ok(Some(timestamp::instant_of_unix_secs(t))),
            Some(_) => Ok(None),
            None => Err(ParseError::protocol(format!("{key} is not a number"))),
        },
    }
}

/// The oldest `key` time among the entries used.
fn oldest_time<'a>(
    entries: impl IntoIterator<Item = &'a Value>,
    key: &str,
) -> Result<Option<Instant>, ParseError> {
    let mut at = None;
    for e in entries {
        at = timestamp::oldest(at, reading_time(e, key)?);
    }
    Ok(at)
}

/// Set `r.measured_at` to `at` when it is older.
fn date(mut r: EnergyReading, at: Option<Instant>) -> EnergyReading {
    if let Some(t) = at {
        r.measured_at = r.measured_at.min(t);
    }
    r
}

fn active(e: &Value) -> bool {
    e.get("activeCount").and_then(Value::as_f64).unwrap_or(1.0) > 0.0
}

/// Parse `/production.json?details=1`. Entries are found by `type`/`measurementType`, not by
/// array position. Generation = the production CT (`eim`, clamped at 0: CTs read a few negative
/// watts at night), else the microinverters' `wNow` when there is no CT; consumption =
/// `total-consumption`; grid = `net-consumption` (+ import). Voltages come per phase from `lines`
/// (the top-level `rmsVoltage` of a 3-phase CT is the sum of the phases). The reading is dated by
/// the oldest `readingTime` of the entries used (0 = not said).
pub fn parse_production(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let production = v
        .get("production")
        .ok_or_else(|| ParseError::protocol("missing production"))?;
    let ct = find(Some(production), "measurementType", "production").filter(|e| active(e));
    let gen_entry = match ct {
        Some(e) => e,
        None => match find(Some(production), "type", "inverters") {
            Some(e) => e,
            None => {
                return Err(ParseError::protocol(
                    "no production CT and no inverters entry",
                ));
            }
        },
    };
    let generation = num::pointer_power_w(gen_entry, "/wNow")?.map(|w| w.max(0.0));
    let cons = v.get("consumption");
    let total = find(cons, "measurementType", "total-consumption").filter(|e| active(e));
    let net = find(cons, "measurementType", "net-consumption").filter(|e| active(e));
    let consumption = total
        .map(|e| num::pointer_power_w(e, "/wNow"))
        .transpose()?
        .flatten();
    let grid = net
        .map(|e| num::pointer_power_w(e, "/wNow"))
        .transpose()?
        .flatten();
    let volts_of = |e: &Value| -> Option<Vec<f64>> {
        match e.get("lines").and_then(Value::as_array) {
            Some(lines) if !lines.is_empty() => lines
                .iter()
                .map(|l| l.get("rmsVoltage").and_then(Value::as_f64))
                .collect(),
            _ => e.get("rmsVoltage").and_then(Value::as_f64).map(|x| vec![x]),
        }
    };
    let phase_voltages = net
        .or(total)
        .or(ct)
        .and_then(volts_of)
        .filter(|v| v.iter().all(|x| *x > 50.0));
    let at = oldest_time(
        [Some(gen_entry), total, net].into_iter().flatten(),
        "readingTime",
    )?;
    Ok(date(
        EnergyReading {
            generation_w: generation,
            consumption_w: consumption,
            grid_w: grid,
            phase_voltages,
            ..EnergyReading::default()
        },
        at,
    ))
}

/// Parse `/api/v1/production` (microinverter totals): generation = `wattsNow`.
pub fn parse_api_v1_production(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    Ok(EnergyReading {
        generation_w: Some(num::require_power_w(&v, "/wattsNow")?.max(0.0)),
        ..EnergyReading::default()
    })
}

/// Parse `/ivp/meters/readings`. Meters are told apart by their eid: `0x…01xx` is the production
/// CT, `0x…02xx` the consumption CT, assumed to be installed as net-consumption (at the grid),
/// which is how the recorded gateways are set up. Dated by the oldest `timestamp` of those meters.
pub fn parse_meters_readings(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let list = v
        .as_array()
        .ok_or_else(|| ParseError::protocol("meter readings are not a list"))?;
    let mut r = EnergyReading::default();
    let mut used = Vec::new();
    for m in list {
        let eid = m.get("eid").and_then(Value::as_u64).unwrap_or(0);
        let p = num::pointer_power_w(m, "/activePower")?;
        match (eid >> 8) & 0xff {
            1 => r.generation_w = p.map(|w| w.max(0.0)),
            2 => r.grid_w = p,
            _ => continue,
        }
        used.push(m);
    }
    let r = date(r, oldest_time(used, "timestamp")?);
    if r.generation_w.is_none() && r.grid_w.is_none() {
        return Err(ParseError::protocol(
            "no production or consumption meter in the readings",
        ));
    }
    Ok(r)
}

/// Parse the cloud `/api/v2/systems/{id}/summary`: generation = `current_power`, dated by
/// `last_report_at` (when the gateway last reported to Enlighten, Unix seconds).
pub fn parse_cloud_summary(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let at = reading_time(&v, "last_report_at")?;
    Ok(date(
        EnergyReading {
            generation_w: Some(num::require_power_w(&v, "/current_power")?.max(0.0)),
            ..EnergyReading::default()
        },
        at,
    ))
}

/// Build from `[ems.enphase]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: EnphaseConfig = cfg.parse()?;
    let s = &cfg.section;
    let client = HttpClient::new(NAME, s, &c.http)?;
    match (&c.url, &c.system_id) {
        (Some(url), None) => {
            check_url(s, "url", url)?;
            let mut req = Request::get(join(url, PRODUCTION));
            if let Some(t) = &c.token {
                req = req.bearer(t.expose());
            }
            Ok(Box::new(HttpSource::new(client, req, parse_production)))
        }
        (None, Some(system)) => {
            let (Some(key), Some(user)) = (&c.api_key, &c.user_id) else {
                return Err(BuildError::new(
                    s,
                    "cloud mode (system_id) needs api_key and user_id",
                ));
            };
            check_url(s, "cloud_url", &c.cloud_url)?;
            if system.is_empty() || !system.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                return Err(BuildError::new(
                    s,
                    format!("system_id {system:?} must be letters and digits"),
                ));
            }
            if c.cloud_min_interval_secs < 60 {
                return Err(BuildError::new(
                    s,
                    format!(
                        "cloud_min_interval_secs must be at least 60, got {}",
                        c.cloud_min_interval_secs
                    ),
                ));
            }
            let url = format!(
                "{}?key={}&user_id={}",
                join(&c.cloud_url, &format!("/api/v2/systems/{system}/summary")),
                key.expose(),
                user
            );
            let inner = HttpSource::new(client, Request::get(url), parse_cloud_summary);
            Ok(Box::new(MinInterval::new(
                inner,
                Duration::from_secs(c.cloud_min_interval_secs),
            )))
        }
        (Some(_), Some(_)) => Err(BuildError::new(
            s,
            "set either url (local gateway) or system_id (cloud), not both",
        )),
        (None, None) => Err(BuildError::new(
            s,
            "url is missing: set url = \"https://envoy.local\" (local) or system_id, api_key, user_id (cloud)",
        )),
    }
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "Enphase Envoy/IQ Gateway production.json (local) or Enlighten v2 (cloud)",
        example: include_str!("../example.toml"), build }
}
