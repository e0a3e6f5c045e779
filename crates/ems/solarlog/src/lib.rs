#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{NaiveDateTime, TimeZone};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{ParseError, num, timestamp};

/// Registry name: `[ems.solarlog]`, feature `ems-solarlog`.
pub const NAME: &str = "solarlog";
/// The open JSON interface.
pub const GETJP: &str = "/getjp";

/// `[ems.solarlog]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolarlogConfig {
    /// The Solar-Log's base URL, e.g. `http://solarlog.local`.
    pub url: String,
    /// Numbers of devices in the Solar-Log's device list (0-based, as in `{"782":…}`) whose
    /// power is part of the Solar-Log's consumption but must not count as house load (the
    /// charger's own meter, a battery inverter).
    #[serde(default)]
    pub exclude_inverters: Vec<i64>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// What `{"801":{"170":null}}` gives.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicData {
    /// `101`: AC power of all inverters, W.
    pub pac_w: f64,
    /// `110`: consumption, W.
    pub consumption_w: f64,
    /// `100`: when the Solar-Log took these values.
    pub measured_at: Option<Instant>,
}

/// The Solar-Log refuses the query when its access protection is on.
fn check_refusal(body: &[u8]) -> Result<(), ParseError> {
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    if t.starts_with("ACCESS DENIED") {
        return Err(ParseError {
            kind: twc_core::plugin::ErrorKind::Auth,
            message: "the Solar-Log refused the query: turn off its access protection for the open JSON interface".into(),
        });
    }
    if t.starts_with("QUERY IMPOSSIBLE") {
        return Err(ParseError::transient(format!(
            "the Solar-Log cannot answer now ({t})"
        )));
    }
    Ok(())
}

/// Parse the local time of `801.170.100` (`"26.08.24 14:19:45"`, day.month.year).
pub fn parse_solarlog_time(text: &str) -> Result<Instant, ParseError> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%d.%m.%y %H:%M:%S")
        .map_err(|_| ParseError::protocol(format!("{text:?} is not a Solar-Log time")))?;
    let at = chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| ParseError::protocol(format!("{text:?} does not exist here")))?;
    Ok(timestamp::instant_of(at.with_timezone(&chrono::Utc)))
}

/// Parse the answer to `{"801":{"170":null}}`.
pub fn parse_basic(body: &[u8]) -> Result<BasicData, ParseError> {
    check_refusal(body)?;
    let v = num::json(body)?;
    let data = num::pointer(&v, "/801/170")?;
    if data.is_null() {
        return Err(ParseError::transient(
            "the Solar-Log has no current data (801.170 is null)",
        ));
    }
    let field = |k: &str| -> Result<f64, ParseError> {
        let x = num::pointer_f64(data, &format!("/{k}")).map_err(|e| e.context("801.170"))?;
        x.ok_or_else(|| ParseError::transient(format!("801.170.{k} is null")))
    };
    let pac_w = field("101")?;
    let consumption_w = field("110")?;
    if pac_w < 0.0 || consumption_w < 0.0 {
        return Err(ParseError::protocol(format!(
            "negative power: Pac {pac_w} W, consumption {consumption_w} W"
        )));
    }
    let measured_at = match data.get("100") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => {
            Some(parse_solarlog_time(t).map_err(|e| e.context("801.170.100"))?)
        }
        Some(_) => return Err(ParseError::protocol("801.170.100 is not text")),
    };
    Ok(BasicData {
        pac_w,
        consumption_w,
        measured_at,
    })
}

/// Parse the answer to `{"782":null}`: power per device number, W.
pub fn parse_device_powers(body: &[u8]) -> Result<BTreeMap<u32, f64>, ParseError> {
    check_refusal(body)?;
    let v = num::json(body)?;
    let map = num::pointer(&v, "/782")?
        .as_object()
        .ok_or_else(|| ParseError::protocol("782 is not an object"))?;
    let mut out = BTreeMap::new();
    for (k, x) in map {
        let n: u32 = k
            .parse()
            .map_err(|_| ParseError::protocol(format!("782: {k:?} is not a device number")))?;
        let w = num::value_f64(x)
            .map_err(|e| e.context(&format!("782.{k}")))?
            .ok_or_else(|| ParseError::transient(format!("782.{k} is null")))?;
        out.insert(n, w);
    }
    Ok(out)
}

/// Combine both answers: generation = Pac, consumption = consumption − the excluded devices.
pub fn reading(
    basic: &BasicData,
    powers: &BTreeMap<u32, f64>,
    exclude: &[u32],
) -> Result<EnergyReading, ParseError> {
    let mut excluded = 0.0;
    for n in exclude {
        excluded += powers.get(n).ok_or_else(|| {
            let have: Vec<String> = powers.keys().map(u32::to_string).collect();
            ParseError::config(format!(
                "exclude_inverters names device {n}, the Solar-Log has {}",
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                }
            ))
        })?;
    }
    let mut r = EnergyReading {
        generation_w: Some(basic.pac_w),
        ..EnergyReading::default()
    };
    // More excluded than consumed: the two answers disagree (taken at different moments); the
    // house load is unknown, not 0 W.
    let cons = basic.consumption_w - excluded;
    if cons >= 0.0 {
        r.consumption_w = Some(cons);
    }
    if let Some(t) = basic.measured_at {
        r.measured_at = r.measured_at.min(t);
    }
    Ok(r)
}

/// The source: one or two POSTs to `/getjp`.
pub struct Solarlog {
    client: HttpClient,
    basic: Request,
    devices: Request,
    exclude: Vec<u32>,
}

#[async_trait]
impl EmsSource for Solarlog {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let basic = self.client.fetch(&self.basic, parse_basic).await?;
        let first = Instant::now();
        let powers = if self.exclude.is_empty() {
            BTreeMap::new()
        } else {
            self.client
                .fetch(&self.devices, parse_device_powers)
                .await?
        };
        let mut r = reading(&basic, &powers, &self.exclude)
            .map_err(|e| e.into_plugin(NAME, &self.devices.describe()))?;
        r.measured_at = r.measured_at.min(first);
        Ok(r)
    }
}

/// Build from `[ems.solarlog]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: SolarlogConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let exclude = c
        .exclude_inverters
        .iter()
        .map(|n| u32::try_from(*n))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| {
            BuildError::new(
                &cfg.section,
                format!(
                    "exclude_inverters must list device numbers 0, 1, 2, …, got {:?}",
                    c.exclude_inverters
                ),
            )
        })?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let url = join(&c.url, GETJP);
    Ok(Box::new(Solarlog {
        client,
        basic: Request::post_json(&url, &json!({"801": {"170": null}})),
        devices: Request::post_json(&url, &json!({"782": null})),
        exclude,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "Solar-Log PV power and consumption (open JSON interface /getjp)",
        example: include_str!("../example.toml"),
        build,
    }
}
