//! Against the real Mosquitto (`TWC_TEST_MQTT_URL`, default `mqtt://127.0.0.1:1883`) and a private
//! one for the restart test; the engine drives a simulated TWC.

use serde_json::Value;
use std::time::Duration;
use twc_core::engine::spawn_publisher;
use twc_core::model::{CentiAmps, Settings, Status};
use twc_core::plugin::{PluginConfig, StatusPublisher};
use twc_status_mqtt::{MqttStatus, MqttStatusConfig};
use twc_testkit::engine::{TWC, engine_with_twc, wait_status};
use twc_testkit::mqtt::{Broker, free_port, watch, watch_as};

fn config(url: &str, prefix: &str, discovery: &str, rate: u64) -> MqttStatusConfig {
    MqttStatusConfig {
        url: url.to_string(),
        topic_prefix: prefix.to_string(),
        discovery_prefix: discovery.to_string(),
        rate_limit_secs: rate,
        ..MqttStatusConfig::default()
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_topics_and_discovery_are_retained_with_twcmanager_names() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let prefix = twc_testkit::unique_topic_prefix("status");
    let disc = format!("ha-{}", twc_testkit::mqtt::rand_u32());
    let settings = Settings {
        non_scheduled_amps: 10.0,
        ..Settings::default()
    };
    let (engine, _sim) = engine_with_twc(settings).await;
    let publisher = MqttStatus::new(
        "status.mqtt",
        config(&format!("mqtt://{host}:{port}"), &prefix, &disc, 0),
    )
    .unwrap();
    let _task = spawn_publisher(
        &engine.handle,
        "mqtt".into(),
        Box::new(publisher),
        Duration::from_millis(200),
    );
    let status = wait_status(&engine, 30, |s| s.slaves.iter().any(|x| x.offered.0 > 0)).await;

    // A client that connects afterwards gets everything retained.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_c, seen) = watch(&host, port, &[format!("{prefix}/#"), format!("{disc}/#")]).await;
    let t = |k: &str| format!("{prefix}/{k}");
    assert_eq!(
        seen.wait_for(&t("availability"), 10, |p| p == "online")
            .await,
        "online"
    );
    let policy = seen.wait_for(&t("all/currentPolicy"), 10, |_| true).await;
    assert_eq!(policy, status.policy.name);
    assert_eq!(
        seen.wait_for(&t("all/maxAmpsForSlaves"), 10, |_| true)
            .await,
        "10.0"
    );
    assert_eq!(
        seen.wait_for(&t("config/minAmpsPerTWC"), 10, |_| true)
            .await,
        "6"
    );
    assert_eq!(
        seen.wait_for(&t("config/nonScheduledAmpsMax"), 10, |_| true)
            .await,
        "10"
    );
    assert_eq!(
        seen.wait_for(&t("config/nonScheduledAction"), 10, |_| true)
            .await,
        "charge"
    );
    for key in [
        "ampsMax",
        "ampsInUse",
        "state",
        "carsCharging",
        // currentVehicleVIN is empty until the VIN is read (an empty retained payload, which the
        // broker does not keep), so whether it is retained here depends on timing.
        "ampsOffered",
        "ampsDesired",
    ] {
        let (_, retained) = {
            seen.wait_for(&t(&format!("7777/{key}")), 10, |_| true)
                .await;
            seen.latest(&t(&format!("7777/{key}"))).unwrap()
        };
        assert!(retained, "7777/{key} is not retained");
    }
    // No previous session: an empty VIN, which (as in TWCManager) is an empty retained payload,
    // so the broker keeps nothing for it.
    assert!(status.slaves[0].last_vin.is_none());
    assert!(
        seen.latest(&t("7777/lastVehicleVIN"))
            .is_none_or(|(p, _)| p.is_empty())
    );
    // Values follow the engine: the offer reaches 10 A (one TWC, 10 A non-scheduled).
    seen.wait_for(&t("7777/ampsOffered"), 20, |p| p == "10.0")
        .await;
    let state: u8 = seen
        .wait_for(&t("7777/state"), 5, |_| true)
        .await
        .parse()
        .unwrap();
    assert!(state <= 15, "state code {state}");
    let cars: String = seen.wait_for(&t("7777/carsCharging"), 5, |_| true).await;
    assert!(cars == "0" || cars == "1", "carsCharging {cars:?}");
    // The whole status as JSON.
    let j = json(&seen.wait_for(&t("status"), 10, |_| true).await);
    assert_eq!(j["slaves"][0]["id"], serde_json::to_value(TWC).unwrap());
    assert_eq!(j["wiring_max_all"], 3200);

    // Home Assistant discovery, TWCManager's topics and unique ids.
    let node = prefix.replace('/', "_");
    let sensor = json(
        &seen
            .wait_for(
                &format!("{disc}/sensor/{node}_7777/7777_amps_in_use/config"),
                10,
                |_| true,
            )
            .await,
    );
    // TWCManager's unique ids, keyed by the topic prefix (which is what sets two instances on
    // one broker apart): `twcmanager_TWC_…` with the default prefix.
    assert_eq!(
        sensor["unique_id"],
        format!("twcmanager_{node}_7777_amps_in_use")
    );
    assert_eq!(sensor["name"], "Current in use");
    assert_eq!(sensor["state_topic"], t("7777/ampsInUse"));
    assert_eq!(sensor["unit_of_measurement"], "A");
    assert_eq!(sensor["device_class"], "current");
    assert_eq!(sensor["state_class"], "measurement");
    assert_eq!(sensor["availability_topic"], t("availability"));
    assert_eq!(
        sensor["device"]["identifiers"][0],
        format!("twcmanager_{prefix}_7777")
    );
    assert_eq!(sensor["device"]["name"], "TWC 7777");
    assert!(
        seen.latest(&format!(
            "{disc}/sensor/{node}_7777/7777_amps_in_use/config"
        ))
        .unwrap()
        .1
    );
    let site = json(
        &seen
            .wait_for(
                &format!("{disc}/sensor/{node}_all/all_total_amps_in_use/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert_eq!(
        site["device"]["identifiers"][0],
        format!("twcmanager_{prefix}_all")
    );
    assert_eq!(site["name"], "Total current in use");
    let cfg_sensor = json(
        &seen
            .wait_for(
                &format!("{disc}/sensor/{node}_config/config_min_amps_per_twc/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert_eq!(
        cfg_sensor["device"]["identifiers"][0],
        format!("twcmanager_{prefix}_all")
    );
    let policy_sensor = json(
        &seen
            .wait_for(
                &format!("{disc}/sensor/{node}_all/all_current_policy/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert!(policy_sensor.get("unit_of_measurement").is_none());
    // Controls.
    let button = json(
        &seen
            .wait_for(
                &format!("{disc}/button/{node}_all/all_charge_now/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert_eq!(button["command_topic"], t("control/chargeNow"));
    assert_eq!(button["payload_press"], "32,3600");
    let number = json(
        &seen
            .wait_for(
                &format!("{disc}/number/{node}_config/config_non_scheduled_amps_max/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert_eq!(number["command_topic"], t("control/nonScheduledAmpsMax"));
    assert_eq!(number["state_topic"], t("config/nonScheduledAmpsMax"));
    assert_eq!(number["max"], 32.0);
    let select = json(
        &seen
            .wait_for(
                &format!("{disc}/select/{node}_config/config_non_scheduled_action/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert_eq!(
        select["options"],
        serde_json::json!(["charge", "stop", "green"])
    );
    let start = json(
        &seen
            .wait_for(
                &format!("{disc}/button/{node}_7777/7777_start_charging/config"),
                10,
                |_| true,
            )
            .await,
    );
    assert_eq!(start["payload_press"], "7777");
    assert_eq!(start["command_topic"], t("control/startCharging"));
}

fn status_named(name: &str) -> Status {
    let mut s = Status::default();
    s.policy.name = name.to_string();
    s.wiring_max_all = CentiAmps::from_amps(32);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_publishes_the_latest_value_when_the_window_ends() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let prefix = twc_testkit::unique_topic_prefix("ratelimit");
    let topic = format!("{prefix}/all/currentPolicy");
    let (_c, seen) = watch(&host, port, std::slice::from_ref(&topic)).await;
    let mut cfg = config(
        &format!("mqtt://{host}:{port}"),
        &prefix,
        "homeassistant",
        3,
    );
    cfg.homeassistant_discovery = false;
    let p = MqttStatus::new("status.mqtt", cfg).unwrap();
    p.publish(&status_named("A")).await.unwrap();
    seen.wait_for(&topic, 10, |v| v == "A").await;
    let t0 = tokio::time::Instant::now();
    p.publish(&status_named("B")).await.unwrap();
    p.publish(&status_named("C")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(seen.all(&topic), ["A"], "published inside the window");
    seen.wait_for(&topic, 10, |v| v == "C").await;
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "C came too early: {:?}",
        t0.elapsed()
    );
    assert_eq!(
        seen.all(&topic),
        ["A", "C"],
        "B was superseded, C is the latest"
    );
    // Settings (config/…) are not held back: the state of Home Assistant's controls follows at once.
    let amps = format!("{prefix}/config/nonScheduledAmpsMax");
    let (_c2, seen2) = watch(&host, port, std::slice::from_ref(&amps)).await;
    seen2.wait_for(&amps, 5, |v| v == "6").await;
    let mut s = status_named("C");
    s.settings.non_scheduled_amps = 12.0;
    p.publish(&s).await.unwrap();
    seen2.wait_for(&amps, 5, |v| v == "12").await;
    // Again, inside the 3 s window of the publish just made.
    s.settings.non_scheduled_amps = 13.0;
    p.publish(&s).await.unwrap();
    let t1 = tokio::time::Instant::now();
    seen2.wait_for(&amps, 5, |v| v == "13").await;
    assert!(
        t1.elapsed() < Duration::from_secs(2),
        "config/ was rate limited: {:?}",
        t1.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_goes_offline_when_the_publisher_stops() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let prefix = twc_testkit::unique_topic_prefix("will");
    let topic = format!("{prefix}/availability");
    let (_c, seen) = watch(&host, port, std::slice::from_ref(&topic)).await;
    let p = MqttStatus::new(
        "status.mqtt",
        config(
            &format!("mqtt://{host}:{port}"),
            &prefix,
            "homeassistant",
            0,
        ),
    )
    .unwrap();
    p.publish(&status_named("A")).await.unwrap();
    seen.wait_for(&topic, 10, |v| v == "online").await;
    drop(p);
    seen.wait_for(&topic, 10, |v| v == "offline").await;
    // The will is retained: a late subscriber sees it too.
    let (_c2, late) = watch(&host, port, std::slice::from_ref(&topic)).await;
    late.wait_for(&topic, 5, |v| v == "offline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_gets_the_latest_state_republished() {
    if twc_testkit::mqtt_broker().await.is_none() {
        return;
    }
    let mut broker = Broker::start().await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = twc_testkit::unique_topic_prefix("restart");
    let topic = format!("{prefix}/all/currentPolicy");
    let p = MqttStatus::new("status.mqtt", config(&url, &prefix, "homeassistant", 0)).unwrap();
    p.publish(&status_named("before")).await.unwrap();
    {
        let (_c, seen) = watch("127.0.0.1", broker.port, std::slice::from_ref(&topic)).await;
        seen.wait_for(&topic, 10, |v| v == "before").await;
    }
    broker.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!p.link().is_connected());
    // While the broker is down the engine carries on; publishing neither blocks nor fails.
    tokio::time::timeout(Duration::from_secs(1), p.publish(&status_named("during")))
        .await
        .expect("publish does not block while the broker is down")
        .unwrap();
    broker.restart().await;
    // The restarted broker has no retained messages (no persistence): what a new client sees was
    // republished by us after the reconnect, and it is the latest value.
    let (_c, seen) = watch("127.0.0.1", broker.port, &[format!("{prefix}/#")]).await;
    seen.wait_for(&topic, 30, |v| v == "during").await;
    seen.wait_for(&format!("{prefix}/availability"), 5, |v| v == "online")
        .await;
    assert!(p.link().is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_user_and_password() {
    if twc_testkit::mqtt_broker().await.is_none() {
        return;
    }
    let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let plain = free_port();
    // A TLS listener (the one we test) and a plain one for the watcher, both with login.
    let broker = Broker::start_with(|tls| {
        format!(
            "per_listener_settings false\nallow_anonymous false\npassword_file {fx}/passwd_RECONSTRUCTED\n\
             listener {tls} 127.0.0.1\ncafile {fx}/ca_RECONSTRUCTED.pem\ncertfile {fx}/server_RECONSTRUCTED.pem\n\
             keyfile {fx}/server_RECONSTRUCTED.key\nlistener {plain} 127.0.0.1\n"
        )
    })
    .await;
    let prefix = twc_testkit::unique_topic_prefix("tls");
    let topic = format!("{prefix}/all/currentPolicy");
    let url = format!("mqtts://localhost:{}", broker.port);
    let mut cfg = config(&url, &prefix, "homeassistant", 0);
    cfg.ca_file = format!("{fx}/ca_RECONSTRUCTED.pem");
    cfg.username = "twcmanager".into();
    let with = |password: &str, ca: bool| {
        let mut c = cfg.clone();
        c.password = twc_core::plugin::Secret::new(password);
        c.client_id = format!("tls-{}", twc_testkit::mqtt::rand_u32());
        if !ca {
            c.ca_file = String::new();
        }
        MqttStatus::new("status.mqtt", c).unwrap()
    };
    let good = with("test-password", true);
    let wrong_password = with("wrong", true);
    let unknown_ca = with("test-password", false);
    for p in [&good, &wrong_password, &unknown_ca] {
        p.publish(&status_named("over tls")).await.unwrap();
    }
    let (_c, seen) = watch_as(
        "127.0.0.1",
        plain,
        std::slice::from_ref(&topic),
        Some(("twcmanager", "test-password")),
    )
    .await;
    seen.wait_for(&topic, 15, |v| v == "over tls").await;
    assert!(good.link().is_connected());
    // Give the refused ones time to have connected, were they accepted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !wrong_password.link().is_connected(),
        "a wrong password connected"
    );
    assert!(
        !unknown_ca.link().is_connected(),
        "a certificate from an unknown CA was accepted"
    );
}

#[test]
fn example_config_parses() {
    let ex = include_str!("../example.toml");
    let v: toml::Value = toml::from_str(ex).unwrap();
    let body = toml::to_string(&v["status"]["mqtt"]).unwrap();
    let cfg = PluginConfig::from_toml("status.mqtt", &body).unwrap();
    let c: MqttStatusConfig = cfg.parse().unwrap();
    assert_eq!(c.rate_limit_secs, 10);
    assert!(MqttStatus::new("status.mqtt", c).is_ok());
    let bad =
        PluginConfig::from_toml("status.mqtt", "url = \"mqtt://h\"\nrate_limt_secs = 3\n").unwrap();
    let e = bad.parse::<MqttStatusConfig>().unwrap_err();
    assert!(e.to_string().contains("rate_limt_secs"), "{e}");
    let bad = PluginConfig::from_toml("status.mqtt", "protocol = \"4.0\"\n").unwrap();
    assert!(MqttStatus::new("status.mqtt", bad.parse().unwrap()).is_err());
}

fn discovery_configs(cfg: &MqttStatusConfig, status: &Status) -> Vec<(String, Value)> {
    twc_status_mqtt::render(cfg, status)
        .into_iter()
        .filter(|m| m.topic.starts_with(&format!("{}/", cfg.discovery_prefix)))
        .map(|m| (m.topic, json(&String::from_utf8(m.payload).unwrap())))
        .collect()
}

fn site_with_one_twc() -> Status {
    let mut s = status_named("Track Green Energy");
    s.slaves = vec![twc_testkit::events::slave(1234, 16, true)];
    s
}

#[test]
fn r13_two_instances_on_one_broker_have_distinct_unique_ids() {
    // Two twcmanagers on one broker: different topic prefixes, the default device name prefix.
    let a = config("mqtt://127.0.0.1:1883", "garage", "homeassistant", 0);
    let b = config("mqtt://127.0.0.1:1883", "barn", "homeassistant", 0);
    let status = site_with_one_twc();
    let ids = |cfg: &MqttStatusConfig| -> std::collections::BTreeSet<String> {
        discovery_configs(cfg, &status)
            .iter()
            .map(|(_, v)| v["unique_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (ia, ib) = (ids(&a), ids(&b));
    assert_eq!(
        ia.len(),
        discovery_configs(&a, &status).len(),
        "ids unique within one instance"
    );
    let shared: Vec<&String> = ia.intersection(&ib).collect();
    assert!(
        shared.is_empty(),
        "Home Assistant drops all but one of {shared:?}"
    );
    // Even with the same TWCID on both sites, and whatever the device names say.
    assert!(ia.iter().any(|i| i.contains("7777") || i.contains("4142")));
    // TWCManager's defaults keep TWCManager's ids.
    let d = config("mqtt://127.0.0.1:1883", "TWC", "homeassistant", 0);
    assert!(ids(&d).contains("twcmanager_TWC_all_total_amps_in_use"));
}

#[test]
fn r13_entity_names_are_human_and_the_state_sensor_shows_names() {
    let cfg = config("mqtt://127.0.0.1:1883", "TWC", "homeassistant", 0);
    let configs = discovery_configs(&cfg, &site_with_one_twc());
    let by_id = |suffix: &str| -> &Value {
        &configs
            .iter()
            .find(|(_, v)| v["unique_id"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no entity *{suffix}"))
            .1
    };
    assert_eq!(by_id("_charger_load_w")["name"], "Charger load");
    assert_eq!(by_id("_charger_load_w")["unit_of_measurement"], "W");
    assert_eq!(by_id("_lifetime_kwh")["name"], "Lifetime energy");
    assert_eq!(by_id("_lifetime_kwh")["unit_of_measurement"], "kWh");
    for (_, v) in &configs {
        let name = v["name"].as_str().unwrap().to_lowercase();
        for unit in [" w", " kwh", " amps", " volts"] {
            assert!(!name.ends_with(unit), "a unit in the name: {name:?}");
        }
        assert!(!name.contains('_'), "a key, not a name: {name:?}");
    }
    let state = by_id("_4142_state");
    assert_eq!(state["device_class"], "enum");
    let template = state["value_template"].as_str().unwrap();
    let options: Vec<&str> = state["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for code in 0..=15u8 {
        let name = twc_core::protocol::SlaveState(code).name();
        assert!(
            template.contains(&format!("'{code}': '{name}'")),
            "{code} in {template}"
        );
        assert!(options.contains(&name), "{name} in {options:?}");
    }
    assert!(options.contains(&"charging") && options.contains(&"unknown"));
    assert!(
        template.starts_with("{{") && template.ends_with("}}"),
        "{template}"
    );
}
