//! `/api/v2/policy` and TWCManager's `/api/getPolicy` list the engine's own policies in the order
//! it tries them (`Status.policy.rules`), custom policies included.

mod common;

use common::*;
use serde_json::Value;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use twc_core::model::Settings;
use twc_core::policy::{CustomPolicy, Position};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_apis_list_the_engines_policies_custom_ones_included() {
    let mut ec = engine_config();
    ec.policy.rules.custom.push(CustomPolicy {
        name: "Night Boost".into(),
        position: Position::After,
        conditions: Vec::new(),
        amps: Some(6.0),
        latch_minutes: 0.0,
        flex_amps: None,
    });
    let meter = Box::new(FailingMeter {
        n: AtomicU64::new(0),
    });
    let d = demo_with_meter(1, Settings::default(), ec, meter).await;
    let s = d
        .wait_until(Duration::from_secs(20), |s| !s.policy.rules.is_empty())
        .await
        .expect("a policy evaluation");
    let want = [
        "Charge Now",
        "Scheduled Charging",
        "Night Boost",
        "Non Scheduled Charging",
    ];
    assert_eq!(s.policy.rules, want);

    let p = d.json("/api/v2/policy").await;
    assert_eq!(p["active"]["name"], "Night Boost");
    let rules = p["rules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, want);
    let active: Vec<&str> = rules
        .iter()
        .filter(|r| r["active"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["Night Boost"]);

    // TWCManager's shape: one object per rule with name, match[], condition[], value[].
    let c = d.json("/api/getPolicy").await;
    let c = c.as_array().unwrap();
    let names: Vec<&str> = c.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, want);
    for r in c {
        for k in ["match", "condition", "value"] {
            assert!(r[k].is_array(), "{k} in {r}");
        }
    }
    assert_eq!(c[0]["charge_amps"], "settings.chargeNowAmps");

    let r = d
        .post("/api/setPolicy", r#"{"policy": "Night Boost"}"#)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["policy"], "Night Boost");
}
