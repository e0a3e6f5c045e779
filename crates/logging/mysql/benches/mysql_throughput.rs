//! Records per second through the MySQL sink (queue + multi-row INSERTs in one transaction per
//! batch) against the MariaDB at `TWC_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`),
//! in a scratch database that is dropped afterwards.
//! Run: `cargo bench -p twc-logging-mysql` (or `cargo xtask bench`).

use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use twc_core::logging::{SinkOptions, spawn_sink};
use twc_core::plugin::Secret;
use twc_logging_mysql::{MysqlConfig, MysqlSink};

use twc_testkit::events::bench_event as event;

fn main() {
    let url = std::env::var("TWC_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let rest = url.trim_start_matches("mysql://");
    let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let hostport = hostpart.split('/').next().unwrap_or("127.0.0.1:3306");
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "3306"));
    let port: u16 = port.parse().unwrap_or(3306);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut admin_opts = MySqlConnectOptions::new().host(host).port(port).username(user);
        if !password.is_empty() {
            admin_opts = admin_opts.password(password);
        }
        let admin = match MySqlPool::connect_with(admin_opts).await {
            Ok(p) => p,
            Err(e) => {
                println!("mysql bench skipped: no server at {host}:{port} ({e})");
                return;
            }
        };
        let n: i64 = std::env::var("TWC_BENCH_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50_000);
        for batch in [1usize, 100, 500] {
            let name = format!("twc_bench_{}_{batch}", std::process::id());
            sqlx::query(&format!("CREATE DATABASE `{name}`"))
                .execute(&admin)
                .await
                .expect("create database");
            let sink = MysqlSink::new(MysqlConfig {
                host: host.into(),
                port,
                database: name.clone(),
                username: user.into(),
                password: Secret::new(password),
                connect_timeout_secs: 5,
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
            let h = spawn_sink(rx, "mysql", Box::new(sink), opts);
            let _ = tx.send(event(0));
            while h.status().written < 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let start = Instant::now();
            for i in 1..=n {
                while tx.len() > 3000 {
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(event(i));
            }
            while h.status().written < n as u64 + 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "mysql  batch_size={batch:>3}: {n} records in {secs:.2} s = {:.0} records/s (dropped {})",
                n as f64 / secs,
                h.status().dropped
            );
            drop(tx);
            h.join().await;
            let _ = sqlx::query(&format!("DROP DATABASE `{name}`"))
                .execute(&admin)
                .await;
        }
    });
}
