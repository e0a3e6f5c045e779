//! Received bytes → frame decoder → the master's frame handling, interleaved with transmit polls,
//! timeouts and changing targets, on synthetic time. Checks what must hold whatever arrives on
//! the wire: no panic, no slave without a valid link-ready from that TWCID, no offer above a
//! slave's cap, no total above the wiring limit.
//!
//! Input layout: byte 0 = chunk size, byte 1 = milliseconds between chunks (×10), byte 2 = the
//! site target in amps; the rest is the wire.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;
use twc_core::master::{Master, MasterConfig};
use twc_core::model::CentiAmps;
use twc_core::protocol::{FrameDecoder, Message, TwcId};

const ME: TwcId = TwcId([0x77, 0x77]);

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let chunk = usize::from(data[0].max(1));
    let step = Duration::from_millis(u64::from(data[1]) * 10);
    let want = CentiAmps::from_amps(u16::from(data[2] % 100));
    let wiring_all = CentiAmps::from_amps(40);
    let wiring_per = CentiAmps::from_amps(32);
    let mut m = Master::new(MasterConfig {
        id: Some(ME),
        sign: Some(0x77),
        wiring_max_all: wiring_all,
        wiring_max_per_twc: wiring_per,
        foreign_master_hold: Duration::from_secs(5),
        ..MasterConfig::default()
    });
    let mut decoder = FrameDecoder::new();
    let mut now = Instant::now();
    let mut announced: BTreeSet<TwcId> = BTreeSet::new();
    let mut rated: BTreeMap<TwcId, CentiAmps> = BTreeMap::new();
    for bytes in data[3..].chunks(chunk) {
        for frame in decoder.push(bytes).into_iter().flatten() {
            if let Ok(Message::SlaveLinkReady {
                slave, max_amps, ..
            }) = Message::decode(&frame)
            {
                announced.insert(slave);
                let r = rated.entry(slave).or_insert(max_amps);
                *r = (*r).max(max_amps);
            }
            let _ = m.handle_frame(&frame, now);
        }
        now += step;
        let _ = m.check_timeouts(now);
        let targets: BTreeMap<TwcId, CentiAmps> = m.slaves().map(|s| (s.id, want)).collect();
        m.set_targets(&targets);
        if let Some((frame, _)) = m.poll_transmit(now) {
            assert!(m.transmitting());
            if let Ok(Message::MasterHeartbeat {
                master,
                slave,
                command,
                amps,
                ..
            }) = Message::decode(&frame)
            {
                assert_eq!(master, ME);
                assert!(announced.contains(&slave), "heartbeat to {slave}, never announced");
                if command.carries_amps() {
                    assert!(amps <= wiring_per, "offer {amps} above the per-TWC wiring");
                    if let Some(r) = rated.get(&slave) {
                        assert!(amps <= *r, "offer {amps} above the unit's rating {r}");
                    }
                }
            }
        }
        assert!(m.next_wakeup(now) >= now);
        for s in m.slaves() {
            assert!(announced.contains(&s.id), "phantom slave {}", s.id);
            assert_ne!(s.id, ME, "a slave holding our TWCID was linked");
            assert!(s.offered <= wiring_per);
        }
        let offered: u32 = m.slaves().map(|s| u32::from(s.offered.0)).sum();
        assert!(
            offered <= u32::from(wiring_all.0),
            "total offered {offered} cA above the wiring limit"
        );
    }
});
