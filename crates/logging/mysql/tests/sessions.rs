//! Session metrics (car, state of charge, solar share, cost) in MariaDB: the schema migration
//! from the previous release keeps every row, and a failed write loses no session.

mod common;

use std::path::Path;
use std::time::Duration;
use twc_core::plugin::Logger;
use twc_logging_mysql::MysqlSink;
use twc_testkit::events::{metrics, session_with_metrics, t};
use twc_testkit::sinks::{assert_all_written, queue_options, start_sink, wait_errors};

#[tokio::test]
async fn a_database_of_the_previous_schema_is_upgraded_and_keeps_its_rows() {
    let Some(db) = common::test_db().await else {
        return;
    };
    // The schema the previous release created: the migrations before the session metrics.
    let old = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for f in [
        "0001_twcmanager_tables.sql",
        "0002_twcmanager_rs_extras.sql",
    ] {
        std::fs::copy(here.join(f), old.path().join(f)).unwrap();
    }
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&db.pool)
        .await
        .unwrap();
    for q in [
        "INSERT INTO charge_sessions (chargeid, startTime, startkWh, slaveTWC, endTime, endkWh, vehicleVIN, lastTime, lastkWh) \
         VALUES (1, '2026-09-01 10:00:00', 100, '4142', '2026-09-01 12:00:00', 120, 'OLDVIN', '2026-09-01 12:00:00', 120)",
        "INSERT INTO green_energy (time, genW, conW, chgW, gridW, batteryW) VALUES ('2026-09-01 10:00:00', 3000, 800, 2200, 0, NULL)",
    ] {
        sqlx::query(q).execute(&db.pool).await.unwrap();
    }
    let sink = MysqlSink::new(db.config());
    sink.record_batch(&session_with_metrics(100, 3700))
        .await
        .unwrap();
    let h = sink.history().unwrap();
    let all = h
        .sessions(None, "2026-08-01T00:00:00Z".parse().unwrap(), t(10_000))
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].vin.as_deref(), Some("OLDVIN"));
    assert_eq!(all[0].energy_kwh(), Some(20.0));
    assert_eq!(all[0].metrics, None);
    let s = &all[1];
    assert_eq!(s.metrics.as_ref(), Some(&metrics()));
    assert_eq!(s.solar_share(), Some(0.5));
    assert_eq!(s.cost(), Some(1.5));
    assert_eq!((s.soc_start_pct, s.soc_end_pct), (Some(40.0), Some(80.0)));
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM green_energy")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let v: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(v, vec![1, 2, 3, 4]);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ending_while_the_table_is_locked_lands_with_its_metrics() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let spill = tempfile::tempdir().unwrap();
    let (tx, h) = start_sink(
        "mysql",
        Box::new(MysqlSink::new(db.config())),
        queue_options(spill.path(), 200),
    );
    let [start, end] = session_with_metrics(100, 3700);
    tx.send(start).unwrap();
    twc_testkit::sinks::wait_idle(&h, 1, Duration::from_secs(20)).await;
    // The server refuses the end's update; the session must be written once it accepts again.
    sqlx::query("ALTER TABLE charge_sessions ADD CONSTRAINT injected CHECK (endTime IS NULL)")
        .execute(&db.pool)
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
    sqlx::query("ALTER TABLE charge_sessions DROP CONSTRAINT injected")
        .execute(&db.pool)
        .await
        .unwrap();
    twc_testkit::sinks::wait_idle(&h, 2, Duration::from_secs(20)).await;
    assert_all_written(&h, 2);
    let row: (f64, f64, f64, String) = sqlx::query_as(
        "SELECT CAST(solarkWh AS DOUBLE), CAST(gridCost AS DOUBLE), CAST(endSoC AS DOUBLE), currency \
         FROM charge_sessions WHERE endTime IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(row, (5.0, 1.5, 80.0, "EUR".into()));
    drop(tx);
    h.join().await;
    db.drop_db().await;
}
