//! Property tests: codec round trips and resynchronisation, and the master's safety invariants
//! 1 (per-slave cap) and 2 (sum never exceeds the wiring max, also during transients).
//!
//! Rerun with more cases: `PROPTEST_CASES=100000 cargo test -p twc-core --test props`.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::master::{Master, MasterConfig};
use twc_core::model::CentiAmps;
use twc_core::protocol::codec::{DELIM, FrameDecoder};
use twc_core::protocol::{
    Frame, MasterCommand, Message, MessageCode, ProtocolVersion, SlaveState, TwcId,
};

fn arb_id() -> impl Strategy<Value = TwcId> {
    any::<[u8; 2]>().prop_map(TwcId)
}
fn arb_version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(ProtocolVersion::V1), Just(ProtocolVersion::V2)]
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb_id(), any::<u8>())
            .prop_map(|(master, sign)| Message::MasterLinkReady1 { master, sign }),
        (arb_id(), any::<u8>())
            .prop_map(|(master, sign)| Message::MasterLinkReady2 { master, sign }),
        (arb_id(), any::<u8>(), any::<u16>(), arb_version()).prop_map(
            |(slave, sign, m, version)| {
                Message::SlaveLinkReady {
                    slave,
                    sign,
                    max_amps: CentiAmps(m),
                    version,
                }
            }
        ),
        (
            arb_id(),
            arb_id(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            arb_version()
        )
            .prop_map(
                |(master, slave, c, a, p, version)| Message::MasterHeartbeat {
                    master,
                    slave,
                    command: MasterCommand(c),
                    amps: CentiAmps(a),
                    master_plugged_in: p,
                    version
                }
            ),
        (
            arb_id(),
            arb_id(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            arb_version()
        )
            .prop_map(
                |(slave, master, st, m, a, version)| Message::SlaveHeartbeat {
                    slave,
                    master,
                    state: SlaveState(st),
                    max: CentiAmps(m),
                    actual: CentiAmps(a),
                    version
                }
            ),
        (
            arb_id(),
            arb_id(),
            13usize..=20,
            prop::sample::select(vec![0xFBEBu16, 0xFBEE, 0xFBEF, 0xFBF1, 0xFBEC, 0xFBED])
        )
            .prop_map(|(master, slave, len, c)| Message::Query {
                code: MessageCode(c),
                master,
                slave,
                len
            }),
        (
            arb_id(),
            any::<u32>(),
            any::<[u16; 3]>(),
            proptest::option::of(any::<[u8; 3]>())
        )
            .prop_map(
                |(slave, kwh, volts, phase_current_bytes)| Message::LifetimeKwh {
                    slave,
                    kwh,
                    volts,
                    phase_current_bytes
                }
            ),
        (
            arb_id(),
            1u8..=3,
            proptest::collection::vec(0x21u8..0x7F, 7)
        )
            .prop_map(|(slave, part, mut chars)| {
                chars.truncate(if part == 3 { 3 } else { 7 });
                Message::VinPart { slave, part, chars }
            }),
        (arb_id(), arb_id()).prop_map(|(master, slave)| Message::StartCharging { master, slave }),
        (arb_id(), arb_id()).prop_map(|(master, slave)| Message::StopCharging { master, slave }),
        arb_id().prop_map(|slave| Message::StartAck { slave }),
        arb_id().prop_map(|slave| Message::StopAck { slave }),
    ]
}

proptest! {
    #[test]
    fn encode_decode_round_trip(msg in arb_message()) {
        let frame = msg.encode().unwrap();
        let mut d = FrameDecoder::new();
        let out = d.push(&frame.to_wire());
        prop_assert_eq!(out.len(), 1);
        let f = out.into_iter().next().unwrap().unwrap();
        prop_assert_eq!(&f, &frame);
        prop_assert_eq!(Message::decode(&f).unwrap(), msg);
    }

    #[test]
    fn escaping_never_emits_a_bare_delimiter(body in proptest::collection::vec(any::<u8>(), 12..=19)) {
        let wire = Frame::from_body(&body).to_wire();
        prop_assert_eq!(wire[0], DELIM);
        prop_assert_eq!(*wire.last().unwrap(), DELIM);
        prop_assert!(!wire[1..wire.len() - 1].contains(&DELIM));
    }

    #[test]
    fn resynchronises_after_any_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..80), msg in arb_message()) {
        let frame = msg.encode().unwrap();
        let mut stream = garbage.clone();
        stream.extend(frame.to_wire());
        let mut d = FrameDecoder::new();
        let out = d.push(&stream);
        let last_ok = out.into_iter().filter_map(Result::ok).next_back();
        prop_assert_eq!(last_ok, Some(frame));
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_chunks(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut d = FrameDecoder::new();
        for c in &chunks {
            for f in d.push(c).into_iter().flatten() {
                let _ = Message::decode(&f);
            }
        }
    }
}

/// 1,000,000 random byte strings through the decoder, the message parser and the master's frame
/// handling: nothing panics. (Fuzzing goes further: `cargo xtask fuzz decode_frame`.)
#[test]
fn random_bytes_never_panic() {
    let n: u64 = std::env::var("TWC_RANDOM_STRINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut master = Master::new(MasterConfig::default());
    let now = Instant::now();
    let mut buf = [0u8; 48];
    let mut frames = 0u64;
    for i in 0..n {
        let len = (next() % 48) as usize;
        for b in buf.iter_mut().take(len) {
            let r = next();
            // Bias toward the bytes that matter so frames actually form.
            *b = match r % 8 {
                0 => DELIM,
                1 => 0xDB,
                2 => 0xFD,
                _ => (r >> 8) as u8,
            };
        }
        let mut d = FrameDecoder::new();
        for f in d.push(&buf[..len]).into_iter().flatten() {
            frames += 1;
            let _ = Message::decode(&f);
            let _ = master.handle_frame(&f, now + Duration::from_millis(i));
        }
    }
    assert!(frames > 0, "the generator should produce some valid frames");
}

// ---- Safety invariants 1 and 2 ---------------------------------------------------------------

#[derive(Debug, Clone)]
struct SimSlave {
    id: TwcId,
    version: ProtocolVersion,
    rated: CentiAmps,
    /// The limit the slave holds: it adopts any set-limit command the moment it receives one.
    limit: CentiAmps,
}

#[derive(Debug, Clone)]
enum Step {
    Targets(Vec<u16>),
    Budget(u16),
    Advance(u16),
    DropNextReplies(bool),
}

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(0u16..=8000, 3).prop_map(Step::Targets),
            (0u16..=8000).prop_map(Step::Budget),
            (1u16..=1500).prop_map(Step::Advance),
            any::<bool>().prop_map(Step::DropNextReplies),
        ],
        1..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn master_never_exceeds_wiring_limits(
        n in 1usize..=3,
        wiring_all in 0u16..=80,
        wiring_per in 0u16..=80,
        rated in proptest::collection::vec(prop_oneof![Just(3200u16), Just(8000u16), 600u16..8000], 3),
        initial in proptest::collection::vec(0u16..=8000, 3),
        versions in proptest::collection::vec(arb_version(), 3),
        steps in arb_steps(),
    ) {
        let cfg = MasterConfig {
            wiring_max_all: CentiAmps::from_amps(wiring_all),
            wiring_max_per_twc: CentiAmps::from_amps(wiring_per),
            id: Some(TwcId([0x77, 0x77])),
            ..MasterConfig::default()
        };
        let mut master = Master::new(cfg.clone());
        let mut now = Instant::now();
        let mut slaves: Vec<SimSlave> = (0..n)
            .map(|i| SimSlave {
                id: TwcId([0x10, i as u8 + 1]),
                version: versions[i],
                rated: CentiAmps(rated[i]),
                // A previous master (or our own previous run) may have left any limit up to the
                // unit's rating behind; until the slave replies, the master assumes its rating.
                limit: CentiAmps(initial[i].min(rated[i])),
            })
            .collect();
        for s in &slaves {
            let f = Message::SlaveLinkReady { slave: s.id, sign: 1, max_amps: s.rated, version: s.version }.encode().unwrap();
            master.handle_frame(&f, now);
        }
        let initial_sum: u32 = slaves.iter().map(|s| s.limit.0 as u32).sum();
        let mut drop_replies = false;
        let mut budget: Option<CentiAmps> = None;
        for step in steps {
            match step {
                Step::Targets(t) => {
                    let map: BTreeMap<TwcId, CentiAmps> = slaves.iter().zip(t).map(|(s, a)| (s.id, CentiAmps(a))).collect();
                    master.set_targets(&map);
                }
                Step::DropNextReplies(d) => drop_replies = d,
                Step::Budget(b) => {
                    budget = Some(CentiAmps(b));
                    master.set_total_cap(CentiAmps(b));
                }
                Step::Advance(ms) => {
                    let end = now + Duration::from_millis(ms as u64);
                    loop {
                        let wake = master.next_wakeup(now);
                        if wake > end { now = end; break; }
                        now = wake.max(now);
                        let Some((frame, _)) = master.poll_transmit(now) else {
                            now += Duration::from_millis(10);
                            continue;
                        };
                        let sum_before: u32 = slaves.iter().map(|s| s.limit.0 as u32).sum();
                        if let Ok(Message::MasterHeartbeat { slave, command, amps, .. }) = Message::decode(&frame) {
                            let s = slaves.iter_mut().find(|s| s.id == slave).expect("heartbeat to a known slave");
                            let mut raised = false;
                            if command.carries_amps() {
                                // Invariant 1: never more than min(wiring per TWC, rated max).
                                let cap = s.rated.min(cfg.wiring_max_per_twc);
                                prop_assert!(amps <= cap, "offered {} to {} with cap {}", amps, slave, cap);
                                raised = amps > s.limit;
                                s.limit = amps;
                            }
                            // A raise never takes the total above the site budget either.
                            if let (true, Some(b)) = (raised, budget) {
                                let sum: u32 = slaves.iter().map(|s| s.limit.0 as u32).sum();
                                prop_assert!(sum <= (b.0 as u32).max(sum_before), "raise to {} over budget {}", sum, b);
                            }
                            // Invariant 2: the sum of limits never exceeds the wiring max, unless it
                            // already did before we started (a previous master) — then it never rises.
                            let sum: u32 = slaves.iter().map(|s| s.limit.0 as u32).sum();
                            let bound = cfg.wiring_max_all.0 as u32;
                            prop_assert!(
                                sum <= bound || (sum <= sum_before && sum_before <= initial_sum.max(bound)),
                                "sum of limits {} exceeds wiring {} (before {})", sum, bound, sum_before
                            );
                            if !drop_replies {
                                let s = slaves.iter().find(|s| s.id == slave).unwrap();
                                let reply = Message::SlaveHeartbeat {
                                    slave: s.id,
                                    master: TwcId([0x77, 0x77]),
                                    state: SlaveState::CHARGING,
                                    max: s.limit,
                                    actual: s.limit.saturating_sub(CentiAmps(80)),
                                    version: s.version,
                                }.encode().unwrap();
                                now += Duration::from_millis(20);
                                master.handle_frame(&reply, now);
                            }
                        }
                        let _ = master.check_timeouts(now);
                    }
                }
            }
        }
    }
}
