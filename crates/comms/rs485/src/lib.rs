#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod link;

pub use link::SerialLink;

use async_trait::async_trait;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use twc_core::plugin::{
    BuildError, Comms, CommsPlugin, ErrorKind, PluginConfig, PluginError, Received,
};
use twc_core::protocol::Frame;
use twc_core::transport::StreamComms;

const PLUGIN: &str = "rs485";

/// `[comms.rs485]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rs485Config {
    /// The serial device, e.g. `/dev/ttyUSB0` or `/dev/serial/by-id/usb-FTDI_…-if00-port0`.
    pub port: String,
    /// Bits per second; TWCs talk at 9600 (8N1 is fixed).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Drop a partly received frame after this much silence, ms.
    #[serde(default = "default_partial_timeout_ms")]
    pub partial_timeout_ms: u64,
}

fn default_baud() -> u32 {
    9600
}

fn default_partial_timeout_ms() -> u64 {
    500
}

impl Rs485Config {
    /// A config for `port` with the defaults (9600 baud, 500 ms partial-frame timeout).
    pub fn new(port: impl Into<String>) -> Self {
        Rs485Config {
            port: port.into(),
            baud: default_baud(),
            partial_timeout_ms: default_partial_timeout_ms(),
        }
    }

    fn validate(&self, section: &str) -> Result<(), BuildError> {
        if self.port.trim().is_empty() {
            return Err(BuildError::new(
                section,
                "port is empty: expected a serial device such as \"/dev/ttyUSB0\" or \"/dev/serial/by-id/…\"",
            ));
        }
        if !(1200..=1_000_000).contains(&self.baud) {
            return Err(BuildError::new(
                section,
                format!(
                    "baud = {}: expected a rate between 1200 and 1000000 (TWCs use 9600)",
                    self.baud
                ),
            ));
        }
        if !(10..=10_000).contains(&self.partial_timeout_ms) {
            return Err(BuildError::new(
                section,
                format!(
                    "partial_timeout_ms = {}: expected 10 to 10000",
                    self.partial_timeout_ms
                ),
            ));
        }
        Ok(())
    }
}

/// A serial port as a [`Comms`]. The port is opened on first use and re-opened by
/// [`Comms::reconnect`], so a missing adapter at start-up or an unplugged one never ends the
/// program. The blocking port is served by two threads (see [`SerialLink`]).
pub struct Rs485 {
    cfg: Rs485Config,
    comms: StreamComms<SerialLink>,
    opening: Option<JoinHandle<Result<(SerialLink, PathBuf), String>>>,
    opened_once: bool,
    missing_since_logged: bool,
}

impl Rs485 {
    /// A transport for `cfg`; nothing is opened yet.
    pub fn new(cfg: Rs485Config) -> Self {
        let timeout = Duration::from_millis(cfg.partial_timeout_ms);
        Rs485 {
            cfg,
            comms: StreamComms::new(SerialLink::closed(), PLUGIN).with_partial_timeout(timeout),
            opening: None,
            opened_once: false,
            missing_since_logged: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Rs485Config {
        &self.cfg
    }

    /// Decoder counters (garbage bytes, dropped frames by reason), kept across re-opens.
    pub fn stats(&self) -> twc_core::protocol::DecodeStats {
        self.comms.stats()
    }

    /// Open the port unless it is open. Cancel-safe: an open in progress is kept and awaited
    /// again by the next call.
    async fn ensure_open(&mut self) -> Result<(), PluginError> {
        if self.comms.stream_mut().is_open() {
            return Ok(());
        }
        let handle = self.opening.get_or_insert_with(|| {
            let port = self.cfg.port.clone();
            let baud = self.cfg.baud;
            twc_core::plugin::spawn_blocking(move || {
                SerialLink::open(&port, baud).map_err(|e| e.to_string())
            })
        });
        let result = handle.await;
        self.opening = None;
        let opened = match result {
            Ok(r) => r,
            Err(e) => Err(format!("the opening task failed: {e}")),
        };
        match opened {
            Ok((link, resolved)) => {
                self.comms.replace_stream(link);
                let via = if resolved.as_os_str() != self.cfg.port.as_str() {
                    format!(" ({})", resolved.display())
                } else {
                    String::new()
                };
                if self.opened_once {
                    info!(port = %self.cfg.port, baud = self.cfg.baud, "Serial port re-opened{via}");
                } else {
                    info!(port = %self.cfg.port, baud = self.cfg.baud, "Serial port open{via}");
                }
                self.opened_once = true;
                self.missing_since_logged = false;
                Ok(())
            }
            Err(e) => {
                if !self.missing_since_logged {
                    self.missing_since_logged = true;
                    if !self.opened_once {
                        warn!(port = %self.cfg.port, error = %e, "Cannot open the serial port; retrying with backoff (is the adapter plugged in? see docs/hardware.md)");
                    }
                } else {
                    debug!(port = %self.cfg.port, error = %e, "Serial port still unavailable");
                }
                Err(PluginError::new(
                    ErrorKind::Transient,
                    PLUGIN,
                    format!("open {}: {e}", self.cfg.port),
                ))
            }
        }
    }

    fn close(&mut self) {
        self.comms.replace_stream(SerialLink::closed());
    }
}

#[async_trait]
impl Comms for Rs485 {
    async fn send(&mut self, frame: &Frame) -> Result<(), PluginError> {
        self.ensure_open().await?;
        let r = self.comms.send(frame).await;
        if r.is_err() {
            self.close();
        }
        r
    }

    async fn recv(&mut self) -> Result<Received, PluginError> {
        self.ensure_open().await?;
        let r = self.comms.recv().await;
        if r.is_err() {
            self.close();
        }
        r
    }

    async fn reconnect(&mut self) -> Result<(), PluginError> {
        self.close();
        self.ensure_open().await
    }

    fn decode_stats(&self) -> Option<twc_core::protocol::DecodeStats> {
        Some(self.comms.stats())
    }

    fn describe(&self) -> String {
        format!("rs485 {} at {} baud", self.cfg.port, self.cfg.baud)
    }
}

/// Build from `[comms.rs485]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn Comms>, BuildError> {
    let c: Rs485Config = cfg.parse()?;
    c.validate(&cfg.section)?;
    Ok(Box::new(Rs485::new(c)))
}

inventory::submit! {
    CommsPlugin {
        name: "rs485",
        summary: "USB RS-485 adapter or serial port (9600 8N1), re-opened after unplugging",
        example: include_str!("../example.toml"),
        build,
    }
}
