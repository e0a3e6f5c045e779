#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{
    Channel, ChannelSource, ParseError, channels_from_keys, parse_power_w, quantity,
};

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

/// An openHAB item name (`PV_Power`), under the keys `<quantity>_item`.
pub struct Item;

impl quantity::Address for Item {
    const KEY: &'static str = "item";
    fn check(address: &str) -> Result<(), &'static str> {
        if !address.is_empty()
            && address
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            Ok(())
        } else {
            Err("an openHAB item name (letters, digits, _)")
        }
    }
}

/// Build from `[ems.openhab]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: OpenhabConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let configured = channels_from_keys::<Item>(
        &cfg.section,
        [
            &c.generation_item,
            &c.consumption_item,
            &c.grid_item,
            &c.battery_item,
        ],
        c.invert_grid,
        c.invert_battery,
    )?;
    let channels = configured
        .into_iter()
        .map(|(q, ch)| {
            let req = Request::get(join(&c.url, &format!("/rest/items/{}/state", ch.address)))
                .header("Accept", "text/plain");
            let invert = ch.invert;
            Channel::new(q, req, move |b| {
                parse_item_state(b).map(|w| if invert { -w } else { w })
            })
        })
        .collect();
    Ok(Box::new(ChannelSource::new(client, channels)))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "openHAB item states over REST (unit suffixes understood)",
        example: include_str!("../example.toml"), build }
}
