#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num, timestamp};

/// Registry name: `[ems.smartpi]`, feature `ems-smartpi`.
pub const NAME: &str = "smartpi";
/// Power of every phase (what TWCManager polls).
pub const POWER_NOW: &str = "/api/all/power/now";
/// Every value type of every phase: adds currents and voltages.
pub const ALL_NOW: &str = "/api/all/all/now";

/// `[ems.smartpi]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmartpiConfig {
    /// SmartPi API base URL with its port, e.g. `http://smartpi.local:1080`.
    pub url: String,
    /// Read every value type (`/api/all/all/now`) for per-phase currents and voltages.
    #[serde(default)]
    pub all_values: bool,
    /// The clamps count export as positive (mounted the other way round).
    #[serde(default)]
    pub invert_grid: bool,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// One value of a phase by its `type`, checked against the unit it must have.
fn phase_value(phase: &Value, kind: &str, units: &[&str]) -> Result<Option<f64>, ParseError> {
    let Some(values) = phase.get("values").and_then(Value::as_array) else {
        return Err(ParseError::protocol("a phase has no values list"));
    };
    let Some(v) = values
        .iter()
        .find(|v| v.get("type").and_then(Value::as_str) == Some(kind))
    else {
        return Ok(None);
    };
    if let Some(u) = v.get("unity").and_then(Value::as_str)
        && !units.contains(&u)
    {
        return Err(ParseError::protocol(format!(
            "{kind} is in {u:?}, expected {}",
            units.join(" or ")
        )));
    }
    let x = num::pointer_f64(v, "/data").map_err(|e| e.context(kind))?;
    Ok(Some(x.ok_or_else(|| {
        ParseError::transient(format!("{kind} has no value"))
    })?))
}

/// Parse `/api/all/power/now` or `/api/all/all/now` of a SmartPi at the grid connection:
/// grid = Σ power of phases 1–3 (+ import / − export); with currents, per-phase grid currents
/// signed by each phase's power, and per-phase voltages. Phase 4 (neutral) carries no power.
pub fn parse_now(body: &[u8], invert_grid: bool) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let dataset = v
        .pointer("/datasets/0")
        .ok_or_else(|| ParseError::protocol("missing /datasets/0"))?;
    let phases = num::pointer(dataset, "/phases")?
        .as_array()
        .ok_or_else(|| ParseError::protocol("phases is not a list"))?;
    let sign = if invert_grid { -1.0 } else { 1.0 };
    let mut grid = 0.0;
    let mut powers = Vec::new();
    let mut amps = Vec::new();
    let mut volts = Vec::new();
    for n in 1..=3 {
        let Some(phase) = phases
            .iter()
            .find(|p| p.get("phase").and_then(Value::as_u64) == Some(n))
        else {
            continue;
        };
        let what = format!("phase {n}");
        let p = phase_value(phase, "power", &["W"])
            .map_err(|e| e.context(&what))?
            .ok_or_else(|| ParseError::protocol(format!("{what} has no power value")))?
            * sign;
        grid += p;
        powers.push(p);
        if let Some(a) = phase_value(phase, "current", &["A"]).map_err(|e| e.context(&what))? {
            amps.push(if p < 0.0 { -a.abs() } else { a.abs() });
        }
        if let Some(u) = phase_value(phase, "voltage", &["V"]).map_err(|e| e.context(&what))? {
            volts.push(u);
        }
    }
    if powers.is_empty() {
        return Err(ParseError::protocol("no phase 1, 2 or 3 in the answer"));
    }
    let mut r = EnergyReading {
        grid_w: Some(grid),
        ..EnergyReading::default()
    };
    if amps.len() == powers.len() {
        r.phase_currents_a = Some(amps);
    }
    if volts.len() == powers.len() {
        r.phase_voltages = Some(volts);
    }
    match dataset.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => {
            let at = timestamp::parse_naive_in(t, &chrono::Local)
                .map_err(|e| e.context("datasets/0/time"))?;
            r.measured_at = r.measured_at.min(timestamp::instant_of(at));
        }
        Some(_) => return Err(ParseError::protocol("datasets/0/time is not text")),
    }
    Ok(r)
}

/// Build from `[ems.smartpi]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: SmartpiConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let path = if c.all_values { ALL_NOW } else { POWER_NOW };
    let invert = c.invert_grid;
    Ok(Box::new(HttpSource::new(
        client,
        Request::get(join(&c.url, path)),
        move |b| parse_now(b, invert),
    )))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "SmartPi grid meter, power (and currents) per phase",
        example: include_str!("../example.toml"),
        build,
    }
}
