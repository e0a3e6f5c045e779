//! The Vehicles API, TWCManager's vehicle routes and "Log in with Tesla" against the real
//! engine, a simulated TWC with a Tesla, and the vehicles task over an in-memory vehicle API.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_core::engine::{self, Command, EngineConfig, EngineHandle};
use twc_core::model::{CentiAmps, Settings};
use twc_core::plugin::{AccountStatus, ChargeState, ErrorKind, PluginError, Vehicle, VehicleApi};
use twc_core::vehicles::{self, VehiclesConfig};
use twc_sim::{CarConfig, SAMPLE_VIN, SimSlave, SlaveConfig};

#[derive(Clone, Default)]
struct FakeCar {
    sent: Arc<Mutex<Vec<String>>>,
    limit: Arc<Mutex<f64>>,
}

#[twc_core::async_trait]
impl VehicleApi for FakeCar {
    fn name(&self) -> &str {
        "fake"
    }
    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        Ok(vec![Vehicle {
            id: "1".into(),
            vin: SAMPLE_VIN.into(),
            name: Some("Red".into()),
        }])
    }
    async fn charge_state(&self, _vin: &str) -> Result<ChargeState, PluginError> {
        Ok(ChargeState {
            soc_pct: Some(42.0),
            limit_pct: Some(*self.limit.lock().unwrap()),
            charging_state: Some("Charging".into()),
            plugged_in: Some(true),
            latitude: Some(52.5),
            longitude: Some(13.4),
            state: Some("online".into()),
            ..ChargeState::default()
        })
    }
    async fn set_limit(&self, vin: &str, pct: u8) -> Result<(), PluginError> {
        self.sent
            .lock()
            .unwrap()
            .push(format!("set_limit {vin} {pct}"));
        *self.limit.lock().unwrap() = f64::from(pct);
        Ok(())
    }
    async fn set_amps(&self, vin: &str, amps: u8) -> Result<(), PluginError> {
        self.sent
            .lock()
            .unwrap()
            .push(format!("set_amps {vin} {amps}"));
        Ok(())
    }
    async fn stop(&self, _vin: &str) -> Result<(), PluginError> {
        Err(PluginError::new(
            ErrorKind::Transient,
            "fake",
            "POST charge_stop: HTTP 408, the car is asleep or offline",
        ))
    }
    fn account(&self) -> AccountStatus {
        AccountStatus {
            plugin: "fake".into(),
            login_supported: true,
            logged_in: true,
            can_command: true,
            ..AccountStatus::default()
        }
    }
    fn login_url(&self, redirect_uri: &str) -> Result<String, PluginError> {
        Ok(format!(
            "https://auth.example/authorize?redirect_uri={redirect_uri}&state=S1"
        ))
    }
    async fn finish_login(&self, code: &str, state: &str) -> Result<(), PluginError> {
        if state != "S1" {
            return Err(PluginError::new(
                ErrorKind::Config,
                "fake",
                "the login's state does not match",
            ));
        }
        self.sent.lock().unwrap().push(format!("login {code}"));
        Ok(())
    }
}

struct Rig {
    engine: EngineHandle,
    base: String,
    http: reqwest::Client,
    car: FakeCar,
}

async fn rig(limits: &[(&str, u8)]) -> Rig {
    let mut ec = EngineConfig::default();
    ec.master.wiring_max_all = CentiAmps::from_amps(32);
    ec.master.wiring_max_per_twc = CentiAmps::from_amps(16);
    let fleet = vec![SimSlave {
        slave: SlaveConfig::eu(),
        car: CarConfig::tesla(),
    }];
    let (comms, _sim) = twc_sim::duplex_pair(fleet);
    let e = engine::spawn(ec, Box::new(comms), vec![], Settings::default());
    // Charge so that the TWC reads the car's VIN.
    let h = e.handle.clone();
    let mut rx = h.watch_status();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if !rx.borrow_and_update().slaves.is_empty() {
                break;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("a slave links");
    h.command(Command::ChargeNow {
        amps: 16.0,
        duration: Duration::from_secs(3600),
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if rx
                .borrow_and_update()
                .slaves
                .iter()
                .any(|s| s.vin.is_some())
            {
                break;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the TWC reads the VIN");
    let mut cfg = VehiclesConfig::default();
    for (p, l) in limits {
        cfg.limits.insert((*p).into(), *l);
    }
    let car = FakeCar {
        limit: Arc::new(Mutex::new(80.0)),
        ..FakeCar::default()
    };
    let vh = vehicles::spawn(vec![("fake".into(), Box::new(car.clone()))], cfg, h.clone());
    let hc = twc_control_http::HttpConfig {
        listen: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..twc_control_http::HttpConfig::default()
    };
    let listener = twc_control_http::bind(&hc).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(twc_control_http::serve_on_with_vehicles(
        listener,
        hc,
        h.clone(),
        None,
        Some(vh),
    ));
    std::mem::forget(e.task);
    Rig {
        engine: h,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        car,
    }
}

impl Rig {
    async fn cars_until(&self, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for _ in 0..100 {
            let v: serde_json::Value = self
                .http
                .get(format!("{}/api/v2/vehicles/cars", self.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if f(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the vehicles never got there");
    }
    async fn post(&self, p: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{p}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_at_a_twc_is_matched_by_vin_and_gets_the_policys_limit_shown_everywhere() {
    let r = rig(&[]).await;
    let policy = r.engine.status().policy.name;
    drop(r);
    let r = rig(&[(policy.as_str(), 90)]).await;
    let v = r
        .cars_until(|v| v["vehicles"][0]["policy_limit_pct"] == 90)
        .await;
    let car = &v["vehicles"][0];
    assert_eq!(car["vin"], SAMPLE_VIN);
    assert_eq!(car["soc_pct"], 42.0);
    assert_eq!(car["own_limit_pct"], 80);
    assert!(car["slave"].is_string(), "{car}");
    assert_eq!(car["last_command"]["command"], "set_charge_limit 90");
    assert_eq!(car["last_command"]["ok"], true);
    assert!(v["accounts"][0]["logged_in"].as_bool().unwrap());
    assert_eq!(
        r.car.sent.lock().unwrap().as_slice(),
        [format!("set_limit {SAMPLE_VIN} 90")]
    );
    // The engine's Status carries the cars too (MQTT, HASS, getStatus render it).
    let s = r.engine.status();
    assert_eq!(s.vehicles.len(), 1);
    assert_eq!(s.vehicles[0].policy_limit_pct, Some(90));
    // The TWC's card in the UI shows the car's state of charge from the slave view.
    let slaves: serde_json::Value = r
        .http
        .get(format!("{}/api/v2/slaves", r.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = slaves
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == car["slave"])
        .expect("the car's TWC");
    assert_eq!(at["soc_pct"], 42.0, "{at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_through_the_api_answer_with_the_cars_result_or_a_reason() {
    let r = rig(&[]).await;
    r.cars_until(|v| v["vehicles"][0]["slave"].is_string())
        .await;
    let p = format!("/api/v2/vehicles/{SAMPLE_VIN}/command");
    let ok = r.post(&p, r#"{"command": "set_limit", "value": 85}"#).await;
    assert_eq!(ok.status(), 200);
    assert!(
        r.car
            .sent
            .lock()
            .unwrap()
            .contains(&format!("set_limit {SAMPLE_VIN} 85"))
    );
    for (body, status) in [
        (r#"{"command": "set_limit", "value": 30}"#, 400),
        (r#"{"command": "set_limit"}"#, 400),
        (r#"{"command": "honk"}"#, 400),
        (r#"{"command": "start", "extra": 1}"#, 400),
        ("not json", 400),
    ] {
        let resp = r.post(&p, body).await;
        assert_eq!(resp.status(), status, "{body}");
        let e: serde_json::Value = resp.json().await.unwrap();
        assert!(
            e["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{body}: {e}"
        );
    }
    assert_eq!(
        r.post(
            "/api/v2/vehicles/5YJ3E1EA0XX000000/command",
            r#"{"command": "start"}"#
        )
        .await
        .status(),
        404
    );
    // A car that fails: 502 with its reason, and the failure shown on the car.
    let resp = r.post(&p, r#"{"command": "stop"}"#).await;
    assert_eq!(resp.status(), 502);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("asleep or offline"),
        "{e}"
    );
    let v = r
        .cars_until(|v| v["vehicles"][0]["last_command"]["command"] == "charge_stop")
        .await;
    assert_eq!(v["vehicles"][0]["last_command"]["ok"], false);
    // TWCManager's routes.
    let resp = r
        .post("/api/sendTeslaAPICommand", &format!(r#"{{"commandName": "setChargeRate", "vehicleID": "{SAMPLE_VIN}", "parameters": "{{\"charge_rate\": 5}}"}}"#))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        r.car
            .sent
            .lock()
            .unwrap()
            .contains(&format!("set_amps {SAMPLE_VIN} 5"))
    );
    let resp = r
        .post("/api/sendTeslaAPICommand", &format!(r#"{{"commandName": "setChargeRate", "vehicleID": "{SAMPLE_VIN}", "parameters": {{"charge_rate": 99}}}}"#))
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(r.post("/api/checkArrival", "").await.status(), 202);
    assert_eq!(r.post("/api/checkDeparture", "").await.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_with_tesla_goes_to_the_provider_and_back() {
    let r = rig(&[]).await;
    let resp = r
        .http
        .get(format!("{}/vehicles/login", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("https://auth.example/authorize?"), "{to}");
    assert!(
        to.contains(&format!(
            "redirect_uri=http://{}/vehicles/callback",
            r.base.trim_start_matches("http://")
        )),
        "{to}"
    );
    let bad = r
        .http
        .get(format!("{}/vehicles/callback?code=C&state=forged", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let refused = r
        .http
        .get(format!("{}/vehicles/callback?error=access_denied", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let ok = r
        .http
        .get(format!("{}/vehicles/callback?code=C&state=S1", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/vehicles?login=ok");
    assert!(r.car.sent.lock().unwrap().contains(&"login C".to_string()));
}
