//! Central-system mode against real OCPP chargers: `tests/charger.py`, the PyPI `ocpp`
//! library's ChargePoint (with `websockets`), which checks every message of ours against the
//! OCPP 1.6 JSON schemas. The real engine runs a simulated TWC `7777` (a car charging) next to
//! them: 32 A for the site, 16 A per charger.

mod common;

use common::{Cs, free_port, python};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;
use twc_control_ocpp::central::{CentralConfig, ChargerConfig};
use twc_control_ocpp::{Mode, Ocpp, OcppConfig};
use twc_core::engine::{Command, EngineHandle};
use twc_core::model::{LoadPointState, LoadPointStatus, Settings};
use twc_core::plugin::{ControlSurface, PluginError, Secret};
use twc_testkit::engine::{engine_with_twc, wait_status};

fn charger(id: &str, password: &str) -> ChargerConfig {
    ChargerConfig {
        id: id.into(),
        password: Secret::new(password),
        max_amps: 16.0,
        min_amps: None,
        phases: 1,
    }
}

fn config(port: u16, chargers: Vec<ChargerConfig>) -> OcppConfig {
    OcppConfig {
        mode: Mode::Central,
        central: CentralConfig {
            listen: format!("127.0.0.1:{port}"),
            chargers,
            id_tags: vec!["TAG1".into()],
            meter_interval_secs: 1,
            stale_after_secs: 3.0,
            remove_after_secs: 6,
            follow_grace_secs: 2.0,
            call_timeout_secs: 5,
            ..CentralConfig::default()
        },
        ..OcppConfig::default()
    }
}

fn serve(cfg: OcppConfig, h: EngineHandle) -> JoinHandle<Result<(), PluginError>> {
    let s: Box<dyn ControlSurface> = Box::new(Ocpp::new("control.ocpp", cfg).unwrap());
    tokio::spawn(s.serve(h))
}

fn settings() -> Settings {
    Settings {
        non_scheduled_amps: 32.0,
        ..Settings::default()
    }
}

fn lp(h: &EngineHandle, name: &str) -> Option<LoadPointStatus> {
    h.status().load_points.into_iter().find(|l| l.name == name)
}

fn limit(p: &Value) -> f64 {
    p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        .as_f64()
        .unwrap()
}

async fn ok(cp: &mut Cs, action: &str, payload: Value) -> Value {
    let r = cp.call(action, payload).await;
    assert!(r.get("error").is_none(), "{action}: {r}");
    r["payload"].clone()
}

async fn boot_and_charge(cp: &mut Cs, car: f64) -> i64 {
    let b = ok(
        cp,
        "BootNotification",
        json!({"chargePointVendor": "Test", "chargePointModel": "Py"}),
    )
    .await;
    assert_eq!(b["status"], "Accepted");
    let st = |s: &str| json!({"connectorId": 1, "errorCode": "NoError", "status": s});
    ok(cp, "StatusNotification", st("Preparing")).await;
    let start = ok(
        cp,
        "StartTransaction",
        json!({"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
               "timestamp": "2026-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(start["id_tag_info"]["status"], "Accepted");
    ok(cp, "StatusNotification", st("Charging")).await;
    cp.cmd(json!({ "car": car })).await;
    start["transaction_id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charger_becomes_a_load_point_that_follows_the_policy() {
    let Some(py) = python() else { return };
    let port = free_port();
    let (engine, _sim) = engine_with_twc(settings()).await;
    let h = engine.handle.clone();
    let task = serve(config(port, vec![charger("cp1", "pw1")]), h.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("ws://127.0.0.1:{port}/ocpp");

    // A wrong password and an unknown charge point id are refused at the handshake.
    let bad = Cs::charger(&py, &url, "cp1", &["--password", "nope"]).await;
    bad.wait(5, |e| e["ev"] == "refused").await;
    let unknown = Cs::charger(&py, &url, "cp9", &[]).await;
    unknown.wait(5, |e| e["ev"] == "refused").await;

    let mut cp = Cs::charger(&py, &url, "cp1", &["--password", "pw1"]).await;
    let c = cp.wait(5, |e| e["ev"] == "connected").await;
    assert_eq!(c["subprotocol"], "ocpp1.6");
    let b = ok(
        &mut cp,
        "BootNotification",
        json!({"chargePointVendor": "Test", "chargePointModel": "Py", "firmwareVersion": "1.0"}),
    )
    .await;
    assert_eq!(
        (b["status"].as_str(), b["interval"].as_i64()),
        (Some("Accepted"), Some(60))
    );
    let hb = ok(&mut cp, "Heartbeat", json!({})).await;
    assert!(hb["current_time"].is_string(), "{hb}");
    let st = |s: &str| json!({"connectorId": 1, "errorCode": "NoError", "status": s});
    ok(&mut cp, "StatusNotification", st("Available")).await;
    let name = "ocpp.cp1.1";
    wait_status(&engine, 10, |s| {
        s.load_points
            .iter()
            .any(|l| l.name == name && l.kind == "ocpp" && l.state == LoadPointState::Idle)
    })
    .await;
    // It asks for the meter values it needs.
    cp.wait_call(10, "ChangeConfiguration", |p| {
        p["key"] == "MeterValueSampleInterval"
    })
    .await;
    // Its allocation arrives as a profile.
    let first = cp.wait_call(10, "SetChargingProfile", |_| true).await;
    assert_eq!(first["connectorId"], 1);
    let prof = &first["csChargingProfiles"];
    assert_eq!(prof["chargingProfilePurpose"], "TxDefaultProfile");
    assert_eq!(prof["stackLevel"], 1);
    assert_eq!(prof["chargingSchedule"]["chargingRateUnit"], "A");
    assert!((0.0..=16.0).contains(&limit(&first)), "{first}");

    // Authorize against the allow-list.
    let a = ok(&mut cp, "Authorize", json!({"idTag": "TAG1"})).await;
    assert_eq!(a["id_tag_info"]["status"], "Accepted");
    let a = ok(&mut cp, "Authorize", json!({"idTag": "OTHER"})).await;
    assert_eq!(a["id_tag_info"]["status"], "Invalid");

    // A transaction: the policy's allocation arrives as a profile and the draw in Status.
    let tx = boot_and_charge(&mut cp, 16.0).await;
    assert!(tx > 0);
    let s = wait_status(&engine, 30, |s| {
        s.load_points.iter().any(|l| {
            l.name == name
                && l.state == LoadPointState::Charging
                && l.allocated.amps() >= 6.0
                && l.draw
                    .is_some_and(|d| (d.amps() - l.allocated.amps()).abs() < 0.2)
        })
    })
    .await;
    let l = s.load_points.iter().find(|l| l.name == name).unwrap();
    assert!(!l.stale && l.problem.is_none(), "{l:?}");
    let given = l.allocated.amps();
    let got = cp.received_calls("SetChargingProfile");
    let last = limit(&got.last().unwrap().1);
    assert!(
        (last - given).abs() < 0.11,
        "profile {last} A, allocated {given} A"
    );
    assert_eq!(l.details["transaction"]["transaction_id"], tx);
    assert_eq!(l.details["power_w"].as_f64().map(|p| p > 0.0), Some(true));

    // The policy says stop: 0 A.
    h.command(Command::SetNonScheduled {
        action: Some("stop".into()),
        amps: None,
    })
    .await
    .unwrap();
    cp.wait_call(20, "SetChargingProfile", |p| {
        limit(p) == 0.0 && p["connectorId"] == 1
    })
    .await;
    wait_status(&engine, 20, |s| {
        s.load_points.iter().any(|l| {
            l.name == name && l.allocated.amps() == 0.0 && l.draw.is_some_and(|d| d.amps() == 0.0)
        })
    })
    .await;

    // Malformed JSON and an unknown action: a CALLERROR each, and the connection survives.
    cp.cmd(json!({"raw": "{not json"})).await;
    let e = cp
        .wait(10, |e| {
            e["ev"] == "recv" && e["msg"][0] == 4 && e["msg"][1] == "-1"
        })
        .await;
    assert_eq!(e["msg"][2], "ProtocolError");
    cp.cmd(json!({"raw": "[2,\"u1\",\"FooBar\",{}]"})).await;
    let e = cp
        .wait(10, |e| {
            e["ev"] == "recv" && e["msg"][0] == 4 && e["msg"][1] == "u1"
        })
        .await;
    assert_eq!(e["msg"][2], "NotImplemented");
    cp.cmd(json!({"raw": "[2,\"u2\",\"StatusNotification\",{\"connectorId\":\"x\"}]"}))
        .await;
    let e = cp
        .wait(10, |e| {
            e["ev"] == "recv" && e["msg"][0] == 4 && e["msg"][1] == "u2"
        })
        .await;
    assert!(
        e["msg"][3].as_str().unwrap().contains("StatusNotification"),
        "{e}"
    );
    ok(&mut cp, "Heartbeat", json!({})).await;

    // A flood: past the burst (4 × 20) CALLERROR "busy"; the connection survives.
    cp.cmd(json!({"flood": 150})).await;
    cp.wait(10, |e| e["ev"] == "flooded").await;
    let busy = cp
        .wait(10, |e| {
            e["ev"] == "recv" && e["msg"][0] == 4 && e["msg"][2] == "GenericError"
        })
        .await;
    assert!(busy["msg"][3].as_str().unwrap().contains("busy"), "{busy}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    ok(&mut cp, "Heartbeat", json!({})).await;

    ok(
        &mut cp,
        "StopTransaction",
        json!({"transactionId": tx, "meterStop": 5000, "timestamp": "2026-01-01T01:00:00Z",
               "reason": "EVDisconnected"}),
    )
    .await;
    cp.cmd(json!({ "car": null })).await;
    ok(&mut cp, "StatusNotification", st("Available")).await;
    let s = wait_status(&engine, 10, |s| {
        s.load_points
            .iter()
            .any(|l| l.name == name && l.details["last_transaction"]["energy_wh"] == 4000)
    })
    .await;
    assert!(!s.load_points[0].stale);
    cp.assert_no_callerror_sent();

    // It disconnects: stale (counted at its maximum), then removed.
    cp.cmd(json!({"close": true})).await;
    wait_status(&engine, 10, |s| {
        s.load_points
            .iter()
            .any(|l| l.name == name && l.stale && l.reserved.amps() == 16.0)
    })
    .await;
    wait_status(&engine, 10, |s| {
        s.load_points.iter().all(|l| l.name != name)
    })
    .await;
    assert!(lp(&h, name).is_none());
    assert!(!task.is_finished(), "the plugin keeps serving");
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowering_is_sent_and_answered_before_another_chargers_raise() {
    let Some(py) = python() else { return };
    let port = free_port();
    let (engine, _sim) = engine_with_twc(settings()).await;
    let h = engine.handle.clone();
    let _task = serve(
        config(port, vec![charger("a", ""), charger("b", "")]),
        h.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("ws://127.0.0.1:{port}");
    let mut a = Cs::charger(&py, &url, "a", &[]).await;
    boot_and_charge(&mut a, 16.0).await;
    let s = wait_status(&engine, 30, |s| {
        s.load_points.iter().any(|l| {
            l.name == "ocpp.a.1"
                && l.allocated.amps() >= 6.0
                && l.draw
                    .is_some_and(|d| (d.amps() - l.allocated.amps()).abs() < 0.2)
        })
    })
    .await;
    let a_before = s.load_points[0].allocated.amps();
    let n_a = a.received_calls("SetChargingProfile").len();

    let mut b = Cs::charger(&py, &url, "b", &[]).await;
    boot_and_charge(&mut b, 16.0).await;
    wait_status(&engine, 30, |s| {
        s.load_points
            .iter()
            .any(|l| l.name == "ocpp.b.1" && l.allocated.amps() >= 6.0)
    })
    .await;
    let b_raise = b
        .wait_call(20, "SetChargingProfile", |p| limit(p) > 0.0)
        .await;
    let t_b = b
        .received_calls("SetChargingProfile")
        .into_iter()
        .find(|(_, p)| *p == b_raise)
        .unwrap()
        .0;
    // A was lowered, and answered, before B's raise was sent.
    let lowered = a.received_calls("SetChargingProfile")[n_a..]
        .iter()
        .find(|(_, p)| limit(p) < a_before - 0.05)
        .cloned()
        .expect("a lower profile for a");
    assert!(
        lowered.0 < t_b,
        "a lowered at {}, b raised at {t_b}",
        lowered.0
    );
    let answered = a
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["ev"] == "send" && e["msg"][0] == 3)
        .filter_map(|e| e["t"].as_f64())
        .find(|t| *t >= lowered.0)
        .unwrap();
    assert!(
        answered < t_b,
        "a answered at {answered}, b raised at {t_b}"
    );
    // The sum stays within the wiring: TWC offer + both limits ≤ 32 A.
    let s = h.status();
    let offered: f64 = s.slaves.iter().map(|x| x.offered.amps()).sum();
    let lps: f64 = s.load_points.iter().map(|l| l.allocated.amps()).sum();
    assert!(offered + lps <= 32.0 + 1e-6, "{offered} + {lps}");
    a.assert_no_callerror_sent();
    b.assert_no_callerror_sent();
}
