#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::model::Quantity;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::{Channel, ChannelSource, ValueSpec, num, timestamp};

/// Registry name.
pub const NAME: &str = "url";

/// Where one quantity comes from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UrlChannel {
    /// Full URL to GET.
    pub url: String,
    /// JSON pointer (e.g. `/power/now`); without it the body is a plain number, unit suffix allowed.
    pub pointer: Option<String>,
    /// Multiply by this (e.g. 1000 when the value is kW without a unit).
    #[serde(default = "one")]
    pub scale: f64,
    /// Negate, for a meter whose sign is opposite to ours (grid + import, battery + discharge).
    #[serde(default)]
    pub invert: bool,
    /// JSON pointer to when the value was measured (Unix seconds or milliseconds, or RFC 3339
    /// text), e.g. `/time`. Without it the value counts from the answer's arrival.
    pub timestamp_pointer: Option<String>,
}

fn one() -> f64 {
    1.0
}

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
    ValueSpec {
        pointer: ch.pointer.clone(),
        scale: ch.scale,
        invert: ch.invert,
    }
}

/// Build from `[ems.url]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: UrlConfig = cfg.parse()?;
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let mut channels = Vec::new();
    for (q, key, ch) in [
        (Quantity::Generation, "generation", &c.generation),
        (Quantity::Consumption, "consumption", &c.consumption),
        (Quantity::Grid, "grid", &c.grid),
        (Quantity::Battery, "battery", &c.battery),
    ] {
        let Some(ch) = ch else { continue };
        check_url(&cfg.section, &format!("{key}.url"), &ch.url)?;
        if let Some(p) = &ch.pointer
            && !(p.is_empty() || p.starts_with('/'))
        {
            return Err(BuildError::new(
                &cfg.section,
                format!("{key}.pointer must be a JSON pointer starting with '/', got {p:?}"),
            ));
        }
        if !ch.scale.is_finite() || ch.scale == 0.0 {
            return Err(BuildError::new(
                &cfg.section,
                format!("{key}.scale must be a non-zero number, got {}", ch.scale),
            ));
        }
        if let Some(p) = &ch.timestamp_pointer
            && !p.starts_with('/')
        {
            return Err(BuildError::new(
                &cfg.section,
                format!(
                    "{key}.timestamp_pointer must be a JSON pointer starting with '/', got {p:?}"
                ),
            ));
        }
        let s = spec(ch);
        let ts = ch.timestamp_pointer.clone();
        channels.push(Channel::timed(q, Request::get(ch.url.clone()), move |b| {
            let w = s.extract(b)?;
            let at = match &ts {
                Some(p) => timestamp::pointer_instant(&num::json(b)?, p)?,
                None => None,
            };
            Ok((w, at))
        }));
    }
    if channels.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "no quantity configured: set at least one of generation, consumption, grid, battery = { url = \"...\" }",
        ));
    }
    Ok(Box::new(ChannelSource::new(client, channels)))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "Any HTTP URL: plain number or JSON pointer, scale and sign",
        example: include_str!("../example.toml"), build }
}
