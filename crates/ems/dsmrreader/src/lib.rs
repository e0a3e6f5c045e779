#![doc = include_str!("../README.md")]

use serde::Deserialize;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError};

/// The registry name: the section is `[ems.dsmrreader]`, the bin's feature `ems-dsmrreader`.
pub const NAME: &str = "dsmrreader";

/// `[ems.dsmrreader]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsmrreaderConfig {}

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
pub struct Dsmrreader {
    _config: DsmrreaderConfig,
}

#[twc_core::async_trait]
impl EmsSource for Dsmrreader {
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
    Ok(Box::new(Dsmrreader {
        _config: cfg.parse()?,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "twcmanager ems plugin: dsmrreader",
        example: include_str!("../example.toml"),
        build,
    }
}
