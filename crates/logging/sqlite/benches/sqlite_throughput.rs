//! Records per second through the SQLite sink (queue + batched transactions), and the jitter of a
//! 100 ms ticker on the same runtime while the sink is stalled (database locked) and spilling.
//! Run: `cargo bench -p twc-logging-sqlite` (or `cargo xtask bench`).

use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use twc_core::logging::{SinkOptions, spawn_sink};
use twc_logging_sqlite::{SqliteConfig, SqliteSink};

use twc_testkit::events::bench_event as event;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let n: i64 = std::env::var("TWC_BENCH_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50_000);
        let dir = tempfile::tempdir().expect("tempdir");
        for batch in [1usize, 100, 500] {
            let path = dir.path().join(format!("bench-{batch}.sqlite"));
            let sink = SqliteSink::new(SqliteConfig {
                path: path.clone(),
                green_energy_interval_secs: 0,
                resume_within_secs: 900,
                batch_size: batch,
                mute: Default::default(),
            });
            let n = if batch == 1 { n / 10 } else { n };
            let (tx, rx) = broadcast::channel(4096);
            let opts = SinkOptions {
                queue_capacity: n as usize + 1,
                ..SinkOptions::default()
            };
            let h = spawn_sink(rx, "sqlite", Box::new(sink), opts);
            let start = Instant::now();
            for i in 0..n {
                while tx.len() > 3000 {
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(event(i));
            }
            while h.status().written < n as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let secs = start.elapsed().as_secs_f64();
            let st = h.status();
            println!(
                "sqlite batch_size={batch:>3}: {n} records in {secs:.2} s = {:.0} records/s (dropped {})",
                n as f64 / secs,
                st.dropped
            );
        }

        // Stalled sink: the database is locked; 20 000 events arrive; a 100 ms ticker measures
        // how late it runs (the engine's heartbeat loop lives on the same runtime).
        let path = dir.path().join("stalled.sqlite");
        let sink = SqliteSink::new(SqliteConfig {
            path: path.clone(),
            green_energy_interval_secs: 0,
            resume_within_secs: 900,
            batch_size: 500,
            mute: Default::default(),
        });
        let (tx, rx) = broadcast::channel(4096);
        let opts = SinkOptions {
            queue_capacity: 1000,
            spill_dir: Some(dir.path().join("spill")),
            retry_min_ms: 100,
            retry_max_ms: 1000,
            ..SinkOptions::default()
        };
        let h = spawn_sink(rx, "sqlite", Box::new(sink), opts);
        let _ = tx.send(event(0));
        while h.status().written < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let o = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut locker = sqlx::ConnectOptions::connect(&o).await.expect("connect");
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut locker).await.expect("lock");
        let ticker = tokio::spawn(async {
            let mut worst = Duration::ZERO;
            let mut sum = Duration::ZERO;
            let mut next = tokio::time::Instant::now();
            for _ in 0..50 {
                next += Duration::from_millis(100);
                tokio::time::sleep_until(next).await;
                let late = tokio::time::Instant::now().saturating_duration_since(next);
                worst = worst.max(late);
                sum += late;
            }
            (worst, sum / 50)
        });
        let mut send_worst = Duration::ZERO;
        for i in 1..=20_000 {
            let s = Instant::now();
            let _ = tx.send(event(i));
            send_worst = send_worst.max(s.elapsed());
            if i % 400 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let (worst, mean) = ticker.await.expect("ticker");
        let st = h.status();
        println!(
            "stalled sink: 20000 events queued ({} spilled, {} dropped); 100 ms ticker late by mean {:.2} ms, worst {:.2} ms; slowest event send {:.1} µs",
            st.spilled,
            st.dropped,
            mean.as_secs_f64() * 1e3,
            worst.as_secs_f64() * 1e3,
            send_worst.as_secs_f64() * 1e6
        );
        sqlx::query("COMMIT").execute(&mut locker).await.expect("unlock");
        let start = Instant::now();
        while h.status().written < 20_001 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "stalled sink: caught up 20000 records in {:.2} s after the lock was released, dropped {}",
            start.elapsed().as_secs_f64(),
            h.status().dropped
        );
    });
}
