#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::num::{parse_f64, unit_factor};
use twc_plugin_kit::{
    Channel, ChannelSource, ParseError, channels_from_keys, num, quantity, timestamp,
};

/// Registry name.
pub const NAME: &str = "hass";

/// `[ems.hass]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HassConfig {
    /// Home Assistant base URL, e.g. `http://homeassistant.local:8123`.
    pub url: String,
    /// Long-lived access token (profile page → Security).
    pub token: Secret,
    /// Entity with PV power.
    pub generation_entity: Option<String>,
    /// Entity with house consumption power.
    pub consumption_entity: Option<String>,
    /// Entity with grid power (+ import / − export unless `invert_grid`).
    pub grid_entity: Option<String>,
    /// Entity with battery power (+ discharge / − charge unless `invert_battery`).
    pub battery_entity: Option<String>,
    /// The grid entity reports export as positive.
    #[serde(default)]
    pub invert_grid: bool,
    /// The battery entity reports charging as positive.
    #[serde(default)]
    pub invert_battery: bool,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Parse a state object (`GET /api/states/<entity_id>`) into watts. The `state` is a string;
/// `unit_of_measurement` W, kW or MW is applied (none = W). `unavailable`/`unknown` are errors
/// (the sensor is offline), never 0 W.
pub fn parse_state(body: &[u8]) -> Result<f64, ParseError> {
    state_watts(&num::json(body)?)
}

/// Parse a state object into watts and when the value was last measured: the newer of
/// `last_updated` (the state or its attributes changed) and `last_reported` (Home Assistant
/// 2024.3+: the integration wrote the state again, even unchanged). `last_changed` is not used: a
/// steady value keeps its old `last_changed` while still being reported. Without either field the
/// answer's arrival counts; a malformed one is an error.
pub fn parse_state_measured(body: &[u8]) -> Result<(f64, Option<Instant>), ParseError> {
    let v = num::json(body)?;
    let w = state_watts(&v)?;
    let mut newest = None;
    for key in ["last_updated", "last_reported"] {
        let Some(x) = v.get(key).filter(|x| !x.is_null()) else {
            continue;
        };
        let t = x
            .as_str()
            .ok_or_else(|| ParseError::protocol(format!("{key} is not text")))
            .and_then(timestamp::parse_rfc3339)
            .map_err(|e| e.context(key))?;
        newest = newest.max(Some(t));
    }
    Ok((w, newest.map(timestamp::instant_of)))
}

fn state_watts(v: &Value) -> Result<f64, ParseError> {
    let entity = v.get("entity_id").and_then(Value::as_str).unwrap_or("?");
    let state = match v.get("state") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Number(n)) => {
            return n.as_f64().ok_or_else(|| ParseError::protocol("bad state"));
        }
        _ => return Err(ParseError::protocol(format!("{entity}: missing state"))),
    };
    if matches!(state, "unavailable" | "unknown" | "") {
        return Err(ParseError::transient(format!("{entity} is {state:?}")));
    }
    let unit = v
        .pointer("/attributes/unit_of_measurement")
        .and_then(Value::as_str)
        .unwrap_or("W");
    let factor = unit_factor(unit).ok_or_else(|| {
        ParseError::config(format!(
            "{entity} has unit {unit:?}, which is not a power (W, kW)"
        ))
    })?;
    let x = parse_f64(state)
        .map_err(|_| ParseError::protocol(format!("{entity} state {state:?} is not a number")))?;
    Ok(x * factor)
}

/// A Home Assistant entity id (`sensor.solar_power`), under the keys `<quantity>_entity`.
pub struct Entity;

impl quantity::Address for Entity {
    const KEY: &'static str = "entity";
    fn check(address: &str) -> Result<(), &'static str> {
        if address.is_empty() || address.contains(['/', '?', '#', ' ']) {
            Err("an entity id such as sensor.solar_power")
        } else {
            Ok(())
        }
    }
}

/// Build from `[ems.hass]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: HassConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    if c.token.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "token is empty: create a long-lived access token in your Home Assistant profile",
        ));
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let configured = channels_from_keys::<Entity>(
        &cfg.section,
        [
            &c.generation_entity,
            &c.consumption_entity,
            &c.grid_entity,
            &c.battery_entity,
        ],
        c.invert_grid,
        c.invert_battery,
    )?;
    let channels = configured
        .into_iter()
        .map(|(q, ch)| {
            let req = Request::get(join(&c.url, &format!("/api/states/{}", ch.address)))
                .bearer(c.token.expose());
            let invert = ch.invert;
            Channel::timed(q, req, move |b| {
                parse_state_measured(b).map(|(w, at)| (if invert { -w } else { w }, at))
            })
        })
        .collect();
    Ok(Box::new(ChannelSource::new(client, channels)))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "Home Assistant sensor states over REST (W or kW)",
        example: include_str!("../example.toml"), build }
}
