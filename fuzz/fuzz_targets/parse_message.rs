//! Arbitrary unescaped frames (checksum fixed up) through the message parser and encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twc_core::protocol::{Frame, Message};

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 || data.len() > 19 {
        return;
    }
    let frame = Frame::from_body(data);
    if let Ok(msg) = Message::decode(&frame) {
        if let Ok(again) = msg.encode() {
            let _ = Message::decode(&again);
        }
    }
});
