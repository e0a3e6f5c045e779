//! The sink queue (spill, retry, order, counters) and the shared row logic.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::async_trait;
use twc_core::logging::{Mute, OpenSession, Row, RowBuilder, SessionOp, SinkOptions, spawn_sink};
use twc_core::model::{CentiAmps, ChargeSession, Event, SlaveStatus};
use twc_core::plugin::{ErrorKind, Logger, PluginError};
use twc_core::protocol::{ProtocolVersion, TwcId};

#[derive(Clone, Default)]
struct Probe {
    seen: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    batch: usize,
}

#[async_trait]
impl Logger for Probe {
    async fn record(&self, e: &Event) -> Result<(), PluginError> {
        self.record_batch(std::slice::from_ref(e)).await
    }
    fn batch_size(&self) -> usize {
        self.batch.max(1)
    }
    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(PluginError::new(ErrorKind::Transient, "probe", "down"));
        }
        let mut g = self.seen.lock().unwrap();
        for e in events {
            if let Event::Fault { message, .. } = e {
                g.push(message.clone());
            }
        }
        Ok(())
    }
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn fault(i: usize) -> Event {
    Event::Fault {
        at: t(i as i64),
        component: "test".into(),
        message: format!("{i:06}"),
    }
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:06}")).collect()
}

async fn wait_for(p: &Probe, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.seen.lock().unwrap().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fast(spill: Option<std::path::PathBuf>, cap: usize) -> SinkOptions {
    SinkOptions {
        queue_capacity: cap,
        spill_dir: spill,
        retry_min_ms: 10,
        retry_max_ms: 50,
        shutdown_timeout_ms: 300,
        ..SinkOptions::default()
    }
}

#[tokio::test]
async fn outage_retries_in_order_and_spills_without_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = broadcast::channel(64);
    let p = Probe {
        batch: 7,
        ..Probe::default()
    };
    p.down.store(true, Ordering::SeqCst);
    let sink = spawn_sink(
        rx,
        "probe",
        Box::new(p.clone()),
        fast(Some(dir.path().into()), 50),
    );
    // The runtime's set of sinks, for Status and /metrics (no process-wide registry).
    let set = twc_core::logging::SinkSet::new();
    set.add(sink.watcher());
    // The sender never waits, however long the sink is down.
    for i in 0..2000 {
        tx.send(fault(i)).unwrap();
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = sink.status();
    assert_eq!(st.queued, 2000, "{st:?}");
    assert!(st.spilled >= 1900, "{st:?}");
    assert!(st.errors >= 1, "{st:?}");
    assert!(st.last_error.is_some());
    assert!(st.lag_secs > 0.0);
    p.down.store(false, Ordering::SeqCst);
    wait_for(&p, 2000).await;
    assert_eq!(*p.seen.lock().unwrap(), expected(2000));
    let st = sink.status();
    assert_eq!(
        (st.dropped, st.written, st.queued, st.spilled),
        (0, 2000, 0, 0)
    );
    assert!(st.last_error.is_none());
    let all = set.statuses();
    assert!(
        all.iter().any(|s| s.name == "probe" && s.written == 2000),
        "{all:?}"
    );
    let metrics = set.prometheus();
    assert!(
        metrics.contains("twc_sink_written_total{sink=\"probe\"} 2000"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE twc_sink_dropped_total counter"));
    drop(tx);
    sink.join().await;
}

#[tokio::test]
async fn without_a_spill_dir_a_full_queue_drops_and_counts() {
    let (tx, rx) = broadcast::channel(256);
    let p = Probe::default();
    p.down.store(true, Ordering::SeqCst);
    let sink = spawn_sink(rx, "probe", Box::new(p.clone()), fast(None, 10));
    for i in 0..100 {
        tx.send(fault(i)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.status().dropped, 90);
    p.down.store(false, Ordering::SeqCst);
    wait_for(&p, 10).await;
    assert_eq!(*p.seen.lock().unwrap(), expected(10));
}

#[tokio::test]
async fn shutdown_saves_the_backlog_and_the_next_start_writes_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = broadcast::channel(256);
    let p = Probe::default();
    p.down.store(true, Ordering::SeqCst);
    let sink = spawn_sink(
        rx,
        "probe",
        Box::new(p.clone()),
        fast(Some(dir.path().into()), 20),
    );
    for i in 0..100 {
        tx.send(fault(i)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(tx);
    sink.join().await;
    assert!(p.seen.lock().unwrap().is_empty());

    let (tx, rx) = broadcast::channel(256);
    let p2 = Probe::default();
    let sink = spawn_sink(
        rx,
        "probe",
        Box::new(p2.clone()),
        fast(Some(dir.path().into()), 20),
    );
    for i in 100..150 {
        tx.send(fault(i)).unwrap();
    }
    wait_for(&p2, 150).await;
    assert_eq!(*p2.seen.lock().unwrap(), expected(150));
    assert_eq!(sink.status().dropped, 0);
}

fn slave(kwh: u32, charging: bool) -> SlaveStatus {
    SlaveStatus {
        id: TwcId::from_u16(0x4142),
        sign: 0x77,
        version: ProtocolVersion::V2,
        max_amps: CentiAmps::from_amps(32),
        cap_amps: CentiAmps::from_amps(32),
        state: 1,
        state_name: "charging".into(),
        reported_limit: CentiAmps::from_amps(16),
        actual: CentiAmps::from_amps(if charging { 16 } else { 0 }),
        offered: CentiAmps::from_amps(16),
        target: CentiAmps::from_amps(16),
        lifetime_kwh: Some(kwh),
        volts: [230, 0, 0],
        vin: None,
        last_vin: None,
        last_heartbeat_secs: 0.5,
        timed_out: false,
        charging,
        session_kwh: 0.0,
        session_secs: None,
        firmware: None,
        overdraw: false,
        power_w: 0.0,
    }
}

fn session(start: i64, start_kwh: Option<u32>, energy: f64) -> ChargeSession {
    ChargeSession {
        slave: TwcId::from_u16(0x4142),
        vin: Some("5YJ3E1EA7KF000001".into()),
        started_at: t(start),
        start_kwh,
        energy_kwh: energy,
        metrics: Default::default(),
    }
}

fn ends(rows: &[Row]) -> Vec<(DateTime<Utc>, Option<u32>, Option<u32>)> {
    rows.iter()
        .filter_map(|r| match r {
            Row::Session(SessionOp::End {
                session, end_kwh, ..
            }) => Some((session.started_at, session.start_kwh, *end_kwh)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_session_interrupted_by_a_restart_counts_from_its_original_start() {
    // Before the restart: started at 100 kWh, last seen at 105.
    let open = vec![OpenSession {
        slave: TwcId::from_u16(0x4142),
        started_at: t(0),
        start_kwh: Some(100),
        vin: Some("5YJ3E1EA7KF000001".into()),
        last_at: t(3600),
        last_kwh: Some(105),
        metrics: None,
    }];
    let mut b = RowBuilder::new(Mute::default(), 60, 900);
    assert!(b.restore(open.clone(), 900).is_empty());
    // Restarted two minutes later; the engine sees a session start at 106 kWh.
    let r = b.rows(&Event::SessionStarted {
        at: t(3720),
        session: session(3720, Some(106), 0.0),
    });
    assert!(matches!(&r[..], [Row::Session(SessionOp::Update(s))] if s.started_at == t(0)));
    let r = b.rows(&Event::SessionEnded {
        at: t(7200),
        session: session(3720, Some(106), 4.0),
    });
    assert_eq!(ends(&r), vec![(t(0), Some(100), Some(110))]);
    // The energy before the restart was not split or priced: no metrics for the whole row.
    assert!(
        matches!(&r[..], [Row::Session(SessionOp::End { session, .. })] if session.metrics.is_none())
    );

    // A restart long after: the old row closes at its last kWh and a new one starts.
    let mut b = RowBuilder::new(Mute::default(), 60, 900);
    b.restore(open.clone(), 900);
    let r = b.rows(&Event::SessionStarted {
        at: t(90_000),
        session: session(90_000, Some(140), 0.0),
    });
    assert_eq!(ends(&r), vec![(t(0), Some(100), Some(105))]);
    assert!(
        matches!(r.last(), Some(Row::Session(SessionOp::Start(s))) if s.started_at == t(90_000))
    );

    // The car finished while we were down: the first status closes the row with the counter now.
    let mut b = RowBuilder::new(Mute::default(), 60, 900);
    b.restore(open, 900);
    let r = b.rows(&Event::SlaveStatus {
        at: t(9000),
        slave: slave(112, false),
    });
    assert_eq!(ends(&r), vec![(t(0), Some(100), Some(112))]);
}

#[test]
fn mute_switches_silence_their_tables_only() {
    let mute = Mute {
        slave_status: true,
        slave_power: true,
        ..Mute::default()
    };
    let mut b = RowBuilder::new(mute, 0, 900);
    let r = b.rows(&Event::SlaveStatus {
        at: t(0),
        slave: slave(100, true),
    });
    assert!(r.is_empty(), "{r:?}");
    // …but the charger power still feeds the green-energy rows.
    let r = b.rows(&Event::Reading {
        at: t(1),
        source: "sim".into(),
        reading: twc_core::model::EnergyReading {
            generation_w: Some(5000.0),
            consumption_w: Some(1000.0),
            ..Default::default()
        },
    });
    match &r[..] {
        [Row::GreenEnergy(g)] => assert_eq!(g.charger_w, 16.0 * 230.0),
        other => panic!("{other:?}"),
    }
    let m: Mute = toml::from_str("charge_sessions = true").unwrap();
    assert!(m.charge_sessions && !m.faults);
    assert!(toml::from_str::<Mute>("chargesessions = true").is_err());
}

#[tokio::test]
async fn close_writes_what_it_can_and_saves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = broadcast::channel(256);
    let p = Probe::default();
    let sink = spawn_sink(
        rx,
        "probe",
        Box::new(p.clone()),
        fast(Some(dir.path().into()), 20),
    );
    for i in 0..10 {
        tx.send(fault(i)).unwrap();
    }
    wait_for(&p, 10).await;
    p.down.store(true, Ordering::SeqCst);
    for i in 10..40 {
        tx.send(fault(i)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The engine handle (here: tx) is still alive; close() ends the sink anyway.
    sink.close().await;
    let (_tx2, rx2) = broadcast::channel(16);
    let p2 = Probe::default();
    let again = spawn_sink(
        rx2,
        "probe",
        Box::new(p2.clone()),
        fast(Some(dir.path().into()), 20),
    );
    wait_for(&p2, 30).await;
    assert_eq!(*p2.seen.lock().unwrap(), expected(40)[10..].to_vec());
    assert_eq!(again.status().dropped, 0);
    drop(tx);
}

#[test]
fn a_restored_session_whose_slave_never_returns_is_closed_at_its_last_update() {
    let open = vec![OpenSession {
        slave: TwcId::from_u16(0x4142),
        started_at: t(0),
        start_kwh: Some(100),
        vin: None,
        last_at: t(600),
        last_kwh: Some(104),
        metrics: None,
    }];
    let mut b = RowBuilder::new(Mute::default(), 60, 900);
    b.restore(open, 900);
    let other = |at| Event::Fault {
        at: t(at),
        component: "x".into(),
        message: "y".into(),
    };
    assert!(ends(&b.rows(&other(10_000))).is_empty());
    assert!(ends(&b.rows(&other(10_900))).is_empty());
    assert_eq!(
        ends(&b.rows(&other(10_901))),
        vec![(t(0), Some(100), Some(104))]
    );
    assert_eq!(b.open_sessions().count(), 0);
}

#[test]
fn a_session_end_carries_the_engines_metrics_to_the_row() {
    let mut b = RowBuilder::new(Mute::default(), 60, 900);
    let mut start = session(0, Some(100), 0.0);
    start.metrics.soc_start_pct = Some(40.0);
    let r = b.rows(&Event::SessionStarted {
        at: t(0),
        session: start.clone(),
    });
    assert!(
        matches!(&r[..], [Row::Session(SessionOp::Start(s))] if s.metrics.as_ref().and_then(|m| m.soc_start_pct) == Some(40.0))
    );
    let mut end = session(0, Some(100), 5.0);
    end.metrics.integrated_kwh = 5.0;
    end.metrics.solar_kwh = 2.0;
    let r = b.rows(&Event::SessionEnded {
        at: t(3600),
        session: end.clone(),
    });
    assert!(
        matches!(&r[..], [Row::Session(SessionOp::End { session, .. })] if session.metrics.as_ref() == Some(&end.metrics))
    );
}

/// An external load point's status is a `load_point_status` row (muted with `slave_power`), and
/// its fresh power counts in the green-energy rows' charger column; a stale one adds nothing.
#[test]
fn a_load_point_status_is_its_own_row_and_counts_in_the_charger_power() {
    let lp = twc_testkit::load_points::gen3_charging_na();
    let mut b = RowBuilder::new(Mute::default(), 0, 900);
    let r = b.rows(&Event::LoadPointStatus {
        at: t(0),
        load_point: Box::new(lp.clone()),
    });
    assert!(
        matches!(r.as_slice(), [Row::LoadPoint { at, load_point }] if *at == t(0) && **load_point == lp),
        "{r:?}"
    );
    let reading = |at| Event::Reading {
        at: t(at),
        source: "sim".into(),
        reading: twc_core::model::EnergyReading::default(),
    };
    let charger_w = |r: Vec<Row>| match r.as_slice() {
        [Row::GreenEnergy(g)] => g.charger_w,
        other => panic!("{other:?}"),
    };
    assert!((charger_w(b.rows(&reading(1))) - 7703.85).abs() < 0.01);
    b.rows(&Event::LoadPointStatus {
        at: t(2),
        load_point: Box::new(twc_testkit::load_points::gen3_unreachable()),
    });
    assert_eq!(charger_w(b.rows(&reading(3))), 0.0);
    let mut muted = RowBuilder::new(
        Mute {
            slave_power: true,
            ..Mute::default()
        },
        0,
        900,
    );
    assert!(
        muted
            .rows(&Event::LoadPointStatus {
                at: t(0),
                load_point: Box::new(lp),
            })
            .is_empty()
    );
    assert!(
        twc_core::logging::describe(&Event::LoadPointStatus {
            at: t(0),
            load_point: Box::new(twc_testkit::load_points::gen3_charging_na()),
        })
        .contains("gen3.garage")
    );
}
