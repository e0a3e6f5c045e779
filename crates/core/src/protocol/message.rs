//! Typed TWC messages (spec §3–§4) and their encoding to frames.

mod encode;
mod types;

pub use types::{MasterCommand, MessageCode, MessageError, ProtocolVersion, SlaveState, TwcId};

use super::codec::Frame;
use crate::model::CentiAmps;

/// A decoded TWC message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// `FC E1`.
    MasterLinkReady1 {
        /// Sender.
        master: TwcId,
        /// Sign byte.
        sign: u8,
    },
    /// `FB E2`.
    MasterLinkReady2 {
        /// Sender.
        master: TwcId,
        /// Sign byte.
        sign: u8,
    },
    /// `FD E2`: a slave announcing itself.
    SlaveLinkReady {
        /// Sender.
        slave: TwcId,
        /// Sign byte.
        sign: u8,
        /// The unit's maximum current.
        max_amps: CentiAmps,
        /// Told from the frame length.
        version: ProtocolVersion,
    },
    /// `FB E0`.
    MasterHeartbeat {
        /// Sender.
        master: TwcId,
        /// Receiver.
        slave: TwcId,
        /// Command byte.
        command: MasterCommand,
        /// Offsets 7–8: the current for 05/08/09 (raw value otherwise).
        amps: CentiAmps,
        /// Offset 9: the master itself has a car plugged in.
        master_plugged_in: bool,
        /// 14-byte (V1) or 16-byte (V2) form.
        version: ProtocolVersion,
    },
    /// `FD E0`.
    SlaveHeartbeat {
        /// Sender.
        slave: TwcId,
        /// Addressee.
        master: TwcId,
        /// State byte.
        state: SlaveState,
        /// The slave's present limit.
        max: CentiAmps,
        /// What the car draws.
        actual: CentiAmps,
        /// 14-byte (V1) or 16-byte (V2) form.
        version: ProtocolVersion,
    },
    /// `FC 1D`.
    Idle,
    /// A master → slave query (`FB EB`, `FB EE`, …); `len` is the frame length it came in.
    Query {
        /// Which query.
        code: MessageCode,
        /// Sender.
        master: TwcId,
        /// Receiver.
        slave: TwcId,
        /// Frame length including the checksum (13–20).
        len: usize,
    },
    /// `FD EB`: lifetime energy and voltages.
    LifetimeKwh {
        /// Sender.
        slave: TwcId,
        /// Whole kWh delivered over the unit's life.
        kwh: u32,
        /// Phase A, B, C voltages (0 when absent).
        volts: [u16; 3],
        /// Firmware 4.5.3's per-phase current bytes (20-byte form only; meaning unsure).
        phase_current_bytes: Option<[u8; 3]>,
    },
    /// `FD EC`: firmware version.
    Firmware {
        /// Sender.
        slave: TwcId,
        /// Major, minor, revision, build.
        version: [u8; 4],
    },
    /// `FD ED`: serial number.
    Serial {
        /// Sender.
        slave: TwcId,
        /// 11 ASCII characters (NULs trimmed).
        serial: String,
    },
    /// `FD EE`/`FD EF`/`FD F1`: one part of the connected car's VIN.
    VinPart {
        /// Sender.
        slave: TwcId,
        /// 1, 2 or 3.
        part: u8,
        /// The raw characters (7 for parts 1–2, 3 for part 3); all zero without a Tesla.
        chars: Vec<u8>,
    },
    /// `FC B1`.
    StartCharging {
        /// Sender.
        master: TwcId,
        /// Receiver.
        slave: TwcId,
    },
    /// `FC B2`.
    StopCharging {
        /// Sender.
        master: TwcId,
        /// Receiver.
        slave: TwcId,
    },
    /// `FD B1`.
    StartAck {
        /// Sender.
        slave: TwcId,
    },
    /// `FD B2`.
    StopAck {
        /// Sender.
        slave: TwcId,
    },
    /// Any other code, kept whole so it can be logged.
    Unknown {
        /// The type code.
        code: MessageCode,
        /// Bytes after the type code, checksum excluded.
        payload: Vec<u8>,
    },
}

fn id(b: &[u8], off: usize) -> TwcId {
    TwcId([b[off], b[off + 1]])
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

impl Message {
    /// Decode a checksummed frame. Unknown codes become [`Message::Unknown`]; a known code with a
    /// length that does not fit its type is an error (and, for slaves, never a phantom slave).
    pub fn decode(frame: &Frame) -> Result<Message, MessageError> {
        let b = frame.body();
        let len = frame.len();
        let code = MessageCode(frame.code());
        let bad = || MessageError::BadLength { code, len };
        let v = ProtocolVersion::from_len(len);
        Ok(match code {
            MessageCode::MASTER_LINKREADY1 | MessageCode::MASTER_LINKREADY2 => {
                if !(14..=16).contains(&len) {
                    return Err(bad());
                }
                let (master, sign) = (id(b, 2), b[4]);
                if code == MessageCode::MASTER_LINKREADY1 {
                    Message::MasterLinkReady1 { master, sign }
                } else {
                    Message::MasterLinkReady2 { master, sign }
                }
            }
            MessageCode::SLAVE_LINKREADY => Message::SlaveLinkReady {
                slave: id(b, 2),
                sign: b[4],
                max_amps: CentiAmps(u16_at(b, 5)),
                version: v.ok_or_else(bad)?,
            },
            MessageCode::MASTER_HEARTBEAT => Message::MasterHeartbeat {
                master: id(b, 2),
                slave: id(b, 4),
                command: MasterCommand(b[6]),
                amps: CentiAmps(u16_at(b, 7)),
                master_plugged_in: b[9] == 1,
                version: v.ok_or_else(bad)?,
            },
            MessageCode::SLAVE_HEARTBEAT => Message::SlaveHeartbeat {
                slave: id(b, 2),
                master: id(b, 4),
                state: SlaveState(b[6]),
                max: CentiAmps(u16_at(b, 7)),
                actual: CentiAmps(u16_at(b, 9)),
                version: v.ok_or_else(bad)?,
            },
            MessageCode::IDLE => Message::Idle,
            c if c.is_query() => Message::Query {
                code,
                master: id(b, 2),
                slave: id(b, 4),
                len,
            },
            MessageCode::KWH => {
                if len != 16 && len != 20 {
                    return Err(bad());
                }
                Message::LifetimeKwh {
                    slave: id(b, 2),
                    kwh: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    volts: [u16_at(b, 8), u16_at(b, 10), u16_at(b, 12)],
                    phase_current_bytes: (len == 20).then(|| [b[14], b[15], b[16]]),
                }
            }
            MessageCode::FIRMWARE => Message::Firmware {
                slave: id(b, 2),
                version: [b[4], b[5], b[6], b[7]],
            },
            MessageCode::SERIAL => {
                if len < 16 {
                    return Err(bad());
                }
                let end = (4 + 11).min(b.len());
                Message::Serial {
                    slave: id(b, 2),
                    serial: ascii(&b[4..end]),
                }
            }
            MessageCode::VIN1 | MessageCode::VIN2 | MessageCode::VIN3 => {
                let part = match code {
                    MessageCode::VIN1 => 1,
                    MessageCode::VIN2 => 2,
                    _ => 3,
                };
                let n = if part == 3 { 3 } else { 7 };
                Message::VinPart {
                    slave: id(b, 2),
                    part,
                    chars: b[4..4 + n].to_vec(),
                }
            }
            MessageCode::START_CHARGING => Message::StartCharging {
                master: id(b, 2),
                slave: id(b, 4),
            },
            MessageCode::STOP_CHARGING => Message::StopCharging {
                master: id(b, 2),
                slave: id(b, 4),
            },
            MessageCode::START_ACK => Message::StartAck { slave: id(b, 2) },
            MessageCode::STOP_ACK => Message::StopAck { slave: id(b, 2) },
            _ => Message::Unknown {
                code,
                payload: b[2..].to_vec(),
            },
        })
    }

    /// Decode straight from unescaped bytes (checksum last).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Message, String> {
        let frame = Frame::from_bytes(bytes).map_err(|e| e.to_string())?;
        Message::decode(&frame).map_err(|e| e.to_string())
    }

    /// The message's type code.
    pub fn code(&self) -> MessageCode {
        match self {
            Message::MasterLinkReady1 { .. } => MessageCode::MASTER_LINKREADY1,
            Message::MasterLinkReady2 { .. } => MessageCode::MASTER_LINKREADY2,
            Message::SlaveLinkReady { .. } => MessageCode::SLAVE_LINKREADY,
            Message::MasterHeartbeat { .. } => MessageCode::MASTER_HEARTBEAT,
            Message::SlaveHeartbeat { .. } => MessageCode::SLAVE_HEARTBEAT,
            Message::Idle => MessageCode::IDLE,
            Message::Query { code, .. } => *code,
            Message::LifetimeKwh { .. } => MessageCode::KWH,
            Message::Firmware { .. } => MessageCode::FIRMWARE,
            Message::Serial { .. } => MessageCode::SERIAL,
            Message::VinPart { part: 1, .. } => MessageCode::VIN1,
            Message::VinPart { part: 2, .. } => MessageCode::VIN2,
            Message::VinPart { .. } => MessageCode::VIN3,
            Message::StartCharging { .. } => MessageCode::START_CHARGING,
            Message::StopCharging { .. } => MessageCode::STOP_CHARGING,
            Message::StartAck { .. } => MessageCode::START_ACK,
            Message::StopAck { .. } => MessageCode::STOP_ACK,
            Message::Unknown { code, .. } => *code,
        }
    }

    /// The TWCID of the unit that sent the message, when the message carries one.
    pub fn sender(&self) -> Option<TwcId> {
        match self {
            Message::MasterLinkReady1 { master, .. }
            | Message::MasterLinkReady2 { master, .. }
            | Message::MasterHeartbeat { master, .. }
            | Message::Query { master, .. }
            | Message::StartCharging { master, .. }
            | Message::StopCharging { master, .. } => Some(*master),
            Message::SlaveLinkReady { slave, .. }
            | Message::SlaveHeartbeat { slave, .. }
            | Message::LifetimeKwh { slave, .. }
            | Message::Firmware { slave, .. }
            | Message::Serial { slave, .. }
            | Message::VinPart { slave, .. }
            | Message::StartAck { slave }
            | Message::StopAck { slave } => Some(*slave),
            Message::Idle | Message::Unknown { .. } => None,
        }
    }
}

/// ASCII bytes with NULs and trailing spaces removed; non-printable bytes become `?`.
pub fn ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter(|&&c| c != 0)
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// ISO 3779 check digit for a 17-character VIN (the character that belongs in position 9);
/// `None` for a wrong length or a character that has no value (I, O, Q, lower case, …).
pub fn vin_check_digit(vin: &str) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let b = vin.as_bytes();
    if b.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (i, &c) in b.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A' | b'J' => 1,
            b'B' | b'K' | b'S' => 2,
            b'C' | b'L' | b'T' => 3,
            b'D' | b'M' | b'U' => 4,
            b'E' | b'N' | b'V' => 5,
            b'F' | b'W' => 6,
            b'G' | b'P' | b'X' => 7,
            b'H' | b'Y' => 8,
            b'R' | b'Z' => 9,
            _ => return None,
        };
        sum += v * WEIGHTS[i];
    }
    Some(match sum % 11 {
        10 => b'X',
        d => b'0' + d as u8,
    })
}

/// ISO 3779 check digit validation (position 9) for a 17-character VIN.
pub fn vin_is_valid(vin: &str) -> bool {
    vin_check_digit(vin).is_some_and(|d| vin.as_bytes()[8] == d)
}
