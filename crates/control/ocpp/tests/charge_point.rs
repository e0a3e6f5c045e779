//! twcmanager as an OCPP 1.6J charge point against a real central system: the PyPI `ocpp`
//! library (`tests/central_system.py`), which checks every message of ours against the OCPP 1.6
//! JSON schemas. The real engine drives a simulated TWC `7777` with a car plugged in.

mod common;

use common::{Cs, free_port, python};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;
use twc_control_ocpp::{Ocpp, OcppConfig};
use twc_core::engine::EngineHandle;
use twc_core::model::Settings;
use twc_core::plugin::{ControlSurface, PluginError, Secret};
use twc_testkit::engine::{TWC, engine_with_twc, wait_status};

fn config(url: String, state: &std::path::Path) -> OcppConfig {
    OcppConfig {
        url,
        charge_point_id: "site1".into(),
        state_file: state.display().to_string(),
        meter_interval_secs: 2,
        reconnect_max_secs: 1,
        call_timeout_secs: 10,
        ..OcppConfig::default()
    }
}

fn serve(cfg: OcppConfig, h: EngineHandle) -> JoinHandle<Result<(), PluginError>> {
    let s: Box<dyn ControlSurface> = Box::new(Ocpp::new("control.ocpp", cfg).unwrap());
    tokio::spawn(s.serve(h))
}

fn charging_settings() -> Settings {
    Settings {
        non_scheduled_amps: 16.0,
        ..Settings::default()
    }
}

fn offered(h: &EngineHandle) -> f64 {
    h.status()
        .slaves
        .iter()
        .find(|s| s.id == TWC)
        .map(|s| s.offered.amps())
        .unwrap_or(0.0)
}

async fn wait_offered(h: &EngineHandle, secs: u64, what: &str, ok: impl Fn(f64) -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !ok(offered(h)) {
        assert!(
            tokio::time::Instant::now() < end,
            "{what}: offered {} A",
            offered(h)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn has_measurand(mv: &Value, m: &str) -> bool {
    mv["meterValue"][0]["sampledValue"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["measurand"] == m))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_status_transactions_profiles_and_remote_start_stop() {
    let Some(py) = python() else { return };
    let port = free_port();
    let mut cs = Cs::start(&py, port, &[]).await;
    let (engine, sim) = engine_with_twc(charging_settings()).await;
    let h = engine.handle.clone();
    let dir = tempfile::tempdir().unwrap();
    let task = serve(
        config(
            format!("ws://127.0.0.1:{port}/ocpp"),
            &dir.path().join("ocpp.json"),
        ),
        h.clone(),
    );

    let conn = cs.wait(20, |e| e["ev"] == "connected").await;
    assert_eq!(conn["path"], "/ocpp/site1");
    assert_eq!(conn["subprotocol"], "ocpp1.6");
    let boot = cs.wait_call(20, "BootNotification", |_| true).await;
    assert_eq!(boot["chargePointModel"], "TWC Gen2");
    cs.wait_call(20, "StatusNotification", |p| p["connectorId"] == 0)
        .await;
    cs.wait_call(20, "StatusNotification", |p| p["connectorId"] == 1)
        .await;
    let start = cs
        .wait_call(60, "StartTransaction", |p| p["connectorId"] == 1)
        .await;
    let tag = start["idTag"].as_str().unwrap();
    assert!(!tag.is_empty() && tag.len() <= 20, "{start}");
    cs.wait_call(30, "StatusNotification", |p| p["status"] == "Charging")
        .await;
    let mv = cs
        .wait_call(30, "MeterValues", |p| p["transactionId"] == 1000)
        .await;
    for m in [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
        "Current.Offered",
    ] {
        assert!(has_measurand(&mv, m), "{m} missing: {mv}");
    }
    wait_offered(&h, 30, "the policy's 16 A", |a| a == 16.0).await;

    // A TxProfile in amps with a schedule: 8 A now, 10 A from 8 s on.
    let r = cs
        .call(
            "SetChargingProfile",
            json!({"connectorId": 1, "csChargingProfiles": {
                "chargingProfileId": 1, "transactionId": 1000, "stackLevel": 1,
                "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 8.0}, {"startPeriod": 8, "limit": 10.0}]}}}),
        )
        .await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    wait_offered(&h, 10, "8 A from the profile", |a| a > 0.0 && a <= 8.0).await;
    // Relative to the transaction's start (long ago): already in the 10 A period after 8 s.
    wait_offered(&h, 20, "10 A from the second period", |a| a == 10.0).await;

    // A profile above the wiring lifts nothing: the TWC's cap (16 A) holds.
    let r = cs
        .call(
            "SetChargingProfile",
            json!({"connectorId": 1, "csChargingProfiles": {
                "chargingProfileId": 2, "transactionId": 1000, "stackLevel": 2,
                "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 80.0}]}}}),
        )
        .await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(offered(&h) <= 16.0, "{}", offered(&h));
    }
    // A TxProfile for a transaction that does not exist, or on connector 0, is rejected.
    for (conn, tx) in [(1, 4242), (0, 1000)] {
        let r = cs
            .call(
                "SetChargingProfile",
                json!({"connectorId": conn, "csChargingProfiles": {
                    "chargingProfileId": 3, "transactionId": tx, "stackLevel": 3,
                    "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
                    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 6.0}]}}}),
            )
            .await;
        assert_eq!(r["payload"]["status"], "Rejected", "{r}");
    }
    let r = cs.call("ClearChargingProfile", json!({"id": 2})).await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    wait_offered(&h, 15, "back to profile 1's 10 A", |a| a == 10.0).await;
    let r = cs.call("ClearChargingProfile", json!({})).await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    wait_offered(&h, 15, "back to 16 A", |a| a == 16.0).await;

    // Remote stop: StopTransaction (reason Remote) and the car held at 0 A.
    let r = cs
        .call("RemoteStopTransaction", json!({"transactionId": 1000}))
        .await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    let stop = cs
        .wait_call(20, "StopTransaction", |p| p["transactionId"] == 1000)
        .await;
    assert_eq!(stop["reason"], "Remote");
    assert!(stop["meterStop"].as_i64().unwrap() >= start["meterStart"].as_i64().unwrap());
    wait_offered(&h, 20, "held at 0 A", |a| a == 0.0).await;
    let r = cs
        .call("RemoteStopTransaction", json!({"transactionId": 1000}))
        .await;
    assert_eq!(r["payload"]["status"], "Rejected", "{r}");

    // Remote start with our idTag: a new transaction with it.
    let r = cs
        .call(
            "RemoteStartTransaction",
            json!({"connectorId": 1, "idTag": "TAG1"}),
        )
        .await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    let start2 = cs
        .wait_call(60, "StartTransaction", |p| p["idTag"] == "TAG1")
        .await;
    assert_eq!(start2["connectorId"], 1);
    wait_offered(&h, 30, "charging again", |a| a == 16.0).await;

    // The car leaves: StopTransaction EVDisconnected, connector Available.
    sim.unplug(0).unwrap();
    let stop2 = cs
        .wait_call(60, "StopTransaction", |p| p["transactionId"] == 1001)
        .await;
    assert_eq!(stop2["reason"], "EVDisconnected");
    cs.wait_call(30, "StatusNotification", |p| {
        p["connectorId"] == 1 && p["status"] == "Available"
    })
    .await;
    cs.assert_no_callerror_sent();
    assert!(!task.is_finished());
    task.abort();
    cs.stop().await;
    let _ = wait_status(&engine, 5, |_| true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_messages_get_a_callerror_and_configuration_works() {
    let Some(py) = python() else { return };
    let port = free_port();
    let mut cs = Cs::start(&py, port, &[]).await;
    let (engine, _sim) = engine_with_twc(charging_settings()).await;
    let h = engine.handle.clone();
    let dir = tempfile::tempdir().unwrap();
    let task = serve(
        config(
            format!("ws://127.0.0.1:{port}"),
            &dir.path().join("ocpp.json"),
        ),
        h.clone(),
    );
    cs.wait_call(20, "StatusNotification", |p| p["connectorId"] == 1)
        .await;

    let cases = [
        ("garbage", "-1", "ProtocolError"),
        (r#"{"not": "an array"}"#, "-1", "ProtocolError"),
        (r#"[2,"u1","FooBar",{}]"#, "u1", "NotImplemented"),
        (
            r#"[2,"u2","SetChargingProfile",{"connectorId":"x","csChargingProfiles":{}}]"#,
            "u2",
            "TypeConstraintViolation",
        ),
        (
            r#"[2,"u3","RemoteStopTransaction",{}]"#,
            "u3",
            "FormationViolation",
        ),
        (r#"[2,"u4","Reset",5]"#, "u4", "FormationViolation"),
        (r#"[2,"u5","Reset"]"#, "u5", "ProtocolError"),
        (r#"[7,"u6","Reset",{}]"#, "u6", "ProtocolError"),
    ];
    for (raw, id, code) in cases {
        cs.cmd(json!({"raw": raw})).await;
        let e = cs
            .wait(10, |e| {
                e["ev"] == "recv" && e["msg"][0] == 4 && e["msg"][1] == id && e["msg"][2] == code
            })
            .await;
        assert!(e["msg"][3].as_str().is_some_and(|d| !d.is_empty()), "{e}");
        // Clear it so that "-1" can match again.
        cs.events.lock().unwrap().retain(|x| x != &e);
    }
    // A huge unknown action: answered, bounded.
    cs.cmd(json!({"raw": format!(r#"[2,"u7","{}",{{}}]"#, "X".repeat(100_000))}))
        .await;
    let e = cs
        .wait(10, |e| e["ev"] == "recv" && e["msg"][1] == "u7")
        .await;
    assert!(e.to_string().len() < 1000);
    // An answer to nothing we asked is ignored.
    cs.cmd(json!({"raw": r#"[3,"nothing",{}]"#})).await;

    // Still alive: configuration through the library.
    let r = cs
        .call(
            "GetConfiguration",
            json!({"key": ["HeartbeatInterval", "NumberOfConnectors", "Nope"]}),
        )
        .await;
    let keys = r["payload"]["configuration_key"].to_string();
    assert!(
        keys.contains("HeartbeatInterval") && keys.contains("NumberOfConnectors"),
        "{r}"
    );
    assert_eq!(r["payload"]["unknown_key"], json!(["Nope"]), "{r}");
    for (key, value, want) in [
        ("MeterValueSampleInterval", "5", "Accepted"),
        ("HeartbeatInterval", "0", "Rejected"),
        ("NumberOfConnectors", "3", "Rejected"),
        ("Nope", "1", "NotSupported"),
    ] {
        let r = cs
            .call("ChangeConfiguration", json!({"key": key, "value": value}))
            .await;
        assert_eq!(r["payload"]["status"], want, "{key}: {r}");
    }
    // TriggerMessage and a ChargePointMaxProfile in watts: 6 A at the site's volts and phases.
    let r = cs
        .call("TriggerMessage", json!({"requestedMessage": "Heartbeat"}))
        .await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    cs.wait_call(10, "Heartbeat", |_| true).await;
    let site = h.status().site;
    let watts = 6.0 * site.voltage * f64::from(site.phases);
    let r = cs
        .call(
            "SetChargingProfile",
            json!({"connectorId": 0, "csChargingProfiles": {
                "chargingProfileId": 9, "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile", "chargingProfileKind": "Absolute",
                "chargingSchedule": {"chargingRateUnit": "W", "startSchedule": "2020-01-01T00:00:00Z",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": watts, "numberPhases": site.phases}]}}}),
        )
        .await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    wait_offered(&h, 20, "6 A from the W profile", |a| a > 0.0 && a <= 6.0).await;
    // Inoperative: 0 A.
    let r = cs
        .call(
            "ChangeAvailability",
            json!({"connectorId": 0, "type": "Inoperative"}),
        )
        .await;
    assert!(
        matches!(
            r["payload"]["status"].as_str(),
            Some("Accepted" | "Scheduled")
        ),
        "{r}"
    );
    wait_offered(&h, 20, "inoperative", |a| a == 0.0).await;
    cs.assert_no_callerror_sent();
    assert!(!task.is_finished(), "the plugin ended");
    task.abort();
    cs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_queued_offline_survive_a_restart_and_arrive_in_order() {
    let Some(py) = python() else { return };
    let port = free_port();
    let (engine, sim) = engine_with_twc(charging_settings()).await;
    let h = engine.handle.clone();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ocpp.json");
    let cfg = config(format!("ws://127.0.0.1:{port}"), &state);
    // No central system yet: the transaction and its meter values go to the file.
    let first = serve(cfg.clone(), h.clone());
    wait_offered(&h, 30, "charging", |a| a == 16.0).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = std::fs::read_to_string(&state).unwrap_or_default();
        if s.contains("StartTransaction") && s.matches("MeterValues").count() >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "not queued: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // twcmanager stops; meanwhile the car leaves.
    first.abort();
    let _ = first.await;
    sim.unplug(0).unwrap();
    wait_status(&engine, 30, |s| s.slaves.iter().all(|s| !s.charging)).await;
    // Started again, still offline: it ends the open transaction from the file.
    let second = serve(cfg, h.clone());
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&state)
        .unwrap_or_default()
        .contains("StopTransaction")
    {
        assert!(
            tokio::time::Instant::now() < end,
            "StopTransaction not queued"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The central system comes up: everything arrives, in order, with its transactionId.
    let cs = Cs::start(&py, port, &["--first-tx", "77"]).await;
    let stop = cs.wait_call(60, "StopTransaction", |_| true).await;
    assert_eq!(stop["transactionId"], 77, "{stop}");
    assert_eq!(stop["reason"], "EVDisconnected");
    let actions: Vec<String> = cs
        .received()
        .iter()
        .filter(|m| m[0] == 2)
        .map(|m| m[2].as_str().unwrap().to_string())
        .filter(|a| a.contains("Transaction") || a == "MeterValues")
        .collect();
    let start_at = actions
        .iter()
        .position(|a| a == "StartTransaction")
        .unwrap();
    let stop_at = actions.iter().position(|a| a == "StopTransaction").unwrap();
    assert_eq!(start_at, 0, "{actions:?}");
    assert_eq!(stop_at, actions.len() - 1, "{actions:?}");
    assert!(
        actions[1..stop_at].iter().all(|a| a == "MeterValues") && stop_at >= 3,
        "{actions:?}"
    );
    let mvs = cs.calls("MeterValues");
    assert!(mvs.iter().all(|(_, p)| p["transactionId"] == 77), "{mvs:?}");
    let start = &cs.calls("StartTransaction")[0].1;
    assert!(stop["meterStop"].as_i64() >= start["meterStart"].as_i64());
    // Boot came first; the queue is empty afterwards.
    assert_eq!(cs.received()[0][2], "BootNotification");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(s["queue"], json!([]), "{s}");
    cs.assert_no_callerror_sent();
    second.abort();
    cs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_profile_2_tls_and_basic_auth() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl makes the test certificate");
    let port = free_port();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let cs = Cs::start(
        &py,
        port,
        &[
            "--cert",
            &c,
            "--key",
            &k,
            "--user",
            "site1",
            "--password",
            "s3cret-s3cret",
        ],
    )
    .await;
    let (engine, _sim) = engine_with_twc(charging_settings()).await;
    let h = engine.handle.clone();
    // A wrong password is refused (401) and retried, never booted.
    let mut bad = config(
        format!("wss://localhost:{port}"),
        &dir.path().join("a.json"),
    );
    bad.ca_file = c.clone();
    bad.password = Secret::new("wrong-password");
    let t = serve(bad.clone(), h.clone());
    cs.wait(20, |e| e["ev"] == "refused").await;
    t.abort();
    assert!(cs.calls("BootNotification").is_empty());
    // The right one: TLS, basic auth with the charge point id as user.
    let mut good = bad;
    good.password = Secret::new("s3cret-s3cret");
    good.state_file = dir.path().join("b.json").display().to_string();
    let t = serve(good, h.clone());
    let conn = cs.wait(20, |e| e["ev"] == "connected").await;
    assert!(
        conn["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic ")
    );
    cs.wait_call(20, "BootNotification", |_| true).await;
    cs.wait_call(20, "StatusNotification", |p| p["connectorId"] == 1)
        .await;
    t.abort();
    cs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_id_tag_stops_the_car_and_reset_reconnects() {
    let Some(py) = python() else { return };
    let port = free_port();
    let mut cs = Cs::start(&py, port, &[]).await;
    let (engine, _sim) = engine_with_twc(charging_settings()).await;
    let h = engine.handle.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        format!("ws://127.0.0.1:{port}"),
        &dir.path().join("ocpp.json"),
    );
    // The test central system blocks this idTag.
    cfg.id_tag = "BLOCKED".into();
    cfg.vin_as_id_tag = false;
    cfg.authorize = true;
    let task = serve(cfg, h.clone());
    cs.wait_call(60, "Authorize", |p| p["idTag"] == "BLOCKED")
        .await;
    cs.wait_call(60, "StartTransaction", |p| p["idTag"] == "BLOCKED")
        .await;
    let stop = cs
        .wait_call(30, "StopTransaction", |p| p["transactionId"] == 1000)
        .await;
    assert_eq!(stop["reason"], "DeAuthorized");
    wait_offered(&h, 20, "a refused car is held at 0 A", |a| a == 0.0).await;
    cs.wait_call(30, "StatusNotification", |p| {
        p["connectorId"] == 1 && p["status"] == "Finishing"
    })
    .await;
    // Held: no new transaction while the car stays.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(cs.calls("StartTransaction").len(), 1);

    // Reset: the connection closes and a new BootNotification follows.
    let r = cs.call("Reset", json!({"type": "Soft"})).await;
    assert_eq!(r["payload"]["status"], "Accepted", "{r}");
    cs.wait(20, |e| e["ev"] == "closed").await;
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while cs.calls("BootNotification").len() < 2 {
        assert!(
            tokio::time::Instant::now() < end,
            "no second BootNotification"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cs.assert_no_callerror_sent();
    assert!(!task.is_finished());
    task.abort();
    cs.stop().await;
}
