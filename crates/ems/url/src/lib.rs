#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request};
use twc_plugin_kit::{
    Channel, ChannelConfig, ChannelSource, ValueSpec, channels_from_tables, quantity,
};

/// Registry name.
pub const NAME: &str = "url";

/// Where one quantity comes from: `{ url = "...", pointer, scale, invert, timestamp_pointer }`
/// (the kit's quantity channel, addressed by `url`).
pub type UrlChannel = ChannelConfig<quantity::Url>;

/// `[ems.url]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UrlConfig {
    /// PV generation.
    pub generation: Option<UrlChannel>,
    /// House consumption.
    pub consumption: Option<UrlChannel>,
    /// Grid power, + import / − export.
    pub grid: Option<UrlChannel>,
    /// Battery power, + discharge / − charge.
    pub battery: Option<UrlChannel>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// The value spec of a channel (pointer, scale, sign).
pub fn spec(ch: &UrlChannel) -> ValueSpec {
    ch.spec()
}

/// Build from `[ems.url]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: UrlConfig = cfg.parse()?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let configured = channels_from_tables(
        &cfg.section,
        [&c.generation, &c.consumption, &c.grid, &c.battery],
    )?;
    let channels = configured
        .into_iter()
        .map(|(q, ch)| Channel::timed(q, Request::get(ch.address.clone()), move |b| ch.read(b)))
        .collect();
    Ok(Box::new(ChannelSource::new(client, channels)))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "Any HTTP URL: plain number or JSON pointer, scale and sign",
        example: include_str!("../example.toml"), build }
}
