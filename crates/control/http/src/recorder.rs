//! In-memory history the charts, the vehicles page and `/metrics` need: samples of PV, load,
//! grid and charger power, 5-minute charger buckets (TWCManager's `getHistory`), energy per day,
//! vehicles seen with their sessions, and fault counters. It starts empty at every start; a
//! logging plugin with a database keeps the long history.

use chrono::{DateTime, Local, TimeZone, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use twc_core::engine::EngineHandle;
use twc_core::model::{Event, Status};

/// One chart sample.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Sample {
    /// Unix time, seconds.
    pub(crate) t: i64,
    /// PV generation, W (absent when unknown or stale).
    pub(crate) generation_w: Option<f64>,
    /// House consumption, W.
    pub(crate) consumption_w: Option<f64>,
    /// Grid power, W (positive = import).
    pub(crate) grid_w: Option<f64>,
    /// What the chargers draw, W.
    pub(crate) charger_w: f64,
    /// Site budget, A.
    pub(crate) budget_amps: f64,
}

/// Energy of one local day, from this process's samples.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct DayTotals {
    /// Local date, `YYYY-MM-DD`.
    pub(crate) date: String,
    /// Energy the chargers delivered, kWh.
    pub(crate) charged_kwh: f64,
    /// PV energy, kWh (only while a fresh generation reading existed).
    pub(crate) generation_kwh: f64,
    /// Energy imported from the grid, kWh.
    pub(crate) import_kwh: f64,
    /// Energy exported to the grid, kWh.
    pub(crate) export_kwh: f64,
    /// Seconds covered by samples.
    pub(crate) covered_secs: f64,
}

/// A car seen on a slave.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct VehicleSeen {
    /// VIN.
    pub(crate) vin: String,
    /// Finished sessions since start.
    pub(crate) sessions: u64,
    /// Energy of those sessions, kWh.
    pub(crate) energy_kwh: f64,
    /// When it was last seen (RFC 3339).
    pub(crate) last_seen: Option<String>,
    /// The slave it was last seen on.
    pub(crate) last_slave: Option<String>,
}

/// A recent fault.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct FaultSeen {
    /// When (RFC 3339).
    pub(crate) at: String,
    /// Which part.
    pub(crate) component: String,
    /// What happened.
    pub(crate) message: String,
}

#[derive(Default)]
struct Inner {
    samples: VecDeque<Sample>,
    max_samples: usize,
    buckets: BTreeMap<i64, (f64, u32)>,
    days: BTreeMap<String, DayTotals>,
    vehicles: BTreeMap<String, VehicleSeen>,
    faults_total: BTreeMap<String, u64>,
    recent_faults: VecDeque<FaultSeen>,
    recent_events: VecDeque<serde_json::Value>,
    events_missed: u64,
    last: Option<(DateTime<Utc>, Sample)>,
}

/// Shared recorder; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

/// Events kept for the Events page.
pub(crate) const RECENT_EVENTS: usize = 200;

/// Bucket width of TWCManager's history, seconds.
pub(crate) const BUCKET_SECS: i64 = 300;
/// Buckets in TWCManager's history (48 h).
pub(crate) const BUCKETS: i64 = 576;

impl Recorder {
    pub(crate) fn spawn(engine: &EngineHandle, cfg: &crate::HttpConfig) -> Recorder {
        let max_samples = (cfg.chart_hours * 3600 / cfg.chart_interval_secs).max(1) as usize;
        let rec = Recorder {
            inner: Arc::new(Mutex::new(Inner {
                max_samples,
                ..Inner::default()
            })),
        };
        let r = rec.clone();
        let engine = engine.clone();
        let every = Duration::from_secs(cfg.chart_interval_secs);
        // Subscribe before the task runs, so the first slaves' links are not missed.
        let mut events = engine.subscribe();
        twc_core::plugin::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => r.sample(&engine.status(), Utc::now()),
                    e = events.recv() => match e {
                        Ok(e) => r.on_event(&e),
                        Err(RecvError::Lagged(n)) => r.lock().events_missed += n,
                        Err(RecvError::Closed) => return,
                    },
                }
            }
        });
        rec
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sample(&self, s: &Status, now: DateTime<Utc>) {
        let r = s.reading.as_ref();
        let sample = Sample {
            t: now.timestamp(),
            generation_w: r.and_then(|r| r.generation_w),
            consumption_w: r.and_then(|r| r.consumption_w),
            grid_w: s.site.grid_w,
            charger_w: s.site.charger_w,
            budget_amps: s.policy.budget.amps(),
        };
        let mut g = self.lock();
        // Integrate energy over the time since the previous sample (left Riemann sum, at most
        // 5 minutes so a pause does not invent energy).
        if let Some((prev_t, prev)) = g.last.take() {
            let dt = (now - prev_t).num_milliseconds() as f64 / 1000.0;
            if dt > 0.0 && dt <= 300.0 {
                let date = now.with_timezone(&Local).format("%Y-%m-%d").to_string();
                let d = g.days.entry(date.clone()).or_insert_with(|| DayTotals {
                    date,
                    ..DayTotals::default()
                });
                d.charged_kwh += prev.charger_w * dt / 3.6e6;
                d.generation_kwh += prev.generation_w.unwrap_or(0.0) * dt / 3.6e6;
                if let Some(gw) = prev.grid_w {
                    if gw >= 0.0 {
                        d.import_kwh += gw * dt / 3.6e6;
                    } else {
                        d.export_kwh += -gw * dt / 3.6e6;
                    }
                }
                d.covered_secs += dt;
                while g.days.len() > 60 {
                    g.days.pop_first();
                }
            }
        }
        g.last = Some((now, sample.clone()));
        let b = sample.t.div_euclid(BUCKET_SECS) * BUCKET_SECS;
        let e = g.buckets.entry(b).or_insert((0.0, 0));
        e.0 += sample.charger_w;
        e.1 += 1;
        while g.buckets.len() as i64 > BUCKETS + 1 {
            g.buckets.pop_first();
        }
        g.samples.push_back(sample);
        while g.samples.len() > g.max_samples {
            g.samples.pop_front();
        }
    }

    fn on_event(&self, e: &Event) {
        let mut g = self.lock();
        // The Events page's list: what the live stream sends as `event`, kept so the page does
        // not start empty (readings and per-slave status updates are too frequent to list).
        if !matches!(
            e,
            Event::Reading { .. } | Event::SlaveStatus { .. } | Event::LoadPointStatus { .. }
        ) && let Ok(v) = serde_json::to_value(e)
        {
            g.recent_events.push_back(v);
            while g.recent_events.len() > RECENT_EVENTS {
                g.recent_events.pop_front();
            }
        }
        match e {
            Event::VinRead { at, slave, vin } if !vin.is_empty() => {
                let v = g
                    .vehicles
                    .entry(vin.clone())
                    .or_insert_with(|| VehicleSeen {
                        vin: vin.clone(),
                        ..Default::default()
                    });
                v.last_seen = Some(at.to_rfc3339());
                v.last_slave = Some(slave.to_string());
            }
            Event::SessionEnded { at, session } => {
                if let Some(vin) = &session.vin {
                    let v = g
                        .vehicles
                        .entry(vin.clone())
                        .or_insert_with(|| VehicleSeen {
                            vin: vin.clone(),
                            ..Default::default()
                        });
                    v.sessions += 1;
                    v.energy_kwh += session.energy_kwh;
                    v.last_seen = Some(at.to_rfc3339());
                    v.last_slave = Some(session.slave.to_string());
                }
            }
            Event::Fault {
                at,
                component,
                message,
            } => {
                *g.faults_total.entry(component.clone()).or_default() += 1;
                g.recent_faults.push_back(FaultSeen {
                    at: at.to_rfc3339(),
                    component: component.clone(),
                    message: message.clone(),
                });
                while g.recent_faults.len() > 50 {
                    g.recent_faults.pop_front();
                }
            }
            _ => {}
        }
    }

    pub(crate) fn samples(&self, since: Option<i64>) -> Vec<Sample> {
        let g = self.lock();
        g.samples
            .iter()
            .filter(|s| since.is_none_or(|t| s.t >= t))
            .cloned()
            .collect()
    }

    /// The 576 five-minute buckets ending with the current one: (bucket start, mean charger W
    /// or `None` when nothing was sampled).
    pub(crate) fn buckets(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, Option<f64>)> {
        let g = self.lock();
        let cur = now.timestamp().div_euclid(BUCKET_SECS) * BUCKET_SECS;
        (0..BUCKETS)
            .rev()
            .map(|i| {
                let t = cur - i * BUCKET_SECS;
                let v = g
                    .buckets
                    .get(&t)
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| s / f64::from(*n));
                (Utc.timestamp_opt(t, 0).single().unwrap_or(now), v)
            })
            .collect()
    }

    pub(crate) fn days(&self) -> Vec<DayTotals> {
        self.lock().days.values().cloned().collect()
    }

    /// The last [`RECENT_EVENTS`] engine events, oldest first, as the live stream sends them.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        self.lock().recent_events.iter().cloned().collect()
    }

    pub(crate) fn vehicles(&self) -> Vec<VehicleSeen> {
        self.lock().vehicles.values().cloned().collect()
    }

    pub(crate) fn faults(&self) -> (BTreeMap<String, u64>, Vec<FaultSeen>, u64) {
        let g = self.lock();
        (
            g.faults_total.clone(),
            g.recent_faults.iter().cloned().collect(),
            g.events_missed,
        )
    }
}
