//! Typed TWC messages (spec §3–§4) and their encoding to frames.

use super::codec::Frame;
use crate::model::CentiAmps;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A unit's 2-byte address on the bus. Displays as four upper-case hex digits (`"4142"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TwcId(pub [u8; 2]);

impl TwcId {
    /// From a big-endian u16.
    pub const fn from_u16(v: u16) -> Self {
        TwcId(v.to_be_bytes())
    }
    /// As a big-endian u16.
    pub const fn as_u16(self) -> u16 {
        u16::from_be_bytes(self.0)
    }
}

impl fmt::Display for TwcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}{:02X}", self.0[0], self.0[1])
    }
}

impl fmt::Debug for TwcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TwcId({self})")
    }
}

impl FromStr for TwcId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 4 {
            return Err(format!("expected 4 hex digits such as \"7777\", got {s:?}"));
        }
        u16::from_str_radix(s, 16)
            .map(TwcId::from_u16)
            .map_err(|_| format!("expected 4 hex digits such as \"7777\", got {s:?}"))
    }
}

impl Serialize for TwcId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TwcId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A two-byte type code. An open newtype: unknown codes are representable and displayed in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageCode(pub u16);

macro_rules! codes {
    ($($name:ident = $v:expr, $text:expr;)*) => {
        impl MessageCode {
            $(#[doc = $text] pub const $name: MessageCode = MessageCode($v);)*
            /// The name of a known code.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($v => Some(stringify!($name)),)* _ => None }
            }
        }
    };
}

codes! {
    MASTER_LINKREADY1 = 0xFCE1, "`FC E1` master link-ready 1";
    MASTER_LINKREADY2 = 0xFBE2, "`FB E2` master link-ready 2";
    SLAVE_LINKREADY = 0xFDE2, "`FD E2` slave link-ready";
    MASTER_HEARTBEAT = 0xFBE0, "`FB E0` master heartbeat";
    SLAVE_HEARTBEAT = 0xFDE0, "`FD E0` slave heartbeat";
    IDLE = 0xFC1D, "`FC 1D` idle broadcast";
    QUERY_KWH = 0xFBEB, "`FB EB` lifetime kWh and voltage query";
    KWH = 0xFDEB, "`FD EB` lifetime kWh and voltage reply";
    QUERY_FIRMWARE = 0xFBEC, "`FB EC` firmware version query";
    FIRMWARE = 0xFDEC, "`FD EC` firmware version reply";
    QUERY_SERIAL = 0xFBED, "`FB ED` serial number query";
    SERIAL = 0xFDED, "`FD ED` serial number reply";
    QUERY_VIN1 = 0xFBEE, "`FB EE` VIN part 1 query";
    VIN1 = 0xFDEE, "`FD EE` VIN part 1 reply";
    QUERY_VIN2 = 0xFBEF, "`FB EF` VIN part 2 query";
    VIN2 = 0xFDEF, "`FD EF` VIN part 2 reply";
    QUERY_VIN3 = 0xFBF1, "`FB F1` VIN part 3 query";
    VIN3 = 0xFDF1, "`FD F1` VIN part 3 reply";
    QUERY_FIRMWARE_OLD = 0xFB1B, "`FB 1B` firmware query (older)";
    QUERY_TSN = 0xFB19, "`FB 19` (S)TSN query";
    QUERY_MODEL = 0xFB1A, "`FB 1A` model number query";
    QUERY_PLUG = 0xFBB4, "`FB B4` plug state query";
    START_CHARGING = 0xFCB1, "`FC B1` start charging (close contactor)";
    START_ACK = 0xFDB1, "`FD B1` start acknowledged";
    STOP_CHARGING = 0xFCB2, "`FC B2` stop charging (open contactor)";
    STOP_ACK = 0xFDB2, "`FD B2` stop acknowledged";
    DANGER_WRITE_ID = 0xFC19, "`FC 19` writes ID/date to flash: never send";
    DANGER_WRITE_MODEL = 0xFC1A, "`FC 1A` writes the model number to flash: never send";
    DANGER_CRASH = 0xFBE8, "`FB E8` crashes the TWC: never send";
}

impl MessageCode {
    /// Codes that damage or crash a TWC; the codec never encodes them.
    pub fn is_dangerous(self) -> bool {
        matches!(
            self,
            MessageCode::DANGER_WRITE_ID
                | MessageCode::DANGER_WRITE_MODEL
                | MessageCode::DANGER_CRASH
        )
    }
    /// The query codes a master may send to one slave.
    pub fn is_query(self) -> bool {
        matches!(
            self,
            MessageCode::QUERY_KWH
                | MessageCode::QUERY_FIRMWARE
                | MessageCode::QUERY_SERIAL
                | MessageCode::QUERY_VIN1
                | MessageCode::QUERY_VIN2
                | MessageCode::QUERY_VIN3
                | MessageCode::QUERY_FIRMWARE_OLD
                | MessageCode::QUERY_TSN
                | MessageCode::QUERY_MODEL
                | MessageCode::QUERY_PLUG
        )
    }
}

impl fmt::Display for MessageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.0.to_be_bytes();
        match self.name() {
            Some(n) => write!(f, "{n} ({a:02X} {b:02X})"),
            None => write!(f, "{a:02X} {b:02X}"),
        }
    }
}

impl fmt::Debug for MessageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageCode({self})")
    }
}

/// Protocol version, told from the length of a slave's link-ready (14 → 1, 16 → 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ProtocolVersion {
    /// 14-byte frames, command `05`, 5 A minimum.
    V1,
    /// 16-byte frames, command `09`, 6 A minimum.
    #[default]
    V2,
}

impl ProtocolVersion {
    /// Frame length (checksum included) of heartbeats and link-readies in this version.
    pub fn frame_len(self) -> usize {
        match self {
            ProtocolVersion::V1 => 14,
            ProtocolVersion::V2 => 16,
        }
    }
    /// From a frame length; only 14 and 16 name a version.
    pub fn from_len(len: usize) -> Option<Self> {
        match len {
            14 => Some(ProtocolVersion::V1),
            16 => Some(ProtocolVersion::V2),
            _ => None,
        }
    }
    /// 1 or 2, as TWCManager's API reports it.
    pub fn number(self) -> u8 {
        match self {
            ProtocolVersion::V1 => 1,
            ProtocolVersion::V2 => 2,
        }
    }
    /// The hardware minimum current a car can be offered (spec §6.2).
    pub fn min_amps(self) -> CentiAmps {
        match self {
            ProtocolVersion::V1 => CentiAmps(500),
            ProtocolVersion::V2 => CentiAmps(600),
        }
    }
    /// The heartbeat command that sets the limit.
    pub fn set_limit_command(self) -> MasterCommand {
        match self {
            ProtocolVersion::V1 => MasterCommand::SET_LIMIT_V1,
            ProtocolVersion::V2 => MasterCommand::SET_LIMIT_V2,
        }
    }
}

/// The master heartbeat's command byte (spec §4.1). Open newtype.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MasterCommand(pub u8);

impl MasterCommand {
    /// `00` no change.
    pub const NONE: MasterCommand = MasterCommand(0x00);
    /// `02` error bitmap (makes the slave blink and stop; never sent by us).
    pub const ERROR: MasterCommand = MasterCommand(0x02);
    /// `05` set the limit (protocol 1).
    pub const SET_LIMIT_V1: MasterCommand = MasterCommand(0x05);
    /// `06` raise by 2 A (protocol 2).
    pub const RAISE_2A: MasterCommand = MasterCommand(0x06);
    /// `07` lower by 2 A for ~10 s (protocol 2).
    pub const LOWER_2A: MasterCommand = MasterCommand(0x07);
    /// `08` acknowledge that the slave stopped charging.
    pub const ACK_STOPPED: MasterCommand = MasterCommand(0x08);
    /// `09` set the limit (protocol 2).
    pub const SET_LIMIT_V2: MasterCommand = MasterCommand(0x09);

    /// True when the command carries a current in offsets 7–8.
    pub fn carries_amps(self) -> bool {
        matches!(self.0, 0x05 | 0x08 | 0x09)
    }
}

impl fmt::Debug for MasterCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterCommand({:02X})", self.0)
    }
}

/// The slave heartbeat's state byte (spec §4.2). Open newtype.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct SlaveState(pub u8);

impl SlaveState {
    /// `00` ready (says nothing about a car).
    pub const READY: SlaveState = SlaveState(0x00);
    /// `01` plugged in, charging.
    pub const CHARGING: SlaveState = SlaveState(0x01);
    /// `02` error.
    pub const ERROR: SlaveState = SlaveState(0x02);
    /// `03` car connected, not charging.
    pub const CONNECTED_NOT_CHARGING: SlaveState = SlaveState(0x03);
    /// `04` car connected and ready (may be waiting for a limit).
    pub const CONNECTED_READY: SlaveState = SlaveState(0x04);
    /// `05` busy.
    pub const BUSY: SlaveState = SlaveState(0x05);
    /// `08` starting to charge.
    pub const STARTING: SlaveState = SlaveState(0x08);

    /// A short name for logs and the UI.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "ready",
            0x01 => "charging",
            0x02 => "error",
            0x03 => "connected, not charging",
            0x04 => "connected, ready",
            0x05 => "busy",
            0x06 => "raising 2 A",
            0x07 => "lowering 2 A",
            0x08 => "starting",
            0x09 => "limit set",
            0x0A => "adjustment done",
            _ => "unknown",
        }
    }

    /// True when the state implies a car is connected.
    pub fn car_connected(self) -> bool {
        matches!(
            self.0,
            0x01 | 0x03 | 0x04 | 0x06 | 0x07 | 0x08 | 0x09 | 0x0A
        )
    }
}

impl fmt::Debug for SlaveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlaveState({:02X} {})", self.0, self.name())
    }
}

/// Why a valid frame could not be read as the message its code names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The frame's length does not fit its type.
    #[error("{code}: unexpected length {len}")]
    BadLength {
        /// The type code.
        code: MessageCode,
        /// The frame length including the checksum.
        len: usize,
    },
    /// The message cannot be encoded (a dangerous code, or a type we never send).
    #[error("refusing to encode {0}")]
    Refused(MessageCode),
}

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

    /// Encode to a frame in its canonical length: link-readies 14 bytes from a master,
    /// heartbeats per `version`, queries 16 bytes unless they say otherwise, long replies 20.
    /// Dangerous codes are refused.
    pub fn encode(&self) -> Result<Frame, MessageError> {
        let mut b: Vec<u8> = Vec::with_capacity(20);
        let code = self.code();
        if code.is_dangerous() {
            return Err(MessageError::Refused(code));
        }
        b.extend_from_slice(&code.0.to_be_bytes());
        let target_len = match self {
            Message::MasterLinkReady1 { master, sign }
            | Message::MasterLinkReady2 { master, sign } => {
                b.extend_from_slice(&master.0);
                b.push(*sign);
                14
            }
            Message::SlaveLinkReady {
                slave,
                sign,
                max_amps,
                version,
            } => {
                b.extend_from_slice(&slave.0);
                b.push(*sign);
                b.extend_from_slice(&max_amps.0.to_be_bytes());
                version.frame_len()
            }
            Message::MasterHeartbeat {
                master,
                slave,
                command,
                amps,
                master_plugged_in,
                version,
            } => {
                b.extend_from_slice(&master.0);
                b.extend_from_slice(&slave.0);
                b.push(command.0);
                b.extend_from_slice(&amps.0.to_be_bytes());
                b.push(u8::from(*master_plugged_in));
                version.frame_len()
            }
            Message::SlaveHeartbeat {
                slave,
                master,
                state,
                max,
                actual,
                version,
            } => {
                b.extend_from_slice(&slave.0);
                b.extend_from_slice(&master.0);
                b.push(state.0);
                b.extend_from_slice(&max.0.to_be_bytes());
                b.extend_from_slice(&actual.0.to_be_bytes());
                version.frame_len()
            }
            Message::Idle => 14,
            Message::Query {
                master, slave, len, ..
            } => {
                b.extend_from_slice(&master.0);
                b.extend_from_slice(&slave.0);
                (*len).clamp(13, 20)
            }
            Message::LifetimeKwh {
                slave,
                kwh,
                volts,
                phase_current_bytes,
            } => {
                b.extend_from_slice(&slave.0);
                b.extend_from_slice(&kwh.to_be_bytes());
                for v in volts {
                    b.extend_from_slice(&v.to_be_bytes());
                }
                match phase_current_bytes {
                    Some(c) => {
                        b.extend_from_slice(c);
                        20
                    }
                    None => 16,
                }
            }
            Message::Firmware { slave, version } => {
                b.extend_from_slice(&slave.0);
                b.extend_from_slice(version);
                16
            }
            Message::Serial { slave, serial } => {
                b.extend_from_slice(&slave.0);
                let mut s = serial.as_bytes().to_vec();
                s.resize(11, 0);
                b.extend_from_slice(&s);
                20
            }
            Message::VinPart { slave, part, chars } => {
                b.extend_from_slice(&slave.0);
                let mut c = chars.clone();
                c.resize(if *part == 3 { 3 } else { 7 }, 0);
                b.extend_from_slice(&c);
                20
            }
            Message::StartCharging { master, slave } | Message::StopCharging { master, slave } => {
                b.extend_from_slice(&master.0);
                b.extend_from_slice(&slave.0);
                16
            }
            Message::StartAck { slave } | Message::StopAck { slave } => {
                b.extend_from_slice(&slave.0);
                16
            }
            Message::Unknown { payload, .. } => {
                b.extend_from_slice(payload);
                b.len() + 1
            }
        };
        if b.len() + 1 > target_len || !(13..=20).contains(&target_len) {
            return Err(MessageError::BadLength {
                code,
                len: b.len() + 1,
            });
        }
        b.resize(target_len - 1, 0);
        Ok(Frame::from_body(&b))
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
