#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num};

/// The registry name: the section is `[ems.__NAME__]`, the bin's feature `ems-__NAME__`.
pub const NAME: &str = "__NAME__";

/// The path read on every poll (the device's own; tests/fixtures/sample.json is its reply).
pub const PATH: &str = "/status";

/// `[ems.__NAME__]`: every key named, typos rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct __CAMEL__Config {
    /// The device's base URL.
    pub url: String,
    /// Timeout, retries, TLS.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Decode a reply (signs: grid + import / − export). Garbage or a missing value is an error,
/// never 0 W; replace the pointers with the device's fields.
pub fn parse(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    Ok(EnergyReading {
        grid_w: Some(num::require_power_w(&v, "/grid_w")?),
        ..EnergyReading::default()
    })
}

/// Build from the section: synchronous and cheap.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: __CAMEL__Config = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    Ok(Box::new(HttpSource::new(
        client,
        Request::get(join(&c.url, PATH)),
        parse,
    )))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "__SUMMARY__",
        example: include_str!("../example.toml"),
        build,
    }
}
