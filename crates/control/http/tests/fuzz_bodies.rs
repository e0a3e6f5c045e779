//! Random bodies at every state-changing route: never a 5xx, never a dropped connection, and
//! never an offer or budget above the wiring limit.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/chargeNow"),
    ("POST", "/api/cancelChargeNow"),
    ("POST", "/api/addConsumptionOffset"),
    ("POST", "/api/deleteConsumptionOffset"),
    ("POST", "/api/setConsumptionOffset"),
    ("POST", "/api/setPolicy"),
    ("POST", "/api/setLatLon"),
    ("POST", "/api/setSetting"),
    ("POST", "/api/saveSettings"),
    ("POST", "/api/setScheduledChargingSettings"),
    ("POST", "/api/sendStartCommand"),
    ("POST", "/api/sendStopCommand"),
    ("POST", "/api/checkArrival"),
    ("POST", "/api/checkDeparture"),
    ("POST", "/api/sendDebugCommand"),
    ("POST", "/api/sendTeslaAPICommand"),
    ("POST", "/api/v2/charge-now"),
    ("DELETE", "/api/v2/charge-now"),
    ("PATCH", "/api/v2/settings"),
    ("PUT", "/api/v2/schedules"),
    ("PUT", "/api/v2/offsets/fuzz"),
    ("DELETE", "/api/v2/offsets/fuzz"),
    ("POST", "/api/v2/slaves/start"),
    ("POST", "/api/v2/slaves/stop"),
    ("POST", "/api/v2/slaves/1111/start"),
];

const KEYS: &[&str] = &[
    "chargeNowRate",
    "chargeNowDuration",
    "offsetName",
    "offsetValue",
    "offsetUnit",
    "offset",
    "policy",
    "lat",
    "lon",
    "setting",
    "value",
    "enabled",
    "startingMinute",
    "endingMinute",
    "monday",
    "sunday",
    "amps",
    "flexBatterySize",
    "commandName",
    "customCommand",
    "vehicleID",
    "parameters",
    "duration_secs",
    "non_scheduled_action",
    "non_scheduled_amps",
    "home",
    "windows",
    "weekday",
    "start_minute",
    "end_minute",
    "unit",
    "clear_home",
    "max_grid_import",
    "flex_amps",
    "vin_allow",
    "vin_deny",
    "clear_max_grid_import",
    "day_amps",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(6),
            Just(16),
            Just(32),
            Just(33),
            Just(-1),
            Just(1439),
            Just(1440),
            Just(100000)
        ]
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("A"),
            Just("W"),
            Just("16"),
            Just("Custom"),
            Just("FC19"),
            Just("green"),
            Just("charge"),
            Just("Charge Now")
        ]
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(KEYS).prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => "[ -~]{0,40}".prop_map(String::into_bytes),
    ]
}

#[test]
fn random_bodies_never_cause_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = rt.block_on(async {
        let d = demo(2).await;
        d.wait_slaves(2).await;
        d
    });
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(prop::sample::select(ROUTES), body(), any::<bool>()),
            |((method, path), body, json_ct)| {
                let status = rt.block_on(async {
                    let mut req = d
                        .http
                        .request(method.parse().unwrap(), d.url(path))
                        .body(body.clone());
                    if json_ct {
                        req = req.header("content-type", "application/json");
                    }
                    req.send().await.map(|r| r.status())
                });
                let status = status.map_err(|e| {
                    TestCaseError::fail(format!("{method} {path}: connection failed: {e}"))
                })?;
                prop_assert!(
                    !status.is_server_error(),
                    "{} {} answered {} to {:?}",
                    method,
                    path,
                    status,
                    String::from_utf8_lossy(&body)
                );
                let s = d.engine.status();
                prop_assert!(s.policy.budget <= s.wiring_max_all);
                let sum: u32 = s.slaves.iter().map(|x| u32::from(x.offered.0)).sum();
                prop_assert!(sum <= u32::from(s.wiring_max_all.0));
                for x in &s.slaves {
                    prop_assert!(x.offered <= s.wiring_max_per_twc);
                }
                Ok(())
            },
        )
        .unwrap();
    // The server is still healthy afterwards.
    rt.block_on(async {
        assert_eq!(d.get("/api/getStatus").await.status(), 200);
        let s = d.settings().await;
        assert!(s.non_scheduled_amps <= 32.0);
        assert!(s.schedule.amps <= 32.0);
        assert!(s.charge_now.is_none_or(|c| c.amps <= 32.0));
        let _ = json!(null);
    });
}
