//! The TWC Gen2 RS-485 load-sharing protocol: framing ([`codec`]) and messages ([`message`]).
//!
//! Pure, no I/O. See `docs/protocol.md` and the spec in `shared/protocol/TWC-GEN2-PROTOCOL.md`.

pub mod codec;
pub mod message;

pub use codec::{DecodeStats, Frame, FrameDecoder, FrameError, checksum};
pub use message::{
    MasterCommand, Message, MessageCode, MessageError, ProtocolVersion, SlaveState, TwcId,
};
