//! End to end through the emulated meter: the engine's policy decides a current, the Gen3
//! plugin's meter (on a pseudo-terminal) shows the house load that leaves exactly that, a
//! simulated Gen3 reads it with a Modbus RTU client and draws what its circuit leaves, its
//! vitals (the recorded fixture with the simulated currents) are served by a mock HTTP server
//! and polled back into `Status`.
//!
//! Real time, short intervals: the meter runs on its own thread over a real pseudo-terminal and
//! the vitals come over real sockets, which tokio's paused clock would time out.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_control_gen3::Gen3;
use twc_core::engine::{Command, EngineConfig};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, LoadPointStatus, Settings, Status};
use twc_core::plugin::ControlSurface;
use twc_runtime::Parts;
use twc_testkit::{fixture, serve_fixture};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::path};

/// The Gen3's circuit (its commissioned breaker setting), A.
const CIRCUIT: f32 = 32.0;

/// The simulated Gen3's vitals: the recorded split-phase fixture with its currents replaced by
/// what it draws now.
#[derive(Clone)]
struct SimGen3 {
    template: Value,
    draw: Arc<Mutex<f64>>,
}

impl Respond for SimGen3 {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let a = *self.draw.lock().unwrap();
        let mut v = self.template.clone();
        v["vehicle_current_a"] = json!(a);
        v["currentA_a"] = json!(a);
        v["currentB_a"] = json!(a);
        v["contactor_closed"] = json!(a > 0.0);
        ResponseTemplate::new(200).set_body_json(v)
    }
}

fn gen3_of(s: &Status) -> Option<&LoadPointStatus> {
    s.load_points.iter().find(|l| l.name == "gen3.garage")
}

async fn wait(
    rx: &mut tokio::sync::watch::Receiver<Status>,
    secs: u64,
    what: &str,
    pred: impl Fn(&LoadPointStatus) -> bool,
) -> LoadPointStatus {
    let last = Arc::new(Mutex::new(None));
    let seen = last.clone();
    let r = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            let s = rx.borrow_and_update().clone();
            if let Some(l) = gen3_of(&s) {
                *seen.lock().unwrap() = Some(l.clone());
                if pred(l) {
                    return l.clone();
                }
            }
            rx.changed().await.unwrap();
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("{what} within {secs} s; last: {:?}", last.lock().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policys_current_reaches_a_simulated_gen3_through_the_meter_and_stop_is_a_full_circuit()
{
    use tokio_modbus::prelude::*;
    let (pty, stream) = twc_sim::open_pty(None).unwrap();
    let server = MockServer::start().await;
    let sim = SimGen3 {
        template: serde_json::from_slice(&fixture!("vitals_charging_1phase_NA_RECONSTRUCTED.json"))
            .unwrap(),
        draw: Arc::new(Mutex::new(0.0)),
    };
    Mock::given(path("/api/1/vitals"))
        .respond_with(sim.clone())
        .mount(&server)
        .await;
    serve_fixture(
        &server,
        "/api/1/version",
        fixture!("version_test_fixture.json"),
    )
    .await;

    // The policy: a fixed 20 A for the site (no Gen2 slave on the bus).
    let settings = Settings {
        non_scheduled_action: "charge".into(),
        non_scheduled_amps: 20.0,
        ..Settings::default()
    };
    let (comms, _bus) = twc_sim::duplex_pair(vec![]);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(40),
            wiring_max_per_twc: CentiAmps::from_amps(32),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let gen3: Gen3 = Gen3::new(
        serde_json::from_value(json!({
            "meter": {"port": pty.path().to_string_lossy()},
            "units": [{
                "name": "garage", "url": server.uri(), "max_amps": CIRCUIT, "control": "meter",
                "interval_secs": 0.2, "stale_after_secs": 2.0, "follow_grace_secs": 1.0,
                "http": {"timeout_secs": 1.0, "retries": 0},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    let mut parts = Parts::new(cfg, Box::new(comms), settings);
    parts
        .controls
        .push(("gen3".into(), Box::new(gen3) as Box<dyn ControlSurface>));
    let engine = twc_runtime::start(parts).await.unwrap();
    let mut rx = engine.handle.watch_status();

    // The simulated Gen3 reads the meter as the real one does (Modbus RTU over the pty): the
    // house current (registers 0xF4, float) and, while it follows, draws what its circuit
    // leaves; otherwise it draws its whole circuit.
    let follow = Arc::new(Mutex::new(true));
    let house = Arc::new(Mutex::new(f32::NAN));
    let (draw, f, h) = (sim.draw.clone(), follow.clone(), house.clone());
    let reader = tokio::spawn(async move {
        let mut ctx = rtu::attach_slave(stream, Slave(1));
        loop {
            if let Ok(Ok(r)) = ctx.read_holding_registers(0xF4, 2).await {
                let a = f32::from_be_bytes([
                    (r[0] >> 8) as u8,
                    r[0] as u8,
                    (r[1] >> 8) as u8,
                    r[1] as u8,
                ]);
                *h.lock().unwrap() = a;
                let d = if *f.lock().unwrap() {
                    (CIRCUIT - a).max(0.0)
                } else {
                    CIRCUIT
                };
                *draw.lock().unwrap() = f64::from(d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // The policy's 20 A reaches the Gen3: given 20 A, the meter shows 12 A of house load, the
    // Gen3 draws 20 A and its vitals say so.
    let l = wait(&mut rx, 20, "the Gen3 to draw what it is given", |l| {
        l.allocated == CentiAmps::from_amps(20)
            && l.draw.is_some_and(|d| (d.amps() - 20.0).abs() <= 0.5)
    })
    .await;
    assert!(!l.stale && l.problem.is_none(), "{l:?}");
    assert_eq!(*house.lock().unwrap(), 12.0);
    assert!(engine.handle.status().policy.budget <= CentiAmps::from_amps(20));

    // Stop: the policy gives nothing, the meter shows the whole circuit, the Gen3 stops.
    engine
        .handle
        .command(Command::PatchSettings(
            json!({"non_scheduled_action": "stop"}),
        ))
        .await
        .unwrap();
    let l = wait(&mut rx, 20, "the Gen3 to stop", |l| {
        l.allocated == CentiAmps::ZERO && l.draw == Some(CentiAmps::ZERO)
    })
    .await;
    assert_eq!(
        *house.lock().unwrap(),
        CIRCUIT,
        "a full circuit on the meter"
    );
    assert!(l.problem.is_none(), "{l:?}");

    // A Gen3 that ignores the meter (draws its whole circuit while given 20 A) is reported, and
    // its real draw is what it counts for.
    *follow.lock().unwrap() = false;
    engine
        .handle
        .command(Command::PatchSettings(
            json!({"non_scheduled_action": "charge"}),
        ))
        .await
        .unwrap();
    let l = wait(&mut rx, 20, "the not-following Gen3 to be reported", |l| {
        l.problem
            .as_deref()
            .is_some_and(|p| p.contains("does not follow the emulated meter"))
    })
    .await;
    assert!(
        l.reserved >= CentiAmps::from_f64(f64::from(CIRCUIT)),
        "{l:?}"
    );
    assert!(
        l.allocated <= CentiAmps::from_amps(20),
        "never given more than the policy's 20 A: {l:?}"
    );

    reader.abort();
    engine.shutdown().await;
}
