//! Arbitrary bytes, fed in arbitrary chunks, through the streaming frame decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twc_core::protocol::{FrameDecoder, Message};

fuzz_target!(|data: &[u8]| {
    let mut d = FrameDecoder::new();
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    for chunk in data.chunks(split) {
        for frame in d.push(chunk).into_iter().flatten() {
            let _ = Message::decode(&frame);
            // What decodes must re-encode to a frame that decodes the same way.
            let wire = frame.to_wire();
            let again = FrameDecoder::new().push(&wire);
            assert_eq!(again.len(), 1);
        }
    }
    d.flush_partial();
});
