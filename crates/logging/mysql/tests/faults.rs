//! Fault injection against MariaDB: the sink behind the real no-loss queue while the server
//! rejects writes part-way through a batch, holds a lock on the table, or kills the sink's
//! connections. Every record must land exactly once, in order, and the counters must only count
//! what landed.

mod common;

use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::SinkHandle;
use twc_core::model::Event;
use twc_logging_mysql::MysqlSink;
use twc_testkit::sinks::{
    assert_all_written, assert_held_back, fault, numbered as want, policy, queue_options,
    send_each, start_sink, wait_errors,
};

fn start(db: &common::TestDb) -> (broadcast::Sender<Event>, SinkHandle, tempfile::TempDir) {
    let spill = tempfile::tempdir().unwrap();
    let opts = queue_options(spill.path(), 200);
    let (tx, h) = start_sink("mysql", Box::new(MysqlSink::new(db.config())), opts);
    (tx, h, spill)
}

async fn wait_idle(h: &SinkHandle, written: u64) {
    twc_testkit::sinks::wait_idle(h, written, Duration::from_secs(20)).await;
}

async fn column(db: &common::TestDb, q: &str) -> Vec<String> {
    sqlx::query_scalar(q).fetch_all(&db.pool).await.unwrap()
}

fn send_pairs(tx: &broadcast::Sender<Event>, range: std::ops::RangeInclusive<i64>) {
    send_each(tx, range, &[policy, fault]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_rejecting_writes_mid_batch_gets_every_record_once_later() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let (tx, h, _spill) = start(&db);
    send_pairs(&tx, 1..=1);
    wait_idle(&h, 2).await;
    // The server refuses these fault rows; the policy rows before them in a batch must not stay.
    sqlx::query("ALTER TABLE faults ADD CONSTRAINT injected CHECK (message <= '0001')")
        .execute(&db.pool)
        .await
        .unwrap();
    let before = h.status();
    send_pairs(&tx, 2..=20);
    wait_errors(&h, before.errors + 2).await;
    // A lone policy change can have gone through in a batch of its own.
    assert_held_back(&h, before.written + 1);
    sqlx::query("ALTER TABLE faults DROP CONSTRAINT injected")
        .execute(&db.pool)
        .await
        .unwrap();
    wait_idle(&h, 40).await;
    assert_all_written(&h, 40);
    assert_eq!(
        column(&db, "SELECT message FROM faults ORDER BY id").await,
        want(1..=20)
    );
    assert_eq!(
        column(&db, "SELECT reason FROM policy_changes ORDER BY id").await,
        want(1..=20)
    );
    drop(tx);
    h.join().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_delays_records_and_counts_them_only_once_they_land() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let (tx, h, _spill) = start(&db);
    send_pairs(&tx, 1..=5);
    wait_idle(&h, 10).await;
    let mut locker = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLES faults WRITE")
        .execute(&mut *locker)
        .await
        .unwrap();
    send_pairs(&tx, 6..=20);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = h.status();
    assert!(during.written <= 11, "{during:?}");
    assert!(during.queued >= 29, "{during:?}");
    sqlx::query("UNLOCK TABLES")
        .execute(&mut *locker)
        .await
        .unwrap();
    locker.commit().await.unwrap();
    wait_idle(&h, 40).await;
    assert_all_written(&h, 40);
    assert_eq!(
        column(&db, "SELECT message FROM faults ORDER BY id").await,
        want(1..=20)
    );
    drop(tx);
    h.join().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_by_the_server_lose_nothing() {
    let Some(db) = common::test_db().await else {
        return;
    };
    let (tx, h, _spill) = start(&db);
    let mut n = 0;
    for _ in 0..5 {
        send_pairs(&tx, n + 1..=n + 10);
        n += 10;
        wait_idle(&h, 2 * n as u64).await;
        // The server (an administrator, a restart, wait_timeout) drops the sink's connections.
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
        )
        .bind(&db.name)
        .fetch_all(&db.admin)
        .await
        .unwrap();
        for id in ids {
            let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
                .execute(&db.admin)
                .await;
        }
    }
    send_pairs(&tx, n + 1..=n + 10);
    n += 10;
    wait_idle(&h, 2 * n as u64).await;
    assert_all_written(&h, 2 * n as u64);
    assert_eq!(
        column(&db, "SELECT message FROM faults ORDER BY id").await,
        want(1..=n)
    );
    drop(tx);
    h.join().await;
    db.drop_db().await;
}
