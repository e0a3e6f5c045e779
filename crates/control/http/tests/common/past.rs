//! Charge sessions made for real, for the Sessions page: the engine charges cars on simulated
//! TWCs over the last days in paused time (as the replay tool runs it), with a PV bell on the
//! meter and the prices of the time-of-use tariff plugin; the sessions' events then go through
//! the SQLite logger, whose history the web UI serves as the daemon's does.

use chrono::{DateTime, Duration as ChronoDuration, Local, TimeZone, Timelike, Utc};
use std::sync::Arc;
use std::time::Duration;
use twc_core::async_trait;
use twc_core::engine::{self, Command, SourceSpec};
use twc_core::history::HistoryQuery;
use twc_core::logging::{Mute, SinkHandle, SinkOptions, spawn_sink};
use twc_core::model::{EnergyReading, Event, Settings};
use twc_core::plugin::{EmsSource, Forecast, ForecastSlot, Logger, PluginError, PollSettings};
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig};

/// The test site's time-of-use tariff, as `[tariff.tou]` in a configuration: cheap nights, a
/// midday price, the default otherwise; in the machine's time zone, like the browser.
pub const TOU: &str = r#"
currency = "EUR"
timezone = "local"
default_price_per_kwh = 0.32
feed_in_per_kwh = 0.08
horizon_hours = 48
[[windows]]
start = "22:00"
end = "06:00"
price_per_kwh = 0.21
[[windows]]
start = "11:00"
end = "15:00"
price_per_kwh = 0.27
"#;

/// The tariff plugin built from [`TOU`].
pub fn tariff() -> twc_tariff_tou::Tou {
    let cfg = twc_core::plugin::PluginConfig::from_toml("tariff.tou", TOU).expect("toml");
    twc_tariff_tou::build_tou(&cfg).expect("a valid tariff")
}

/// Peak PV, W, and the house's base load, W.
const PEAK_W: f64 = 6000.0;
const HOUSE_W: f64 = 450.0;

/// Clear-sky PV at `t`: a bell from 06:00 to 20:00 local time, peaking at 13:00.
pub fn pv_w(t: DateTime<Utc>) -> f64 {
    let l = t.with_timezone(&Local);
    let h = f64::from(l.hour()) + f64::from(l.minute()) / 60.0 + f64::from(l.second()) / 3600.0;
    let x = (h - 6.0) / 14.0;
    if (0.0..=1.0).contains(&x) {
        PEAK_W * (std::f64::consts::PI * x).sin().powf(1.3)
    } else {
        0.0
    }
}

/// A forecast of the same bell in hourly slots from the start of today for two days, as a
/// forecast plugin hands it to the engine.
pub fn forecast() -> Forecast {
    let today = Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|d| Local.from_local_datetime(&d).earliest())
        .expect("local midnight")
        .timestamp();
    let slots = (0..48)
        .map(|h| {
            let start = today + h * 3600;
            let mid = Utc.timestamp_opt(start + 1800, 0).single().expect("time");
            ForecastSlot {
                start_unix: start,
                end_unix: start + 3600,
                watts: pv_w(mid),
            }
        })
        .collect();
    Forecast {
        source: "forecast_solar".into(),
        slots,
    }
}

/// The meter: PV from the bell at the engine's wall time, the house's base load, and the cars'
/// actual draw (the site meter sees the chargers).
struct BellMeter {
    start: tokio::time::Instant,
    start_wall: DateTime<Utc>,
    sim: SimHandle,
}

#[async_trait]
impl EmsSource for BellMeter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let now = tokio::time::Instant::now();
        let wall = self.start_wall + ChronoDuration::from_std(now - self.start).expect("span");
        let pv = pv_w(wall);
        let cars: f64 = self.sim.draws().iter().map(|(_, a)| a.amps() * 230.0).sum();
        Ok(EnergyReading {
            generation_w: Some(pv),
            consumption_w: Some(HOUSE_W + cars),
            grid_w: Some(HOUSE_W + cars - pv),
            measured_at: now,
            ..EnergyReading::default()
        })
    }
}

/// One stretch of a past day: cars plugged in at `slaves` (indices of TWC 1111 and 2222) from
/// `start` for `hours`, under the non-scheduled action `action` (`green`, or `charge` at `amps`
/// for the whole site, shared among the cars; at most 16 A each).
pub struct Stretch {
    pub start: DateTime<Local>,
    pub hours: f64,
    pub slaves: &'static [usize],
    pub action: &'static str,
    pub amps: f64,
}

/// `days_ago` days before today at `hh:mm` local time.
pub fn local_at(days_ago: i64, hh: u32, mm: u32) -> DateTime<Local> {
    let d = Local::now().date_naive() - ChronoDuration::days(days_ago);
    Local
        .from_local_datetime(&d.and_hms_opt(hh, mm, 0).expect("time"))
        .earliest()
        .expect("a local time")
}

/// The TWCs of the test site and their cars' VINs.
pub const TWCS: [u16; 2] = [0x1111, 0x2222];
pub fn vin(i: usize) -> String {
    twc_sim::sample_vin(316 + i as u32)
}

/// Run the engine through each stretch in paused time and return the session events it emitted
/// (started, VIN read, ended), in order.
pub fn charge(stretches: &[Stretch]) -> Vec<Event> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let mut out = Vec::new();
    for s in stretches {
        out.extend(rt.block_on(stretch(s)));
    }
    out
}

async fn stretch(s: &Stretch) -> Vec<Event> {
    let fleet: Vec<SimSlave> = TWCS
        .iter()
        .enumerate()
        .map(|(i, id)| SimSlave {
            slave: SlaveConfig {
                volts: [230, 0, 0],
                ..SlaveConfig::eu().with_id(TwcId::from_u16(*id))
            },
            car: CarConfig::none().with_vin(Some(&vin(i))),
        })
        .collect();
    let (comms, sim) = twc_sim::duplex_pair(fleet);
    let start_wall = s.start.to_utc() - ChronoDuration::minutes(1);
    let mut ec = super::engine_config();
    ec.start_wall = Some(start_wall);
    let meter = SourceSpec {
        name: "meter".into(),
        source: Box::new(BellMeter {
            start: tokio::time::Instant::now(),
            start_wall,
            sim: sim.clone(),
        }),
        poll: PollSettings {
            interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
        },
    };
    let settings = Settings {
        non_scheduled_action: s.action.into(),
        non_scheduled_amps: s.amps,
        ..Settings::default()
    };
    let e = engine::spawn(ec, Box::new(comms), vec![meter], settings);
    let mut events = e.handle.subscribe();
    let prices = tariff().prices_at(start_wall.timestamp()).expect("prices");
    e.handle
        .command(Command::SetPrices(Some(prices)))
        .await
        .expect("prices taken");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = seen.clone();
    let collect = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(
                    ev @ (Event::SessionStarted { .. }
                    | Event::SessionEnded { .. }
                    | Event::VinRead { .. }),
                ) => into.lock().expect("lock").push(ev),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
    for &i in s.slaves {
        sim.plug_in(i, CarConfig::tesla().with_vin(Some(&vin(i))))
            .expect("plug in");
    }
    tokio::time::sleep(Duration::from_secs_f64(s.hours * 3600.0)).await;
    for &i in s.slaves {
        sim.unplug(i).expect("unplug");
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    e.handle
        .command(Command::Shutdown)
        .await
        .expect("shutdown taken");
    let _ = e.task.await;
    // The engine has ended: let the collector take what is still queued, then stop it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    collect.abort();
    std::mem::take(&mut *seen.lock().expect("lock"))
}

/// The SQLite logger holding `events`, and its history for the web UI. Keep the returned sink
/// handle (and sender) alive while the history is queried.
pub async fn stored(
    dir: &std::path::Path,
    events: Vec<Event>,
) -> (
    Arc<dyn HistoryQuery>,
    SinkHandle,
    tokio::sync::broadcast::Sender<Event>,
) {
    let logger = Box::new(twc_logging_sqlite::SqliteSink::new(
        twc_logging_sqlite::SqliteConfig {
            path: dir.join("twcmanager.sqlite"),
            green_energy_interval_secs: 0,
            resume_within_secs: 900,
            batch_size: 100,
            mute: Mute::default(),
        },
    ));
    let history = logger.history().expect("sqlite answers history");
    let (tx, rx) = tokio::sync::broadcast::channel(events.len() + 16);
    let h = spawn_sink(rx, "sqlite", logger, SinkOptions::default());
    let n = events.len() as u64;
    for e in events {
        tx.send(e).expect("the sink listens");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while h.status().written < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sqlite logger did not write the sessions: {:?}",
            h.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (history, h, tx)
}
