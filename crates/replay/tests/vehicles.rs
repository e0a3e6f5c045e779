//! The vehicles task with the real engine and a simulated TWC and car (paused time): a car
//! below its minimum state of charge charges at the full allowed current on a cloudy day, and a
//! car gets its policy's limit on arrival, stops by itself at it, and has its own limit back when
//! it leaves.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_core::engine::{self, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, EnergyReading, Settings};
use twc_core::plugin::{ChargeState, EmsSource, PluginError, PollSettings, Vehicle, VehicleApi};
use twc_core::protocol::TwcId;
use twc_core::vehicles::{self, VehiclesConfig};
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig, duplex_pair, sample_vin};

/// A cloudy afternoon: 300 W of PV under a 500 W house load, plus what the car draws (the
/// meter sees the whole house).
struct Cloudy(SimHandle);

#[twc_core::async_trait]
impl EmsSource for Cloudy {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        Ok(EnergyReading {
            generation_w: Some(300.0),
            consumption_w: Some(500.0 + self.0.slave(0).map_or(0.0, |s| s.actual.amps() * 230.0)),
            measured_at: tokio::time::Instant::now(),
            ..EnergyReading::default()
        })
    }
}

/// The car's API, reading the simulated car: its state of charge, a limit it keeps, and it
/// stops drawing by itself at the limit (as a Tesla does).
#[derive(Clone)]
struct SimCar {
    sim: SimHandle,
    vin: String,
    limit: Arc<Mutex<u8>>,
    sent: Arc<Mutex<Vec<String>>>,
}

#[twc_core::async_trait]
impl VehicleApi for SimCar {
    fn name(&self) -> &str {
        "simcar"
    }
    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        Ok(vec![Vehicle {
            id: "1".into(),
            vin: self.vin.clone(),
            name: None,
        }])
    }
    async fn charge_state(&self, _vin: &str) -> Result<ChargeState, PluginError> {
        let s = self.sim.slave(0).unwrap();
        let plugged = s.state.car_connected() || s.actual.0 > 0;
        let soc = s.soc_pct.unwrap_or(50.0);
        let limit = f64::from(*self.limit.lock().unwrap());
        let state = if !plugged {
            "Disconnected"
        } else if soc >= limit {
            "Complete"
        } else if s.actual.0 >= 100 {
            "Charging"
        } else {
            "Stopped"
        };
        if plugged && soc >= limit && s.actual.0 > 0 {
            // The car ends its session at its limit.
            self.sim
                .set_car(0, car(&self.vin, soc).with_max(CentiAmps::ZERO))
                .unwrap();
        }
        Ok(ChargeState {
            soc_pct: Some(soc),
            limit_pct: Some(limit),
            charging_state: Some(state.into()),
            plugged_in: Some(plugged),
            at_home: Some(true),
            state: Some("online".into()),
            ..ChargeState::default()
        })
    }
    async fn set_limit(&self, vin: &str, pct: u8) -> Result<(), PluginError> {
        self.sent
            .lock()
            .unwrap()
            .push(format!("set_limit {vin} {pct}"));
        *self.limit.lock().unwrap() = pct;
        Ok(())
    }
    async fn start(&self, vin: &str) -> Result<(), PluginError> {
        self.sent.lock().unwrap().push(format!("start {vin}"));
        Ok(())
    }
    async fn stop(&self, vin: &str) -> Result<(), PluginError> {
        self.sent.lock().unwrap().push(format!("stop {vin}"));
        Ok(())
    }
    fn account(&self) -> twc_core::plugin::AccountStatus {
        twc_core::plugin::AccountStatus {
            plugin: "simcar".into(),
            logged_in: true,
            can_command: true,
            ..Default::default()
        }
    }
}

trait WithMax {
    fn with_max(self, a: CentiAmps) -> Self;
}
impl WithMax for CarConfig {
    fn with_max(mut self, a: CentiAmps) -> Self {
        self.max_amps = a;
        self
    }
}

/// A Tesla with a 2 kWh battery (so that minutes of charging move its state of charge).
fn car(vin: &str, soc: f64) -> CarConfig {
    let mut c = CarConfig::tesla().with_vin(Some(vin));
    c.battery_kwh = Some(2.0);
    c.soc_pct = Some(soc);
    c
}

fn site(settings: Settings, soc: f64, sources: bool) -> (EngineHandle, SimHandle, String) {
    let vin = sample_vin(7);
    let slaves = vec![SimSlave {
        slave: SlaveConfig {
            volts: [230, 0, 0],
            ..SlaveConfig::eu().with_id(TwcId([0x30, 0x03]))
        },
        car: car(&vin, soc),
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
    let src = sources.then(|| engine::SourceSpec {
        name: "cloudy".into(),
        source: Box::new(Cloudy(sim.clone())) as Box<dyn EmsSource>,
        poll: PollSettings {
            interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(60),
        },
    });
    let eng = engine::spawn(cfg, Box::new(comms), src.into_iter().collect(), settings);
    std::mem::forget(eng.task);
    (eng.handle, sim, vin)
}

fn offered_a(h: &EngineHandle) -> u16 {
    h.status()
        .slaves
        .first()
        .map(|s| s.offered.0 / 100)
        .unwrap_or(0)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_car_below_its_minimum_charges_at_full_current_on_a_cloudy_day_until_it_is_above() {
    let settings = Settings {
        non_scheduled_action: "green".into(),
        ..Settings::default()
    };
    let (h, sim, vin) = site(settings, 20.0, true);
    // Without the vehicles task: green tracking on a cloudy day gives nothing.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(offered_a(&h), 0, "{:?}", h.status().policy);
    let api = SimCar {
        sim: sim.clone(),
        vin: vin.clone(),
        limit: Arc::new(Mutex::new(90)),
        sent: Default::default(),
    };
    let cfg = VehiclesConfig {
        min_soc_pct: 30.0,
        poll_secs: 10,
        ..VehiclesConfig::default()
    };
    let _v = vehicles::spawn(vec![("simcar".into(), Box::new(api))], cfg, h.clone());
    // The TWC has no VIN yet (the car never drew): the one plugged-in car is matched to it.
    let mut boosted_at = None;
    for t in 0..120 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if offered_a(&h) == 16 {
            boosted_at = Some(t);
            break;
        }
    }
    let st = h.status();
    assert!(
        boosted_at.is_some(),
        "no full current: {:?} {:?}",
        st.policy,
        st.vehicles
    );
    assert!(st.vehicles[0].below_min_soc, "{:?}", st.vehicles);
    // Safety holds: never more than the TWC's cap.
    assert!(st.slaves[0].offered <= st.slaves[0].cap_amps);
    // It charges past 30 % (2 kWh at 3.7 kW: about 20 s per 10 %), then green tracking
    // takes over again and offers nothing.
    let mut back_to_green = false;
    for _ in 0..900 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(offered_a(&h) <= 16);
        let s = h.status();
        if s.vehicles.first().is_some_and(|v| !v.below_min_soc) && offered_a(&h) == 0 {
            back_to_green = true;
            break;
        }
    }
    let soc = sim.slave(0).unwrap().soc_pct.unwrap();
    assert!(
        back_to_green,
        "still boosted at SoC {soc}: {:?}",
        h.status().vehicles
    );
    assert!(soc >= 30.0, "stopped below the minimum: {soc}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_car_gets_its_policys_limit_stops_at_it_and_has_its_own_limit_back_when_it_leaves() {
    let settings = Settings {
        non_scheduled_amps: 16.0,
        ..Settings::default()
    };
    let (h, sim, vin) = site(settings, 70.0, false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let policy = h.status().policy.name;
    let api = SimCar {
        sim: sim.clone(),
        vin: vin.clone(),
        limit: Arc::new(Mutex::new(90)),
        sent: Default::default(),
    };
    let sent = api.sent.clone();
    let mut cfg = VehiclesConfig {
        poll_secs: 10,
        ..VehiclesConfig::default()
    };
    cfg.limits.insert(policy.clone(), 75);
    let _v = vehicles::spawn(vec![("simcar".into(), Box::new(api))], cfg, h.clone());
    // Set on entry, the car's own 90 % remembered.
    let mut set = false;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if h.status()
            .vehicles
            .first()
            .is_some_and(|v| v.policy_limit_pct == Some(75))
        {
            set = true;
            break;
        }
    }
    assert!(set, "{policy}: {:?}", h.status().vehicles);
    assert_eq!(h.status().vehicles[0].own_limit_pct, Some(90));
    // It charges to 75 % and stops by itself; no start is sent to a car at its limit.
    let mut complete = false;
    for _ in 0..1200 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let v = h.status().vehicles;
        if v.first().and_then(|v| v.charging_state.as_deref()) == Some("Complete")
            && sim.slave(0).unwrap().actual.0 == 0
        {
            complete = true;
            break;
        }
    }
    assert!(complete, "{:?}", h.status().vehicles);
    tokio::time::sleep(Duration::from_secs(180)).await;
    let cmds = sent.lock().unwrap().clone();
    assert!(!cmds.iter().any(|c| c.starts_with("start")), "{cmds:?}");
    let soc = sim.slave(0).unwrap().soc_pct.unwrap();
    assert!((75.0..78.0).contains(&soc), "charged past the limit: {soc}");
    // It leaves: its own limit comes back.
    sim.unplug(0).unwrap();
    let mut restored = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if sent.lock().unwrap().last() == Some(&format!("set_limit {vin} 90")) {
            restored = true;
            break;
        }
    }
    assert!(
        restored,
        "{:?} {:?}",
        sent.lock().unwrap(),
        h.status().vehicles
    );
    let v = &h.status().vehicles[0];
    assert_eq!((v.policy_limit_pct, v.own_limit_pct), (None, None));
    assert_eq!(
        v.last_command.as_ref().unwrap().reason,
        "restoring the car's own limit"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_minimum_soc_boost_keeps_within_the_grid_import_limit() {
    // 2.5 kW import allowed, the house already imports 200 W: about 10 A left for the car.
    let settings = Settings {
        non_scheduled_action: "green".into(),
        max_grid_import: Some(twc_core::model::GridLimit {
            value: 2500.0,
            unit: twc_core::model::OffsetUnit::W,
        }),
        ..Settings::default()
    };
    let (h, sim, vin) = site(settings, 10.0, true);
    let api = SimCar {
        sim: sim.clone(),
        vin,
        limit: Arc::new(Mutex::new(90)),
        sent: Default::default(),
    };
    let cfg = VehiclesConfig {
        min_soc_pct: 50.0,
        poll_secs: 10,
        ..VehiclesConfig::default()
    };
    let _v = vehicles::spawn(vec![("simcar".into(), Box::new(api))], cfg, h.clone());
    let mut most = 0;
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let st = h.status();
        most = most.max(offered_a(&h));
        if let Some(r) = &st.reading
            && st.vehicles.first().is_some_and(|v| v.below_min_soc)
        {
            // Import (house 200 W + car) within the limit, with one round of lag allowed.
            let import = r.consumption_w.unwrap_or(0.0) - r.generation_w.unwrap_or(0.0);
            assert!(
                import <= 2500.0 + 230.0,
                "import {import} W over the limit: {:?}",
                st.policy
            );
        }
    }
    assert!((6..=10).contains(&most), "the boost gave {most} A");
}
