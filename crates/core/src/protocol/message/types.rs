//! The scalar types of the protocol: addresses, message codes, versions, commands, states and
//! errors.

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
