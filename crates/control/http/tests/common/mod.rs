//! Test harness: the real engine with twc-sim slaves on an in-process bus, a meter whose
//! numbers move, and the HTTP surface on an ephemeral loopback port. Real time.
#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod past;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use twc_control_http::HttpConfig;
use twc_core::engine::{self, EngineConfig, EngineHandle, SourceSpec};
use twc_core::model::{CentiAmps, EnergyReading, Settings};
use twc_core::plugin::{EmsSource, PluginError, PollSettings};
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig};

/// A meter whose generation moves on every read (a sawtooth), so live numbers change. Like a
/// real site meter it sees the chargers: consumption = house + chargers, grid = consumption −
/// generation (the engine's default, `consumption_includes_chargers = true`).
pub struct MovingMeter {
    n: Arc<AtomicU64>,
    /// What the chargers draw, W (f64 bits), fed from the engine's status.
    chargers_w: Arc<AtomicU64>,
}

#[twc_core::async_trait]
impl EmsSource for MovingMeter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        let generation = 3000.0 + (n % 10) as f64 * 137.0;
        let consumption =
            800.0 + (n % 7) as f64 * 41.0 + f64::from_bits(self.chargers_w.load(Ordering::Relaxed));
        Ok(EnergyReading {
            generation_w: Some(generation),
            consumption_w: Some(consumption),
            grid_w: Some(consumption - generation),
            ..EnergyReading::now()
        })
    }
}

pub struct Demo {
    pub engine: EngineHandle,
    pub task: tokio::task::JoinHandle<()>,
    pub sim: SimHandle,
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub server: tokio::task::JoinHandle<()>,
}

pub fn engine_config() -> EngineConfig {
    let mut c = EngineConfig::default();
    c.master.wiring_max_all = CentiAmps::from_amps(32);
    c.master.wiring_max_per_twc = CentiAmps::from_amps(16);
    c
}

pub fn http_config() -> HttpConfig {
    HttpConfig {
        listen: "127.0.0.1".parse().unwrap(),
        port: 0,
        chart_interval_secs: 1,
        ..HttpConfig::default()
    }
}

/// Start the engine with `slaves` simulated TWCs (the first with a Tesla plugged in), a moving
/// meter, and the HTTP surface.
pub async fn demo_with(slaves: usize, settings: Settings, cfg: HttpConfig) -> Demo {
    demo_full(slaves, settings, cfg, None).await
}

/// A demo whose engine loads and saves its settings in `path` (the engine's own settings
/// store, as the daemon runs it).
pub async fn demo_persistent(slaves: usize, path: &std::path::Path) -> Demo {
    let store = twc_core::settings_store::SettingsStore::new(path);
    let settings = store.load().expect("settings file").unwrap_or_default();
    let mut ec = engine_config();
    ec.settings_store = Some(store);
    start(slaves, settings, http_config(), None, ec).await
}

/// As [`demo_with`], with a history source handed to the server.
pub async fn demo_full(
    slaves: usize,
    settings: Settings,
    cfg: HttpConfig,
    history: Option<Arc<dyn twc_core::history::HistoryQuery>>,
) -> Demo {
    start(slaves, settings, cfg, history, engine_config()).await
}

async fn start(
    slaves: usize,
    settings: Settings,
    cfg: HttpConfig,
    history: Option<Arc<dyn twc_core::history::HistoryQuery>>,
    ec: EngineConfig,
) -> Demo {
    let chargers_w = Arc::new(AtomicU64::new(0f64.to_bits()));
    let meter: Box<dyn EmsSource> = Box::new(MovingMeter {
        n: Arc::new(AtomicU64::new(0)),
        chargers_w: chargers_w.clone(),
    });

    start_with_meter(
        slaves,
        settings,
        cfg,
        history,
        ec,
        meter,
        Duration::from_secs(10),
        Some(chargers_w),
    )
    .await
}

/// A demo with the given engine config and meter (polled every 0.5 s, stale after 10 s).
#[allow(dead_code)]
pub async fn demo_with_meter(
    slaves: usize,
    settings: Settings,
    ec: EngineConfig,
    meter: Box<dyn EmsSource>,
) -> Demo {
    start_with_meter(
        slaves,
        settings,
        http_config(),
        None,
        ec,
        meter,
        Duration::from_secs(10),
        None,
    )
    .await
}

/// A meter that answers once and then fails every read, so its reading goes stale.
pub struct FailingMeter {
    pub n: AtomicU64,
}

#[twc_core::async_trait]
impl EmsSource for FailingMeter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        if self.n.fetch_add(1, Ordering::Relaxed) == 0 {
            return Ok(EnergyReading {
                generation_w: Some(2000.0),
                consumption_w: Some(500.0),
                ..EnergyReading::now()
            });
        }
        Err(PluginError::new(
            twc_core::plugin::ErrorKind::Transient,
            "meter",
            "GET /status: HTTP 503",
        ))
    }
}

/// A demo whose meter goes stale after one reading.
pub async fn demo_failing_meter(slaves: usize) -> Demo {
    let meter: Box<dyn EmsSource> = Box::new(FailingMeter {
        n: AtomicU64::new(0),
    });
    start_with_meter(
        slaves,
        Settings::default(),
        http_config(),
        None,
        engine_config(),
        meter,
        Duration::from_secs(1),
        None,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn start_with_meter(
    slaves: usize,
    settings: Settings,
    cfg: HttpConfig,
    history: Option<Arc<dyn twc_core::history::HistoryQuery>>,
    ec: EngineConfig,
    meter: Box<dyn EmsSource>,
    stale_after: Duration,
    chargers_feed: Option<Arc<AtomicU64>>,
) -> Demo {
    let fleet: Vec<SimSlave> = (0..slaves)
        .map(|i| SimSlave {
            slave: SlaveConfig::eu()
                .with_id(twc_core::protocol::TwcId::from_u16(0x1111 * (i as u16 + 1))),
            car: if i == 0 {
                CarConfig::tesla()
            } else {
                CarConfig::none()
            },
        })
        .collect();
    let (comms, sim) = twc_sim::duplex_pair(fleet);
    let meter = SourceSpec {
        name: "meter".into(),
        source: meter,
        poll: PollSettings {
            interval: Duration::from_millis(500),
            stale_after,
        },
    };
    let e = engine::spawn(ec, Box::new(comms), vec![meter], settings);
    if let Some(feed) = chargers_feed {
        let mut rx = e.handle.watch_status();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let w: f64 = rx
                    .borrow_and_update()
                    .slaves
                    .iter()
                    .map(|x| x.actual.amps() * x.volts.iter().map(|&v| f64::from(v)).sum::<f64>())
                    .sum();
                feed.store(w.to_bits(), Ordering::Relaxed);
            }
        });
    }
    let listener = twc_control_http::bind(&cfg).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let handle = e.handle.clone();
    let server = tokio::spawn(async move {
        let _ = twc_control_http::serve_on_with_history(listener, cfg, handle, history).await;
    });
    Demo {
        engine: e.handle,
        task: e.task,
        sim,
        addr,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        server,
    }
}

pub async fn demo(slaves: usize) -> Demo {
    demo_with(slaves, Settings::default(), http_config()).await
}

impl Demo {
    pub fn url(&self, p: &str) -> String {
        format!("{}{}", self.base, p)
    }

    /// Wait until `n` slaves have linked and sent a heartbeat.
    pub async fn wait_slaves(&self, n: usize) {
        self.wait_until(Duration::from_secs(40), |s| {
            s.slaves.len() >= n && s.slaves.iter().all(|x| x.last_heartbeat_secs < 5.0)
        })
        .await
        .unwrap_or_else(|| panic!("{n} slaves did not link"));
    }

    /// Wait until `f` holds for the engine's status, up to `limit`.
    pub async fn wait_until(
        &self,
        limit: Duration,
        f: impl Fn(&twc_core::model::Status) -> bool,
    ) -> Option<twc_core::model::Status> {
        let mut rx = self.engine.watch_status();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = rx.borrow_and_update().clone();
            if f(&s) {
                return Some(s);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    pub async fn get(&self, p: &str) -> reqwest::Response {
        self.http.get(self.url(p)).send().await.expect("request")
    }

    pub async fn post(&self, p: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(p))
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn json(&self, p: &str) -> serde_json::Value {
        let r = self.get(p).await;
        assert_eq!(r.status(), 200, "GET {p}");
        r.json().await.expect("json")
    }

    /// The engine's settings right now.
    pub async fn settings(&self) -> Settings {
        self.engine.settings()
    }
}

/// A stand-in for a database logger's stored sessions (the sqlite/mysql sinks answer the same
/// trait): the sessions that started in the asked range, as a database returns them.
pub struct StoredSessions(pub Vec<twc_core::history::SessionRecord>);

#[twc_core::async_trait]
impl twc_core::history::HistoryQuery for StoredSessions {
    async fn power(
        &self,
        _from: chrono::DateTime<chrono::Utc>,
        _to: chrono::DateTime<chrono::Utc>,
        _max: usize,
    ) -> Result<Vec<twc_core::history::PowerPoint>, PluginError> {
        Ok(Vec::new())
    }

    async fn sessions(
        &self,
        vin: Option<&str>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<twc_core::history::SessionRecord>, PluginError> {
        Ok(self
            .0
            .iter()
            .filter(|s| s.started_at >= from && s.started_at < to)
            .filter(|s| vin.is_none() || s.vin.as_deref() == vin)
            .cloned()
            .collect())
    }
}

/// `n` sessions, one a day ending `days_ago` … before now, alternating two cars and two TWCs;
/// every third without meter data (solar share unknown), every fourth without a price.
pub fn sample_sessions(n: usize) -> Vec<twc_core::history::SessionRecord> {
    use twc_core::model::SessionMetrics;
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let start = now - chrono::Duration::hours(24 * i as i64 + 3);
            let kwh = 10.0 + i as f64;
            let metrics = SessionMetrics {
                car_name: (i % 2 == 0).then(|| "Model 3 with a rather long name for phones".into()),
                soc_start_pct: Some(30.0),
                soc_end_pct: Some(80.0),
                integrated_kwh: kwh,
                solar_kwh: kwh / 2.0,
                unmetered_kwh: if i % 3 == 2 { 1.0 } else { 0.0 },
                grid_cost: kwh / 2.0 * 0.3,
                unpriced_kwh: if i % 4 == 3 { kwh / 2.0 } else { 0.0 },
                solar_value: Some(kwh / 2.0 * 0.08),
                currency: Some("EUR".into()),
            };
            twc_core::history::SessionRecord {
                slave: twc_core::protocol::TwcId::from_u16(if i % 2 == 0 {
                    0x1111
                } else {
                    0x2222
                }),
                vin: Some(if i % 2 == 0 {
                    twc_sim::SAMPLE_VIN.into()
                } else {
                    "5YJ3E1EA7KF000002".into()
                }),
                started_at: start,
                ended_at: Some(start + chrono::Duration::hours(2)),
                start_kwh: Some(1000),
                end_kwh: Some(1000 + kwh as u32),
                car_name: metrics.car_name.clone(),
                soc_start_pct: metrics.soc_start_pct,
                soc_end_pct: metrics.soc_end_pct,
                metrics: Some(metrics),
            }
        })
        .collect()
}

/// Report the testkit's Gen3 (`gen3.garage`, charging 31.9 A on a split-phase circuit, the
/// details its plugin makes of the recorded fixtures) to the engine, as the Gen3 plugin does.
pub async fn report_gen3(engine: &EngineHandle) {
    let l = twc_testkit::load_points::gen3_charging_na();
    engine
        .command(twc_core::engine::Command::ReportLoadPoint(Box::new(
            twc_core::model::LoadPointReport {
                via_car: None,
                name: l.name,
                kind: l.kind,
                max: l.max,
                min: l.min,
                controllable: true,
                stale_after_secs: 600.0,
                measured: Some(twc_core::model::LoadPointMeasurement {
                    draw: l.draw.unwrap(),
                    state: l.state,
                    details: l.details,
                }),
                problem: None,
            },
        )))
        .await
        .expect("the engine takes the report");
}
