//! The MySQL sink against the real MariaDB (a fresh database per test, dropped afterwards).

mod common;

use chrono::FixedOffset;
use sqlx::Row as _;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use twc_core::logging::{SinkOptions, spawn_sink};
use twc_core::model::{CentiAmps, Event};
use twc_core::plugin::{Logger, PluginConfig};
use twc_logging_mysql::{MysqlConfig, MysqlSink};

use twc_testkit::events::{VIN, id, reading, session, slave, t};

fn fault(i: i64) -> Event {
    Event::Fault {
        at: t(i),
        component: "test".into(),
        message: format!("{i:05}"),
    }
}

#[test]
fn example_config_parses_and_hides_the_password() {
    let c = PluginConfig::from_toml("logging.mysql", include_str!("../example.toml")).unwrap();
    let parsed: MysqlConfig = c.parse().unwrap();
    assert_eq!(parsed.database, "twcmanager");
    assert!(!format!("{parsed:?}").contains("change-me"));
    let bad =
        PluginConfig::from_toml("logging.mysql", "database = \"x\"\nhostname = \"db\"").unwrap();
    let e = bad.parse::<MysqlConfig>().unwrap_err().to_string();
    assert!(e.contains("logging.mysql") && e.contains("hostname"), "{e}");
}

#[tokio::test]
async fn records_every_table_and_answers_history_queries() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let sink = MysqlSink::new(db.config());
    let events = vec![
        Event::SessionStarted {
            at: t(10),
            session: session(10, 1000, 0.0),
        },
        Event::VinRead {
            at: t(20),
            slave: id(),
            vin: VIN.into(),
        },
        Event::SlaveStatus {
            at: t(60),
            slave: slave(1003, 16, true),
        },
        reading(61, 5000.0),
        Event::OfferChanged {
            at: t(62),
            slave: id(),
            from: CentiAmps::from_amps(16),
            to: CentiAmps::from_amps(10),
        },
        Event::PolicyChanged {
            at: t(70),
            from: "Non Scheduled Charging".into(),
            to: "Track Green Energy".into(),
            reason: "daytime".into(),
        },
        fault(80),
        Event::SessionEnded {
            at: t(3600),
            session: session(10, 1000, 7.0),
        },
    ];
    sink.record_batch(&events).await.unwrap();
    let r = sqlx::query(
        "SELECT chargeid, startTime, startkWh, slaveTWC, endTime, endkWh, vehicleVIN FROM charge_sessions",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(r.get::<i32, _>(0) as i64, t(10).timestamp());
    assert_eq!(r.get::<chrono::NaiveDateTime, _>(1).and_utc(), t(10));
    assert_eq!(r.get::<i32, _>(2), 1000);
    assert_eq!(r.get::<String, _>(3), "4142");
    assert_eq!(r.get::<chrono::NaiveDateTime, _>(4).and_utc(), t(3600));
    assert_eq!(r.get::<i32, _>(5), 1007);
    assert_eq!(r.get::<String, _>(6), VIN);
    let r = sqlx::query("SELECT kWh, voltsPhaseA, voltsPhaseB, voltsPhaseC FROM slave_status")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        (
            r.get::<i32, _>(0),
            r.get::<i32, _>(1),
            r.get::<i32, _>(2),
            r.get::<i32, _>(3)
        ),
        (1003, 230, 231, 229)
    );
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM slave_power ORDER BY time")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(kinds, vec!["status", "offer"]);
    let to: String = sqlx::query_scalar("SELECT toPolicy FROM policy_changes")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(to, "Track Green Energy");

    let h = sink.history().expect("mysql answers history queries");
    let pts = h.power(t(0), t(100), 100).await.unwrap();
    assert_eq!(pts.len(), 1);
    assert_eq!(
        (
            pts[0].generation_w,
            pts[0].consumption_w,
            pts[0].charger_w,
            pts[0].grid_w
        ),
        (Some(5000.0), Some(800.0), Some(16.0 * 690.0), Some(-4200.0))
    );
    let s = h.sessions(Some(VIN), t(0), t(10_000)).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].energy_kwh(), Some(7.0));
    let day = t(10).date_naive();
    let d = h
        .energy_per_day(day, day, FixedOffset::east_opt(0).unwrap())
        .await
        .unwrap();
    assert_eq!((d[0].sessions, d[0].energy_kwh), (1, 7.0));
    db.drop_db().await;
}

#[tokio::test]
async fn sessions_survive_a_restart_and_migrations_run_once() {
    let Some(db) = common::test_db().await else {
        return;
    };
    {
        let sink = MysqlSink::new(db.config());
        sink.record_batch(&[
            Event::SessionStarted {
                at: t(0),
                session: session(0, 500, 0.0),
            },
            Event::SlaveStatus {
                at: t(600),
                slave: slave(504, 16, true),
            },
        ])
        .await
        .unwrap();
    }
    let sink = MysqlSink::new(db.config());
    sink.record_batch(&[
        Event::SessionStarted {
            at: t(720),
            session: session(720, 505, 0.0),
        },
        Event::SessionEnded {
            at: t(3000),
            session: session(720, 505, 6.0),
        },
    ])
    .await
    .unwrap();
    let s = sink
        .history()
        .unwrap()
        .sessions(None, t(-10), t(10_000))
        .await
        .unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].started_at, s[0].ended_at), (t(0), Some(t(3000))));
    assert_eq!((s[0].start_kwh, s[0].end_kwh), (Some(500), Some(511)));
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, twc_logging_mysql::MIGRATOR.migrations.len() as i64);
    db.drop_db().await;
}

#[tokio::test]
async fn tables_made_by_twcmanager_are_kept_and_extended() {
    let Some(db) = common::test_db().await else {
        return;
    };
    // TWCManager's docs/modules/Logging_MySQL.md.
    for q in [
        "CREATE TABLE charge_sessions (chargeid int, startTime datetime, startkWh int, slaveTWC varchar(4), endTime datetime, endkWh int, vehicleVIN varchar(17), primary key(startTime, slaveTWC))",
        "CREATE TABLE green_energy (time datetime, genW DECIMAL(9,3), conW DECIMAL(9,3), chgW DECIMAL(9,3), primary key(time))",
        "CREATE TABLE slave_status (slaveTWC varchar(4), time datetime, kWh int, voltsPhaseA int, voltsPhaseB int, voltsPhaseC int, primary key (slaveTWC, time))",
        "INSERT INTO charge_sessions VALUES (1704103200, '2024-01-01 10:00:00', 100, '4142', '2024-01-01 12:00:00', 120, 'OLDVIN')",
    ] {
        sqlx::query(q).execute(&db.pool).await.unwrap();
    }
    let sink = MysqlSink::new(db.config());
    sink.record(&reading(0, 3000.0)).await.unwrap();
    let h = sink.history().unwrap();
    let old = h
        .sessions(
            Some("OLDVIN"),
            "2024-01-01T00:00:00Z".parse().unwrap(),
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].energy_kwh(), Some(20.0));
    assert_eq!(h.power(t(0), t(1), 10).await.unwrap().len(), 1);
    db.drop_db().await;
}

/// MariaDB unreachable for 60 s: the bus keeps sending, the sink queues (and spills), retries,
/// and afterwards every record is in the database, in order, with 0 dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_second_outage_loses_nothing_and_keeps_order() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let proxy = common::Proxy::start(format!("{}:{}", db.server.host, db.server.port)).await;
    let sink = MysqlSink::new(db.config_at("127.0.0.1", proxy.port));
    let spill = tempfile_dir();
    let (tx, rx) = broadcast::channel(1024);
    let opts = SinkOptions {
        queue_capacity: 200,
        spill_dir: Some(spill.clone()),
        retry_min_ms: 250,
        retry_max_ms: 4000,
        ..SinkOptions::default()
    };
    let h = spawn_sink(rx, "mysql", Box::new(sink), opts);
    let mut i = 0i64;
    let mut send = |n: usize| {
        let mut worst = Duration::ZERO;
        for _ in 0..n {
            let s = Instant::now();
            tx.send(fault(i)).unwrap();
            tx.send(reading(i, i as f64)).unwrap();
            worst = worst.max(s.elapsed());
            i += 1;
        }
        worst
    };
    send(50);
    wait_written(&h, 100, 20).await;

    proxy.cut();
    let cut_at = Instant::now();
    let mut worst_send = Duration::ZERO;
    // 60 s of traffic while the database is unreachable: 10 pairs of records per second.
    while cut_at.elapsed() < Duration::from_secs(60) {
        worst_send = worst_send.max(send(10));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let during = h.status();
    assert!(during.errors >= 3, "{during:?}");
    assert!(during.queued >= 1000, "{during:?}");
    assert!(during.spilled > 0, "{during:?}");
    assert!(during.lag_secs >= 50.0, "{during:?}");
    assert!(during.last_error.is_some());
    assert!(
        worst_send < Duration::from_millis(50),
        "sending waited {worst_send:?}"
    );
    let total = i;
    proxy.restore();
    wait_written(&h, 2 * total as u64, 60).await;
    let after = h.status();
    assert_eq!(
        (after.dropped, after.queued, after.spilled),
        (0, 0, 0),
        "{after:?}"
    );
    assert!(after.last_error.is_none());

    let got: Vec<String> = sqlx::query_scalar("SELECT message FROM faults ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let want: Vec<String> = (0..total).map(|i| format!("{i:05}")).collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want, "faults arrived out of order or duplicated");
    let green: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM green_energy")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(green, total);
    drop(tx);
    h.join().await;
    let _ = std::fs::remove_dir_all(&spill);
    db.drop_db().await;
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("twc-mysql-spill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn wait_written(h: &twc_core::logging::SinkHandle, n: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while h.status().written < n {
        assert!(
            Instant::now() < deadline,
            "not written in {secs} s: {:?}",
            h.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn over_long_strings_are_cut_to_their_columns_not_retried_forever() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let sink = MysqlSink::new(db.config());
    let long = "x".repeat(300);
    sink.record_batch(&[
        Event::Fault {
            at: t(1),
            component: long.clone(),
            message: long.clone(),
        },
        Event::PolicyChanged {
            at: t(2),
            from: long.clone(),
            to: long.clone(),
            reason: long.clone(),
        },
        Event::VinRead {
            at: t(3),
            slave: id(),
            vin: long.clone(),
        },
    ])
    .await
    .unwrap();
    let (c, m): (String, String) = sqlx::query_as("SELECT component, message FROM faults")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!((c.len(), m.len()), (64, 300));
    db.drop_db().await;
}

/// A Wall Connector Gen3 (an external load point): one `load_point_status` row per status, with
/// its per-phase values, and nothing made up while it does not answer.
#[tokio::test]
async fn a_gen3_load_point_has_its_own_rows() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let sink = MysqlSink::new(db.config());
    sink.record_batch(&[
        Event::LoadPointStatus {
            at: t(10),
            load_point: Box::new(twc_testkit::load_points::gen3_charging_na()),
        },
        Event::LoadPointStatus {
            at: t(70),
            load_point: Box::new(twc_testkit::load_points::gen3_unreachable()),
        },
    ])
    .await
    .unwrap();
    let rows = sqlx::query(
        "SELECT loadPoint, kind, state, stale, CAST(drawA AS DOUBLE), CAST(allocatedA AS DOUBLE), \
         CAST(powerW AS DOUBLE), CAST(ampsPhaseA AS DOUBLE), CAST(voltsPhaseC AS DOUBLE), \
         CAST(sessionWh AS DOUBLE), CAST(lifetimeWh AS DOUBLE), problem \
         FROM load_point_status ORDER BY time",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(
        (
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<i64, _>(3)
        ),
        ("gen3.garage".into(), "gen3".into(), "charging".into(), 0)
    );
    assert_eq!(r.get::<Option<f64>, _>(4), Some(31.9));
    assert_eq!(r.get::<Option<f64>, _>(5), Some(32.0));
    assert!((r.get::<f64, _>(6) - 7703.85).abs() < 0.06);
    assert_eq!(r.get::<Option<f64>, _>(7), Some(31.8));
    assert_eq!(r.get::<Option<f64>, _>(8), Some(118.7));
    assert_eq!(r.get::<Option<f64>, _>(9), Some(11562.4));
    assert_eq!(r.get::<Option<f64>, _>(10), Some(386204.0));
    assert_eq!(r.get::<Option<String>, _>(11), None);
    let r = &rows[1];
    assert_eq!(
        (r.get::<String, _>(2), r.get::<i64, _>(3)),
        ("stale".into(), 1)
    );
    assert_eq!(r.get::<Option<f64>, _>(4), None, "unknown, not 0 A");
    assert_eq!(r.get::<Option<f64>, _>(6), None, "unknown, not 0 W");
    assert_eq!(
        r.get::<Option<String>, _>(11).as_deref(),
        Some("not reachable: connection refused")
    );
    db.drop_db().await;
}
