//! One or a few simulated slaves driven by hand-made master frames, on paused time.

use std::time::Duration;
use tokio::io::DuplexStream;
use tokio::time::Instant;
use twc_core::model::CentiAmps;
use twc_core::plugin::{Comms, Received};
use twc_core::protocol::{
    MasterCommand, Message, MessageCode, ProtocolVersion, SlaveState, TwcId, message::ascii,
};
use twc_core::transport::StreamComms;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig, duplex_pair};

const MASTER: TwcId = TwcId([0xAB, 0xCD]);
const S1: TwcId = TwcId([0x12, 0x34]);
const S2: TwcId = TwcId([0x56, 0x78]);

struct Bench {
    comms: StreamComms<DuplexStream>,
    sim: SimHandle,
}

fn slave(id: TwcId, version: ProtocolVersion, car: CarConfig) -> SimSlave {
    SimSlave {
        slave: SlaveConfig::eu().with_id(id).with_version(version),
        car,
    }
}

impl Bench {
    fn new(slaves: Vec<SimSlave>) -> Self {
        let (comms, sim) = duplex_pair(slaves);
        Bench { comms, sim }
    }

    async fn send(&mut self, m: Message) {
        let f = m.encode().expect("encodes");
        self.comms.send(&f).await.expect("send");
    }

    /// The next message within `within`, with its length.
    async fn recv(&mut self, within: Duration) -> Option<(Message, usize)> {
        let r = tokio::time::timeout(within, self.comms.recv()).await.ok()?;
        match r.expect("link up") {
            Received::Frame(f) => Some((Message::decode(&f).expect("decodes"), f.len())),
            Received::Dropped(e) => panic!("sim sent a bad frame: {e}"),
        }
    }

    /// Every message arriving within `d`.
    async fn drain(&mut self, d: Duration) -> Vec<(Instant, Message, usize)> {
        let end = Instant::now() + d;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.recv(left).await {
                Some((m, len)) => out.push((Instant::now(), m, len)),
                None => return out,
            }
        }
    }

    async fn heartbeat(
        &mut self,
        slave: TwcId,
        command: u8,
        amps: u16,
        version: ProtocolVersion,
    ) -> Message {
        self.send(Message::MasterHeartbeat {
            master: MASTER,
            slave,
            command: MasterCommand(command),
            amps: CentiAmps(amps),
            master_plugged_in: false,
            version,
        })
        .await;
        loop {
            let (m, _) = self
                .recv(Duration::from_millis(500))
                .await
                .expect("heartbeat reply");
            if matches!(m, Message::SlaveHeartbeat { .. }) {
                return m;
            }
        }
    }

    async fn query(
        &mut self,
        code: MessageCode,
        slave: TwcId,
        len: usize,
    ) -> Option<(Message, usize)> {
        self.send(Message::Query {
            code,
            master: MASTER,
            slave,
            len,
        })
        .await;
        self.recv(Duration::from_millis(500)).await
    }

    /// Heartbeat `slave` once a second for `secs` seconds with "no change", returning the last reply.
    async fn keep_alive(&mut self, slave: TwcId, secs: u64, version: ProtocolVersion) -> Message {
        let mut last = None;
        for _ in 0..secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            last = Some(self.heartbeat(slave, 0, 0, version).await);
        }
        last.expect("secs > 0")
    }
}

fn hb_fields(m: &Message) -> (SlaveState, CentiAmps, CentiAmps) {
    match m {
        Message::SlaveHeartbeat {
            state, max, actual, ..
        } => (*state, *max, *actual),
        other => panic!("not a slave heartbeat: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn link_ready_every_10_s_until_heartbeats_then_again_after_silence() {
    let mut b = Bench::new(vec![slave(S1, ProtocolVersion::V2, CarConfig::none())]);
    let t0 = Instant::now();
    let got = b.drain(Duration::from_millis(35_500)).await;
    let times: Vec<u64> = got
        .iter()
        .map(|(t, m, len)| {
            assert!(
                matches!(m, Message::SlaveLinkReady { slave, max_amps, version: ProtocolVersion::V2, .. }
                    if *slave == S1 && *max_amps == CentiAmps(3200)),
                "{m:?}"
            );
            assert_eq!(*len, 16);
            (*t - t0).as_millis() as u64
        })
        .collect();
    assert_eq!(times, vec![0, 10_000, 20_000, 30_000]);

    // Heartbeats link it: no more link-readies while they keep coming.
    let reply = b.heartbeat(S1, 0, 0, ProtocolVersion::V2).await;
    assert_eq!(hb_fields(&reply).0, SlaveState::READY);
    assert!(b.sim.slave(0).unwrap().linked);
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.heartbeat(S1, 0, 0, ProtocolVersion::V2).await;
    }
    assert_eq!(b.sim.slave(0).unwrap().link_readies_sent, 4);

    // Master goes quiet: link-ready resumes after 10 s.
    let last = Instant::now();
    let (m, _) = b
        .recv(Duration::from_secs(15))
        .await
        .expect("link-ready after silence");
    assert!(matches!(m, Message::SlaveLinkReady { .. }));
    let after = Instant::now() - last;
    assert!(
        after >= Duration::from_millis(9_900) && after <= Duration::from_millis(10_100),
        "{after:?}"
    );
    assert!(!b.sim.slave(0).unwrap().linked);
}

#[tokio::test(start_paused = true)]
async fn second_fb_e2_of_a_burst_gets_five_link_readies() {
    let mut b = Bench::new(vec![slave(S1, ProtocolVersion::V1, CarConfig::none())]);
    // The power-on link-ready.
    let (m, len) = b.recv(Duration::from_millis(100)).await.unwrap();
    assert!(matches!(m, Message::SlaveLinkReady { .. }));
    assert_eq!(len, 14, "protocol 1 link-ready is 14 bytes");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..5 {
        b.send(Message::MasterLinkReady1 {
            master: MASTER,
            sign: 0x42,
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        b.drain(Duration::from_millis(10)).await.is_empty(),
        "FC E1 draws no answer"
    );
    b.send(Message::MasterLinkReady2 {
        master: MASTER,
        sign: 0x42,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        b.drain(Duration::from_millis(10)).await.is_empty(),
        "the first FB E2 draws no answer"
    );
    b.send(Message::MasterLinkReady2 {
        master: MASTER,
        sign: 0x42,
    })
    .await;
    // Nothing for 190 ms after the 2nd FB E2 (the master's 3rd comes meanwhile), then the first.
    assert!(b.drain(Duration::from_millis(100)).await.is_empty());
    b.send(Message::MasterLinkReady2 {
        master: MASTER,
        sign: 0x42,
    })
    .await;
    assert!(b.drain(Duration::from_millis(90)).await.is_empty());
    let first = b.drain(Duration::from_millis(20)).await;
    assert_eq!(
        first.len(),
        1,
        "first FD E2 ~0.2 s after the 2nd FB E2: {first:?}"
    );
    for _ in 0..2 {
        b.send(Message::MasterLinkReady2 {
            master: MASTER,
            sign: 0x42,
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rest = b.drain(Duration::from_secs(3)).await;
    let lr = first
        .iter()
        .chain(rest.iter())
        .filter(|(_, m, len)| {
            *len == 14 && matches!(m, Message::SlaveLinkReady { slave, .. } if *slave == S1)
        })
        .count();
    assert_eq!(lr, 5, "{rest:?}");
    assert_eq!(first.len() + rest.len(), 5, "nothing else: {rest:?}");
}

#[tokio::test(start_paused = true)]
async fn mirrors_limits_in_both_versions_without_sanity_checks() {
    let car = CarConfig::none();
    let mut b = Bench::new(vec![
        slave(S1, ProtocolVersion::V1, car.clone()),
        slave(S2, ProtocolVersion::V2, car),
    ]);
    b.drain(Duration::from_millis(500)).await;
    // Protocol 1: command 05, 14-byte reply.
    b.send(Message::MasterHeartbeat {
        master: MASTER,
        slave: S1,
        command: MasterCommand::SET_LIMIT_V1,
        amps: CentiAmps(0x12C0),
        master_plugged_in: false,
        version: ProtocolVersion::V1,
    })
    .await;
    let (m, len) = b.recv(Duration::from_millis(100)).await.unwrap();
    assert_eq!(len, 14);
    assert!(
        matches!(m, Message::SlaveHeartbeat { slave, master, max, .. } if slave == S1 && master == MASTER && max == CentiAmps(4800))
    );
    // Protocol 2: command 09, 16-byte reply; even FF FF (655.35 A) is copied.
    b.send(Message::MasterHeartbeat {
        master: MASTER,
        slave: S2,
        command: MasterCommand::SET_LIMIT_V2,
        amps: CentiAmps(0xFFFF),
        master_plugged_in: false,
        version: ProtocolVersion::V2,
    })
    .await;
    let (m, len) = b.recv(Duration::from_millis(100)).await.unwrap();
    assert_eq!(len, 16);
    assert!(
        matches!(m, Message::SlaveHeartbeat { slave, max, .. } if slave == S2 && max == CentiAmps(0xFFFF))
    );
    // Command 08 sets the limit in both versions; 00 keeps it.
    assert_eq!(
        hb_fields(&b.heartbeat(S1, 0x08, 2000, ProtocolVersion::V1).await).1,
        CentiAmps(2000)
    );
    assert_eq!(
        hb_fields(&b.heartbeat(S2, 0x08, 1600, ProtocolVersion::V2).await).1,
        CentiAmps(1600)
    );
    assert_eq!(
        hb_fields(&b.heartbeat(S2, 0x00, 0, ProtocolVersion::V2).await).1,
        CentiAmps(1600)
    );
    // Protocol 1 does not know 09.
    assert_eq!(
        hb_fields(&b.heartbeat(S1, 0x09, 700, ProtocolVersion::V1).await).1,
        CentiAmps(2000)
    );
    // A heartbeat for another TWCID draws no answer.
    b.send(Message::MasterHeartbeat {
        master: MASTER,
        slave: TwcId([0x99, 0x99]),
        command: MasterCommand::NONE,
        amps: CentiAmps::ZERO,
        master_plugged_in: false,
        version: ProtocolVersion::V2,
    })
    .await;
    assert!(b.recv(Duration::from_millis(500)).await.is_none());
    assert_eq!(b.sim.slave(1).unwrap().max_limit_seen, CentiAmps(0xFFFF));
}

#[tokio::test(start_paused = true)]
async fn car_ramps_toward_the_offer_and_not_below_its_minimum() {
    let car = CarConfig {
        min_amps: CentiAmps::from_amps(6),
        max_amps: CentiAmps::from_amps(16),
        ramp_amps_per_sec: 2.0,
        ..CarConfig::tesla()
    };
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, car)]);
    b.drain(Duration::from_millis(100)).await;
    // Plugged in, no limit yet: 04.
    let (state, max, actual) = hb_fields(&b.heartbeat(S1, 0, 0, v).await);
    assert_eq!(
        (state, max, actual),
        (
            SlaveState::CONNECTED_READY,
            CentiAmps::ZERO,
            CentiAmps::ZERO
        )
    );
    // 5 A is below the car's 6 A minimum: connected, not charging, no draw.
    b.heartbeat(S1, 0x09, 500, v).await;
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 10, v).await);
    assert_eq!(
        (state, actual),
        (SlaveState::CONNECTED_NOT_CHARGING, CentiAmps::ZERO)
    );
    // 20 A offered, the car's charger does 16 A: it ramps at 2 A/s to 16 − 0.8 = 15.2 A.
    b.heartbeat(S1, 0x09, 2000, v).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (state, max, actual) = hb_fields(&b.heartbeat(S1, 0, 0, v).await);
    assert_eq!(
        state,
        SlaveState::STARTING,
        "below 1.3 A the car is starting"
    );
    assert_eq!(max, CentiAmps(2000));
    assert!(actual.0 > 50 && actual.0 < 130, "{actual}");
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 3, v).await);
    assert_eq!(state, SlaveState::CHARGING);
    assert!(
        actual.0 >= 650 && actual.0 <= 720,
        "after 3.5 s at 2 A/s: {actual}"
    );
    let (_, _, actual) = hb_fields(&b.keep_alive(S1, 10, v).await);
    assert_eq!(actual, CentiAmps(1520));
    // Lowering is immediate.
    let (_, max, actual) = hb_fields(&b.heartbeat(S1, 0x09, 800, v).await);
    assert_eq!((max, actual), (CentiAmps(800), CentiAmps(720)));
    // 0 A: stops, state 03 (it had a limit this session).
    let (state, _, actual) = hb_fields(&b.heartbeat(S1, 0x09, 0, v).await);
    assert_eq!(
        (state, actual),
        (SlaveState::CONNECTED_NOT_CHARGING, CentiAmps::ZERO)
    );
    // Unplugged: 00.
    b.sim.unplug(0).unwrap();
    let (state, _, _) = hb_fields(&b.heartbeat(S1, 0, 0, v).await);
    assert_eq!(state, SlaveState::READY);
}

#[tokio::test(start_paused = true)]
async fn protocol_2_ignores_command_05_while_charging() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::tesla())]);
    b.drain(Duration::from_millis(100)).await;
    assert_eq!(
        hb_fields(&b.heartbeat(S1, 0x05, 1000, v).await).1,
        CentiAmps(1000)
    );
    b.keep_alive(S1, 5, v).await;
    assert_eq!(
        hb_fields(&b.heartbeat(S1, 0x05, 2000, v).await).1,
        CentiAmps(1000)
    );
    assert_eq!(
        hb_fields(&b.heartbeat(S1, 0x09, 2000, v).await).1,
        CentiAmps(2000)
    );
}

async fn read_vin(b: &mut Bench, slave: TwcId) -> Vec<u8> {
    let mut all = Vec::new();
    for (i, code) in [
        MessageCode::QUERY_VIN1,
        MessageCode::QUERY_VIN2,
        MessageCode::QUERY_VIN3,
    ]
    .into_iter()
    .enumerate()
    {
        // TWCManager's 15-byte queries (spec R10–R12) are accepted.
        let (m, len) = b.query(code, slave, 15).await.expect("VIN reply");
        assert_eq!(len, 20);
        match m {
            Message::VinPart {
                slave: s,
                part,
                chars,
            } => {
                assert_eq!((s, part as usize), (slave, i + 1));
                all.extend(chars);
            }
            other => panic!("{other:?}"),
        }
    }
    all
}

#[tokio::test(start_paused = true)]
async fn vin_parts_decode_to_the_configured_vin_and_zeros_for_a_non_tesla() {
    let vin = "5YJ3E1EA0KF000316";
    let mut b = Bench::new(vec![
        slave(
            S1,
            ProtocolVersion::V2,
            CarConfig::tesla().with_vin(Some(vin)),
        ),
        slave(S2, ProtocolVersion::V2, CarConfig::non_tesla()),
    ]);
    b.drain(Duration::from_millis(500)).await;
    let got = read_vin(&mut b, S1).await;
    assert_eq!(ascii(&got), vin);
    assert!(twc_core::protocol::message::vin_is_valid(&ascii(&got)));
    let got = read_vin(&mut b, S2).await;
    assert_eq!(got, vec![0u8; 17]);
    // Unplugged Tesla: zeros too.
    b.sim.unplug(0).unwrap();
    assert_eq!(read_vin(&mut b, S1).await, vec![0u8; 17]);
}

#[tokio::test(start_paused = true)]
async fn kwh_reply_grows_while_charging_and_other_queries_answer() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::tesla())]);
    b.drain(Duration::from_millis(100)).await;
    // 13-byte (JN) and 16-byte requests are both accepted.
    let (m, len) = b.query(MessageCode::QUERY_KWH, S1, 13).await.unwrap();
    assert_eq!(len, 16);
    let Message::LifetimeKwh {
        kwh: start,
        volts,
        phase_current_bytes: None,
        ..
    } = m
    else {
        panic!("{m:?}")
    };
    assert_eq!(volts, [230, 230, 230]);
    b.heartbeat(S1, 0x09, 3200, v).await;
    b.keep_alive(S1, 3600, v).await;
    let (m, _) = b.query(MessageCode::QUERY_KWH, S1, 16).await.unwrap();
    let Message::LifetimeKwh { kwh, .. } = m else {
        panic!("{m:?}")
    };
    // 31.2 A × 690 V for an hour ≈ 21.5 kWh (less the ramp).
    assert!((21..=22).contains(&(kwh - start)), "{start} → {kwh}");
    assert_eq!(b.sim.slave(0).unwrap().lifetime_kwh, kwh);
    let (m, len) = b.query(MessageCode::QUERY_FIRMWARE, S1, 16).await.unwrap();
    assert_eq!(len, 16);
    assert!(
        matches!(
            m,
            Message::Firmware {
                version: [4, 5, 3, 0],
                ..
            }
        ),
        "{m:?}"
    );
    let (m, len) = b.query(MessageCode::QUERY_SERIAL, S1, 16).await.unwrap();
    assert_eq!(len, 20);
    assert!(
        matches!(m, Message::Serial { ref serial, .. } if serial == "A18F0000001"),
        "{m:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn long_kwh_reply_and_protocol_1_ignores_newer_queries() {
    let mut cfg = SlaveConfig::eu().with_id(S1);
    cfg.long_kwh_reply = true;
    let mut b = Bench::new(vec![
        SimSlave {
            slave: cfg,
            car: CarConfig::none(),
        },
        slave(S2, ProtocolVersion::V1, CarConfig::tesla()),
    ]);
    b.drain(Duration::from_millis(500)).await;
    let (m, len) = b.query(MessageCode::QUERY_KWH, S1, 16).await.unwrap();
    assert_eq!(len, 20);
    assert!(matches!(
        m,
        Message::LifetimeKwh {
            phase_current_bytes: Some(_),
            ..
        }
    ));
    assert!(b.query(MessageCode::QUERY_VIN1, S2, 14).await.is_none());
    assert!(b.query(MessageCode::QUERY_FIRMWARE, S2, 14).await.is_none());
    assert!(matches!(
        b.query(MessageCode::QUERY_KWH, S2, 14).await,
        Some((Message::LifetimeKwh { .. }, 16))
    ));
}

#[tokio::test(start_paused = true)]
async fn fc_b2_stops_until_fc_b1_or_replug() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::tesla())]);
    b.drain(Duration::from_millis(100)).await;
    b.heartbeat(S1, 0x09, 1600, v).await;
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 10, v).await);
    assert_eq!(state, SlaveState::CHARGING);
    assert_eq!(actual, CentiAmps(1520));

    b.send(Message::StopCharging {
        master: MASTER,
        slave: S1,
    })
    .await;
    let (m, len) = b.recv(Duration::from_millis(100)).await.unwrap();
    assert_eq!((m, len), (Message::StopAck { slave: S1 }, 16));
    let (state, max, actual) = hb_fields(&b.keep_alive(S1, 20, v).await);
    assert_eq!(
        (state, max, actual),
        (
            SlaveState::CONNECTED_NOT_CHARGING,
            CentiAmps(1600),
            CentiAmps::ZERO
        )
    );
    assert!(b.sim.slave(0).unwrap().contactor_open);

    b.send(Message::StartCharging {
        master: MASTER,
        slave: S1,
    })
    .await;
    let (m, _) = b.recv(Duration::from_millis(100)).await.unwrap();
    assert_eq!(m, Message::StartAck { slave: S1 });
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 10, v).await);
    assert_eq!((state, actual), (SlaveState::CHARGING, CentiAmps(1520)));

    // Stop again, then a re-plug restarts it without B1.
    b.send(Message::StopCharging {
        master: MASTER,
        slave: S1,
    })
    .await;
    b.recv(Duration::from_millis(100)).await.unwrap();
    b.sim.unplug(0).unwrap();
    b.sim.plug_in(0, CarConfig::tesla()).unwrap();
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 10, v).await);
    assert_eq!((state, actual), (SlaveState::CHARGING, CentiAmps(1520)));
}

#[tokio::test(start_paused = true)]
async fn master_link_ready_with_our_twcid_makes_us_pick_a_new_one() {
    let mut b = Bench::new(vec![slave(S1, ProtocolVersion::V2, CarConfig::none())]);
    b.drain(Duration::from_millis(100)).await;
    let sign_before = b.sim.slave(0).unwrap().sign;
    // A master that happens to use S1 as its own TWCID.
    b.send(Message::MasterLinkReady1 {
        master: S1,
        sign: 0x11,
    })
    .await;
    b.send(Message::MasterLinkReady2 {
        master: S1,
        sign: 0x11,
    })
    .await;
    b.send(Message::MasterLinkReady2 {
        master: S1,
        sign: 0x11,
    })
    .await;
    let got = b.drain(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 5, "{got:?}");
    let snap = b.sim.slave(0).unwrap();
    assert_ne!(snap.id, S1);
    assert_ne!(snap.id.0, [0, 0]);
    for (_, m, _) in &got {
        assert!(
            matches!(m, Message::SlaveLinkReady { slave, sign, .. } if *slave == snap.id && *sign == snap.sign),
            "{m:?}"
        );
    }
    // The sign is random too: it may coincide with the old one 1 time in 256, the id may not.
    let _ = sign_before;
    // The old TWCID is dead.
    b.send(Message::MasterHeartbeat {
        master: MASTER,
        slave: S1,
        command: MasterCommand::NONE,
        amps: CentiAmps::ZERO,
        master_plugged_in: false,
        version: ProtocolVersion::V2,
    })
    .await;
    assert!(b.recv(Duration::from_millis(500)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn car_stops_30_s_after_heartbeats_stop_and_shows_08_when_the_master_returns() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::tesla())]);
    b.drain(Duration::from_millis(100)).await;
    b.heartbeat(S1, 0x09, 1600, v).await;
    b.keep_alive(S1, 10, v).await;
    // Silence: the car keeps drawing for a while, then stops.
    b.drain(Duration::from_secs(20)).await;
    assert_eq!(b.sim.slave(0).unwrap().actual, CentiAmps(1520));
    b.drain(Duration::from_secs(11)).await;
    let snap = b.sim.slave(0).unwrap();
    assert_eq!(
        (snap.actual, snap.state, snap.linked),
        (CentiAmps::ZERO, SlaveState::ERROR, false)
    );
    // The master is back: 08 until it sends a limit, then the car starts again.
    let (state, _, actual) = hb_fields(&b.heartbeat(S1, 0, 0, v).await);
    assert_eq!((state, actual), (SlaveState::STARTING, CentiAmps::ZERO));
    b.heartbeat(S1, 0x09, 1600, v).await;
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 10, v).await);
    assert_eq!((state, actual), (SlaveState::CHARGING, CentiAmps(1520)));
}

#[tokio::test(start_paused = true)]
async fn error_command_reports_02_once_then_silence_until_reset() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::none())]);
    b.drain(Duration::from_millis(100)).await;
    let (state, _, _) = hb_fields(&b.heartbeat(S1, 0x02, 0x0400, v).await);
    assert_eq!(state, SlaveState::ERROR);
    b.send(Message::MasterHeartbeat {
        master: MASTER,
        slave: S1,
        command: MasterCommand::NONE,
        amps: CentiAmps::ZERO,
        master_plugged_in: false,
        version: v,
    })
    .await;
    assert!(
        b.drain(Duration::from_secs(30)).await.is_empty(),
        "silent, not even link-ready"
    );
    b.sim.reset(0).unwrap();
    let (m, _) = b.recv(Duration::from_secs(1)).await.unwrap();
    assert!(matches!(m, Message::SlaveLinkReady { .. }));
    let (state, _, _) = hb_fields(&b.heartbeat(S1, 0, 0, v).await);
    assert_eq!(state, SlaveState::READY);
}

#[tokio::test(start_paused = true)]
async fn noise_shows_on_the_reported_draw_only() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::none())]);
    b.drain(Duration::from_millis(100)).await;
    b.sim.set_noise(0, CentiAmps(25)).unwrap();
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.push(hb_fields(&b.heartbeat(S1, 0, 0, v).await).2);
    }
    assert!(seen.iter().all(|a| a.0 <= 25), "{seen:?}");
    assert!(seen.iter().any(|a| a.0 > 0), "{seen:?}");
    assert_eq!(b.sim.slave(0).unwrap().actual, CentiAmps::ZERO);
    assert!(b.sim.slave(5).is_err());
}

#[tokio::test(start_paused = true)]
async fn garbage_on_the_bus_is_counted_and_skipped() {
    let v = ProtocolVersion::V2;
    let mut b = Bench::new(vec![slave(S1, v, CarConfig::none())]);
    b.drain(Duration::from_millis(100)).await;
    // Spec N01 (bad checksum) and stray bytes, then a good heartbeat in the same write.
    let mut raw = twc_core::protocol::codec::parse_hex(
        "F8 FF C0 FB E0 77 77 20 19 00 00 00 00 00 00 00 00 00 08 C0 FE",
    )
    .unwrap();
    let hb = Message::MasterHeartbeat {
        master: MASTER,
        slave: S1,
        command: MasterCommand::SET_LIMIT_V2,
        amps: CentiAmps(1000),
        master_plugged_in: false,
        version: v,
    };
    raw.extend(hb.encode().unwrap().to_wire());
    b.comms.send_raw(&raw).await.unwrap();
    let (m, _) = b
        .recv(Duration::from_millis(500))
        .await
        .expect("the good frame is answered");
    assert_eq!(hb_fields(&m).1, CentiAmps(1000));
    let c = b.sim.counters();
    assert_eq!(c.decode.bad_checksum, 1, "{c:?}");
    assert_eq!(c.frames_rx, 1);
    assert!(c.frames_tx >= 2, "link-ready and the reply: {c:?}");
}

#[tokio::test(start_paused = true)]
async fn a_full_battery_stops_the_car() {
    let v = ProtocolVersion::V2;
    let car = CarConfig {
        battery_kwh: Some(1.0),
        soc_pct: Some(99.0),
        ramp_amps_per_sec: 100.0,
        ..CarConfig::tesla()
    };
    let mut b = Bench::new(vec![slave(S1, v, car)]);
    b.drain(Duration::from_millis(100)).await;
    b.heartbeat(S1, 0x09, 1600, v).await;
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 1, v).await);
    assert_eq!((state, actual), (SlaveState::CHARGING, CentiAmps(1520)));
    // 1 % of 1 kWh at 15.2 A × 690 V takes about 3.4 s.
    let (state, _, actual) = hb_fields(&b.keep_alive(S1, 5, v).await);
    assert_eq!(
        (state, actual),
        (SlaveState::CONNECTED_NOT_CHARGING, CentiAmps::ZERO)
    );
    assert_eq!(b.sim.slave(0).unwrap().soc_pct, Some(100.0));
}
