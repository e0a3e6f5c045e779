//! Codec and master throughput, for `cargo xtask bench` (release build). Prints figures; asserts
//! nothing about time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant as StdInstant};
use tokio::time::Instant;
use twc_core::master::{Master, MasterConfig};
use twc_core::model::CentiAmps;
use twc_core::protocol::{FrameDecoder, Message, ProtocolVersion, SlaveState, TwcId};

fn main() {
    // 1. Decoder: a realistic stream (heartbeat pairs with trailer bytes).
    let hb = Message::SlaveHeartbeat {
        slave: TwcId([0x12, 0x34]),
        master: TwcId([0x77, 0x77]),
        state: SlaveState::CHARGING,
        max: CentiAmps(0x0BC0),
        actual: CentiAmps(1500),
        version: ProtocolVersion::V2,
    }
    .encode()
    .expect("encodes");
    let mut wire = hb.to_wire();
    wire.push(0xFE);
    let stream: Vec<u8> = wire
        .iter()
        .copied()
        .cycle()
        .take(wire.len() * 100_000)
        .collect();
    let t = StdInstant::now();
    let mut d = FrameDecoder::new();
    let mut n = 0usize;
    for chunk in stream.chunks(64) {
        n += d.push(chunk).len();
    }
    let el = t.elapsed();
    println!(
        "decoder: {n} frames, {:.1} MB in {el:.2?} = {:.0} frames/s ({:.0}× a 9600-baud bus)",
        stream.len() as f64 / 1e6,
        n as f64 / el.as_secs_f64(),
        (stream.len() as f64 / el.as_secs_f64()) / 960.0
    );

    // 2. Master: one simulated hour, three slaves, every heartbeat answered.
    let me = TwcId([0x77, 0x77]);
    let mut m = Master::new(MasterConfig {
        id: Some(me),
        wiring_max_all: CentiAmps::from_amps(48),
        wiring_max_per_twc: CentiAmps::from_amps(32),
        ..MasterConfig::default()
    });
    let mut now = Instant::now();
    let ids = [TwcId([1, 1]), TwcId([2, 2]), TwcId([3, 3])];
    for id in ids {
        let f = Message::SlaveLinkReady {
            slave: id,
            sign: 1,
            max_amps: CentiAmps(3200),
            version: ProtocolVersion::V2,
        }
        .encode()
        .expect("encodes");
        m.handle_frame(&f, now);
    }
    m.set_targets(
        &ids.iter()
            .map(|i| (*i, CentiAmps::from_amps(16)))
            .collect::<BTreeMap<_, _>>(),
    );
    let end = now + Duration::from_secs(3600);
    let t = StdInstant::now();
    let mut frames = 0u64;
    while now < end {
        now = m.next_wakeup(now).max(now + Duration::from_millis(1));
        if let Some((f, _)) = m.poll_transmit(now) {
            frames += 1;
            if let Ok(Message::MasterHeartbeat { slave, amps, .. }) = Message::decode(&f) {
                let r = Message::SlaveHeartbeat {
                    slave,
                    master: me,
                    state: SlaveState::CHARGING,
                    max: amps,
                    actual: amps,
                    version: ProtocolVersion::V2,
                }
                .encode()
                .expect("encodes");
                m.handle_frame(&r, now);
            }
        }
        m.check_timeouts(now);
    }
    let el = t.elapsed();
    println!(
        "master: one simulated hour with 3 slaves = {frames} frames sent in {el:.2?} of CPU time"
    );
}
