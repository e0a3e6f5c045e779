//! The real `twc_core::master::Master`, driven the way the engine drives it, against three
//! simulated slaves on an in-process bus (paused time).

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::DuplexStream;
use tokio::time::Instant;
use twc_core::master::{Master, MasterConfig, MasterEvent};
use twc_core::model::CentiAmps;
use twc_core::plugin::{Comms, Received};
use twc_core::protocol::{ProtocolVersion, SlaveState, TwcId};
use twc_core::transport::StreamComms;
use twc_sim::{FleetSpec, SimHandle, duplex_pair};

const MASTER: TwcId = TwcId([0x77, 0x77]);

/// One engine-like loop for `d`: transmit what is due, feed received frames, check timeouts.
async fn drive(
    m: &mut Master,
    comms: &mut StreamComms<DuplexStream>,
    d: Duration,
    events: &mut Vec<MasterEvent>,
) {
    let end = Instant::now() + d;
    let mut next_check = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        if now >= next_check {
            events.extend(m.check_timeouts(now));
            next_check = now + Duration::from_secs(1);
        }
        if let Some((frame, ev)) = m.poll_transmit(now) {
            comms.send(&frame).await.expect("send");
            events.extend(ev);
            continue;
        }
        let wake = m.next_wakeup(now).min(end).min(next_check);
        tokio::select! {
            r = comms.recv() => match r.expect("link") {
                Received::Frame(f) => events.extend(m.handle_frame(&f, Instant::now())),
                Received::Dropped(e) => panic!("bad frame from the simulator: {e}"),
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn setup(version: ProtocolVersion) -> (Master, StreamComms<DuplexStream>, SimHandle) {
    let spec = FleetSpec {
        count: 3,
        version,
        plugged_in: vec![true, false, true],
        ..FleetSpec::default()
    };
    let (comms, sim) = duplex_pair(spec.build());
    let m = Master::new(MasterConfig {
        id: Some(MASTER),
        sign: Some(0x77),
        wiring_max_all: CentiAmps::from_amps(32),
        wiring_max_per_twc: CentiAmps::from_amps(16),
        ..MasterConfig::default()
    });
    (m, comms, sim)
}

async fn links_three_slaves_and_heartbeats_them(version: ProtocolVersion) {
    let (mut m, mut comms, sim) = setup(version);
    let mut events = Vec::new();
    drive(&mut m, &mut comms, Duration::from_secs(5), &mut events).await;
    let linked: Vec<TwcId> = events
        .iter()
        .filter_map(|e| match e {
            MasterEvent::SlaveLinked(id) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(linked.len(), 3, "{events:?}");
    let sims = sim.slaves();
    for s in &sims {
        assert!(linked.contains(&s.id));
        assert!(s.linked, "slave {} heard heartbeats", s.id);
        assert_eq!(s.master, Some(MASTER));
        assert_eq!(m.slave(s.id).unwrap().version, version);
    }

    // 10 A each (30 A ≤ 32 A): every slave mirrors it; the two cars draw 9.2 A.
    let targets: BTreeMap<TwcId, CentiAmps> = sims
        .iter()
        .map(|s| (s.id, CentiAmps::from_amps(10)))
        .collect();
    m.set_targets(&targets);
    let hb_before: Vec<u64> = sim.slaves().iter().map(|s| s.heartbeats).collect();
    drive(&mut m, &mut comms, Duration::from_secs(60), &mut events).await;
    for (i, s) in sim.slaves().iter().enumerate() {
        assert_eq!(s.limit, CentiAmps::from_amps(10), "slave {i}");
        let hb = s.heartbeats - hb_before[i];
        assert!(
            (55..=61).contains(&hb),
            "slave {i}: {hb} heartbeats in 60 s"
        );
        let ms = m.slave(s.id).unwrap();
        assert_eq!(ms.reported_limit, CentiAmps::from_amps(10));
        if s.car.plugged_in {
            assert_eq!(s.actual, CentiAmps(920));
            assert_eq!(ms.actual, CentiAmps(920));
            assert_eq!(ms.state, SlaveState::CHARGING);
            assert!(s.max_limit_seen <= CentiAmps::from_amps(16));
        } else {
            assert_eq!(ms.state, SlaveState::READY);
        }
        assert!(ms.lifetime_kwh.is_some(), "the master read lifetime kWh");
    }
    if version == ProtocolVersion::V2 {
        let vins = events
            .iter()
            .filter(|e| matches!(e, MasterEvent::Vin(_, v) if v.len() == 17))
            .count();
        assert_eq!(vins, 2, "both Teslas gave their VIN: {events:?}");
    }

    // The master goes away: the slaves advertise again, the cars stop.
    drop(m);
    tokio::time::sleep(Duration::from_secs(31)).await;
    for s in sim.slaves() {
        assert!(!s.linked);
        assert_eq!(s.actual, CentiAmps::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn master_links_three_protocol_2_slaves_and_heartbeats_them() {
    links_three_slaves_and_heartbeats_them(ProtocolVersion::V2).await;
}

#[tokio::test(start_paused = true)]
async fn master_links_three_protocol_1_slaves_and_heartbeats_them() {
    links_three_slaves_and_heartbeats_them(ProtocolVersion::V1).await;
}

#[tokio::test(start_paused = true)]
async fn a_slave_holding_the_masters_twcid_repicks_and_links() {
    let spec = FleetSpec {
        count: 2,
        ids: vec![MASTER, TwcId([0x12, 0x34])],
        ..FleetSpec::default()
    };
    let (mut comms, sim) = duplex_pair(spec.build());
    let mut m = Master::new(MasterConfig {
        id: Some(MASTER),
        wiring_max_all: CentiAmps::from_amps(32),
        wiring_max_per_twc: CentiAmps::from_amps(16),
        ..MasterConfig::default()
    });
    let mut events = Vec::new();
    drive(&mut m, &mut comms, Duration::from_secs(15), &mut events).await;
    let ids: Vec<TwcId> = sim.slaves().iter().map(|s| s.id).collect();
    assert_ne!(ids[0], MASTER);
    assert_eq!(m.slaves().count(), 2, "{events:?}");
    assert!(sim.slaves().iter().all(|s| s.linked));
}
