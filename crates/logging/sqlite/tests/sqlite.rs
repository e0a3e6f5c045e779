//! The SQLite sink against real database files in temp dirs.

use chrono::{FixedOffset, NaiveDate};
use sqlx::Row as _;
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::{Mute, SinkOptions, spawn_sink};
use twc_core::model::{CentiAmps, Event};
use twc_core::plugin::{Logger, PluginConfig};
use twc_core::protocol::ProtocolVersion;
use twc_logging_sqlite::{SqliteConfig, SqliteSink};

use twc_testkit::events::{VIN, id, reading, session, slave, t};

fn cfg(path: &std::path::Path) -> SqliteConfig {
    SqliteConfig {
        path: path.to_path_buf(),
        green_energy_interval_secs: 0,
        resume_within_secs: 900,
        batch_size: 100,
        mute: Mute::default(),
    }
}

async fn pool(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[test]
fn example_config_parses_and_unknown_keys_are_named() {
    let c = PluginConfig::from_toml("logging.sqlite", include_str!("../example.toml")).unwrap();
    let parsed: SqliteConfig = c.parse().unwrap();
    assert_eq!(parsed.batch_size, 500);
    let bad = PluginConfig::from_toml("logging.sqlite", "path = \"x\"\nbatchsize = 3").unwrap();
    let e = bad.parse::<SqliteConfig>().unwrap_err().to_string();
    assert!(
        e.contains("logging.sqlite") && e.contains("batchsize"),
        "{e}"
    );
}

#[tokio::test]
async fn records_every_table_and_answers_history_queries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    let sink = SqliteSink::new(cfg(&path));
    let events = vec![
        Event::SlaveLinked {
            at: t(0),
            slave: id(),
            max_amps: CentiAmps::from_amps(32),
            version: ProtocolVersion::V2,
        },
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
        Event::PolicyChanged {
            at: t(70),
            from: "Non Scheduled Charging".into(),
            to: "Track Green Energy".into(),
            reason: "daytime".into(),
        },
        Event::Fault {
            at: t(80),
            component: "bus".into(),
            message: "another master".into(),
        },
        reading(661, 5000.0),
        Event::SessionEnded {
            at: t(3600),
            session: session(10, 1000, 7.0),
        },
    ];
    sink.record_batch(&events).await.unwrap();
    let p = pool(&path).await;
    let r = sqlx::query(
        "SELECT chargeid, startTime, startkWh, slaveTWC, endTime, endkWh, vehicleVIN FROM charge_sessions",
    )
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(r.get::<i64, _>(0), t(10).timestamp());
    assert_eq!(r.get::<String, _>(1), "2026-09-21 14:13:30.000");
    assert_eq!(r.get::<i64, _>(2), 1000);
    assert_eq!(r.get::<String, _>(3), "4142");
    assert_eq!(r.get::<String, _>(4), "2026-09-21 15:13:20.000");
    assert_eq!(r.get::<i64, _>(5), 1007);
    assert_eq!(r.get::<String, _>(6), VIN);
    let r = sqlx::query(
        "SELECT slaveTWC, kWh, voltsPhaseA, voltsPhaseB, voltsPhaseC FROM slave_status",
    )
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(
        (
            r.get::<String, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2),
            r.get::<i64, _>(3),
            r.get::<i64, _>(4)
        ),
        ("4142".to_string(), 1003, 230, 231, 229)
    );
    let r = sqlx::query(
        "SELECT CAST(genW AS REAL), CAST(conW AS REAL), CAST(chgW AS REAL) FROM green_energy",
    )
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(
        (r.get::<f64, _>(0), r.get::<f64, _>(1), r.get::<f64, _>(2)),
        (5000.0, 800.0, 16.0 * 690.0)
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM slave_power")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(n, 2, "linked + status");
    let r = sqlx::query("SELECT toPolicy FROM policy_changes")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(r.get::<String, _>(0), "Track Green Energy");
    let r = sqlx::query("SELECT component, message FROM faults")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(r.get::<String, _>(1), "another master");

    let h = sink.history().expect("sqlite answers history queries");
    let pts = h.power(t(0), t(100), 100).await.unwrap();
    assert_eq!(pts.len(), 1);
    assert_eq!(pts[0].generation_w, Some(5000.0));
    assert_eq!(pts[0].grid_w, Some(-4200.0));
    let s = h.sessions(Some(VIN), t(0), t(10_000)).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].energy_kwh(), Some(7.0));
    assert!(
        h.sessions(Some("OTHER"), t(0), t(10_000))
            .await
            .unwrap()
            .is_empty()
    );
    let day = t(10).date_naive();
    let d = h
        .energy_per_day(
            day,
            day.succ_opt().unwrap(),
            FixedOffset::east_opt(0).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        d.iter().map(|d| d.energy_kwh).collect::<Vec<_>>(),
        vec![7.0, 0.0]
    );
    assert_eq!(d[0].day, NaiveDate::from_ymd_opt(2026, 9, 21).unwrap());
    // PV and grid energy from the stored green_energy rows: 5 kW and 4.2 kW export for 600 s.
    let kwh = |x: Option<f64>| x.map(|v| (v * 1000.0).round() / 1000.0);
    assert_eq!(kwh(d[0].generation_kwh), Some(0.833));
    assert_eq!(kwh(d[0].export_kwh), Some(0.7));
    assert_eq!(kwh(d[0].import_kwh), Some(0.0));
    assert_eq!(
        d[1].generation_kwh, None,
        "no rows that day: unknown, not 0 kWh"
    );
}

#[tokio::test]
async fn a_session_across_a_restart_keeps_its_start_and_counts_all_energy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    {
        let sink = SqliteSink::new(cfg(&path));
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
    // twcmanager restarts; the engine starts a new session at 505 kWh two minutes later.
    let sink = SqliteSink::new(cfg(&path));
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
    let h = sink.history().unwrap();
    let s = h.sessions(None, t(-10), t(10_000)).await.unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].started_at, t(0));
    assert_eq!(s[0].ended_at, Some(t(3000)));
    assert_eq!((s[0].start_kwh, s[0].end_kwh), (Some(500), Some(511)));
}

#[tokio::test]
async fn an_existing_twcmanager_database_is_kept_and_extended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twcmanager.sqlite");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let p = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    // As TWCManager's SQLiteLogging creates them.
    for q in [
        "CREATE TABLE charge_sessions (chargeid int, startTime datetime, startkWh int, slaveTWC varchar(4), endTime datetime, endkWh int, vehicleVIN varchar(17), primary key(startTime, slaveTWC))",
        "CREATE TABLE green_energy (time datetime, genW DECIMAL(9,3), conW DECIMAL(9,3), chgW DECIMAL(9,3), primary key(time))",
        "CREATE TABLE slave_status (slaveTWC varchar(4), time datetime, kWh int, voltsPhaseA int, voltsPhaseB int, voltsPhaseC int, primary key (slaveTWC, time))",
        "INSERT INTO charge_sessions VALUES (1, '2024-01-01 10:00:00', 100, '4142', '2024-01-01 12:00:00', 120, 'OLDVIN')",
    ] {
        sqlx::query(q).execute(&p).await.unwrap();
    }
    p.close().await;
    let sink = SqliteSink::new(cfg(&path));
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
}

#[tokio::test]
async fn a_locked_database_delays_records_but_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    let sink = SqliteSink::new(cfg(&path));
    sink.record(&reading(0, 1.0)).await.unwrap();
    // Another process holds the write lock for 7 s (longer than the 5 s busy timeout).
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut locker = sqlx::ConnectOptions::connect(&opts).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();

    let (tx, rx) = broadcast::channel(1024);
    let opts = SinkOptions {
        retry_min_ms: 100,
        retry_max_ms: 500,
        ..SinkOptions::default()
    };
    let h = spawn_sink(rx, "sqlite", Box::new(sink), opts);
    for i in 1..=300 {
        tx.send(Event::Fault {
            at: t(i),
            component: "test".into(),
            message: format!("{i:04}"),
        })
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    let st = h.status();
    assert!(st.errors >= 1 && st.queued == 300, "{st:?}");
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while h.status().written < 300 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", h.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = h.status();
    assert_eq!((st.dropped, st.queued), (0, 0));
    let p = pool(&path).await;
    let got: Vec<String> = sqlx::query_scalar("SELECT message FROM faults ORDER BY id")
        .fetch_all(&p)
        .await
        .unwrap();
    let want: Vec<String> = (1..=300).map(|i| format!("{i:04}")).collect();
    assert_eq!(got, want);
    drop(tx);
    h.join().await;
}

#[tokio::test]
async fn a_running_sink_offers_its_history_to_the_web_ui() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    let (tx, rx) = broadcast::channel(16);
    // The runtime takes the history from the logger before starting its sink, and hands it to
    // the web UI (there is no process-wide registry).
    let logger = Box::new(SqliteSink::new(cfg(&path)));
    let q = twc_core::plugin::Logger::history(logger.as_ref()).expect("sqlite answers history");
    let h = spawn_sink(rx, "sqlite", logger, SinkOptions::default());
    tx.send(reading(5, 1234.0)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.status().written < 1 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", h.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pts = q.power(t(0), t(10), 10).await.unwrap();
    assert_eq!(pts[0].generation_w, Some(1234.0));
}

/// A Wall Connector Gen3 (an external load point): one `load_point_status` row per status, with
/// its per-phase values, and nothing made up while it does not answer.
#[tokio::test]
async fn a_gen3_load_point_has_its_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    let sink = SqliteSink::new(cfg(&path));
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
    let p = pool(&path).await;
    let rows = sqlx::query(
        "SELECT loadPoint, kind, state, stale, CAST(drawA AS REAL), CAST(allocatedA AS REAL), \
         CAST(powerW AS REAL), CAST(ampsPhaseA AS REAL), CAST(voltsPhaseC AS REAL), \
         CAST(sessionWh AS REAL), CAST(lifetimeWh AS REAL), problem \
         FROM load_point_status ORDER BY time",
    )
    .fetch_all(&p)
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
}
