//! SLIP-style framing with the TWC checksum (spec §2).
//!
//! A [`Frame`] is the unescaped bytes from the type code to the checksum inclusive. On the wire a
//! frame is `C0` + escaped(frame) + `C0`. The receiver ([`FrameDecoder`]) follows the spec's §2.6:
//! every `C0` ends the current frame and starts the next, 0–2 byte "frames" between delimiters are
//! dropped silently (the trailer byte real TWCs send), and everything else that fails is counted.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Frame delimiter.
pub const DELIM: u8 = 0xC0;
/// Escape byte.
pub const ESC: u8 = 0xDB;
/// `DB DC` stands for a `C0` inside a frame.
pub const ESC_DELIM: u8 = 0xDC;
/// `DB DD` stands for a `DB` inside a frame.
pub const ESC_ESC: u8 = 0xDD;
/// Shortest frame we accept (13 bytes: the shortest request seen from a real master).
pub const MIN_FRAME_LEN: usize = 13;
/// Longest frame we accept (20 bytes: firmware 4.5.3 long replies).
pub const MAX_FRAME_LEN: usize = 20;
/// Longest escaped frame we collect before giving up and resynchronising.
pub const MAX_WIRE_LEN: usize = 48;

/// Why a received frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The checksum byte does not match the sum of the frame.
    #[error("bad checksum: got {got:02X}, expected {expected:02X}")]
    BadChecksum {
        /// The checksum byte in the frame.
        got: u8,
        /// The checksum computed over the frame.
        expected: u8,
    },
    /// `DB` followed by something other than `DC` or `DD`.
    #[error("bad escape sequence DB {0:02X}")]
    BadEscape(u8),
    /// More than [`MAX_WIRE_LEN`] bytes without a delimiter.
    #[error("frame too long (more than {MAX_WIRE_LEN} bytes without a delimiter)")]
    TooLong,
    /// A frame shorter than [`MIN_FRAME_LEN`] after unescaping.
    #[error("truncated frame of {0} bytes")]
    Truncated(usize),
    /// A frame longer than [`MAX_FRAME_LEN`] after unescaping.
    #[error("unexpected frame length {0}")]
    BadLength(usize),
}

/// Counters kept by the decoder; every dropped byte or frame is counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeStats {
    /// Frames that passed framing and checksum.
    pub frames_ok: u64,
    /// Bytes seen outside any frame (before the first delimiter), or in an oversized run.
    pub garbage_bytes: u64,
    /// Frames dropped for a bad checksum.
    pub bad_checksum: u64,
    /// Frames dropped for a bad escape.
    pub bad_escape: u64,
    /// Frames dropped for a bad length (too short, too long).
    pub bad_length: u64,
    /// Runs dropped for exceeding [`MAX_WIRE_LEN`].
    pub too_long: u64,
    /// Partial frames dropped after a silence (see [`FrameDecoder::flush_partial`]).
    pub timed_out: u64,
}

impl DecodeStats {
    /// Total number of frames dropped for any reason.
    pub fn errors(&self) -> u64 {
        self.bad_checksum + self.bad_escape + self.bad_length + self.too_long + self.timed_out
    }
}

/// One unescaped frame: type code, payload and checksum (last byte).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame(Vec<u8>);

/// The TWC checksum: the sum modulo 256 of every byte from offset 1 (offset 0 is not summed).
pub fn checksum(body: &[u8]) -> u8 {
    body.iter().skip(1).fold(0u8, |acc, b| acc.wrapping_add(*b))
}

impl Frame {
    /// Build a frame from a body (type code + payload, no checksum), appending the checksum.
    pub fn from_body(body: &[u8]) -> Frame {
        let mut v = Vec::with_capacity(body.len() + 1);
        v.extend_from_slice(body);
        v.push(checksum(body));
        Frame(v)
    }

    /// Validate unescaped bytes (checksum last) as a frame.
    pub fn from_bytes(bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() < MIN_FRAME_LEN {
            return Err(FrameError::Truncated(bytes.len()));
        }
        if bytes.len() > MAX_FRAME_LEN {
            return Err(FrameError::BadLength(bytes.len()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 1);
        let expected = checksum(body);
        if sum[0] != expected {
            return Err(FrameError::BadChecksum {
                got: sum[0],
                expected,
            });
        }
        Ok(Frame(bytes.to_vec()))
    }

    /// The unescaped bytes, checksum included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes before the checksum.
    pub fn body(&self) -> &[u8] {
        &self.0[..self.0.len() - 1]
    }

    /// Frame length including the checksum.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a frame has at least a type code and a checksum.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The two-byte type code.
    pub fn code(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// The wire form: `C0` + escaped frame + `C0`.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 6);
        out.push(DELIM);
        for &b in &self.0 {
            match b {
                DELIM => out.extend_from_slice(&[ESC, ESC_DELIM]),
                ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
                _ => out.push(b),
            }
        }
        out.push(DELIM);
        out
    }

    /// Upper-case hex with spaces, for logs.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({})", self.hex())
    }
}

/// Upper-case hex with spaces between bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Parse hex such as `"C0 FD E2"` or `"c0fde2"` (spaces optional).
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// Streaming receiver implementing the spec's receive algorithm (§2.6).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    raw: Vec<u8>,
    in_frame: bool,
    overflow: bool,
    stats: DecodeStats,
}

impl FrameDecoder {
    /// A decoder that has not seen a delimiter yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// True while bytes of an unfinished frame are buffered.
    pub fn has_partial(&self) -> bool {
        self.in_frame && !self.raw.is_empty()
    }

    /// Drop a partial frame after a silence on the line (the caller owns the clock). Counted only
    /// if it was long enough to be a frame; short runs are the normal trailer byte.
    pub fn flush_partial(&mut self) {
        if self.in_frame && self.raw.len() > 2 && !self.overflow {
            self.stats.timed_out += 1;
        }
        self.raw.clear();
        self.overflow = false;
        // Stay "in frame": the next C0 ends this (now empty) run and starts a frame.
    }

    /// Feed received bytes; returns every frame (or framing error) completed by them, in order.
    pub fn push(&mut self, data: &[u8]) -> Vec<Result<Frame, FrameError>> {
        let mut out = Vec::new();
        for &b in data {
            if b == DELIM {
                if self.in_frame
                    && let Some(r) = self.finish()
                {
                    out.push(r);
                }
                self.in_frame = true;
                self.raw.clear();
                self.overflow = false;
                continue;
            }
            if !self.in_frame {
                self.stats.garbage_bytes += 1;
                continue;
            }
            if self.overflow {
                self.stats.garbage_bytes += 1;
                continue;
            }
            self.raw.push(b);
            if self.raw.len() > MAX_WIRE_LEN {
                self.stats.too_long += 1;
                self.stats.garbage_bytes += self.raw.len() as u64;
                self.raw.clear();
                self.overflow = true;
                out.push(Err(FrameError::TooLong));
            }
        }
        out
    }

    fn finish(&mut self) -> Option<Result<Frame, FrameError>> {
        if self.overflow {
            return None;
        }
        if self.raw.len() <= 2 {
            // Back-to-back delimiters or the trailer byte after a frame: normal, not an error.
            return None;
        }
        let result = unescape(&self.raw).and_then(|bytes| Frame::from_bytes(&bytes));
        match &result {
            Ok(_) => self.stats.frames_ok += 1,
            Err(FrameError::BadChecksum { .. }) => self.stats.bad_checksum += 1,
            Err(FrameError::BadEscape(_)) => self.stats.bad_escape += 1,
            Err(FrameError::Truncated(_)) | Err(FrameError::BadLength(_)) => {
                self.stats.bad_length += 1
            }
            Err(FrameError::TooLong) => self.stats.too_long += 1,
        }
        Some(result)
    }
}

/// Undo the escaping of the bytes between two delimiters.
pub fn unescape(raw: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == ESC {
            match it.next() {
                Some(&ESC_DELIM) => out.push(DELIM),
                Some(&ESC_ESC) => out.push(ESC),
                Some(&other) => return Err(FrameError::BadEscape(other)),
                None => return Err(FrameError::BadEscape(DELIM)),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}
