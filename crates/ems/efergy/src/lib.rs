#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num, timestamp};

/// The registry name: the section is `[ems.efergy]`, the bin's feature `ems-efergy`.
pub const NAME: &str = "efergy";
/// Efergy's cloud.
pub const CLOUD_URL: &str = "https://engage.efergy.com";
/// The power sensor type in the summary (`cid`).
pub const POWER_CID: &str = "PWER";

/// `[ems.efergy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfergyConfig {
    /// App token from the Engage web site (Settings → App tokens).
    pub token: Secret,
    /// Which sensor (`sid`) is the house's mains clamp; default: the first power (`PWER`) sensor.
    #[serde(default)]
    pub sid: Option<String>,
    /// API base URL.
    #[serde(default = "cloud_url")]
    pub url: String,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn cloud_url() -> String {
    CLOUD_URL.to_string()
}

/// The error object Efergy answers with instead of the sensor list (bad token and the like).
fn error_of(v: &Value) -> ParseError {
    let e = v.get("error").unwrap_or(v);
    let desc = e
        .get("desc")
        .or_else(|| e.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("no description");
    let id = e.get("id").and_then(Value::as_i64);
    let msg = format!("Efergy refused the request: {desc}");
    if id == Some(400) || desc.to_ascii_lowercase().contains("token") {
        ParseError {
            kind: twc_core::plugin::ErrorKind::Auth,
            message: format!("{msg} (check the token)"),
        }
    } else {
        ParseError::protocol(msg)
    }
}

/// A sensor's `sid`, sent as a string (or, by some firmware, a number).
fn sid_of(sensor: &Value) -> Option<String> {
    match sensor.get("sid")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parse `getCurrentValuesSummary`: a list of sensors, each `{cid, sid, data: [{"<ms>": W}], age}`.
///
/// The chosen sensor (by `sid`, else the first with `cid` = `PWER`) is the house consumption in W
/// (the reply says `"units": "kWm"`, but the numbers are watts). It counts as measured at the
/// older of the data point's own time (its key, Unix milliseconds) and `age` seconds ago.
pub fn parse_summary(body: &[u8], sid: Option<&str>) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let Some(sensors) = v.as_array() else {
        if v.is_object() && (v.get("error").is_some() || v.get("status").is_some()) {
            return Err(error_of(&v));
        }
        return Err(ParseError::protocol("expected a JSON array of sensors"));
    };
    let sensor = match sid {
        Some(want) => sensors
            .iter()
            .find(|s| sid_of(s).as_deref() == Some(want))
            .ok_or_else(|| {
                let have: Vec<String> = sensors.iter().filter_map(sid_of).collect();
                ParseError::config(format!(
                    "no sensor with sid {want:?} (the account has {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ))
            })?,
        None => sensors
            .iter()
            .find(|s| s.get("cid").and_then(Value::as_str) == Some(POWER_CID))
            .ok_or_else(|| ParseError::protocol("no power (PWER) sensor in the reply"))?,
    };
    let point = num::pointer(sensor, "/data/0")?
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| ParseError::protocol("data[0] is not one {time: value} pair"))?;
    let (ms, value) = point.iter().next().expect("one entry");
    let watts = num::value_f64(value)
        .map_err(|e| e.context("data[0]"))?
        .ok_or_else(|| ParseError::protocol("data[0] is null: the sensor sent no value"))?;
    if watts < 0.0 {
        return Err(ParseError::protocol(format!(
            "data[0] is negative ({watts} W); a consumption clamp reads ≥ 0"
        )));
    }
    let ms: i64 = ms
        .parse()
        .map_err(|_| ParseError::protocol(format!("data[0] key {ms:?} is not a time")))?;
    let mut at = timestamp::value_instant(&Value::from(ms))?;
    if let Some(age) = sensor.get("age") {
        let age = num::value_f64(age)
            .map_err(|e| e.context("age"))?
            .filter(|a| *a >= 0.0)
            .ok_or_else(|| ParseError::protocol("age is not a number of seconds"))?;
        let reported = timestamp::older_by(
            tokio::time::Instant::now(),
            std::time::Duration::from_secs_f64(age.min(1e10)),
        );
        at = timestamp::oldest(at, Some(reported));
    }
    let mut r = EnergyReading {
        consumption_w: Some(watts),
        ..EnergyReading::default()
    };
    if let Some(t) = at {
        r.measured_at = r.measured_at.min(t);
    }
    Ok(r)
}

/// Build from `[ems.efergy]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: EfergyConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    let token = c.token.expose();
    if token.is_empty()
        || !token
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
    {
        return Err(BuildError::new(
            s,
            "token must be the app token from the Engage web site (letters, digits, - and _)",
        ));
    }
    if c.sid.as_deref().is_some_and(str::is_empty) {
        return Err(BuildError::new(
            s,
            "sid must not be empty (leave it out to take the first power sensor)",
        ));
    }
    let client = HttpClient::new(NAME, s, &c.http)?;
    let url = format!(
        "{}?token={token}",
        join(&c.url, "/mobile_proxy/getCurrentValuesSummary")
    );
    let sid = c.sid.clone();
    Ok(Box::new(HttpSource::new(
        client,
        Request::get(url),
        move |b| parse_summary(b, sid.as_deref()),
    )))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "Efergy Engage cloud: house consumption from the mains clamp",
        example: include_str!("../example.toml"),
        build,
    }
}
