#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{
    BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::mqtt_link::{LinkSettings, Protocol, Subscription};
use twc_plugin_kit::phase::signed_current;
use twc_plugin_kit::{ParseError, num, timestamp};

/// The registry name: the section is `[ems.dsmrreader]`, the bin's feature `ems-dsmrreader`.
pub const NAME: &str = "dsmrreader";

/// `[ems.dsmrreader]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DsmrReaderConfig {
    /// Broker: `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: String,
    /// The topic of DSMR-reader's "JSON telegram" output (default `dsmr/json`).
    #[serde(default = "topic")]
    pub topic: String,
    /// Broker user name.
    pub username: Option<String>,
    /// Broker password.
    pub password: Option<Secret>,
    /// CA certificates (PEM) for `mqtts://`; default (or empty): the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// `"auto"` (v5, falling back to 3.1.1; the default), `"5"` or `"3.1.1"`.
    pub protocol: Option<String>,
    /// Client id (default: `twcmanager-ems-dsmrreader-<random>`).
    pub client_id: Option<String>,
    /// Keep-alive, seconds (default 30, at least 5).
    pub keep_alive_secs: Option<u64>,
}

fn topic() -> String {
    "dsmr/json".into()
}

/// One JSON telegram, read: the reading (its `measured_at` not yet set) and the telegram's own
/// time (`timestamp`), when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Grid power, voltages and signed currents.
    pub reading: EnergyReading,
    /// When the meter took the values (`timestamp`), on tokio's clock.
    pub measured_at: Option<Instant>,
}

/// A kW field as W: a number or a decimal string, `null` or absent = `None`. Negative is
/// garbage (DSMR-reader sends delivered and returned as separate non-negative values).
fn kw(v: &Value, field: &str) -> Result<Option<f64>, ParseError> {
    let x = field_f64(v, field)?;
    Ok(x.map(|k| k * 1000.0))
}

fn field_f64(v: &Value, field: &str) -> Result<Option<f64>, ParseError> {
    let Some(x) = v.get(field) else {
        return Ok(None);
    };
    match num::value_f64(x).map_err(|e| e.context(field))? {
        Some(n) if n < 0.0 => Err(ParseError::protocol(format!("{field}: {n} is negative"))),
        other => Ok(other),
    }
}

/// Read one JSON telegram as DSMR-reader publishes it (decimals as strings, kW).
///
/// `electricity_currently_delivered` and `electricity_currently_returned` must both be there and
/// give the grid power (+ import / − export); `phase_currently_delivered_l1`… and
/// `phase_currently_returned_l1`… (kW), `phase_voltage_l1`… (V) and `phase_power_current_l1`… (A,
/// unsigned) give the phases when present.
pub fn parse_json(payload: &[u8]) -> Result<Parsed, ParseError> {
    let v = num::json(payload)?;
    if !v.is_object() {
        return Err(ParseError::protocol("the telegram is not a JSON object"));
    }
    let required = |field: &str| {
        kw(&v, field)?.ok_or_else(|| {
            ParseError::protocol(format!(
                "no {field} (enable it in DSMR-reader's JSON telegram fields)"
            ))
        })
    };
    let delivered = required("electricity_currently_delivered")?;
    let returned = required("electricity_currently_returned")?;
    let mut volts = Vec::new();
    let mut amps = Vec::new();
    for l in 1..=3 {
        let v_l = field_f64(&v, &format!("phase_voltage_l{l}"))?;
        let a = signed_current(
            kw(&v, &format!("phase_currently_delivered_l{l}"))?,
            kw(&v, &format!("phase_currently_returned_l{l}"))?,
            field_f64(&v, &format!("phase_power_current_l{l}"))?,
            v_l,
        );
        volts.push(v_l);
        amps.push(a);
    }
    let measured_at = match v.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(timestamp::instant_of(
            timestamp::parse_rfc3339(s).map_err(|e| e.context("timestamp"))?,
        )),
        Some(other) => {
            return Err(ParseError::protocol(format!(
                "timestamp: {other} is not a date and time"
            )));
        }
    };
    Ok(Parsed {
        reading: EnergyReading {
            grid_w: Some(delivered - returned),
            phase_voltages: per_phase(&volts),
            phase_currents_a: per_phase(&amps),
            ..EnergyReading::default()
        },
        measured_at,
    })
}

/// L1, L1–L2 or L1–L3 when those are all known; nothing when a phase before a known one is
/// missing (a value would be put on the wrong phase).
fn per_phase(v: &[Option<f64>]) -> Option<Vec<f64>> {
    let n = v.iter().rposition(Option::is_some)? + 1;
    v[..n].iter().copied().collect()
}

/// The running source: a subscription to the JSON telegram topic.
pub struct DsmrReader {
    sub: Subscription,
    topic: String,
}

#[twc_core::async_trait]
impl EmsSource for DsmrReader {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let what = format!("topic {}", self.topic);
        let Some(m) = self.sub.latest(&self.topic) else {
            let why = match self.sub.last_error() {
                Some(e) if !self.sub.is_connected() => format!("broker unreachable: {e}"),
                _ => "no telegram yet".to_string(),
            };
            return Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!("{what}: {why}"),
            ));
        };
        let p = parse_json(&m.payload).map_err(|e| e.into_plugin(NAME, &what))?;
        let mut r = p.reading;
        r.measured_at = match p.measured_at {
            Some(t) => t.min(m.arrived),
            None if m.retained => {
                return Err(PluginError::new(
                    ErrorKind::Transient,
                    NAME,
                    format!(
                        "{what}: only a retained telegram without a timestamp so far, of unknown age; waiting for a live one"
                    ),
                ));
            }
            None => m.arrived,
        };
        Ok(r)
    }
}

/// Build from `[ems.dsmrreader]`. Connects on the first read.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: DsmrReaderConfig = cfg.parse()?;
    if c.topic.is_empty() || c.topic.contains(['+', '#']) {
        return Err(BuildError::new(
            &cfg.section,
            format!(
                "topic = {:?}: expected DSMR-reader's exact JSON telegram topic, such as \"dsmr/json\"",
                c.topic
            ),
        ));
    }
    let client_id = c
        .client_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("twcmanager-ems-{NAME}-{:08x}", rand::random::<u32>()));
    let mut s = LinkSettings::new(c.url.clone(), client_id);
    s.username = c.username.clone().filter(|u| !u.is_empty());
    s.password = c.password.clone().filter(|p| !p.is_empty());
    s.ca_file = c.ca_file.clone().filter(|f| !f.as_os_str().is_empty());
    s.protocol = Protocol::parse(&cfg.section, c.protocol.as_deref().unwrap_or("auto"))?;
    s.keep_alive = Duration::from_secs(c.keep_alive_secs.unwrap_or(30).max(5));
    s.subscriptions = vec![c.topic.clone()];
    let sub = Subscription::new(&cfg.section, &cfg.section, s)?;
    Ok(Box::new(DsmrReader {
        sub,
        topic: c.topic,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "DSMR-reader's JSON telegrams over MQTT (grid power and phases of a P1 meter)",
        example: include_str!("../example.toml"),
        build,
    }
}
