#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![deny(unsafe_code)]

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{debug, info, warn};
use twc_core::engine::{CommandError, EngineHandle};
use twc_core::plugin::{
    BuildError, ControlPlugin, ControlSurface, ErrorKind, PluginConfig, PluginError,
};

pub mod protocol;
pub mod sys;

use protocol::{Action, REPLY_TYPE, REQUEST_TYPE};

const PLUGIN: &str = "webipc";

/// `[control.webipc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebIpcConfig {
    /// The path whose inode makes the key, with the id `'T'` (`ftok`), as the PHP page's
    /// `$twcScriptDir` (TWCManager: its settingsPath, `/etc/twcmanager`). Must exist.
    pub key_path: String,
    /// A fixed numeric key instead of `ftok(key_path, 'T')`, for pages configured that way.
    pub key: Option<i32>,
    /// Permissions of the queue when it is created (octal text). TWCManager's "666" lets every
    /// local user send commands; "660" limits them to our group.
    pub mode: String,
    /// How often to look for a request, ms (the page looks for the reply every 100 ms).
    pub poll_ms: u64,
}

impl Default for WebIpcConfig {
    fn default() -> Self {
        WebIpcConfig {
            key_path: "/etc/twcmanager".into(),
            key: None,
            mode: "666".into(),
            poll_ms: 50,
        }
    }
}

/// The control surface: one message queue.
#[derive(Debug)]
pub struct WebIpc {
    queue: sys::Queue,
    poll: Duration,
}

impl WebIpc {
    /// Open (or create) the queue of `cfg`; errors name the key and the fix.
    pub fn new(section: &str, cfg: &WebIpcConfig) -> Result<Self, BuildError> {
        let mode = u32::from_str_radix(cfg.mode.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                BuildError::new(
                    section,
                    format!(
                        "mode = {:?}: expected octal permissions such as \"666\" or \"660\"",
                        cfg.mode
                    ),
                )
            })?;
        let key = match cfg.key {
            Some(k) => k,
            None => sys::ftok(&PathBuf::from(&cfg.key_path), b'T').map_err(|e| {
                BuildError::new(
                    section,
                    format!("key_path = {:?}: {e}; it must exist (the PHP page's $twcScriptDir), or set key", cfg.key_path),
                )
            })?,
        };
        let queue = sys::Queue::open(key, mode).map_err(|e| {
            BuildError::new(
                section,
                format!("cannot open the message queue {key:#x}: {e}"),
            )
        })?;
        Ok(WebIpc {
            queue,
            poll: Duration::from_millis(cfg.poll_ms.clamp(5, 1000)),
        })
    }

    /// The queue (for tests).
    pub fn queue(&self) -> sys::Queue {
        self.queue
    }

    async fn handle(&self, engine: &EngineHandle, raw: &[u8]) {
        let Some((time, id, text)) = protocol::split(raw) else {
            debug!(
                plugin = PLUGIN,
                bytes = raw.len(),
                "WebIPC message shorter than its header ignored"
            );
            return;
        };
        let req = protocol::parse(text);
        debug!(plugin = PLUGIN, request = ?req, id, "WebIPC request");
        match protocol::act(&req, &engine.status()) {
            Action::Reply(text, packets) => {
                for p in protocol::reply_packets(time, id, &text, packets) {
                    if let Err(e) = self.queue.send(REPLY_TYPE, &p) {
                        warn!(plugin = PLUGIN, error = %e, "Cannot queue the WebIPC reply (queue full?)");
                        break;
                    }
                }
            }
            Action::Command(cmd) => match engine.command(cmd).await {
                Ok(_) => info!(plugin = PLUGIN, request = ?req, "WebIPC command applied"),
                Err(CommandError::Invalid(m))
                | Err(CommandError::Unavailable(m))
                | Err(CommandError::Busy(m)) => {
                    warn!(plugin = PLUGIN, request = ?req, reason = %m, "WebIPC command refused")
                }
                Err(e) => {
                    warn!(plugin = PLUGIN, request = ?req, reason = %e, "WebIPC command refused")
                }
            },
            Action::Refuse(why) => {
                warn!(plugin = PLUGIN, reason = %why, "WebIPC request not carried out")
            }
        }
    }
}

#[twc_core::async_trait]
impl ControlSurface for WebIpc {
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        info!(plugin = PLUGIN, "WebIPC queue open");
        loop {
            // Non-blocking reads: drain what is there, then wait one poll period.
            loop {
                match self.queue.recv(REQUEST_TYPE, 1024) {
                    Ok(Some(raw)) => self.handle(&engine, &raw).await,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(PluginError::new(
                            ErrorKind::Transient,
                            PLUGIN,
                            format!("reading the message queue: {e}"),
                        ));
                    }
                }
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn ControlSurface>, BuildError> {
    let c: WebIpcConfig = cfg.parse()?;
    Ok(Box::new(WebIpc::new(&cfg.section, &c)?))
}

inventory::submit! {
    ControlPlugin {
        name: PLUGIN,
        summary: "TWCManager's WebIPC: its PHP page and openWB over a SysV message queue",
        example: include_str!("../example.toml"),
        build,
    }
}
