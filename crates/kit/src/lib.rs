#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod compat;
pub mod http;
#[cfg(feature = "modbus")]
pub mod modbus;
#[cfg(feature = "mqtt")]
pub mod mqtt_link;
pub mod notify;
pub mod num;
pub mod phase;
pub mod quantity;
#[cfg(feature = "serial")]
pub mod serial;
pub mod source;
#[cfg(feature = "sql")]
pub mod sql;
pub mod tariff;
pub mod timestamp;

pub use http::{HttpClient, HttpOptions, Method, Request, Response};
pub use num::{ValueSpec, json, parse_f64, parse_power_w, pointer, pointer_f64, pointer_power_w};
pub use quantity::{ChannelConfig, channels_from_keys, channels_from_tables};
pub use source::{
    Channel, ChannelSource, HttpSource, MinInterval, TimedValueFn, ValueFn, min_interval_for,
    set_quantity,
};

use std::fmt;
use twc_core::plugin::{ErrorKind, PluginError};

/// Why a response could not be turned into a reading. Parse functions return this; the kit turns
/// it into a [`PluginError`] with the request as context.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// What the engine should do about it (usually [`ErrorKind::Protocol`]).
    pub kind: ErrorKind,
    /// Lowercase message naming the bad field or input.
    pub message: String,
}

impl ParseError {
    /// The peer sent something we cannot read.
    pub fn protocol(message: impl Into<String>) -> Self {
        ParseError {
            kind: ErrorKind::Protocol,
            message: message.into(),
        }
    }
    /// The configuration names something the peer does not have (an entity, an output).
    pub fn config(message: impl Into<String>) -> Self {
        ParseError {
            kind: ErrorKind::Config,
            message: message.into(),
        }
    }
    /// The peer says the value is temporarily unavailable.
    pub fn transient(message: impl Into<String>) -> Self {
        ParseError {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }
    /// Prefix the message with where it happened.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    /// Into a plugin error for `plugin`, with `context` (e.g. "GET /api/states/sensor.pv").
    pub fn into_plugin(self, plugin: &str, context: &str) -> PluginError {
        PluginError::new(self.kind, plugin, format!("{context}: {}", self.message))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}
