#![doc = include_str!("../README.md")]

pub mod smarty;
pub mod telegram;

use serde::Deserialize;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{
    BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::serial::{CharFormat, SerialEvent, SerialReader, SerialSettings};
use twc_plugin_kit::timestamp::instant_of;

pub use smarty::{FrameSplitter, Keys};
pub use telegram::{Splitter, Telegram, TelegramError, crc16, parse, to_reading};

/// The registry name: the section is `[ems.dsmr]`, the bin's feature `ems-dsmr`.
pub const NAME: &str = "dsmr";

/// `[ems.dsmr]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DsmrConfig {
    /// The P1 cable's serial device (`/dev/serial/by-id/usb-FTDI_…`, `/dev/ttyUSB0`).
    pub port: String,
    /// Baud rate: 115200 for DSMR 4 and 5 (and Belgian and Luxembourg meters), 9600 for 2.2/3.0.
    #[serde(default = "baud")]
    pub baud: u32,
    /// `"8N1"` (DSMR 4 and 5) or `"7E1"` (DSMR 2.2 and 3.0).
    #[serde(default = "framing")]
    pub framing: String,
    /// Date a telegram by the meter's own clock (`0-0:1.0.0`) rather than by its arrival.
    #[serde(default = "yes")]
    pub use_meter_clock: bool,
    /// Luxembourg (Smarty) meters: the P1 decryption key from the grid operator, 32 hex digits.
    /// Set, the port's frames are decrypted; unset, telegrams are read in plain text.
    pub decryption_key: Option<Secret>,
    /// Luxembourg meters: the authentication key, 32 hex digits (default
    /// `00112233445566778899AABBCCDDEEFF`, which Smarty meters use).
    pub authentication_key: Option<Secret>,
}

fn baud() -> u32 {
    115_200
}
fn framing() -> String {
    "8N1".into()
}
fn yes() -> bool {
    true
}

/// When the values of a telegram that arrived at `arrived` were measured: the meter's time stamp
/// when it has one and `use_meter_clock` is on (never later than the arrival), else the arrival.
pub fn measured_at(t: &Telegram, arrived: Instant, use_meter_clock: bool) -> Instant {
    match t.timestamp {
        Some(ts) if use_meter_clock => instant_of(ts).min(arrived),
        _ => arrived,
    }
}

/// Counters of what the port delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Telegrams whose CRC matched and whose values were read.
    pub telegrams: u64,
    /// Telegrams skipped for a bad CRC or a cut-off end.
    pub bad_crc: u64,
    /// Telegrams with a good CRC but values that cannot be read.
    pub invalid: u64,
    /// Encrypted (Luxembourg) frames that did not decrypt: a wrong key or a damaged frame.
    pub undecryptable: u64,
    /// Bytes outside any telegram (noise, a telegram begun before the port opened).
    pub dropped_bytes: u64,
}

#[derive(Default)]
struct Shared {
    splitter: Splitter,
    /// Luxembourg meters: their frames, decrypted with these keys.
    smarty: Option<(FrameSplitter, Keys)>,
    /// The outcome of the latest telegram with a good CRC.
    latest: Option<Result<EnergyReading, TelegramError>>,
    stats: Stats,
    /// A bad telegram was logged at warn since the last good one.
    warned: bool,
}

impl Shared {
    fn on_event(&mut self, ev: SerialEvent<'_>, use_meter_clock: bool) {
        match ev {
            SerialEvent::Opened | SerialEvent::Closed => {
                self.splitter.reset();
                if let Some((frames, _)) = &mut self.smarty {
                    frames.reset();
                }
            }
            SerialEvent::Data { bytes, at } => {
                if let Some((frames, keys)) = &mut self.smarty {
                    let decrypted: Vec<_> = frames
                        .push(bytes)
                        .iter()
                        .map(|f| smarty::decrypt(f, keys))
                        .collect();
                    for d in decrypted {
                        match d {
                            Ok(raw) => self.on_telegram(&raw, at, use_meter_clock),
                            Err(e) => {
                                self.stats.undecryptable += 1;
                                self.log(&e);
                            }
                        }
                    }
                } else {
                    for raw in self.splitter.push(bytes) {
                        self.on_telegram(&raw, at, use_meter_clock);
                    }
                }
            }
        }
        self.stats.dropped_bytes = self.splitter.dropped_bytes()
            + self.smarty.as_ref().map_or(0, |(f, _)| f.dropped_bytes());
    }

    fn on_telegram(&mut self, raw: &[u8], at: Instant, use_meter_clock: bool) {
        let outcome = parse(raw).and_then(|t| {
            let mut r = to_reading(&t)?;
            r.measured_at = measured_at(&t, at, use_meter_clock);
            Ok(r)
        });
        match outcome {
            Ok(r) => {
                self.stats.telegrams += 1;
                self.warned = false;
                self.latest = Some(Ok(r));
            }
            Err(e @ (TelegramError::BadCrc { .. } | TelegramError::Truncated(_))) => {
                self.stats.bad_crc += 1;
                self.log(&e);
            }
            Err(e) => {
                self.stats.invalid += 1;
                self.log(&e);
                self.latest = Some(Err(e));
            }
        }
    }

    fn log(&mut self, e: &TelegramError) {
        if self.warned {
            tracing::debug!(error = %e, "Telegram skipped");
        } else {
            tracing::warn!(error = %e, "Telegram skipped");
            self.warned = true;
        }
    }
}

/// The running source: a thread reads the port and keeps the latest telegram's reading.
pub struct Dsmr {
    reader: SerialReader,
    shared: Arc<Mutex<Shared>>,
}

impl Dsmr {
    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().map(|s| s.stats).unwrap_or_default()
    }
}

#[twc_core::async_trait]
impl EmsSource for Dsmr {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        self.reader.ensure_started();
        let port = &self.reader.settings().port;
        let (latest, stats) = {
            let s = self
                .shared
                .lock()
                .map_err(|_| PluginError::new(ErrorKind::Transient, NAME, "state poisoned"))?;
            (s.latest.clone(), s.stats)
        };
        if !self.reader.is_connected()
            && let Some(e) = self.reader.last_error()
        {
            return Err(PluginError::new(ErrorKind::Transient, NAME, e));
        }
        match latest {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.into_parse().into_plugin(NAME, port)),
            None => Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!(
                    "{port}: no valid telegram yet ({} skipped for a bad CRC, {} frames not decrypted, {} bytes of noise)",
                    stats.bad_crc, stats.undecryptable, stats.dropped_bytes
                ),
            )),
        }
    }
}

/// Build from the section. Opens the port on the first read.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    Ok(Box::new(build_source(cfg)?))
}

/// [`build`], returning the concrete source (for its [`Dsmr::stats`]).
pub fn build_source(cfg: &PluginConfig) -> Result<Dsmr, BuildError> {
    let c: DsmrConfig = cfg.parse()?;
    let settings = SerialSettings {
        port: c.port.clone(),
        baud: c.baud,
        format: CharFormat::parse(&cfg.section, "framing", &c.framing)?,
    };
    settings.check(&cfg.section, "port", "baud")?;
    let key = |name: &str, v: &Option<Secret>| -> Result<Option<[u8; 16]>, BuildError> {
        match v.as_ref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => smarty::parse_key(s.expose()).map(Some).ok_or_else(|| {
                BuildError::new(
                    &cfg.section,
                    format!("{name} is not a key: expected 32 hex digits (16 bytes)"),
                )
            }),
        }
    };
    let decryption = key("decryption_key", &c.decryption_key)?;
    let authentication = key("authentication_key", &c.authentication_key)?;
    if decryption.is_none() && authentication.is_some() {
        return Err(BuildError::new(
            &cfg.section,
            "authentication_key without decryption_key: expected both (Luxembourg meters) or neither",
        ));
    }
    let shared = Arc::new(Mutex::new(Shared {
        smarty: decryption.map(|d| {
            (
                FrameSplitter::new(),
                Keys {
                    decryption: d,
                    authentication: authentication.unwrap_or(smarty::DEFAULT_AUTH_KEY),
                },
            )
        }),
        ..Shared::default()
    }));
    let s = shared.clone();
    let use_meter_clock = c.use_meter_clock;
    let reader = SerialReader::new(NAME, settings, move |ev| {
        if let Ok(mut s) = s.lock() {
            s.on_event(ev, use_meter_clock);
        }
    });
    Ok(Dsmr { reader, shared })
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "Smart meter P1 port (DSMR 2.2-5, Belgian and Luxembourg meters) on a serial cable",
        example: include_str!("../example.toml"),
        build,
    }
}
