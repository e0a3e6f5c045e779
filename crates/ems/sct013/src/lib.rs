#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError};

/// The registry name: the section is `[ems.sct013]`, the bin's feature `ems-sct013`.
pub const NAME: &str = "sct013";

/// `[ems.sct013]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sct013Config {}

/// What the other side sends, decoded (add its fields; tests/fixtures holds real replies).
#[derive(Debug, Deserialize)]
pub struct Sample {}

/// Decode a reply. Garbage is a `Protocol` error, never a value.
pub fn decode(body: &[u8]) -> Result<Sample, PluginError> {
    serde_json::from_slice(body).map_err(|e| {
        PluginError::new(ErrorKind::Protocol, NAME, "undecodable reply").with_source(e)
    })
}

/// The plugin.
pub struct Sct013 {
    _config: Sct013Config,
}

#[twc_core::async_trait]
impl EmsSource for Sct013 {
    async fn read(&self) -> Result<twc_core::model::EnergyReading, PluginError> {
        Err(PluginError::new(
            ErrorKind::Unsupported,
            NAME,
            "read is not written yet",
        ))
    }
}

/// Build from the section.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    Ok(Box::new(Sct013 {
        _config: cfg.parse()?,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "twcmanager ems plugin: sct013",
        example: include_str!("../example.toml"),
        build,
    }
}
