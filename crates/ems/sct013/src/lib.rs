#![doc = include_str!("../README.md")]

pub mod clamps;

use serde::Deserialize;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError};
use twc_plugin_kit::serial::{CharFormat, Lines, SerialEvent, SerialReader, SerialSettings};
use twc_plugin_kit::{HttpClient, HttpOptions, HttpSource, ParseError, Request};

pub use clamps::{Layout, parse, parse_clamps, to_reading};

/// The registry name: the section is `[ems.sct013]`, the bin's feature `ems-sct013`.
pub const NAME: &str = "sct013";

/// Longest line accepted from the Arduino; longer ones are noise (a wrong baud rate).
pub const MAX_LINE: usize = 1024;

/// `[ems.sct013]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sct013Config {
    /// The Arduino's web page (`http://192.168.1.60/`); or set `port`.
    pub url: Option<String>,
    /// The Arduino's USB serial device (`/dev/ttyACM0`); or set `url`.
    pub port: Option<String>,
    /// Baud rate of the serial port.
    #[serde(default = "baud")]
    pub baud: u32,
    /// 1 (clamps A0 and A3) or 3 (A0–A2 and A3–A5).
    #[serde(default = "one")]
    pub phases: u8,
    /// Volts per phase, to turn amperes into watts.
    #[serde(default = "volts")]
    pub voltage: f64,
    /// Read the consumption clamps (A0…).
    #[serde(default = "yes")]
    pub consumption: bool,
    /// Read the generation clamps (A3…).
    #[serde(default = "yes")]
    pub generation: bool,
    /// HTTP timeout and retries (`url` only).
    #[serde(default)]
    pub http: HttpOptions,
}

fn baud() -> u32 {
    9600
}
fn one() -> u8 {
    1
}
fn volts() -> f64 {
    230.0
}
fn yes() -> bool {
    true
}

/// Check the section; errors name the key and what is expected.
pub fn layout(section: &str, c: &Sct013Config) -> Result<Layout, BuildError> {
    if c.phases != 1 && c.phases != 3 {
        return Err(BuildError::new(
            section,
            format!("phases = {}: expected 1 or 3", c.phases),
        ));
    }
    if !(c.voltage.is_finite() && (90.0..=300.0).contains(&c.voltage)) {
        return Err(BuildError::new(
            section,
            format!(
                "voltage = {}: expected the volts of one phase, 90 to 300 (230 in Europe, 120 or 240 in North America)",
                c.voltage
            ),
        ));
    }
    if !c.consumption && !c.generation {
        return Err(BuildError::new(
            section,
            "consumption = false and generation = false: expected at least one of them true",
        ));
    }
    Ok(Layout {
        phases: usize::from(c.phases),
        voltage: c.voltage,
        consumption: c.consumption,
        generation: c.generation,
    })
}

#[derive(Default)]
struct Shared {
    lines: Option<Lines>,
    /// The latest line with clamp markers, read, with its arrival.
    latest: Option<Result<EnergyReading, ParseError>>,
    /// Lines without any marker (the sketch's other output).
    other_lines: u64,
}

impl Shared {
    fn on_event(&mut self, ev: SerialEvent<'_>, layout: &Layout) {
        let lines = self.lines.get_or_insert_with(|| Lines::new(MAX_LINE));
        match ev {
            SerialEvent::Opened | SerialEvent::Closed => lines.reset(),
            SerialEvent::Data { bytes, at } => {
                for line in lines.push(bytes) {
                    self.on_line(&line, at, layout);
                }
            }
        }
    }

    fn on_line(&mut self, line: &[u8], at: Instant, layout: &Layout) {
        if !line.windows(5).any(|w| w == b"IrmsA") {
            self.other_lines += 1;
            return;
        }
        let outcome = parse(line, layout).map(|mut r| {
            r.measured_at = at;
            r
        });
        if let Err(e) = &outcome {
            tracing::debug!(error = %e, "Unreadable clamp line");
        }
        self.latest = Some(outcome);
    }
}

/// The serial source: a thread reads the Arduino's lines and keeps the latest one.
pub struct Sct013Serial {
    reader: SerialReader,
    shared: Arc<Mutex<Shared>>,
}

#[twc_core::async_trait]
impl EmsSource for Sct013Serial {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        self.reader.ensure_started();
        let port = &self.reader.settings().port;
        let (latest, other) = {
            let s = self
                .shared
                .lock()
                .map_err(|_| PluginError::new(ErrorKind::Transient, NAME, "state poisoned"))?;
            (s.latest.clone(), s.other_lines)
        };
        if !self.reader.is_connected()
            && let Some(e) = self.reader.last_error()
        {
            return Err(PluginError::new(ErrorKind::Transient, NAME, e));
        }
        match latest {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.into_plugin(NAME, port)),
            None => Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!("{port}: no clamp line yet ({other} other lines)"),
            )),
        }
    }
}

/// Build from the section: HTTP with `url`, serial with `port`. Connects on the first read.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: Sct013Config = cfg.parse()?;
    let layout = layout(&cfg.section, &c)?;
    let url = c.url.clone().filter(|u| !u.is_empty());
    let port = c.port.clone().filter(|p| !p.is_empty());
    match (url, port) {
        (Some(url), None) => {
            twc_plugin_kit::http::check_url(&cfg.section, "url", &url)?;
            let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
            Ok(Box::new(HttpSource::new(
                client,
                Request::get(url),
                move |body| parse(body, &layout),
            )))
        }
        (None, Some(port)) => {
            let settings = SerialSettings {
                port,
                baud: c.baud,
                format: CharFormat::N81,
            };
            settings.check(&cfg.section, "port", "baud")?;
            let shared = Arc::new(Mutex::new(Shared::default()));
            let s = shared.clone();
            let reader = SerialReader::new(NAME, settings, move |ev| {
                if let Ok(mut s) = s.lock() {
                    s.on_event(ev, &layout);
                }
            });
            Ok(Box::new(Sct013Serial { reader, shared }))
        }
        (Some(_), Some(_)) => Err(BuildError::new(
            &cfg.section,
            "both url and port are set: expected one of them (url for the Arduino's web page, port for its USB serial device)",
        )),
        (None, None) => Err(BuildError::new(
            &cfg.section,
            "neither url nor port is set: expected one of them (url = \"http://192.168.1.60/\" or port = \"/dev/ttyACM0\")",
        )),
    }
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "SCT-013 current clamps read by an Arduino (USB serial or HTTP), 1 or 3 phases",
        example: include_str!("../example.toml"),
        build,
    }
}
