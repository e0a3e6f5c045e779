//! Driving the real engine with a trace: twc-sim slaves on an in-memory bus, a simulated meter
//! that reads the trace and the cars' actual draw, all on tokio's paused clock.

use crate::metrics::{Accumulator, MetricParams, Metrics, Row};
use crate::trace::Trace;
use chrono::{DateTime, FixedOffset, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_core::async_trait;
use twc_core::engine::{EngineConfig, SourceSpec};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, EnergyReading, Event, Settings};
use twc_core::plugin::{EmsSource, PluginError, PollSettings};
use twc_core::policy::PolicyConfig;
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig, duplex_pair};

/// How to replay.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Slaves (1..=3), each with a car plugged in all the time.
    pub slaves: usize,
    /// Phases the chargers use (1 or 3).
    pub phases: u8,
    /// Volts per phase.
    pub voltage: f64,
    /// `[wiring] min_amps_per_twc`.
    pub min_amps: f64,
    /// `[wiring] max_amps_per_twc`.
    pub max_amps_per_twc: f64,
    /// `[wiring] max_amps_all_twcs`.
    pub max_amps_all: f64,
    /// The cars' onboard charger limit, A.
    pub car_max_amps: f64,
    /// Meter poll interval.
    pub meter_interval: Duration,
    /// Meter staleness bound.
    pub stale_after: Duration,
    /// Sampling period of the record and metrics.
    pub sample: Duration,
    /// Non-scheduled action (`green`, `charge`, `stop`).
    pub action: String,
    /// Non-scheduled amps (for `charge`).
    pub non_scheduled_amps: f64,
    /// Green flex amps.
    pub flex_amps: f64,
    /// Grid-import limit, W (sets `[grid] max_import_w`).
    pub grid_limit_w: Option<f64>,
    /// `[policy]`, `[green]`, `[grid]` (the grid limit above is merged in).
    pub policy: PolicyConfig,
    /// Keep every row (for `--out` and the chart); metrics are computed either way.
    pub keep_rows: bool,
    /// `[wiring] offer_step_amps`.
    pub offer_step_amps: f64,
    /// A tariff given to the engine (as a tariff plugin would), so each session gets its cost.
    pub prices: Option<twc_core::plugin::Prices>,
    /// `[vehicles] low_current` with the cars' API played by [`crate::simcar::SimCars`]
    /// (cars that follow `set_charging_amps`): surplus below the TWC's minimum is charged
    /// through the car. `None`: no vehicle API.
    pub low_current: Option<twc_core::vehicles::VehiclesConfig>,
    /// The home location (the settings' `home`), for sunrise and sunset.
    pub home: Option<twc_core::model::HomeLocation>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            slaves: 1,
            phases: 1,
            voltage: 230.0,
            min_amps: 6.0,
            max_amps_per_twc: 32.0,
            max_amps_all: 32.0,
            car_max_amps: 32.0,
            meter_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
            sample: Duration::from_secs(1),
            action: "green".into(),
            non_scheduled_amps: 6.0,
            flex_amps: 0.0,
            grid_limit_w: None,
            policy: PolicyConfig::default(),
            keep_rows: true,
            offer_step_amps: 0.5,
            prices: None,
            low_current: None,
            home: None,
        }
    }
}

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// The metrics.
    pub metrics: Metrics,
    /// Every sample (empty unless `keep_rows`).
    pub rows: Vec<Row>,
    /// Wall-clock seconds the replay took.
    pub wall_secs: f64,
    /// The charge sessions as the engine reported them when they ended (open ones end when the
    /// replay stops): energy, solar share, cost.
    pub sessions: Vec<crate::sessions::EndedSession>,
    /// Commands sent to the cars' API (`set_charging_amps`, start, stop; with `low_current`
    /// only): each is a request the vehicle API bills or rate-limits.
    pub car_commands: usize,
}

/// The replay's meter: the trace's PV and house load at the paused clock's time since `start`
/// (plus `base_secs` into the trace), with the cars' actual draw in the grid power.
pub(crate) struct Meter {
    pub(crate) trace: Arc<Trace>,
    pub(crate) start: tokio::time::Instant,
    pub(crate) base_secs: f64,
    pub(crate) sim: SimHandle,
    pub(crate) volts_sum: f64,
    /// Where the last reading was found in the trace ([`Trace::at_offset_near`]).
    pub(crate) hint: std::sync::atomic::AtomicUsize,
}

fn charger_w(sim: &SimHandle, volts_sum: f64) -> (f64, Vec<f64>, Vec<f64>) {
    let draws = sim.draws();
    let w = draws
        .iter()
        .map(|(_, actual)| actual.amps() * volts_sum)
        .sum::<f64>();
    (
        w,
        draws.iter().map(|(limit, _)| limit.amps()).collect(),
        draws.iter().map(|(_, actual)| actual.amps()).collect(),
    )
}

#[async_trait]
impl EmsSource for Meter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let now = tokio::time::Instant::now();
        let t = self.base_secs + (now - self.start).as_secs_f64();
        let mut hint = self.hint.load(std::sync::atomic::Ordering::Relaxed);
        let step = self.trace.at_offset_near(t, &mut hint);
        self.hint.store(hint, std::sync::atomic::Ordering::Relaxed);
        let (cw, _, _) = charger_w(&self.sim, self.volts_sum);
        let battery = step.battery_w.unwrap_or(0.0);
        Ok(EnergyReading {
            generation_w: Some(step.pv_w),
            consumption_w: Some(step.load_w),
            grid_w: Some(step.load_w + cw - step.pv_w - battery),
            battery_w: step.battery_w,
            battery_soc_pct: step.battery_soc_pct,
            measured_at: now,
            ..EnergyReading::default()
        })
    }
}

/// Replay `trace` with `opts`. Builds its own single-threaded runtime with paused time.
pub fn run(trace: &Trace, opts: &SimOptions) -> Result<Report, String> {
    if !(1..=3).contains(&opts.slaves) {
        return Err(format!("slaves = {}: expected 1..=3", opts.slaves));
    }
    if opts.phases != 1 && opts.phases != 3 {
        return Err(format!("phases = {}: expected 1 or 3", opts.phases));
    }
    // Timers only: everything is in memory (the bus is a duplex stream), and without the I/O
    // driver parking between timer steps is no epoll_wait nor eventfd write (a tenth of a
    // month-long replay's CPU went there).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let wall = std::time::Instant::now();
    let mut report = rt.block_on(replay(trace, opts))?;
    report.wall_secs = wall.elapsed().as_secs_f64();
    Ok(report)
}

async fn replay(trace: &Trace, opts: &SimOptions) -> Result<Report, String> {
    let volts_sum = opts.voltage * opts.phases as f64;
    let volt = opts.voltage.round() as u16;
    let slaves: Vec<SimSlave> = (0..opts.slaves)
        .map(|i| SimSlave {
            slave: SlaveConfig {
                volts: if opts.phases == 3 {
                    [volt; 3]
                } else {
                    [volt, 0, 0]
                },
                sign: 0x40 + i as u8,
                ..SlaveConfig::eu().with_id(TwcId([0x10 + i as u8, 0x01]))
            },
            car: CarConfig {
                max_amps: CentiAmps::from_f64(opts.car_max_amps),
                vin: Some(twc_sim::sample_vin(i as u32)),
                ..CarConfig::tesla()
            },
        })
        .collect();
    let (comms, sim) = duplex_pair(slaves);
    let trace = Arc::new(trace.clone());
    let start = tokio::time::Instant::now();
    let start_wall: DateTime<Utc> = trace.start().to_utc();
    let offset: FixedOffset = *trace.start().offset();
    let mut policy = opts.policy.clone();
    policy.rules.utc_offset = offset.to_string();
    if let Some(w) = opts.grid_limit_w {
        policy.grid.max_import_w = Some(w);
    }
    let cfg = EngineConfig {
        master: MasterConfig {
            id: Some(TwcId([0x77, 0x77])),
            sign: Some(0x77),
            wiring_max_all: CentiAmps::from_f64(opts.max_amps_all),
            wiring_max_per_twc: CentiAmps::from_f64(opts.max_amps_per_twc),
            offer_step: CentiAmps(((opts.offer_step_amps * 100.0).round() as u16).max(1)),
            ..MasterConfig::default()
        },
        min_amps_per_twc: CentiAmps::from_f64(opts.min_amps),
        voltage: opts.voltage,
        phases: opts.phases,
        consumption_includes_chargers: false,
        policy,
        start_wall: Some(start_wall),
        ..EngineConfig::default()
    };
    let heartbeat = cfg.master.heartbeat_interval;
    let settings = Settings {
        non_scheduled_action: opts.action.clone(),
        non_scheduled_amps: opts.non_scheduled_amps,
        flex_amps: opts.flex_amps,
        home: opts.home,
        ..Settings::default()
    };
    let meter = Meter {
        trace: trace.clone(),
        start,
        base_secs: 0.0,
        sim: sim.clone(),
        volts_sum,
        hint: Default::default(),
    };
    // Started as the daemon starts it (the runtime's order), with the replay's meter only.
    let mut parts = twc_runtime::Parts::new(cfg, Box::new(comms), settings);
    parts.sources = vec![SourceSpec {
        name: "replay-meter".into(),
        source: Box::new(meter),
        poll: PollSettings {
            interval: opts.meter_interval,
            stale_after: opts.stale_after,
        },
    }];
    let mut car_log = None;
    if let Some(v) = &opts.low_current {
        let cars = crate::simcar::SimCars::new(sim.clone(), true);
        car_log = Some(cars.sent());
        parts.vehicles = vec![("simcar".into(), Box::new(cars))];
        parts.vehicles_config = v.clone();
    }
    let eng = twc_runtime::start(parts)
        .await
        .expect("no control surface that could fail to start");
    if let Some(p) = &opts.prices {
        eng.handle
            .command(twc_core::engine::Command::SetPrices(Some(p.clone())))
            .await
            .map_err(|e| format!("prices: {e}"))?;
    }
    // Reaction times: from the reading the engine received to the heartbeat carrying a new offer.
    let reactions = Arc::new(Mutex::new(Vec::new()));
    let mut events = eng.handle.subscribe();
    let sink = reactions.clone();
    let ended = Arc::new(Mutex::new(Vec::new()));
    let ended_sink = ended.clone();
    let collector = tokio::spawn(async move {
        let mut last_reading: Option<DateTime<Utc>> = None;
        loop {
            match events.recv().await {
                Ok(Event::Reading { at, .. }) => last_reading = Some(at),
                Ok(Event::SessionEnded { at, session }) => {
                    if let Ok(mut v) = ended_sink.lock() {
                        v.push(crate::sessions::EndedSession {
                            ended_at: at,
                            session,
                        });
                    }
                }
                Ok(Event::OfferChanged { at, .. }) => {
                    if let Some(r) = last_reading {
                        let d = (at - r).num_milliseconds() as f64 / 1000.0;
                        if let Ok(mut v) = sink.lock() {
                            v.push(d);
                        }
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    let dt = opts.sample.as_secs_f64();
    let n = (trace.duration_secs() as f64 / dt).floor() as u64;
    let mut rows = Vec::new();
    let params = MetricParams {
        dt_secs: dt,
        min_w: opts.min_amps * volts_sum,
        max_w: opts
            .max_amps_all
            .min(opts.max_amps_per_twc.min(opts.car_max_amps) * opts.slaves as f64)
            * volts_sum,
        grid_limit_w: opts.grid_limit_w,
        reaction_allowance_secs: opts.meter_interval.as_secs_f64()
            + 2.0 * heartbeat.as_secs_f64() * opts.slaves as f64,
    };
    let mut acc = Accumulator::new(params);
    let status_rx = eng.handle.watch_status();
    let mut hint = 0;
    for k in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 * dt)).await;
        let t = k as f64 * dt;
        let step = trace.at_offset_near(t, &mut hint);
        let (cw, offered, actual) = charger_w(&sim, volts_sum);
        let (budget_a, green) = {
            let st = status_rx.borrow();
            (st.policy.budget.amps(), st.policy.is_green)
        };
        let row = Row {
            at: trace.start() + chrono::Duration::milliseconds((t * 1000.0) as i64),
            pv_w: step.pv_w,
            load_w: step.load_w,
            battery_w: step.battery_w,
            battery_soc_pct: step.battery_soc_pct,
            budget_a,
            offered_a: offered,
            actual_a: actual,
            charger_w: cw,
            grid_w: step.load_w + cw - step.pv_w - step.battery_w.unwrap_or(0.0),
            green,
        };
        acc.push(&row);
        if opts.keep_rows {
            rows.push(row);
        }
    }
    eng.shutdown().await;
    // The sessions the shutdown ended are in the channel still: the collector reads them and
    // ends when the channel closes (or is stopped after a second of paused time).
    let stop = collector.abort_handle();
    let _ = tokio::time::timeout(Duration::from_secs(1), collector).await;
    stop.abort();
    let reactions = reactions.lock().map(|v| v.clone()).unwrap_or_default();
    let metrics = acc.finish(reactions);
    let sessions = ended.lock().map(|v| v.clone()).unwrap_or_default();
    let car_commands = car_log
        .and_then(|l| l.lock().map(|v| v.len()).ok())
        .unwrap_or(0);
    Ok(Report {
        metrics,
        rows,
        wall_secs: 0.0,
        sessions,
        car_commands,
    })
}
