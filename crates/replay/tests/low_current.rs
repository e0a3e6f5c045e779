//! Charging below the TWC's 6 A minimum through the car (`[vehicles] low_current`), with the
//! real engine, the vehicles task and a simulated TWC and car (paused time): a car that follows
//! `set_charging_amps` charges at a few amps of surplus while its TWC is offered 6 A and is set
//! back to its maximum when the sun comes out; a car that ignores the command is caught within
//! its grace time, its TWC gets 0 A again and the problem is shown.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_core::engine::{self, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, EnergyReading, Settings};
use twc_core::plugin::{
    AccountStatus, ChargeState, EmsSource, ErrorKind, PluginError, PollSettings, Vehicle,
    VehicleApi,
};
use twc_core::protocol::TwcId;
use twc_core::vehicles::{self, VehiclesConfig};
use twc_replay::simcar::SimCars;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig, duplex_pair, sample_vin};

/// PV as the test sets it, under a 500 W house load plus what the car draws.
struct Sun {
    sim: SimHandle,
    pv_w: Arc<Mutex<f64>>,
}

#[twc_core::async_trait]
impl EmsSource for Sun {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let car = self.sim.slave(0).map_or(0.0, |s| s.actual.amps() * 230.0);
        Ok(EnergyReading {
            generation_w: Some(*self.pv_w.lock().unwrap()),
            consumption_w: Some(500.0 + car),
            measured_at: tokio::time::Instant::now(),
            ..EnergyReading::default()
        })
    }
}

fn car(vin: &str) -> CarConfig {
    CarConfig::tesla().with_vin(Some(vin))
}

struct Site {
    h: EngineHandle,
    sim: SimHandle,
    pv_w: Arc<Mutex<f64>>,
    sent: Arc<Mutex<Vec<String>>>,
    vin: String,
    prev: std::cell::Cell<CentiAmps>,
    _v: vehicles::VehicleHandle,
}

/// One TWC (16 A wiring) with a Tesla, green tracking at `pv_w` of PV, and the vehicles task
/// with `low_current` on (2 A minimum, 30 s grace, 30 s between amps commands).
fn site(pv_w: f64, follows: bool) -> Site {
    site_with(pv_w, follows, 30)
}

/// [`site`] with `[vehicles] amps_lower_interval_secs` (30 s in [`site`]: as a raise).
fn site_with(pv_w: f64, follows: bool, lower_secs: u64) -> Site {
    site_api(pv_w, lower_secs, |sim| {
        let api = SimCars::new(sim, follows);
        let sent = api.sent();
        (Box::new(api), sent)
    })
}

/// A car API whose `set_charging_amps` never gets through (the car is out of reach); the rest
/// as [`SimCars`].
struct Unreachable(SimCars);

#[twc_core::async_trait]
impl VehicleApi for Unreachable {
    fn name(&self) -> &str {
        "simcar"
    }
    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        self.0.list().await
    }
    async fn charge_state(&self, vin: &str) -> Result<ChargeState, PluginError> {
        self.0.charge_state(vin).await
    }
    async fn set_amps(&self, vin: &str, _amps: u8) -> Result<(), PluginError> {
        Err(PluginError::new(
            ErrorKind::Transient,
            "simcar",
            format!("{vin}: vehicle unavailable (asleep, out of reach)"),
        ))
    }
    fn account(&self) -> AccountStatus {
        self.0.account()
    }
}

/// [`site_with`] with the car API `api` makes from the bus (and its log of commands).
fn site_api(
    pv_w: f64,
    lower_secs: u64,
    api: impl FnOnce(SimHandle) -> (Box<dyn VehicleApi>, Arc<Mutex<Vec<String>>>),
) -> Site {
    let vin = sample_vin(9);
    let slaves = vec![SimSlave {
        slave: SlaveConfig {
            volts: [230, 0, 0],
            ..SlaveConfig::eu().with_id(TwcId([0x30, 0x03]))
        },
        car: car(&vin),
    }];
    let (comms, sim) = duplex_pair(slaves);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let pv = Arc::new(Mutex::new(pv_w));
    let src = engine::SourceSpec {
        name: "sun".into(),
        source: Box::new(Sun {
            sim: sim.clone(),
            pv_w: pv.clone(),
        }) as Box<dyn EmsSource>,
        poll: PollSettings {
            interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(60),
        },
    };
    let settings = Settings {
        non_scheduled_action: "green".into(),
        ..Settings::default()
    };
    let eng = engine::spawn(cfg, Box::new(comms), vec![src], settings);
    std::mem::forget(eng.task);
    let (api, sent) = api(sim.clone());
    let vcfg = VehiclesConfig {
        poll_secs: 10,
        low_current: true,
        low_current_min_amps: 2.0,
        low_current_grace_secs: 30,
        amps_interval_secs: 30,
        amps_lower_interval_secs: lower_secs,
        ..VehiclesConfig::default()
    };
    let v = vehicles::spawn(vec![("simcar".into(), api)], vcfg, eng.handle.clone());
    Site {
        h: eng.handle,
        sim,
        pv_w: pv,
        sent,
        vin,
        prev: Default::default(),
        _v: v,
    }
}

fn offered(s: &Site) -> CentiAmps {
    s.h.status()
        .slaves
        .first()
        .map(|s| s.offered)
        .unwrap_or_default()
}

fn drawn(s: &Site) -> CentiAmps {
    s.sim.slave(0).unwrap().actual
}

/// Checked every simulated second: never more than the TWC's cap, the car never draws more
/// than it is offered now or was a second ago (a lower offer reaches it with the next
/// heartbeat).
fn safe(s: &Site) {
    let st = s.h.status();
    if let Some(sl) = st.slaves.first() {
        assert!(sl.offered <= sl.cap_amps, "{sl:?}");
        let before = s.prev.replace(sl.offered);
        let allowed = sl.offered.max(before).max(CentiAmps::from_amps(1));
        assert!(drawn(s) <= allowed, "{sl:?}");
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_car_that_follows_charges_below_6_a_and_gets_its_maximum_back_when_the_sun_comes_out() {
    // 1400 W of PV under a 500 W house: about 3.9 A of surplus, below the TWC's 6 A.
    let s = site(1400.0, true);
    let mut confirmed_at = None;
    for t in 0..900 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        let st = s.h.status();
        if let Some(c) = st.car_currents.first() {
            // Until the car's draw confirms it follows, its TWC counts at the 6 A offer.
            if !c.confirmed {
                assert_eq!(c.counted, CentiAmps::from_amps(6), "{c:?}");
            }
            if c.confirmed {
                confirmed_at = Some(t);
                break;
            }
        }
    }
    let st = s.h.status();
    assert!(
        confirmed_at.is_some(),
        "never confirmed: {:?} {:?} {:?} {:?}",
        st.policy,
        st.car_currents,
        st.slaves.first(),
        s.sent.lock().unwrap()
    );
    let c = st.car_currents[0].clone();
    let told = c.amps.expect("told some amps");
    assert!((2..6).contains(&told), "{c:?}");
    assert!(c.counted < CentiAmps::from_amps(6), "{c:?}");
    assert_eq!(offered(&s), CentiAmps::from_amps(6));
    let d = drawn(&s);
    assert!(
        d >= CentiAmps::from_amps(1) && d <= CentiAmps::from_amps(u16::from(told)),
        "draws {d}, told {told}"
    );
    let cmd = format!("set_amps {} {told}", s.vin);
    assert!(s.sent.lock().unwrap().contains(&cmd), "{:?}", s.sent);
    assert_eq!(st.vehicles[0].told_amps, Some(told));
    // It keeps charging at the low current for ten minutes, commands rate limited.
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        assert!(
            s.h.status()
                .car_currents
                .iter()
                .all(|c| c.problem.is_none())
        );
    }
    assert!(drawn(&s) >= CentiAmps::from_amps(1), "stopped");
    let amps_cmds = s
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("set_amps"))
        .count();
    assert!(amps_cmds <= 21, "{:?}", s.sent); // one per 30 s at most
    // The sun comes out: 5 kW, about 19 A. The car gets its own 32 A back and the TWC more
    // than 6 A.
    *s.pv_w.lock().unwrap() = 5000.0;
    let mut back = false;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        if offered(&s) > CentiAmps::from_amps(6) && drawn(&s) > CentiAmps::from_amps(6) {
            back = true;
            break;
        }
    }
    let st = s.h.status();
    assert!(
        back,
        "{:?} {:?} {:?}",
        st.slaves.first(),
        st.car_currents,
        s.sent
    );
    let restore = format!("set_amps {} 32", s.vin);
    assert!(s.sent.lock().unwrap().contains(&restore), "{:?}", s.sent);
    assert_eq!(st.vehicles[0].told_amps, None);
    assert!(st.car_currents.is_empty(), "{:?}", st.car_currents);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_car_that_ignores_its_amps_is_caught_within_its_grace_and_its_twc_falls_back_to_0_a() {
    let s = site(1400.0, false);
    let mut over_secs = 0u32;
    let mut refused = None;
    for _ in 0..900 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        let st = s.h.status();
        let told = st.vehicles.first().and_then(|v| v.told_amps);
        if let Some(t) = told
            && drawn(&s) > CentiAmps::from_amps(u16::from(t) + 1)
        {
            over_secs += 1;
            // Not confirmed while it draws more than told: it counts at its 6 A offer.
            let c = &st.car_currents[0];
            assert!(
                !c.confirmed && c.counted >= CentiAmps::from_amps(6),
                "{c:?}"
            );
        }
        if let Some(c) = st.car_currents.iter().find(|c| c.problem.is_some()) {
            refused = Some(c.clone());
            break;
        }
    }
    let c = refused.unwrap_or_else(|| panic!("never caught: {:?}", s.h.status().car_currents));
    assert!(c.problem.as_ref().unwrap().contains("draws"), "{c:?}");
    // Caught after its 30 s grace, plus the car's ramp and a heartbeat or two.
    assert!((30..=45).contains(&over_secs), "{over_secs}");
    // Its TWC is back to 0 A below 6 A (the car stops; green tracking holds the 6 A minimum
    // for at most its stop delay first, as for any car) and the car gets its maximum
    // back.
    let mut stopped = false;
    for _ in 0..1500 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        if offered(&s) == CentiAmps::ZERO && drawn(&s) == CentiAmps::ZERO {
            stopped = true;
            break;
        }
    }
    let st = s.h.status();
    assert!(
        stopped,
        "{:?}\n{:?}\n{:?}",
        st.slaves.first(),
        st.policy,
        st.car_currents
    );
    let restore = format!("set_amps {} 32", s.vin);
    assert!(s.sent.lock().unwrap().contains(&restore), "{:?}", s.sent);
    // It stays off for this car: ten more minutes at 0 A.
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        assert_eq!(offered(&s), CentiAmps::ZERO);
    }
    assert!(s.h.status().car_currents[0].problem.is_some());
}

/// The `set_amps` commands sent so far.
fn amps_cmds(s: &Site) -> Vec<String> {
    s.sent
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("set_amps"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_cloud_right_after_the_sun_keeps_the_car_charging_at_6_a_until_it_is_told_less_sooner_than_a_raise()
 {
    // Low current first (about 3.9 A of surplus), then the sun: the car is set back to its
    // maximum and draws more than 6 A.
    let s = site_with(1400.0, true, 10);
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        if s.h
            .status()
            .car_currents
            .first()
            .is_some_and(|c| c.confirmed)
        {
            break;
        }
    }
    assert!(
        s.h.status()
            .car_currents
            .first()
            .is_some_and(|c| c.confirmed)
    );
    *s.pv_w.lock().unwrap() = 5000.0;
    let restore = format!("set_amps {} 32", s.vin);
    let mut since_restore = None;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        if amps_cmds(&s).last() == Some(&restore) {
            since_restore = Some(0u32);
            break;
        }
    }
    let mut since_restore = since_restore.unwrap_or_else(|| panic!("no restore: {:?}", s.sent));
    while drawn(&s) <= CentiAmps::from_amps(8) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        since_restore += 1;
        safe(&s);
        assert!(
            since_restore < 60,
            "the car did not ramp: {:?}",
            s.h.status().slaves
        );
    }
    // A cloud, seconds after the restore: back to about 3.9 A. The car must be told less, and
    // until it is, its TWC keeps the 6 A it draws at (no stop and restart).
    let n = amps_cmds(&s).len();
    *s.pv_w.lock().unwrap() = 1400.0;
    let mut lowered_after = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        since_restore += 1;
        safe(&s);
        let st = s.h.status();
        let sl = st.slaves.first().expect("one slave");
        assert!(
            sl.offered >= CentiAmps::from_amps(6),
            "the TWC was offered {} while its car waited to be told less: {:?} {:?}",
            sl.offered,
            st.car_currents,
            s.sent
        );
        if lowered_after.is_none() && amps_cmds(&s).len() > n {
            lowered_after = Some(since_restore);
        }
    }
    let lowered_after = lowered_after.unwrap_or_else(|| panic!("never told less: {:?}", s.sent));
    let last = amps_cmds(&s)[n].clone();
    let told: u8 = last.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((2..6).contains(&told), "{last}");
    // A lowering waits 10 s after the last command, not the 30 s a raise waits.
    assert!(
        lowered_after < 30,
        "told less {lowered_after} s after the restore"
    );
    assert!(drawn(&s) >= CentiAmps::from_amps(1), "stopped");
    let now_told = s.h.status().vehicles[0].told_amps.expect("told amps");
    assert!(
        drawn(&s) <= CentiAmps::from_amps(u16::from(now_told)),
        "draws {}, told {now_told}: {:?}",
        drawn(&s),
        s.sent
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_car_charging_at_6_a_that_cannot_be_told_less_keeps_6_a_for_the_stop_delay_at_most() {
    // The sun first: the car charges above 6 A without ever being told anything.
    let s = site_api(5000.0, 10, |sim| {
        let api = SimCars::new(sim, true);
        let sent = api.sent();
        (Box::new(Unreachable(api)), sent)
    });
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        if drawn(&s) > CentiAmps::from_amps(8) {
            break;
        }
    }
    assert!(
        drawn(&s) > CentiAmps::from_amps(8),
        "{:?}",
        s.h.status().slaves
    );
    // A cloud (about 3.9 A of surplus). The car cannot be told less: its TWC keeps the 6 A the
    // car draws for the green stop delay (300 s), then offers nothing and the car stops.
    *s.pv_w.lock().unwrap() = 1400.0;
    let mut held = 0u32;
    let mut stopped_after = None;
    for t in 1..=600u32 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        let o = offered(&s);
        assert!(o <= CentiAmps::from_amps(16), "{o}");
        if o == CentiAmps::from_amps(6) {
            held += 1;
        }
        if o == CentiAmps::ZERO && drawn(&s) == CentiAmps::ZERO {
            stopped_after = Some(t);
            break;
        }
    }
    let stopped_after = stopped_after.unwrap_or_else(|| {
        panic!(
            "still offered {} after 600 s: {:?}",
            offered(&s),
            s.h.status().car_currents
        )
    });
    assert!(held >= 200, "held 6 A for only {held} s");
    assert!(
        (250..=330).contains(&stopped_after),
        "stopped {stopped_after} s after the cloud"
    );
    // It stays off while the car cannot be reached.
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        safe(&s);
        assert_eq!(offered(&s), CentiAmps::ZERO);
    }
}
