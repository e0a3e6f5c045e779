#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::model::Quantity;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{Channel, ChannelSource, ParseError, parse_power_w};

/// Registry name.
pub const NAME: &str = "openhab";

/// `[ems.openhab]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenhabConfig {
    /// openHAB base URL, e.g. `http://openhab.local:8080`.
    pub url: String,
    /// Item with PV power.
    pub generation_item: Option<String>,
    /// Item with house consumption power.
    pub consumption_item: Option<String>,
    /// Item with grid power (+ import / − export unless `invert_grid`).
    pub grid_item: Option<String>,
    /// Item with battery power (+ discharge / − charge unless `invert_battery`).
    pub battery_item: Option<String>,
    /// The grid item shows export as positive.
    #[serde(default)]
    pub invert_grid: bool,
    /// The battery item shows charging as positive.
    #[serde(default)]
    pub invert_battery: bool,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Parse an item state (`GET /rest/items/<item>/state`, text/plain): a plain number (`1111`) or a
/// quantity with a power unit (`2814.74 W`, `1.234 kW`, converted to W). `NULL`/`UNDEF` (item not
/// set) are errors, never 0 W.
pub fn parse_item_state(body: &[u8]) -> Result<f64, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::protocol("state is not UTF-8"))?;
    let t = text.trim();
    if matches!(t, "NULL" | "UNDEF") {
        return Err(ParseError::transient(format!("item state is {t}")));
    }
    parse_power_w(t)
}

/// Build from `[ems.openhab]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: OpenhabConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let mut channels = Vec::new();
    for (q, key, item, invert) in [
        (
            Quantity::Generation,
            "generation_item",
            &c.generation_item,
            false,
        ),
        (
            Quantity::Consumption,
            "consumption_item",
            &c.consumption_item,
            false,
        ),
        (Quantity::Grid, "grid_item", &c.grid_item, c.invert_grid),
        (
            Quantity::Battery,
            "battery_item",
            &c.battery_item,
            c.invert_battery,
        ),
    ] {
        let Some(i) = item else { continue };
        if i.is_empty() || !i.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(BuildError::new(
                &cfg.section,
                format!("{key} {i:?} is not an openHAB item name (letters, digits, _)"),
            ));
        }
        let req = Request::get(join(&c.url, &format!("/rest/items/{i}/state")))
            .header("Accept", "text/plain");
        channels.push(Channel::new(q, req, move |b| {
            parse_item_state(b).map(|w| if invert { -w } else { w })
        }));
    }
    if channels.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "no item configured: set at least one of generation_item, consumption_item, grid_item, battery_item",
        ));
    }
    Ok(Box::new(ChannelSource::new(client, channels)))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "openHAB item states over REST (unit suffixes understood)",
        example: include_str!("../example.toml"), build }
}
