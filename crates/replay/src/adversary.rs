//! The safety invariants checked on the running engine against adversarial physical models.
//!
//! One [`Scenario`] is a site (wiring, phases, grid limit, battery), up to three simulated TWCs
//! whose cars may misbehave ([`twc_sim::CarFaults`]), a house whose load and PV change in steps,
//! a meter that may be late, cached, jittered, partial, NaN or down, and disturbances (a slave's
//! bus wires cut for a while, a client flooding commands). [`run`] drives the real engine with
//! it on tokio's paused clock and checks, every simulated second, what the wires really carry
//! (not what the engine believes):
//!
//! 1. every slave holds at most `min(wiring per TWC, its rating)`;
//! 2. the cars together draw at most the wiring max for all TWCs — except for what misbehaving
//!    cars draw beyond their limit, until the others have been lowered (a short window);
//! 3. with the meter down for longer than its staleness bound, green tracking stops and a grid
//!    limit falls back to the safe current;
//! 4. with a grid limit, once the engine had time to see the site as it is, no car that follows
//!    its offer draws while the site imports more than the limit (per phase for an amps limit,
//!    on the most loaded phase);
//! 5. under a flood of commands every connected slave keeps its heartbeats (none times out).
//!
//! A violation is returned as text naming the invariant, the time and the numbers.

mod check;

use check::check;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use twc_core::async_trait;
use twc_core::combine::{Pick, SourcesConfig};
use twc_core::engine::{self, Command, EngineConfig, SourceSpec};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, EnergyReading, GridLimit, OffsetUnit, Settings};
use twc_core::plugin::{EmsSource, ErrorKind, PluginError, PollSettings};
use twc_core::protocol::{MessageCode, TwcId};
use twc_sim::{CarConfig, CarFaults, SimHandle, SimSlave, SlaveConfig, duplex_pair};

const VOLTS: f64 = 230.0;

/// A grid-import limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GridCap {
    /// No limit.
    None,
    /// Total import, W.
    Watts(f64),
    /// Import per phase, A.
    Amps(f64),
}

/// One TWC and its car.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The unit's rating, A.
    pub rated: u16,
    /// A car is plugged in.
    pub plugged: bool,
    /// How its car misbehaves.
    pub faults: CarFaults,
}

/// One step of the house: held for `secs`.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// How long, s.
    pub secs: u64,
    /// House load, W (without the chargers).
    pub house_w: f64,
    /// Share of the house load on L1 (three-phase sites; the rest is spread on L2 and L3).
    pub l1_share: f64,
    /// PV, W (spread evenly on three-phase sites).
    pub pv_w: f64,
    /// Home battery, W: positive = discharging, negative = charging (from PV or the grid).
    pub battery_w: f64,
}

/// How the meter misbehaves.
#[derive(Debug, Clone)]
pub struct MeterModel {
    /// Poll interval, s.
    pub interval: u64,
    /// Staleness bound, s.
    pub stale_after: u64,
    /// The value is this old when it arrives, s (its time stamp says so).
    pub delay: f64,
    /// The source refreshes only every this many s and re-delivers the cached value (with its
    /// original time stamp) in between; 0 = live.
    pub refresh: f64,
    /// Time stamps are off by up to this much, s (either way).
    pub jitter: f64,
    /// The meter measures grid power (else the engine derives it).
    pub has_grid: bool,
    /// The meter gives per-phase currents.
    pub phase_currents: bool,
    /// Every n-th reading has one field NaN, ∞ or absurd (0 = never).
    pub garbage_every: u32,
    /// Every n-th reading lacks the battery value (0 = never).
    pub battery_gap_every: u32,
    /// The meter fails every read in this window `(from s, for s)`.
    pub outage: Option<(u64, u64)>,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Phases the chargers (and the site) use: 1 or 3.
    pub phases: u8,
    /// `[wiring] max_amps_all_twcs`.
    pub wiring_all: u16,
    /// `[wiring] max_amps_per_twc`.
    pub wiring_per: u16,
    /// The grid limit.
    pub grid: GridCap,
    /// `[grid] safe_amps`.
    pub safe_amps: f64,
    /// `Some(amps)`: non-scheduled charging at that; `None`: green tracking.
    pub fixed_amps: Option<f64>,
    /// The site has a home battery (configured as `[site.sources] battery`).
    pub battery: bool,
    /// The TWCs.
    pub units: Vec<Unit>,
    /// The house, step by step (the last step lasts to the end).
    pub steps: Vec<Step>,
    /// The meter.
    pub meter: MeterModel,
    /// Cut slave `.0`'s bus wires at `.1` s for `.2` s.
    pub cut: Option<(usize, u64, u64)>,
    /// Flood: `.1` commands, one every 2 ms, from `.0` s.
    pub flood: Option<(u64, u32)>,
    /// `[master] slave_timeout_secs`.
    pub slave_timeout: u64,
    /// The voltage the slaves report (230 V really; a garbled value tests that it is ignored).
    pub reported_volts: u16,
    /// Simulated length, s.
    pub secs: u64,
}

/// The reading field a garbage value goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Grid,
    Generation,
    Consumption,
    Battery,
}

impl MeterModel {
    /// Read number `n` (from 1) loses its battery value.
    fn battery_gap(&self, n: u64) -> bool {
        self.battery_gap_every > 0 && n.is_multiple_of(self.battery_gap_every as u64)
    }

    /// The field read number `n` (from 1) carries garbage in, if any.
    fn garbage(&self, n: u64) -> Option<Field> {
        (self.garbage_every > 0 && n.is_multiple_of(self.garbage_every as u64)).then_some(
            match n % 4 {
                0 => Field::Grid,
                1 => Field::Generation,
                2 => Field::Consumption,
                _ => Field::Battery,
            },
        )
    }

    /// Whether read `n` tells the grid import: the grid value, or house and PV to derive it;
    /// and the battery value on a site with one.
    fn usable(&self, n: u64, battery: bool) -> bool {
        let bad = self.garbage(n);
        let grid = self.has_grid && bad != Some(Field::Grid);
        let derived = bad != Some(Field::Generation) && bad != Some(Field::Consumption);
        let batt = !battery || (!self.battery_gap(n) && bad != Some(Field::Battery));
        (grid || derived) && batt
    }

    /// One more than the longest run of unusable reads in the first `reads`: how many poll
    /// intervals may pass between two usable readings.
    fn usable_every(&self, battery: bool, reads: u64) -> u64 {
        let (mut run, mut longest) = (0, 0);
        for n in 1..=reads {
            if self.usable(n, battery) {
                run = 0;
            } else {
                run += 1;
                longest = longest.max(run);
            }
        }
        longest + 1
    }
}

impl Scenario {
    fn step_at(&self, t: f64) -> Step {
        let mut end = 0.0;
        for s in &self.steps {
            end += s.secs as f64;
            if t < end {
                return *s;
            }
        }
        *self.steps.last().expect("at least one step")
    }

    /// Times at which the world changed (steps, meter outage end, cut start/end, flood).
    fn changes(&self) -> Vec<f64> {
        let mut v = vec![0.0];
        let mut end = 0.0;
        for s in &self.steps {
            end += s.secs as f64;
            v.push(end);
        }
        if let Some((a, l)) = self.meter.outage {
            v.push(a as f64);
            v.push((a + l) as f64);
        }
        if let Some((_, a, l)) = self.cut {
            v.push(a as f64);
            v.push((a + l) as f64);
        }
        v
    }

    fn rogue(&self, i: usize) -> bool {
        let f = &self.units[i].faults;
        f.draws_at_zero > 0.0 || f.overdraw > 0.0
    }
}

/// Per-second draws of the cars, for the meter to look back on.
type DrawLog = Arc<Mutex<VecDeque<(f64, Vec<f64>)>>>;

struct Meter {
    sc: Scenario,
    start: Instant,
    log: DrawLog,
    reads: Mutex<u64>,
}

fn phase_imports(sc: &Scenario, st: Step, chargers: &[f64]) -> (f64, Vec<f64>) {
    let c: f64 = chargers.iter().sum();
    let net_w = st.house_w - st.pv_w - st.battery_w;
    let total_w = net_w + c * VOLTS * sc.phases as f64;
    if sc.phases == 3 {
        let per =
            |share: f64| (st.house_w * share - st.pv_w / 3.0 - st.battery_w / 3.0) / VOLTS + c;
        let rest = (1.0 - st.l1_share) / 2.0;
        (total_w, vec![per(st.l1_share), per(rest), per(rest)])
    } else {
        (total_w, vec![total_w / VOLTS])
    }
}

#[async_trait]
impl EmsSource for Meter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let now = Instant::now();
        let t = (now - self.start).as_secs_f64();
        let n = {
            let mut r = self.reads.lock().expect("reads");
            *r += 1;
            *r
        };
        let m = &self.sc.meter;
        if let Some((a, l)) = m.outage
            && t >= a as f64
            && t < (a + l) as f64
        {
            return Err(PluginError::new(
                ErrorKind::Transient,
                "meter",
                "meter down",
            ));
        }
        let mut tau = (t - m.delay).max(0.0);
        if m.refresh > 0.0 {
            tau = (tau / m.refresh).floor() * m.refresh;
        }
        let chargers = {
            let log = self.log.lock().expect("log");
            log.iter()
                .rev()
                .find(|(at, _)| *at <= tau)
                .or(log.front())
                .map(|(_, c)| c.clone())
                .unwrap_or_default()
        };
        let st = self.sc.step_at(tau);
        let (grid_w, phases) = phase_imports(&self.sc, st, &chargers);
        // Deterministic jitter from the read count.
        let j = if m.jitter > 0.0 {
            ((n * 7919 % 1000) as f64 / 1000.0 * 2.0 - 1.0) * m.jitter
        } else {
            0.0
        };
        let stamp = (tau + j).clamp(0.0, t);
        let mut r = EnergyReading {
            generation_w: Some(st.pv_w),
            consumption_w: Some(st.house_w),
            grid_w: m.has_grid.then_some(grid_w),
            battery_w: self.sc.battery.then_some(st.battery_w),
            phase_currents_a: (m.phase_currents && self.sc.phases == 3).then_some(phases),
            measured_at: self.start + Duration::from_secs_f64(stamp),
            ..EnergyReading::default()
        };
        if m.battery_gap(n) {
            r.battery_w = None;
        }
        if let Some(field) = m.garbage(n) {
            let bad = [f64::NAN, f64::NEG_INFINITY, f64::INFINITY, 1e12][(n / 3 % 4) as usize];
            match field {
                Field::Grid => r.grid_w = r.grid_w.map(|_| bad),
                Field::Generation => r.generation_w = Some(bad),
                Field::Consumption => r.consumption_w = Some(bad),
                Field::Battery => r.battery_w = r.battery_w.map(|_| bad),
            }
        }
        Ok(r)
    }
}

/// Run one scenario; `Err` names the first invariant broken.
pub fn run(sc: &Scenario) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_async(sc.clone()))
}

async fn run_async(sc: Scenario) -> Result<(), String> {
    let v = sc.reported_volts;
    let volts: [u16; 3] = if sc.phases == 3 { [v; 3] } else { [v, 0, 0] };
    let slaves: Vec<SimSlave> = sc
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| SimSlave {
            slave: SlaveConfig {
                volts,
                max_amps: CentiAmps::from_amps(u.rated),
                sign: 0x40 + i as u8,
                ..SlaveConfig::eu().with_id(TwcId([0x10 + i as u8, 0x01]))
            },
            car: CarConfig {
                plugged_in: u.plugged,
                vin: Some(twc_sim::sample_vin(i as u32)),
                faults: u.faults.clone(),
                ..CarConfig::tesla()
            },
        })
        .collect();
    let (comms, sim) = duplex_pair(slaves);
    let start = Instant::now();
    let mut cfg = EngineConfig {
        master: MasterConfig {
            id: Some(TwcId([0x77, 0x77])),
            sign: Some(0x77),
            wiring_max_all: CentiAmps::from_amps(sc.wiring_all),
            wiring_max_per_twc: CentiAmps::from_amps(sc.wiring_per),
            slave_timeout: Duration::from_secs(sc.slave_timeout),
            ..MasterConfig::default()
        },
        phases: sc.phases,
        consumption_includes_chargers: false,
        ..EngineConfig::default()
    };
    cfg.policy.green.start_delay_secs = 10.0;
    cfg.policy.green.stop_delay_secs = 30.0;
    cfg.policy.grid.safe_amps = sc.safe_amps;
    match sc.grid {
        GridCap::None => {}
        GridCap::Watts(w) => cfg.policy.grid.max_import_w = Some(w),
        GridCap::Amps(a) => cfg.policy.grid.max_import_amps = Some(a),
    }
    if sc.battery {
        cfg.sources = SourcesConfig {
            battery: Some(Pick::One("meter".into())),
            ..SourcesConfig::default()
        };
    }
    let log: DrawLog = Arc::new(Mutex::new(VecDeque::new()));
    let meter = Meter {
        sc: sc.clone(),
        start,
        log: log.clone(),
        reads: Mutex::new(0),
    };
    let settings = Settings {
        non_scheduled_action: if sc.fixed_amps.is_some() {
            "charge".into()
        } else {
            "green".into()
        },
        non_scheduled_amps: sc.fixed_amps.unwrap_or(6.0),
        ..Settings::default()
    };
    // Started as the daemon starts it (the runtime's order), with the replay's meter only.
    let mut parts = twc_runtime::Parts::new(cfg, Box::new(comms), settings);
    parts.sources = vec![SourceSpec {
        name: "meter".into(),
        source: Box::new(meter),
        poll: PollSettings {
            interval: Duration::from_secs(sc.meter.interval),
            stale_after: Duration::from_secs(sc.meter.stale_after),
        },
    }];
    let eng = twc_runtime::start(parts)
        .await
        .expect("no control surface that could fail to start");
    let h = eng.handle.clone();
    // The cars' draw, sampled finely for the meter to look back on.
    let sampler = {
        let sim = sim.clone();
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                let t = (Instant::now() - start).as_secs_f64();
                let draws: Vec<f64> = sim.slaves().iter().map(|s| s.actual.amps()).collect();
                {
                    let mut l = log.lock().expect("log");
                    l.push_back((t, draws));
                    while l.front().is_some_and(|(a, _)| t - *a > 120.0) {
                        l.pop_front();
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let flood = sc.flood.map(|(at, n)| {
        let h = h.clone();
        let wiring = sc.wiring_all as f64;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(at)).await;
            for k in 0..n {
                let cmd = match k % 6 {
                    0 => Command::StartCharging { slave: None },
                    1 => Command::StopCharging { slave: None },
                    2 => Command::DebugQuery {
                        slave: None,
                        code: MessageCode::QUERY_KWH,
                    },
                    3 => Command::ChargeNow {
                        amps: (k % 40) as f64 % wiring + 1.0,
                        duration: Duration::from_secs(60),
                    },
                    4 => Command::CancelChargeNow,
                    _ => Command::SetGridLimit(Some(GridLimit {
                        value: 1.0e9,
                        unit: OffsetUnit::W,
                    })),
                };
                let _ = h.command(cmd).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = h.command(Command::CancelChargeNow).await;
        })
    });
    let cutter = sc.cut.map(|(i, at, len)| {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(start + Duration::from_secs(at)).await;
            let _ = sim.set_cut(i, true);
            tokio::time::sleep_until(start + Duration::from_secs(at + len)).await;
            let _ = sim.set_cut(i, false);
        })
    });
    let result = check(&sc, &sim, &h, start).await;
    if let Some(c) = cutter {
        c.abort();
    }
    sampler.abort();
    if let Some(f) = flood {
        f.abort();
    }
    eng.shutdown().await;
    result
}
