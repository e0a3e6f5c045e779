//! TeslaMate's topics: the documented and a charging-session fixture parsed, and the plugin
//! against the real Mosquitto.

use std::collections::HashMap;
use std::time::Duration;
use twc_core::plugin::{PluginConfig, VehicleApi};
use twc_testkit::{fixture, mqtt_broker, unique_topic_prefix};
use twc_vehicle_teslamate::{build_teslamate, charge_state_from};

fn last_values(file: &[u8]) -> HashMap<String, String> {
    let v: serde_json::Value = serde_json::from_slice(file).unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let t = m["topic"].as_str().unwrap();
            (
                t.rsplit('/').next().unwrap().to_string(),
                m["payload"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn mqtt_topics_doc_example() {
    let v = last_values(&fixture!("mqtt_topics_doc_example.json"));
    let cs = charge_state_from(&v, Some("Home"));
    assert_eq!(cs.soc_pct, Some(88.0));
    assert_eq!(cs.limit_pct, Some(90.0));
    assert_eq!(
        cs.actual_amps,
        Some(2.05),
        "a float current, which TWCManager cannot read"
    );
    assert_eq!(cs.state.as_deref(), Some("asleep"));
    assert_eq!(cs.name.as_deref(), Some("Blue Thunder"));
    assert!(cs.latitude.is_some() && cs.longitude.is_some());
}

#[test]
fn mqtt_charging_session_sequence() {
    let v = last_values(&fixture!(
        "mqtt_charging_session_sequence_RECONSTRUCTED.json"
    ));
    let cs = charge_state_from(&v, None);
    assert_eq!(cs.limit_pct, Some(80.0));
    assert!(cs.soc_pct.unwrap() > 54.0, "{cs:?}");
    assert_eq!(cs.at_home, None, "no home geofence configured: unknown");
    // An empty or garbage value is unknown, never 0.
    let mut v = v;
    v.insert("battery_level".into(), "".into());
    v.insert("charger_phases".into(), "".into());
    assert_eq!(charge_state_from(&v, None).soc_pct, None);
}

#[test]
fn bad_config_names_the_key() {
    let e = |t: &str| {
        build_teslamate(&PluginConfig::from_toml("vehicle.teslamate", t).unwrap())
            .err()
            .unwrap()
            .to_string()
    };
    assert!(e("url = \"mqtt://x\"\ncars = {}").contains("cars"));
    assert!(e("url = \"mqtt://x\"\ncars = { \"1\" = \"short\" }").contains("17 characters"));
    assert!(
        e("url = \"mqtt://x\"\ncars = { \"1\" = \"5YJ3E1EA7KF000001\" }\nhome = 1")
            .contains("home")
    );
    build_teslamate(
        &PluginConfig::from_toml("vehicle.teslamate", include_str!("../example.toml")).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_values_from_mosquitto_and_retained_ones_stale() {
    let Some((host, port)) = mqtt_broker().await else {
        return;
    };
    let prefix = unique_topic_prefix("vehicle-teslamate");
    let vin = "5YJ3E1EA7KF000001";
    // A retained value published before we subscribe: unknown age.
    let mut o = rumqttc::MqttOptions::new(
        format!("pub-{prefix}").replace('/', "-"),
        host.clone(),
        port,
    );
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = rumqttc::AsyncClient::new(o, 32);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let t = |f: &str| format!("{prefix}/cars/1/{f}");
    client
        .publish(t("battery_level"), rumqttc::QoS::AtLeastOnce, true, "41")
        .await
        .unwrap();
    client
        .publish(t("charge_limit_soc"), rumqttc::QoS::AtLeastOnce, true, "80")
        .await
        .unwrap();
    client
        .publish(t("geofence"), rumqttc::QoS::AtLeastOnce, true, "Home")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cfg = format!(
        "url = \"mqtt://{host}:{port}\"\ntopic_prefix = \"{prefix}\"\ncars = {{ \"1\" = \"{vin}\" }}\nhome_geofence = \"Home\""
    );
    let tm = build_teslamate(&PluginConfig::from_toml("vehicle.teslamate", &cfg).unwrap()).unwrap();
    assert_eq!(tm.list().await.unwrap()[0].vin, vin);
    let mut got = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(cs) = tm.charge_state(vin).await
            && cs.soc_pct.is_some()
        {
            got = Some(cs);
            break;
        }
    }
    let cs = got.expect("retained values arrive");
    assert_eq!((cs.soc_pct, cs.at_home), (Some(41.0), Some(true)));
    assert!(
        cs.age_secs.unwrap().is_infinite(),
        "retained counts as stale: {cs:?}"
    );
    // A live update: fresh.
    client
        .publish(t("battery_level"), rumqttc::QoS::AtLeastOnce, false, "42")
        .await
        .unwrap();
    client
        .publish(
            t("charge_limit_soc"),
            rumqttc::QoS::AtLeastOnce,
            false,
            "80",
        )
        .await
        .unwrap();
    let mut fresh = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let cs = tm.charge_state(vin).await.unwrap();
        if cs.soc_pct == Some(42.0) && cs.age_secs.is_some_and(|a| a < 5.0) {
            fresh = Some(cs);
            break;
        }
    }
    assert!(fresh.is_some(), "{:?}", tm.charge_state(vin).await);
    // Read-only.
    assert!(
        tm.start(vin)
            .await
            .unwrap_err()
            .chain()
            .contains("read-only")
    );
    // Clean up the retained messages.
    for f in ["battery_level", "charge_limit_soc", "geofence"] {
        client
            .publish(t(f), rumqttc::QoS::AtLeastOnce, true, "")
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}
