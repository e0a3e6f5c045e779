//! External load points (a Wall Connector Gen3) on MQTT: per-charger topics under its ident and
//! a Home Assistant device of its own, on the real Mosquitto and as rendered.

use serde_json::Value;
use std::collections::BTreeMap;
use twc_core::model::{CentiAmps, Status};
use twc_core::plugin::StatusPublisher;
use twc_status_mqtt::{MqttStatus, MqttStatusConfig, render};
use twc_testkit::load_points::{gen3_charging_na, gen3_unreachable};
use twc_testkit::mqtt::watch;

fn config(url: &str, prefix: &str, discovery: &str) -> MqttStatusConfig {
    MqttStatusConfig {
        url: url.to_string(),
        topic_prefix: prefix.to_string(),
        discovery_prefix: discovery.to_string(),
        ..MqttStatusConfig::default()
    }
}

fn site(lp: twc_core::model::LoadPointStatus) -> Status {
    let mut s = Status::default();
    s.policy.name = "Charge Now".into();
    s.wiring_max_all = CentiAmps::from_amps(48);
    s.slaves = vec![twc_testkit::events::slave(1234, 16, true)];
    s.load_points = vec![lp];
    s
}

fn topics(cfg: &MqttStatusConfig, s: &Status) -> BTreeMap<String, String> {
    render(cfg, s)
        .into_iter()
        .map(|m| (m.topic, String::from_utf8(m.payload).unwrap()))
        .collect()
}

#[test]
fn a_gen3_has_its_own_topics_and_home_assistant_device() {
    let cfg = config("mqtt://127.0.0.1:1883", "TWC", "homeassistant");
    let t = topics(&cfg, &site(gen3_charging_na()));
    let v = |k: &str| t.get(&format!("TWC/gen3_garage/{k}")).map(String::as_str);
    assert_eq!(v("chargerState"), Some("charging"));
    assert_eq!(v("chargerLoadInW"), Some("7704"));
    assert_eq!(v("ampsInUse"), Some("31.9"));
    assert_eq!(v("ampsOffered"), Some("32.0"));
    assert_eq!(v("ampsMax"), Some("48.0"));
    assert_eq!(v("carsCharging"), Some("1"));
    assert_eq!(v("currentPhaseA"), Some("31.8"));
    assert_eq!(v("voltagePhaseC"), Some("119"));
    assert_eq!(v("sessionEnergyWh"), Some("11562"));
    assert_eq!(v("lifetimekWh"), Some("386.2"));
    assert_eq!(v("handleTempC"), Some("30.6"));
    assert_eq!(v("firmware"), Some("21.29.1+g4152353e50f744"));
    assert_eq!(v("wifiSignalPct"), Some("44"));
    assert_eq!(v("alerts"), Some(""));
    // The Gen2 slave keeps its own topics next to it.
    let id = twc_testkit::events::slave(1234, 16, true).id;
    assert!(t.contains_key(&format!("TWC/{id}/ampsInUse")), "{t:?}");

    let disc: Vec<Value> = t
        .iter()
        .filter(|(k, _)| k.starts_with("homeassistant/sensor/") && k.contains("gen3_garage"))
        .map(|(_, p)| serde_json::from_str(p).unwrap())
        .collect();
    assert!(disc.len() >= 15, "{disc:?}");
    let by = |suffix: &str| {
        disc.iter()
            .find(|d| d["unique_id"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no *{suffix}"))
    };
    let power = by("gen3_garage_charger_load_w");
    assert_eq!(power["state_topic"], "TWC/gen3_garage/chargerLoadInW");
    assert_eq!(power["device_class"], "power");
    assert_eq!(power["device"]["model"], "Wall Connector Gen3");
    assert_eq!(power["device"]["sw_version"], "21.29.1+g4152353e50f744");
    assert_eq!(power["device"]["name"], "TWC gen3.garage");
    assert_eq!(
        by("gen3_garage_handle_temp_c")["device_class"],
        "temperature"
    );
    assert_eq!(
        by("gen3_garage_handle_temp_c")["name"],
        "Handle temperature"
    );
    assert_eq!(
        by("gen3_garage_session_energy_wh")["device_class"],
        "energy"
    );
    for d in &disc {
        let name = d["name"].as_str().unwrap();
        assert!(!name.contains('_'), "a key, not a name: {name:?}");
    }
}

#[test]
fn a_gen3_that_stopped_answering_reads_unknown_never_zero() {
    let cfg = config("mqtt://127.0.0.1:1883", "TWC", "homeassistant");
    let t = topics(&cfg, &site(gen3_unreachable()));
    let v = |k: &str| t.get(&format!("TWC/gen3_garage/{k}")).map(String::as_str);
    assert_eq!(v("ampsInUse"), Some("unknown"));
    assert_eq!(v("chargerLoadInW"), Some("unknown"));
    assert_eq!(v("chargerState"), Some("unknown"));
    assert_eq!(v("carsCharging"), Some("0"));
    assert_eq!(v("problem"), Some("not reachable: connection refused"));
    let power: Value = serde_json::from_str(
        t.iter()
            .find(|(k, _)| k.ends_with("/gen3_garage_charger_load_w/config"))
            .unwrap()
            .1,
    )
    .unwrap();
    assert!(
        power["value_template"]
            .as_str()
            .unwrap()
            .contains("unknown"),
        "{power}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen3_is_published_to_the_broker() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let prefix = twc_testkit::unique_topic_prefix("gen3");
    let disc = format!("ha-{}", twc_testkit::mqtt::rand_u32());
    let p = MqttStatus::new(
        "status.mqtt",
        config(&format!("mqtt://{host}:{port}"), &prefix, &disc),
    )
    .unwrap();
    p.publish(&site(gen3_charging_na())).await.unwrap();
    let (_c, seen) = watch(&host, port, &[format!("{prefix}/#"), format!("{disc}/#")]).await;
    assert_eq!(
        seen.wait_for(&format!("{prefix}/gen3_garage/chargerLoadInW"), 15, |_| {
            true
        })
        .await,
        "7704"
    );
    assert_eq!(
        seen.wait_for(&format!("{prefix}/gen3_garage/chargerState"), 15, |_| true)
            .await,
        "charging"
    );
    let cfg_topic = render(
        &config(&format!("mqtt://{host}:{port}"), &prefix, &disc),
        &site(gen3_charging_na()),
    )
    .into_iter()
    .map(|m| m.topic)
    .find(|t| t.ends_with("/gen3_garage_charger_load_w/config"))
    .unwrap();
    let cfg = seen.wait_for(&cfg_topic, 15, |_| true).await;
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(
        cfg["state_topic"],
        format!("{prefix}/gen3_garage/chargerLoadInW")
    );
}
