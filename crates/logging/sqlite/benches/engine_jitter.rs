//! The engine's heartbeat timing while a sink is stalled: one simulated TWC on an in-memory bus
//! (real time), heartbeats every 200 ms, the engine ticking and emitting a slave-status event every 5 ms.
//! Run 1 has no sink; run 2 has the SQLite sink on a database another connection holds locked,
//! so every event waits in the sink's queue and spill file. The engine must not notice.
//! Run: `cargo bench -p twc-logging-sqlite --bench engine_jitter` (or `cargo xtask bench`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use twc_core::async_trait;
use twc_core::engine::{self, Command, EngineConfig};
use twc_core::logging::{SinkOptions, spawn_engine_sink};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Settings};
use twc_core::plugin::{Comms, PluginError, Received};
use twc_core::protocol::Frame;
use twc_logging_sqlite::{SqliteConfig, SqliteSink};
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

/// Notes when each frame leaves the master.
struct Timed {
    inner: Box<dyn Comms>,
    sends: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait]
impl Comms for Timed {
    async fn send(&mut self, frame: &Frame) -> Result<(), PluginError> {
        self.sends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
        self.inner.send(frame).await
    }
    async fn recv(&mut self) -> Result<Received, PluginError> {
        self.inner.recv().await
    }
}

const HEARTBEAT: Duration = Duration::from_millis(200);

async fn run(stalled_sink: Option<&std::path::Path>) -> (Vec<f64>, String) {
    let (comms, _sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig::eu(),
        car: CarConfig::tesla(),
    }]);
    let sends = Arc::new(Mutex::new(Vec::new()));
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(32),
            heartbeat_interval: HEARTBEAT,
            kwh_interval: Duration::from_secs(3600),
            ..MasterConfig::default()
        },
        slave_status_interval: Duration::from_millis(5),
        tick: Duration::from_millis(5),
        ..EngineConfig::default()
    };
    let settings = Settings {
        non_scheduled_amps: 16.0,
        ..Settings::default()
    };
    let timed = Timed {
        inner: Box::new(comms),
        sends: sends.clone(),
    };
    let eng = engine::spawn(cfg, Box::new(timed), Vec::new(), settings);
    let mut note = String::from("no sink");
    let mut locker = None;
    let mut sink = None;
    if let Some(dir) = stalled_sink {
        let path = dir.join("stalled.sqlite");
        let s = SqliteSink::new(SqliteConfig {
            path: path.clone(),
            green_energy_interval_secs: 0,
            resume_within_secs: 900,
            batch_size: 500,
            mute: Default::default(),
        });
        // Create the schema, then lock the database.
        twc_core::plugin::Logger::record_batch(&s, &[])
            .await
            .expect("schema");
        let o = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut l = sqlx::ConnectOptions::connect(&o).await.expect("connect");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut l)
            .await
            .expect("lock");
        locker = Some(l);
        let opts = SinkOptions {
            queue_capacity: 1000,
            spill_dir: Some(dir.join("spill")),
            retry_min_ms: 50,
            retry_max_ms: 200,
            ..SinkOptions::default()
        };
        sink = Some(spawn_engine_sink(&eng.handle, "sqlite", Box::new(s), opts));
    }
    // Link first, then measure 15 s of heartbeats.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = sends.lock().unwrap_or_else(|p| p.into_inner()).len();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let v = sends.lock().unwrap_or_else(|p| p.into_inner())[start..].to_vec();
    if let Some(s) = &sink {
        let st = s.status();
        note = format!(
            "SQLite sink stalled: {} events waiting ({} spilled), {} write errors, {} dropped",
            st.queued, st.spilled, st.errors, st.dropped
        );
    }
    let _ = eng.handle.command(Command::Shutdown).await;
    drop(locker);
    let intervals = v
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    (intervals, note)
}

fn report(label: &str, mut ms: Vec<f64>, note: &str) {
    if ms.is_empty() {
        println!("{label}: no heartbeats measured ({note})");
        return;
    }
    ms.sort_by(f64::total_cmp);
    let target = HEARTBEAT.as_secs_f64() * 1e3;
    let p = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let worst = ms.iter().map(|m| (m - target).abs()).fold(0.0, f64::max);
    println!(
        "{label}: {} heartbeat intervals, median {:.1} ms, p99 {:.1} ms, max {:.1} ms, worst deviation from {target:.0} ms: {worst:.1} ms ({note})",
        ms.len(),
        p(0.5),
        p(0.99),
        ms[ms.len() - 1],
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, n) = run(None).await;
        report("engine heartbeats, baseline", a, &n);
        let (b, n) = run(Some(dir.path())).await;
        report("engine heartbeats, sink stalled", b, &n);
    });
}
