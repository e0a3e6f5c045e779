//! Session metrics (car, state of charge, solar share, cost) in SQLite: the schema migration
//! from the previous release keeps every row, and a failed write loses no session.

use std::path::Path;
use std::time::Duration;
use twc_core::logging::Mute;
use twc_core::plugin::Logger;
use twc_logging_sqlite::{SqliteConfig, SqliteSink};
use twc_testkit::events::{metrics, session_with_metrics, t};
use twc_testkit::sinks::{assert_all_written, queue_options, start_sink, wait_errors};

fn cfg(path: &Path) -> SqliteConfig {
    SqliteConfig {
        path: path.to_path_buf(),
        green_energy_interval_secs: 0,
        resume_within_secs: 900,
        batch_size: 20,
        mute: Mute::default(),
    }
}

/// The schema the previous release created: the migrations before the session metrics.
async fn previous_schema(path: &Path) -> sqlx::SqlitePool {
    let old = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for f in [
        "0001_twcmanager_tables.sql",
        "0002_twcmanager_rs_extras.sql",
    ] {
        std::fs::copy(here.join(f), old.path().join(f)).unwrap();
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let p = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&p)
        .await
        .unwrap();
    p
}

#[tokio::test]
async fn a_database_of_the_previous_schema_is_upgraded_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    let p = previous_schema(&path).await;
    for q in [
        "INSERT INTO charge_sessions (chargeid, startTime, startkWh, slaveTWC, endTime, endkWh, vehicleVIN, lastTime, lastkWh) \
         VALUES (1, '2026-09-01 10:00:00.000', 100, '4142', '2026-09-01 12:00:00.000', 120, 'OLDVIN', '2026-09-01 12:00:00.000', 120)",
        "INSERT INTO green_energy (time, genW, conW, chgW, gridW, batteryW) VALUES ('2026-09-01 10:00:00.000', 3000, 800, 2200, 0, NULL)",
        "INSERT INTO faults (time, component, message) VALUES ('2026-09-01 10:00:00.000', 'bus', 'old fault')",
    ] {
        sqlx::query(q).execute(&p).await.unwrap();
    }
    p.close().await;

    let sink = SqliteSink::new(cfg(&path));
    sink.record_batch(&session_with_metrics(100, 3700))
        .await
        .unwrap();
    let h = sink.history().unwrap();
    let all = h
        .sessions(None, "2026-08-01T00:00:00Z".parse().unwrap(), t(10_000))
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    // The old row: as it was, its new columns unknown.
    assert_eq!(all[0].vin.as_deref(), Some("OLDVIN"));
    assert_eq!(all[0].energy_kwh(), Some(20.0));
    assert_eq!(all[0].metrics, None);
    assert_eq!((all[0].solar_share(), all[0].cost()), (None, None));
    // The new one: every field.
    let s = &all[1];
    assert_eq!(s.metrics.as_ref(), Some(&metrics()));
    assert_eq!(s.solar_share(), Some(0.5));
    assert_eq!(s.cost(), Some(1.5));
    assert_eq!(s.car_name.as_deref(), Some("Red car"));
    assert_eq!((s.soc_start_pct, s.soc_end_pct), (Some(40.0), Some(80.0)));
    assert_eq!(s.charged_kwh(), Some(10.0));
    // The other tables kept their rows; each migration ran once.
    let o = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let p = sqlx::SqlitePool::connect_with(o).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM green_energy")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let v: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&p)
        .await
        .unwrap();
    assert_eq!(v, vec![1, 2, 3, 4]);
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ending_while_the_database_is_locked_lands_with_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twc.sqlite");
    let sink = SqliteSink::with_busy_timeout(cfg(&path), Duration::from_millis(50));
    let (tx, h) = start_sink(
        "sqlite",
        Box::new(sink),
        queue_options(&dir.path().join("spill"), 100),
    );
    let [start, end] = session_with_metrics(100, 3700);
    tx.send(start).unwrap();
    twc_testkit::sinks::wait_idle(&h, 1, Duration::from_secs(20)).await;
    let o = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut locker = sqlx::ConnectOptions::connect(&o).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let before = h.status();
    tx.send(end).unwrap();
    wait_errors(&h, before.errors + 1).await;
    assert_eq!(
        h.status().written,
        before.written,
        "counted before it landed"
    );
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    drop(locker);
    twc_testkit::sinks::wait_idle(&h, 2, Duration::from_secs(20)).await;
    assert_all_written(&h, 2);
    let p = sqlx::SqlitePool::connect_with(o).await.unwrap();
    let row: (f64, f64, f64, String) = sqlx::query_as(
        "SELECT CAST(solarkWh AS REAL), CAST(gridCost AS REAL), CAST(endSoC AS REAL), currency \
         FROM charge_sessions WHERE endTime IS NOT NULL",
    )
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(row, (5.0, 1.5, 80.0, "EUR".into()));
    p.close().await;
    drop(tx);
    h.join().await;
}
