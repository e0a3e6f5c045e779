//! Luxembourg "Smarty" meters, pure: their P1 port sends each telegram encrypted (AES-128-GCM,
//! 12-byte tag) inside a small binary frame. This module finds the frames in the byte stream and
//! decrypts them into the plain telegram that [`crate::telegram`] reads (CRC and all).
//!
//! Frame: `DB`, system title length (8), system title (8 bytes), `82`, length (2 bytes, big
//! endian, from the security byte to the end of the tag), security byte (`30`), frame counter
//! (4 bytes), ciphertext, tag (12 bytes). Nonce = system title ‖ frame counter; additional data
//! = security byte ‖ authentication key.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};

use crate::telegram::TelegramError;

/// The authentication key every Smarty meter uses unless the grid operator says otherwise.
pub const DEFAULT_AUTH_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];

/// Bytes before the ciphertext: tag, title length, title, `82`, length, security byte, counter.
const HEADER: usize = 18;
/// GCM tag length on these meters.
const TAG: usize = 12;
/// Longest frame accepted.
const MAX_FRAME: usize = 16 * 1024;

type Cipher = AesGcm<Aes128, U12, U12>;

/// The two keys of a meter.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// The decryption key the grid operator gives the customer.
    pub decryption: [u8; 16],
    /// The authentication key (usually [`DEFAULT_AUTH_KEY`]).
    pub authentication: [u8; 16],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

/// A 128-bit key written as 32 hex digits; `None` when it is not that.
pub fn parse_key(hex: &str) -> Option<[u8; 16]> {
    let hex = hex.trim();
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Decrypt one frame (as cut by [`FrameSplitter`]) into the plain telegram.
pub fn decrypt(frame: &[u8], keys: &Keys) -> Result<Vec<u8>, TelegramError> {
    let bad = |why: &str| TelegramError::Undecryptable(why.to_string());
    if frame.len() < HEADER + TAG || frame[0] != 0xDB || frame[1] != 8 || frame[10] != 0x82 {
        return Err(bad("not a Smarty frame"));
    }
    let len = usize::from(u16::from_be_bytes([frame[11], frame[12]]));
    if frame.len() != len + 13 {
        return Err(bad("the frame's length does not match its length field"));
    }
    let security = frame[13];
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&frame[2..10]);
    nonce[8..].copy_from_slice(&frame[14..18]);
    let mut aad = Vec::with_capacity(17);
    aad.push(security);
    aad.extend_from_slice(&keys.authentication);
    let (body, tag) = frame[HEADER..].split_at(frame.len() - HEADER - TAG);
    let mut plain = body.to_vec();
    let cipher = Cipher::new(&keys.decryption.into());
    cipher
        .decrypt_in_place_detached(
            Nonce::<U12>::from_slice(&nonce),
            &aad,
            &mut plain,
            Tag::<U12>::from_slice(tag),
        )
        .map_err(|_| {
            bad("the authentication tag does not match (a wrong decryption or authentication key, or a damaged frame)")
        })?;
    Ok(plain)
}

/// Cuts the byte stream of a Smarty P1 port into frames: from `DB 08 <title> 82 <length>` to the
/// end its length gives. Other bytes are dropped and counted.
#[derive(Debug, Default)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    dropped: u64,
}

impl FrameSplitter {
    /// An empty splitter.
    pub fn new() -> Self {
        FrameSplitter::default()
    }

    /// Forget a partial frame (after the port was reopened).
    pub fn reset(&mut self) {
        self.dropped += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Bytes dropped so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Feed bytes; returns the frames they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let Some(start) = self.buf.iter().position(|&b| b == 0xDB) else {
                self.dropped += self.buf.len() as u64;
                self.buf.clear();
                break;
            };
            self.dropped += start as u64;
            self.buf.drain(..start);
            if self.buf.len() < 13 {
                break;
            }
            let len = usize::from(u16::from_be_bytes([self.buf[11], self.buf[12]]));
            let total = len + 13;
            if self.buf[1] != 8 || self.buf[10] != 0x82 || len <= 17 || total > MAX_FRAME {
                // Not a frame header: skip this DB and look for the next.
                self.dropped += 1;
                self.buf.drain(..1);
                continue;
            }
            if self.buf.len() < total {
                break;
            }
            out.push(self.buf.drain(..total).collect());
        }
        out
    }
}
