//! A Gen3 controlled through the car (`control = "car"`): the real engine, the vehicles task
//! and this plugin polling a mock Gen3 whose draw follows what the car was told through its
//! API. The engine's allocation reaches the car as start, stop and charging amps; the unit
//! counts at its maximum until the car's measured draw confirms it follows; a car that ignores
//! its commands is reported and stays budgeted at what it may draw.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_control_gen3::{Control, Gen3, Gen3Config, MeterConfig, UnitConfig};
use twc_core::engine::{self, Command, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, LoadPointStatus, Settings};
use twc_core::plugin::{
    AccountStatus, ChargeState, ControlSurface, PluginError, Vehicle, VehicleApi,
};
use twc_core::vehicles::{self, VehiclesConfig};
use twc_plugin_kit::http::HttpOptions;
use twc_testkit::fixture;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::path};

const VIN: &str = "5YJ3E1EA7KF000001";

/// The car at the Gen3: charging or not, the amps it was told, and whether it follows them.
#[derive(Default)]
struct CarState {
    charging: bool,
    amps: u8,
    follows: bool,
    sent: Vec<String>,
}

#[derive(Clone)]
struct Car(Arc<Mutex<CarState>>);

impl Car {
    /// What it draws from a 32 A Gen3: its amps when it follows, else the unit's 32 A.
    fn draw(&self) -> f64 {
        let s = self.0.lock().unwrap();
        match (s.charging, s.follows) {
            (false, _) => 0.0,
            (true, true) => f64::from(s.amps).min(32.0),
            (true, false) => 32.0,
        }
    }
    fn sent(&self) -> Vec<String> {
        self.0.lock().unwrap().sent.clone()
    }
}

#[twc_core::async_trait]
impl VehicleApi for Car {
    fn name(&self) -> &str {
        "simcar"
    }
    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        Ok(vec![Vehicle {
            id: "1".into(),
            vin: VIN.into(),
            name: None,
        }])
    }
    async fn charge_state(&self, _vin: &str) -> Result<ChargeState, PluginError> {
        let s = self.0.lock().unwrap();
        Ok(ChargeState {
            soc_pct: Some(50.0),
            limit_pct: Some(90.0),
            charging_state: Some(if s.charging { "Charging" } else { "Stopped" }.into()),
            plugged_in: Some(true),
            at_home: Some(true),
            state: Some("online".into()),
            max_amps: Some(32.0),
            ..ChargeState::default()
        })
    }
    async fn start(&self, vin: &str) -> Result<(), PluginError> {
        let mut s = self.0.lock().unwrap();
        s.sent.push(format!("start {vin}"));
        s.charging = true;
        Ok(())
    }
    async fn stop(&self, vin: &str) -> Result<(), PluginError> {
        let mut s = self.0.lock().unwrap();
        s.sent.push(format!("stop {vin}"));
        if s.follows {
            s.charging = false;
        }
        Ok(())
    }
    async fn set_amps(&self, vin: &str, amps: u8) -> Result<(), PluginError> {
        let mut s = self.0.lock().unwrap();
        s.sent.push(format!("set_amps {vin} {amps}"));
        s.amps = amps;
        Ok(())
    }
    fn account(&self) -> AccountStatus {
        AccountStatus {
            plugin: "simcar".into(),
            logged_in: true,
            can_command: true,
            ..AccountStatus::default()
        }
    }
}

/// The Gen3's vitals: the recorded split-phase charging fixture with the car's draw (or the
/// waiting-for-the-car fixture while it does not draw).
struct Vitals(Car);

impl Respond for Vitals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let a = self.0.draw();
        if a <= 0.0 {
            return ResponseTemplate::new(200)
                .set_body_bytes(fixture!("vitals_connected_waiting_car_RECONSTRUCTED.json"));
        }
        let mut v: serde_json::Value =
            serde_json::from_slice(&fixture!("vitals_charging_1phase_NA_RECONSTRUCTED.json"))
                .unwrap();
        v["vehicle_current_a"] = a.into();
        v["currentA_a"] = a.into();
        v["currentB_a"] = a.into();
        ResponseTemplate::new(200).set_body_json(v)
    }
}

struct Site {
    h: EngineHandle,
    car: Car,
    _v: vehicles::VehicleHandle,
    _server: MockServer,
}

async fn site(follows: bool, amps: f64) -> Site {
    let car = Car(Arc::new(Mutex::new(CarState {
        amps: 32,
        follows,
        ..CarState::default()
    })));
    let server = MockServer::start().await;
    Mock::given(path("/api/1/vitals"))
        .respond_with(Vitals(car.clone()))
        .mount(&server)
        .await;
    let (comms, _sim) = twc_sim::duplex_pair(vec![]);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(40),
            wiring_max_per_twc: CentiAmps::from_amps(32),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let settings = Settings {
        non_scheduled_amps: amps,
        ..Settings::default()
    };
    let eng = engine::spawn(cfg, Box::new(comms), vec![], settings);
    std::mem::forget(eng.task);
    let gen3 = Gen3::new(Gen3Config {
        units: vec![UnitConfig {
            name: "garage".into(),
            url: server.uri(),
            max_amps: 32.0,
            min_amps: 6.0,
            control: Control::Car,
            vin: Some(VIN.into()),
            interval_secs: 0.5,
            stale_after_secs: 5.0,
            follow_grace_secs: 3.0,
            http: HttpOptions {
                timeout_secs: 1.0,
                retries: 0,
                ..HttpOptions::default()
            },
        }],
        meter: MeterConfig::default(),
    })
    .unwrap();
    let h = eng.handle.clone();
    tokio::spawn(async move { Box::new(gen3).serve(h).await });
    let vcfg = VehiclesConfig {
        poll_secs: 1,
        command_interval_secs: 1,
        amps_interval_secs: 1,
        ..VehiclesConfig::default()
    };
    let v = vehicles::spawn(
        vec![("simcar".into(), Box::new(car.clone()))],
        vcfg,
        eng.handle.clone(),
    );
    Site {
        h: eng.handle,
        car,
        _v: v,
        _server: server,
    }
}

fn lp(s: &Site) -> Option<LoadPointStatus> {
    s.h.status().load_points.first().cloned()
}

/// Waits (real time, up to 30 s) until `f` holds for the load point.
async fn until(s: &Site, what: &str, f: impl Fn(&LoadPointStatus) -> bool) -> LoadPointStatus {
    for _ in 0..300 {
        if let Some(l) = lp(s).filter(|l| f(l)) {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what}: {:?}\ncars: {:?}\nsent: {:?}",
        lp(s),
        s.h.status().car_currents,
        s.car.sent()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocation_reaches_the_car_and_the_unit_counts_at_its_max_until_the_draw_confirms() {
    let s = site(true, 16.0).await;
    // Registered, and until the car is seen to follow it counts at its 32 A maximum.
    let l = until(&s, "registered", |l| l.via_car.is_some()).await;
    assert_eq!(l.via_car.as_deref(), Some(VIN));
    assert_eq!(l.reserved, CentiAmps::from_amps(32), "{l:?}");
    // The policy's 16 A reach the car: started and told 16 A; it draws 16 A and, confirmed,
    // counts at 16 A.
    let l = until(&s, "confirmed at 16 A", |l| {
        l.reserved == CentiAmps::from_amps(16) && l.draw == Some(CentiAmps::from_amps(16))
    })
    .await;
    assert_eq!(l.allocated, CentiAmps::from_amps(16));
    assert!(l.problem.is_none(), "{l:?}");
    let sent = s.car.sent();
    assert!(sent.contains(&format!("start {VIN}")), "{sent:?}");
    assert!(sent.contains(&format!("set_amps {VIN} 16")), "{sent:?}");
    let c = &s.h.status().car_currents[0];
    assert!(
        c.confirmed && c.charge == Some(true) && c.amps == Some(16),
        "{c:?}"
    );
    // The policy lowers it to 8 A: the car is told 8 A.
    s.h.command(Command::PatchSettings(
        serde_json::json!({"non_scheduled_amps": 8.0}),
    ))
    .await
    .unwrap();
    until(&s, "at 8 A", |l| {
        l.draw == Some(CentiAmps::from_amps(8)) && l.reserved == CentiAmps::from_amps(8)
    })
    .await;
    // Stop: the car is stopped through its API.
    s.h.command(Command::PatchSettings(
        serde_json::json!({"non_scheduled_action": "stop"}),
    ))
    .await
    .unwrap();
    let l = until(&s, "stopped", |l| {
        l.allocated == CentiAmps::ZERO && l.draw.is_some_and(|d| d < CentiAmps::from_amps(1))
    })
    .await;
    // Stopped, the car is not drawing: the unit counts at its maximum again (the car may be
    // started from its app at its own current).
    assert_eq!(l.reserved, CentiAmps::from_amps(32), "{l:?}");
    assert!(s.car.sent().contains(&format!("stop {VIN}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_that_ignores_its_amps_is_reported_and_counts_at_the_units_maximum() {
    let s = site(false, 10.0).await;
    let l = until(&s, "reported", |l| l.problem.is_some()).await;
    assert!(
        l.problem.as_ref().unwrap().contains("does not follow"),
        "{l:?}"
    );
    assert_eq!(l.draw, Some(CentiAmps::from_amps(32)));
    assert_eq!(l.reserved, CentiAmps::from_amps(32), "{l:?}");
    assert!(s.car.sent().contains(&format!("set_amps {VIN} 10")));
    let st = s.h.status();
    let c = &st.car_currents[0];
    assert!(!c.confirmed && c.problem.is_some(), "{c:?}");
    assert_eq!(c.counted, CentiAmps::from_amps(32));
}
