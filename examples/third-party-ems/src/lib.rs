//! `myshelly`: a Shelly 3EM (Gen1) as the grid meter, written as a third-party plugin.
//! It uses only the public API of `twc-core` and `twc-plugin-kit`; see docs/plugin-guide.md.

use serde::Deserialize;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num};

/// `[ems.myshelly]`: every key named, typos rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MyShellyConfig {
    /// The Shelly's base URL.
    pub url: String,
    /// Timeout, retries, TLS.
    #[serde(default)]
    pub http: HttpOptions,
}

/// `GET /status`: `total_power` is the grid power, + import / − export (our convention already);
/// `emeters[].voltage` are the phase voltages.
pub fn parse_status(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let volts = (0..3)
        .filter_map(|i| v.pointer(&format!("/emeters/{i}/voltage")))
        .map(num::value_f64)
        .collect::<Result<Option<Vec<f64>>, _>>()?;
    Ok(EnergyReading {
        grid_w: Some(num::require_power_w(&v, "/total_power")?),
        phase_voltages: volts.filter(|v| !v.is_empty()),
        ..EnergyReading::default()
    })
}

/// Build from config: synchronous and cheap.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: MyShellyConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let client = HttpClient::new("myshelly", &cfg.section, &c.http)?;
    Ok(Box::new(HttpSource::new(
        client,
        Request::get(join(&c.url, "/status")),
        parse_status,
    )))
}

inventory::submit! {
    EmsPlugin { name: "myshelly", summary: "Shelly 3EM grid meter (third-party example)",
        example: include_str!("../example.toml"), build }
}
