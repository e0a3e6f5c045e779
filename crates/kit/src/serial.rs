//! Serial devices that push data by themselves (a smart meter's P1 port, an Arduino printing a
//! line every few seconds), for push sources.
//!
//! [`SerialReader`] owns one thread that opens the port, reads whatever arrives and hands each
//! chunk, stamped with its arrival on tokio's clock, to the source's callback, which does the
//! framing (telegrams, lines) and keeps what it needs. The thread reopens the port with backoff
//! after an error (an unplugged USB adapter, a pseudo-terminal whose other end closed) and tells
//! the callback, so a half-received frame is dropped rather than glued to the next one. It starts
//! on first use, so building a source opens nothing, and stops when the reader is dropped.
//! [`Lines`] is the framing of line-oriented devices.
//!
//! The arrival stamps are taken on the reader thread, outside the runtime, so they follow the real
//! clock even while a test has paused tokio's: test serial sources in real time (a
//! pseudo-terminal is real I/O anyway).

use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use twc_core::plugin::BuildError;

/// How long one read blocks; bounds how long a dropped reader's thread lives.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// First wait before reopening a port that failed; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between two attempts to open the port.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Character format on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharFormat {
    /// 8 data bits, no parity, 1 stop bit (DSMR 4 and 5, most USB devices).
    N81,
    /// 7 data bits, even parity, 1 stop bit (DSMR 2.2 and 3.0 meters).
    E71,
}

impl CharFormat {
    /// Parse `"8N1"` or `"7E1"` (any case); the error names `section`, `key` and what is expected.
    pub fn parse(section: &str, key: &str, s: &str) -> Result<Self, BuildError> {
        match s.to_ascii_uppercase().as_str() {
            "8N1" => Ok(CharFormat::N81),
            "7E1" => Ok(CharFormat::E71),
            _ => Err(BuildError::new(
                section,
                format!("{key} = {s:?}: expected \"8N1\" or \"7E1\""),
            )),
        }
    }
}

/// Where and how to open the port.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSettings {
    /// Device path (`/dev/ttyUSB0`, better a `/dev/serial/by-id/…` name).
    pub port: String,
    /// Bits per second.
    pub baud: u32,
    /// Character format.
    pub format: CharFormat,
}

impl SerialSettings {
    /// Check the settings; errors name `section` and the key (`port_key`, `baud_key`).
    pub fn check(&self, section: &str, port_key: &str, baud_key: &str) -> Result<(), BuildError> {
        if self.port.trim().is_empty() {
            return Err(BuildError::new(
                section,
                format!("{port_key} is empty: expected a serial device such as \"/dev/ttyUSB0\""),
            ));
        }
        if !(300..=4_000_000).contains(&self.baud) {
            return Err(BuildError::new(
                section,
                format!(
                    "{baud_key} = {}: expected a baud rate from 300 to 4000000",
                    self.baud
                ),
            ));
        }
        Ok(())
    }
}

/// What the reader thread tells the source's callback.
#[derive(Debug)]
pub enum SerialEvent<'a> {
    /// The port was (re)opened: anything half-received before belongs to no frame.
    Opened,
    /// Bytes arrived at `at`.
    Data {
        /// The bytes, as read.
        bytes: &'a [u8],
        /// When they were read, on tokio's clock.
        at: Instant,
    },
    /// The port failed and was closed; it is reopened after a pause.
    Closed,
}

type Callback = Box<dyn FnMut(SerialEvent<'_>) + Send>;

#[derive(Default)]
struct State {
    connected: bool,
    last_error: Option<String>,
}

/// A serial port read by a thread of its own, started on first use and stopped on drop.
pub struct SerialReader {
    settings: SerialSettings,
    plugin: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    pending: Mutex<Option<Callback>>,
}

impl SerialReader {
    /// A reader of `settings` that feeds `on_event`. Opens nothing yet. `plugin` names the thread.
    pub fn new(
        plugin: &str,
        settings: SerialSettings,
        on_event: impl FnMut(SerialEvent<'_>) + Send + 'static,
    ) -> Self {
        SerialReader {
            settings,
            plugin: plugin.to_string(),
            state: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            pending: Mutex::new(Some(Box::new(on_event))),
        }
    }

    /// Start the thread if it is not running yet.
    pub fn ensure_started(&self) {
        let Some(cb) = self.pending.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let settings = self.settings.clone();
        let state = self.state.clone();
        let stop = self.stop.clone();
        // The reader's lines carry the plugin's span, as its tasks' do.
        let span = tracing::Span::current();
        let spawned = std::thread::Builder::new()
            .name(format!("twc-{}-serial", self.plugin))
            .spawn(move || span.in_scope(|| run(&settings, &state, &stop, cb)));
        if let Err(e) = spawned
            && let Ok(mut s) = self.state.lock()
        {
            s.last_error = Some(format!("cannot start the reader thread: {e}"));
        }
    }

    /// True while the port is open.
    pub fn is_connected(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.connected)
    }

    /// Why the port last failed to open or read.
    pub fn last_error(&self) -> Option<String> {
        self.state.lock().ok()?.last_error.clone()
    }

    /// The settings.
    pub fn settings(&self) -> &SerialSettings {
        &self.settings
    }
}

impl Drop for SerialReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn open(s: &SerialSettings) -> Result<Box<dyn SerialPort>, String> {
    let (bits, parity) = match s.format {
        CharFormat::N81 => (DataBits::Eight, Parity::None),
        CharFormat::E71 => (DataBits::Seven, Parity::Even),
    };
    serialport::new(&s.port, s.baud)
        .data_bits(bits)
        .parity(parity)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .timeout(READ_TIMEOUT)
        .open()
        .map_err(|e| match e.kind() {
            serialport::ErrorKind::NoDevice => format!("{}: no such device (unplugged?)", s.port),
            serialport::ErrorKind::Io(io::ErrorKind::NotFound) => {
                format!("{}: no such device (unplugged?)", s.port)
            }
            _ => format!("{}: {e}", s.port),
        })
}

fn set(state: &Mutex<State>, connected: bool, error: Option<String>) {
    if let Ok(mut s) = state.lock() {
        s.connected = connected;
        if error.is_some() {
            s.last_error = error;
        }
    }
}

/// Sleep `d` in short steps; false when asked to stop meanwhile.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(READ_TIMEOUT.min(until - std::time::Instant::now()));
    }
    !stop.load(Ordering::Relaxed)
}

fn run(s: &SerialSettings, state: &Mutex<State>, stop: &AtomicBool, mut cb: Callback) {
    let mut backoff = FIRST_BACKOFF;
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut port = match open(s) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "Cannot open the serial port");
                set(state, false, Some(e));
                if !pause(backoff, stop) {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        set(state, true, None);
        cb(SerialEvent::Opened);
        let error = loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match port.read(&mut buf) {
                Ok(0) => break "the device hung up".to_string(),
                Ok(n) => {
                    backoff = FIRST_BACKOFF;
                    cb(SerialEvent::Data {
                        bytes: &buf[..n],
                        at: Instant::now(),
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => break format!("{}: {e} (device unplugged?)", s.port),
            }
        };
        drop(port);
        tracing::debug!(error = %error, "Serial port closed");
        set(state, false, Some(error));
        cb(SerialEvent::Closed);
        if !pause(backoff, stop) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Splits a byte stream into lines (`\n`, an optional `\r` before it removed), for devices that
/// print one record per line. The first line after the port opened may have started before it and
/// is dropped; so is a line longer than the limit (noise, wrong baud rate).
#[derive(Debug)]
pub struct Lines {
    buf: Vec<u8>,
    max: usize,
    synced: bool,
    dropped: u64,
}

impl Lines {
    /// Lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Lines {
            buf: Vec::new(),
            max,
            synced: false,
            dropped: 0,
        }
    }

    /// Forget a partial line and wait for the next line start (after a reopen).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.synced = false;
    }

    /// Feed bytes; returns the complete lines they end.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if self.synced && line.len() <= self.max {
                    out.push(line);
                } else if self.synced {
                    self.dropped += 1;
                }
                self.synced = true;
            } else if self.buf.len() <= self.max {
                self.buf.push(b);
            }
        }
        out
    }

    /// Lines dropped for being too long.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_drop_the_first_partial_one_and_overlong_ones() {
        let mut l = Lines::new(8);
        assert!(l.push(b"tial\r\nab").is_empty());
        assert_eq!(l.push(b"c\r\nd\n"), vec![b"abc".to_vec(), b"d".to_vec()]);
        assert!(l.push(b"0123456789\n").is_empty());
        assert_eq!(l.dropped(), 1);
        assert_eq!(l.push(b"ok\n"), vec![b"ok".to_vec()]);
        l.reset();
        assert!(l.push(b"half\n").is_empty());
        assert_eq!(l.push(b"x\n"), vec![b"x".to_vec()]);
    }

    #[test]
    fn settings_and_formats_are_checked_with_the_key() {
        assert_eq!(CharFormat::parse("s", "k", "7e1").unwrap(), CharFormat::E71);
        let e = CharFormat::parse("s", "framing", "9X1").unwrap_err();
        assert!(e.to_string().contains("framing") && e.to_string().contains("8N1"));
        let mut s = SerialSettings {
            port: String::new(),
            baud: 9600,
            format: CharFormat::N81,
        };
        assert!(
            s.check("s", "port", "baud")
                .unwrap_err()
                .to_string()
                .contains("port")
        );
        s.port = "/dev/ttyUSB0".into();
        s.baud = 5;
        assert!(
            s.check("s", "port", "baud")
                .unwrap_err()
                .to_string()
                .contains("baud = 5")
        );
        s.baud = 115_200;
        assert!(s.check("s", "port", "baud").is_ok());
    }
}
