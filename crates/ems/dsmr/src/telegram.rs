//! P1 telegrams, pure: splitting a byte stream into telegrams, the CRC, and the values a charger
//! needs. No I/O here; `tests/telegram.rs` runs every fixture telegram through it.
//!
//! A telegram is `/` header, an empty line, one `OBIS(value)(value)…` line per object, then `!` and
//! (DSMR 4 and later) four hex digits of CRC16/ARC over everything from `/` to `!` inclusive, each
//! line ended by CR LF. DSMR 2.2 and 3.0 telegrams end with a bare `!`.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use twc_core::model::EnergyReading;
use twc_plugin_kit::ParseError;
use twc_plugin_kit::phase::signed_current;

/// Longest telegram accepted (a DSMR 5 telegram with four M-Bus devices and a text message is
/// about 2 KiB); a longer run without `!` is noise and dropped.
pub const MAX_TELEGRAM: usize = 16 * 1024;

/// CRC16/ARC (polynomial 0xA001 reflected, initial value 0), as DSMR 4 and later use.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Why a telegram was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum TelegramError {
    /// The CRC does not match: a transmission error; the telegram is skipped.
    BadCrc {
        /// The CRC the telegram carries.
        sent: u16,
        /// The CRC of what arrived.
        computed: u16,
    },
    /// No `!` end, or a DSMR 4+ telegram without its CRC: cut off.
    Truncated(String),
    /// The CRC matched (or there is none) but a value is unreadable or missing.
    Invalid(String),
    /// An encrypted (Luxembourg) frame that does not decrypt with the configured keys.
    Undecryptable(String),
}

impl TelegramError {
    /// As a parse error: every refusal is a protocol error.
    pub fn into_parse(self) -> ParseError {
        ParseError::protocol(self.to_string())
    }
}

impl std::fmt::Display for TelegramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TelegramError::BadCrc { sent, computed } => write!(
                f,
                "bad CRC: the telegram says {sent:04X}, its bytes give {computed:04X}"
            ),
            TelegramError::Truncated(m) => write!(f, "truncated telegram: {m}"),
            TelegramError::Invalid(m) => write!(f, "invalid telegram: {m}"),
            TelegramError::Undecryptable(m) => write!(f, "encrypted frame not decrypted: {m}"),
        }
    }
}

/// The values of one telegram that a charger needs. Powers in kW as the meter sends them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telegram {
    /// The identification line without `/` (`ISK5\2M550T-1011`).
    pub header: String,
    /// P1 version: `1-3:0.2.8` (`50`) or Belgian `0-0:96.1.4` (`50217`); none before DSMR 4.
    pub version: Option<String>,
    /// `0-0:1.0.0`, the meter's time of the values.
    pub timestamp: Option<DateTime<Utc>>,
    /// `1-0:1.7.0`, power imported now, kW.
    pub import_kw: Option<f64>,
    /// `1-0:2.7.0`, power exported now, kW.
    pub export_kw: Option<f64>,
    /// `1-0:21/41/61.7.0`, import per phase, kW.
    pub phase_import_kw: [Option<f64>; 3],
    /// `1-0:22/42/62.7.0`, export per phase, kW.
    pub phase_export_kw: [Option<f64>; 3],
    /// `1-0:32/52/72.7.0`, voltage per phase, V.
    pub voltage_v: [Option<f64>; 3],
    /// `1-0:31/51/71.7.0`, current per phase, A (unsigned).
    pub current_a: [Option<f64>; 3],
}

/// Check a whole telegram (`/` … `!CRC\r\n`) and read its values.
pub fn parse(raw: &[u8]) -> Result<Telegram, TelegramError> {
    let start = raw
        .iter()
        .position(|&b| b == b'/')
        .ok_or_else(|| TelegramError::Invalid("no '/' header".into()))?;
    let raw = &raw[start..];
    let bang = raw
        .iter()
        .rposition(|&b| b == b'!')
        .ok_or_else(|| TelegramError::Truncated("no '!' end".into()))?;
    let crc_text = std::str::from_utf8(&raw[bang + 1..])
        .map_err(|_| TelegramError::Truncated("the CRC is not text".into()))?
        .trim();
    let sent = match crc_text.len() {
        0 => None,
        4 => Some(u16::from_str_radix(crc_text, 16).map_err(|_| {
            TelegramError::Truncated(format!("CRC {crc_text:?} is not four hex digits"))
        })?),
        _ => {
            return Err(TelegramError::Truncated(format!(
                "CRC {crc_text:?} is not four hex digits"
            )));
        }
    };
    if let Some(sent) = sent {
        let computed = crc16(&raw[..=bang]);
        if sent != computed {
            return Err(TelegramError::BadCrc { sent, computed });
        }
    }
    let text = std::str::from_utf8(&raw[..bang])
        .map_err(|_| TelegramError::Invalid("bytes that are not text".into()))?;
    let t = read_lines(text)?;
    if sent.is_none() && t.version.is_some() {
        // DSMR 4 and later always send a CRC: a bare '!' means the end was cut.
        return Err(TelegramError::Truncated(format!(
            "P1 version {} without a CRC",
            t.version.as_deref().unwrap_or_default()
        )));
    }
    Ok(t)
}

/// One `OBIS(value)(value)…` line: the code and its values.
type Object = (String, Vec<String>);

/// The `OBIS(value)…` lines, a continuation line (starting with `(`, DSMR 2.2/3.0 gas) joined to
/// the line before it.
fn objects(text: &str) -> Result<(String, Vec<Object>), TelegramError> {
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix('/'))
        .ok_or_else(|| TelegramError::Invalid("no '/' header".into()))?
        .to_string();
    let mut joined: Vec<String> = Vec::new();
    for l in lines {
        match joined.last_mut() {
            Some(prev) if l.starts_with('(') => prev.push_str(l),
            _ if l.trim().is_empty() => {}
            _ => joined.push(l.to_string()),
        }
    }
    let mut out = Vec::new();
    for line in joined {
        // Lines that are not OBIS(value) (the malformed ones some meters send) are not ours.
        let Some(open) = line.find('(') else { continue };
        if !line.ends_with(')') {
            continue;
        }
        let obis = line[..open].to_string();
        let values = line[open + 1..line.len() - 1]
            .split(")(")
            .map(str::to_string)
            .collect();
        out.push((obis, values));
    }
    Ok((header, out))
}

fn read_lines(text: &str) -> Result<Telegram, TelegramError> {
    let (header, objs) = objects(text)?;
    let mut t = Telegram {
        header,
        ..Telegram::default()
    };
    const PHASES: [(&str, &str, &str, &str); 3] = [
        ("1-0:21.7.0", "1-0:22.7.0", "1-0:32.7.0", "1-0:31.7.0"),
        ("1-0:41.7.0", "1-0:42.7.0", "1-0:52.7.0", "1-0:51.7.0"),
        ("1-0:61.7.0", "1-0:62.7.0", "1-0:72.7.0", "1-0:71.7.0"),
    ];
    for (obis, values) in &objs {
        let first = || values.first().map(String::as_str).unwrap_or_default();
        match obis.as_str() {
            "1-3:0.2.8" | "0-0:96.1.4" => t.version = Some(first().to_string()),
            "0-0:1.0.0" => t.timestamp = Some(timestamp(obis, first())?),
            "1-0:1.7.0" => t.import_kw = Some(quantity(obis, first(), Unit::Kw)?),
            "1-0:2.7.0" => t.export_kw = Some(quantity(obis, first(), Unit::Kw)?),
            o => {
                for (i, (imp, exp, volt, amp)) in PHASES.iter().enumerate() {
                    if o == *imp {
                        t.phase_import_kw[i] = Some(quantity(obis, first(), Unit::Kw)?);
                    } else if o == *exp {
                        t.phase_export_kw[i] = Some(quantity(obis, first(), Unit::Kw)?);
                    } else if o == *volt {
                        t.voltage_v[i] = Some(quantity(obis, first(), Unit::V)?);
                    } else if o == *amp {
                        t.current_a[i] = Some(quantity(obis, first(), Unit::A)?);
                    }
                }
            }
        }
    }
    Ok(t)
}

#[derive(Clone, Copy)]
enum Unit {
    Kw,
    V,
    A,
}

/// `00.532*kW` → 0.532 (a `W` value is turned into kW), `236.8*V`, `001*A`. The unit must be
/// there and right; the number must be a plain non-negative decimal.
fn quantity(obis: &str, value: &str, want: Unit) -> Result<f64, TelegramError> {
    let bad = |why: &str| TelegramError::Invalid(format!("{obis}({value}): {why}"));
    let (num, unit) = value
        .split_once('*')
        .ok_or_else(|| bad("no unit after the value"))?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad("not a number"));
    }
    let x: f64 = num.parse().map_err(|_| bad("not a number"))?;
    let factor = match (want, unit) {
        (Unit::Kw, "kW") => 1.0,
        (Unit::Kw, "W") => 0.001,
        (Unit::V, "V") | (Unit::A, "A") => 1.0,
        _ => return Err(bad("unexpected unit")),
    };
    Ok(x * factor)
}

/// `YYMMDDhhmmssX`, X = `S` (summer time, UTC+2) or `W` (winter time, UTC+1): the Dutch, Belgian
/// and Luxembourg meters all keep Central European time.
fn timestamp(obis: &str, value: &str) -> Result<DateTime<Utc>, TelegramError> {
    let bad = || {
        TelegramError::Invalid(format!(
            "{obis}({value}): expected a time as YYMMDDhhmmss followed by S or W"
        ))
    };
    if value.len() != 13 || !value.is_ascii() {
        return Err(bad());
    }
    let (digits, dst) = value.split_at(12);
    let offset_h = match dst {
        "S" => 2,
        "W" => 1,
        _ => return Err(bad()),
    };
    let naive = NaiveDateTime::parse_from_str(digits, "%y%m%d%H%M%S").map_err(|_| bad())?;
    FixedOffset::east_opt(offset_h * 3600)
        .and_then(|tz| tz.from_local_datetime(&naive).single())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(bad)
}

/// The reading of a telegram (without `measured_at`, which the caller sets): grid power
/// (+ import / − export) from `1.7.0` and `2.7.0`, which must both be there, voltages, and
/// per-phase currents signed by the phase's power (see [`signed_current`]).
pub fn to_reading(t: &Telegram) -> Result<EnergyReading, TelegramError> {
    let import = t
        .import_kw
        .ok_or_else(|| TelegramError::Invalid("no power imported (1-0:1.7.0)".into()))?;
    let export = t
        .export_kw
        .ok_or_else(|| TelegramError::Invalid("no power exported (1-0:2.7.0)".into()))?;
    let currents: Vec<Option<f64>> = (0..3)
        .map(|i| {
            signed_current(
                t.phase_import_kw[i].map(|k| k * 1000.0),
                t.phase_export_kw[i].map(|k| k * 1000.0),
                t.current_a[i],
                t.voltage_v[i],
            )
        })
        .collect();
    Ok(EnergyReading {
        grid_w: Some((import - export) * 1000.0),
        phase_voltages: per_phase(&t.voltage_v),
        phase_currents_a: per_phase(&currents),
        ..EnergyReading::default()
    })
}

/// L1, L1–L2 or L1–L3 when those are all known; nothing when a phase before a known one is
/// missing (a value would be put on the wrong phase).
fn per_phase(v: &[Option<f64>]) -> Option<Vec<f64>> {
    let n = v.iter().rposition(Option::is_some)? + 1;
    v[..n].iter().copied().collect()
}

/// Splits the byte stream of a P1 port into telegrams: from `/` to the end of the line after
/// `!`. Bytes outside a telegram (the rest of a telegram that began before the port was opened,
/// noise) are dropped and counted.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    dropped: u64,
}

impl Splitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Splitter::default()
    }

    /// Forget a partial telegram (after the port was reopened).
    pub fn reset(&mut self) {
        if !self.buf.is_empty() {
            self.dropped += self.buf.len() as u64;
        }
        self.buf.clear();
    }

    /// Bytes dropped so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Feed bytes; returns the telegrams they complete (CRC not yet checked).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let Some(start) = self.buf.iter().position(|&b| b == b'/') else {
                self.dropped += self.buf.len() as u64;
                self.buf.clear();
                break;
            };
            self.drop_front(start);
            let Some(bang) = self.buf.iter().position(|&b| b == b'!') else {
                if self.buf.len() > MAX_TELEGRAM {
                    self.dropped += self.buf.len() as u64;
                    self.buf.clear();
                }
                break;
            };
            // A second '/' before the end: what came before it was a telegram cut short.
            if let Some(restart) = self.buf[1..bang].iter().rposition(|&b| b == b'/') {
                self.drop_front(restart + 1);
                continue;
            }
            let Some(nl) = self.buf[bang..].iter().position(|&b| b == b'\n') else {
                // The CRC line is at most "XXXX\r\n"; without its newline after that, end here.
                if self.buf.len() - bang > 8 {
                    out.push(self.buf.drain(..bang + 7).collect());
                    continue;
                }
                break;
            };
            out.push(self.buf.drain(..=bang + nl).collect());
        }
        out
    }

    fn drop_front(&mut self, n: usize) {
        self.dropped += n as u64;
        self.buf.drain(..n);
    }
}
