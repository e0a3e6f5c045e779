//! Against the real Mosquitto (`TWC_TEST_MQTT_URL`, default `mqtt://127.0.0.1:1883`) and private
//! ones for the restart and 3.1.1 tests; the real engine drives a simulated TWC `7777`.

use rumqttc::{AsyncClient, QoS};
use serde_json::Value;
use std::time::Duration;
use twc_control_mqtt::{MqttControl, MqttControlConfig};
use twc_core::model::Settings;
use twc_core::plugin::{ControlSurface, PluginConfig};
use twc_testkit::engine::Running;
use twc_testkit::engine::{engine_with_twc, wait_status};
use twc_testkit::mqtt::{Broker, Seen, watch};

struct Rig {
    engine: Running,
    sim: twc_sim::SimHandle,
    client: AsyncClient,
    seen: Seen,
    prefix: String,
    results: usize,
}

impl Rig {
    async fn start(host: &str, port: u16, allow_stop: bool, protocol: &str) -> Rig {
        Rig::start_retained(host, port, allow_stop, protocol, &[]).await
    }

    /// As `start`, after leaving `retained` messages (name, payload) on the control topics.
    async fn start_retained(
        host: &str,
        port: u16,
        allow_stop: bool,
        protocol: &str,
        retained: &[(&str, &str)],
    ) -> Rig {
        let prefix = twc_testkit::unique_topic_prefix("control");
        if !retained.is_empty() {
            let (c, seen) = watch(host, port, &[format!("{prefix}/control/#")]).await;
            for (name, payload) in retained {
                let topic = format!("{prefix}/control/{name}");
                c.publish(topic.clone(), QoS::AtLeastOnce, true, *payload)
                    .await
                    .unwrap();
                seen.wait_for(&topic, 10, |p| p == *payload).await;
            }
        }
        let (engine, sim) = engine_with_twc(Settings::default()).await;
        let cfg = MqttControlConfig {
            url: format!("mqtt://{host}:{port}"),
            topic_prefix: prefix.clone(),
            allow_stop,
            protocol: protocol.into(),
            client_id: format!("ctl-{}", twc_testkit::mqtt::rand_u32()),
            ..MqttControlConfig::default()
        };
        // Watch the results before the surface starts: it answers a retained command as soon as
        // it subscribes, and results are not retained.
        let (client, seen) = watch(host, port, &[format!("{prefix}/control/result")]).await;
        let surface: Box<dyn ControlSurface> =
            Box::new(MqttControl::new("control.mqtt", cfg).unwrap());
        tokio::spawn(surface.serve(engine.handle.clone()));
        let mut rig = Rig {
            engine,
            sim,
            client,
            seen,
            prefix,
            results: 0,
        };
        // The surface subscribes asynchronously: ping until it answers.
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            rig.client
                .publish(
                    format!("{}/control/ping", rig.prefix),
                    QoS::AtLeastOnce,
                    false,
                    "x",
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let n = rig.seen.all(&rig.result_topic()).len();
            if n > 0 {
                rig.results = n;
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "the control surface never answered"
            );
        }
        rig
    }

    fn result_topic(&self) -> String {
        format!("{}/control/result", self.prefix)
    }

    /// Publish `payload` on `<prefix>/control/<name>` and return the result message.
    async fn send_opts(&mut self, name: &str, payload: &str, retain: bool) -> Value {
        self.client
            .publish(
                format!("{}/control/{name}", self.prefix),
                QoS::AtLeastOnce,
                retain,
                payload,
            )
            .await
            .unwrap();
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.seen.all(&self.result_topic());
            if all.len() > self.results {
                self.results += 1;
                let v: Value = serde_json::from_str(&all[self.results - 1]).unwrap();
                if v["topic"] == name {
                    return v;
                }
                continue;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no result for {name} {payload:?}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn send(&mut self, name: &str, payload: &str) -> Value {
        self.send_opts(name, payload, false).await
    }

    async fn ok(&mut self, name: &str, payload: &str) {
        let r = self.send(name, payload).await;
        assert_eq!(r["ok"], true, "{name} {payload:?} refused: {r}");
        assert_eq!(r["payload"], payload);
    }

    /// The payload is refused, the reason is given, and the settings did not change.
    async fn refused(&mut self, name: &str, payload: &str, reason: &str) {
        let before = self.engine.handle.status().settings;
        let r = self.send(name, payload).await;
        assert_eq!(r["ok"], false, "{name} {payload:?} accepted: {r}");
        let msg = r["message"].as_str().unwrap();
        assert!(
            msg.contains(reason),
            "{name} {payload:?}: reason {msg:?} lacks {reason:?}"
        );
        assert_eq!(
            self.engine.handle.status().settings,
            before,
            "{name} {payload:?} changed the settings"
        );
    }

    fn settings(&self) -> Settings {
        self.engine.handle.status().settings
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twcmanager_topics_change_the_engine() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let mut rig = Rig::start(&host, port, false, "auto").await;

    rig.ok("chargeNow", "8,3600").await;
    let cn = rig.settings().charge_now.expect("charge now set");
    assert_eq!(cn.amps, 8.0);
    let now = chrono::Utc::now().timestamp();
    assert!(
        (cn.until_unix - now - 3600).abs() <= 5,
        "until {} now {now}",
        cn.until_unix
    );
    let s = wait_status(&rig.engine, 10, |s| s.policy.name == "Charge Now").await;
    assert_eq!(s.policy.budget.amps(), 8.0);

    rig.ok("chargeNowEnd", "1").await;
    assert!(rig.settings().charge_now.is_none());
    wait_status(&rig.engine, 10, |s| s.policy.name != "Charge Now").await;

    rig.ok("nonScheduledAmpsMax", "12").await;
    assert_eq!(rig.settings().non_scheduled_amps, 12.0);
    wait_status(&rig.engine, 10, |s| s.policy.budget.amps() == 12.0).await;

    rig.ok("nonScheduledAction", "2").await;
    assert_eq!(rig.settings().non_scheduled_action, "stop");
    wait_status(&rig.engine, 10, |s| s.policy.budget.0 == 0).await;
    rig.ok("nonScheduledAction", "3").await;
    assert_eq!(rig.settings().non_scheduled_action, "green");
    rig.ok("nonScheduledAction", "charge").await;
    assert_eq!(rig.settings().non_scheduled_action, "charge");
    rig.ok("nonScheduledAction", "1").await;
    assert_eq!(rig.settings().non_scheduled_action, "charge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_refused_with_a_reason() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let mut rig = Rig::start(&host, port, false, "auto").await;
    for (name, payload, reason) in [
        ("chargeNow", "abc", "<amps>,<seconds>"),
        ("chargeNow", "8", "<amps>,<seconds>"),
        ("chargeNow", "x,60", "number of amps"),
        ("chargeNow", "0,60", "greater than 0"),
        ("chargeNow", "8,0", "greater than 0"),
        ("chargeNow", "8,-5", "whole number"),
        ("chargeNow", "NaN,60", "≥ 0"),
        ("chargeNow", "33,3600", "wiring limit"),
        ("nonScheduledAmpsMax", "x", "number of amps"),
        ("nonScheduledAmpsMax", "-1", "≥ 0"),
        ("nonScheduledAmpsMax", "40", "wiring limit"),
        ("nonScheduledAction", "4", "1 (charge)"),
        ("nonScheduledAction", " x", "1 (charge)"),
        ("stop", "now", "allow_stop"),
        ("startCharging", "XYZ", "4 hex digits"),
        ("stopCharging", "1234", "no slave 1234"),
        ("schedule", "not json", "bad JSON"),
        ("schedule", "[1]", "JSON object"),
        ("schedule", r#"{"amps": "lots"}"#, "schedule"),
        ("schedule", r#"{"enabeld": true}"#, "enabeld"),
        ("settings", r#"{"bogus": 1}"#, "bogus"),
        ("settings", r#"{"non_scheduled_amps": 99}"#, "wiring limit"),
        ("gridLimit", "16", "unit"),
        ("gridLimit", "lots A", "number"),
        ("consumptionOffset/heat", "500", "unit"),
        (
            "consumptionOffset/nothing",
            "delete",
            "no consumption offset",
        ),
        ("flexAmps", "lots", "number of amps"),
        ("vinAllow", "\"5YJ3E1EA0KF000316\"", "JSON array"),
        ("priority/7777", "high", "whole number"),
        ("noSuchTopic", "1", "unknown control topic"),
    ] {
        rig.refused(name, payload, reason).await;
    }
    // The engine is still running and not stopped.
    assert!(!rig.engine.engine_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_commands_are_not_replayed() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    // A retained chargeNow would otherwise replay at every start and reconnect.
    let rig = Rig::start_retained(&host, port, false, "auto", &[("chargeNow", "8,60")]).await;
    let r = rig
        .seen
        .wait_for(&rig.result_topic(), 10, |p| {
            p.contains(r#""topic":"chargeNow""#)
        })
        .await;
    let r: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["message"].as_str().unwrap().contains("retained"), "{r}");
    assert!(rig.settings().charge_now.is_none());
    rig.client
        .publish(
            format!("{}/control/chargeNow", rig.prefix),
            QoS::AtLeastOnce,
            true,
            "",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_topics_change_the_engine() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let mut rig = Rig::start(&host, port, false, "auto").await;

    rig.ok("stopCharging", "7777").await;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rig.sim.slave(0).unwrap().contactor_open {
        assert!(
            tokio::time::Instant::now() < end,
            "the simulated TWC never got FC B2"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.ok("startCharging", "all").await;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.sim.slave(0).unwrap().contactor_open {
        assert!(
            tokio::time::Instant::now() < end,
            "the simulated TWC never got FC B1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    rig.ok("schedule", r#"{"enabled": true, "amps": 10, "windows": [{"weekday": 1, "start_minute": 60, "end_minute": 120}]}"#)
        .await;
    let s = rig.settings().schedule;
    assert!(s.enabled);
    assert_eq!(s.amps, 10.0);
    assert_eq!(s.windows.len(), 1);
    rig.ok("schedule", r#"{"enabled": false}"#).await;
    assert!(!rig.settings().schedule.enabled);
    assert_eq!(
        rig.settings().schedule.amps,
        10.0,
        "a merge patch keeps the other keys"
    );

    rig.ok("consumptionOffset/heatpump", "-500 W").await;
    let o = rig.settings().consumption_offsets["heatpump"];
    assert_eq!(o.value, -500.0);
    rig.ok("consumptionOffset/heatpump", r#"{"value": 2, "unit": "A"}"#)
        .await;
    assert_eq!(rig.settings().consumption_offsets["heatpump"].value, 2.0);
    rig.ok("consumptionOffset/heatpump", "delete").await;
    assert!(!rig.settings().consumption_offsets.contains_key("heatpump"));

    rig.ok("gridLimit", "16 A").await;
    let g = rig.settings().max_grid_import.expect("grid limit set");
    assert_eq!(g.value, 16.0);
    assert_eq!(serde_json::to_value(g.unit).unwrap(), "A");
    rig.ok("gridLimit", "4000 W").await;
    assert_eq!(rig.settings().max_grid_import.unwrap().value, 4000.0);
    rig.ok("gridLimit", "none").await;
    assert!(rig.settings().max_grid_import.is_none());

    rig.ok("flexAmps", "2").await;
    assert_eq!(rig.settings().flex_amps, 2.0);
    rig.ok("vinAllow", r#"["5YJ3E1EA0KF000316"]"#).await;
    assert_eq!(rig.settings().vin_allow, ["5YJ3E1EA0KF000316"]);
    rig.ok("vinAllow", "[]").await;
    assert!(rig.settings().vin_allow.is_empty());
    rig.ok("vinDeny", r#"["5YJ3E1EA0KF000999"]"#).await;
    assert_eq!(rig.settings().vin_deny, ["5YJ3E1EA0KF000999"]);
    rig.ok("priority/7777", "5").await;
    assert_eq!(rig.settings().priorities.get("7777"), Some(&5));
    rig.ok("priority/7777", "delete").await;
    assert!(!rig.settings().priorities.contains_key("7777"));

    rig.ok(
        "settings",
        r#"{"non_scheduled_amps": 7, "non_scheduled_action": "green"}"#,
    )
    .await;
    assert_eq!(rig.settings().non_scheduled_amps, 7.0);
    assert_eq!(rig.settings().non_scheduled_action, "green");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_empty_payloads_are_ignored_on_every_command_topic() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let mut rig = Rig::start(&host, port, true, "auto").await;
    wait_status(&rig.engine, 20, |s| s.slaves.len() == 1).await;
    let before = rig.settings();
    let results = rig.seen.all(&rig.result_topic()).len();
    for name in [
        "stopCharging",
        "startCharging",
        "chargeNow",
        "chargeNowEnd",
        "nonScheduledAmpsMax",
        "nonScheduledAction",
        "stop",
        "schedule",
        "gridLimit",
        "flexAmps",
        "vinAllow",
        "vinDeny",
        "consumptionOffset/heat",
        "priority/7777",
        "settings",
    ] {
        // Clearing a retained topic: an empty retained message, which the broker also forwards
        // to current subscribers; and a plain empty one.
        for retain in [true, false] {
            rig.client
                .publish(
                    format!("{}/control/{name}", rig.prefix),
                    QoS::AtLeastOnce,
                    retain,
                    "",
                )
                .await
                .unwrap();
        }
    }
    // Messages on one topic arrive in order: once this answer is in, every empty one was read.
    let r = rig.send("flexAmps", "1").await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        rig.seen.all(&rig.result_topic()).len(),
        results + 1,
        "no reply to an empty payload: {:?}",
        rig.seen.all(&rig.result_topic())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !rig.sim.slave(0).unwrap().contactor_open,
        "an empty stopCharging stopped the TWC"
    );
    assert!(
        !rig.engine.engine_finished(),
        "an empty stop stopped twcmanager"
    );
    assert_eq!(
        Settings {
            flex_amps: before.flex_amps,
            ..rig.settings()
        },
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_huge_command_gets_a_short_reply() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let mut rig = Rig::start(&host, port, false, "auto").await;
    for (name, payload) in [
        ("chargeNow", "9".repeat(500_000)),
        (
            "schedule",
            format!(r#"{{"amps": "{}"}}"#, "a".repeat(500_000)),
        ),
    ] {
        let r = rig.send(name, &payload).await;
        assert_eq!(r["ok"], false, "{name}");
        let text = r.to_string();
        assert!(text.len() < 1024, "{name}: a {} byte reply", text.len());
        assert_eq!(r["payload_bytes"], payload.len());
        let echoed = r["payload"].as_str().unwrap().trim_end_matches('…');
        assert!(payload.starts_with(echoed) && echoed.len() <= 200, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_engine_when_allowed() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let mut rig = Rig::start(&host, port, true, "auto").await;
    let r = rig.send("stop", "now").await;
    assert_eq!(r["ok"], true, "{r}");
    let end = tokio::time::Instant::now() + Duration::from_secs(15);
    while !rig.engine.engine_finished() {
        assert!(tokio::time::Instant::now() < end, "the engine did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_is_survived() {
    if twc_testkit::mqtt_broker().await.is_none() {
        return;
    }
    let mut broker = Broker::start().await;
    let mut rig = Rig::start("127.0.0.1", broker.port, false, "auto").await;
    rig.ok("nonScheduledAmpsMax", "9").await;
    broker.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.restart().await;
    // The restarted broker forgot every session: the surface must resubscribe. Our watcher
    // reconnects and resubscribes too; wait for both, then command again.
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let _ = rig
            .client
            .publish(
                format!("{}/control/nonScheduledAmpsMax", rig.prefix),
                QoS::AtLeastOnce,
                false,
                "11",
            )
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if rig.settings().non_scheduled_amps == 11.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no command got through after the restart"
        );
    }
    // And results flow again.
    rig.results = rig.seen.all(&rig.result_topic()).len();
    rig.ok("nonScheduledAmpsMax", "13").await;
    assert_eq!(rig.settings().non_scheduled_amps, 13.0);
}

/// A broker that speaks only MQTT 3.1.1: refuses a v5 CONNECT the way 3.1.1 brokers do
/// (CONNACK return code 1) and relays everything else to a real Mosquitto.
async fn v311_only_proxy(upstream: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut down, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // CONNECT: fixed header, remaining length, "\0\x04MQTT", protocol level.
                let mut head = vec![0u8; 2];
                if down.read_exact(&mut head).await.is_err() {
                    return;
                }
                let mut len = (head[1] & 0x7f) as usize;
                let mut shift = 7;
                let mut b = head[1];
                while b & 0x80 != 0 {
                    let mut x = [0u8; 1];
                    if down.read_exact(&mut x).await.is_err() {
                        return;
                    }
                    head.push(x[0]);
                    b = x[0];
                    len += ((b & 0x7f) as usize) << shift;
                    shift += 7;
                }
                let mut body = vec![0u8; len];
                if down.read_exact(&mut body).await.is_err() {
                    return;
                }
                if body.get(6) == Some(&5) {
                    let _ = down.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
                    return;
                }
                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                if up.write_all(&head).await.is_err() || up.write_all(&body).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_mqtt_3_1_1() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    assert_eq!(
        host, "127.0.0.1",
        "the 3.1.1 proxy relays to a local broker"
    );
    let proxy = v311_only_proxy(port).await;
    // The watcher talks to the real broker; the surface goes through the 3.1.1-only proxy.
    let prefix = twc_testkit::unique_topic_prefix("v311");
    let (engine, _sim) = engine_with_twc(Settings::default()).await;
    let cfg = MqttControlConfig {
        url: format!("mqtt://127.0.0.1:{proxy}"),
        topic_prefix: prefix.clone(),
        client_id: format!("ctl-{}", twc_testkit::mqtt::rand_u32()),
        ..MqttControlConfig::default()
    };
    let surface: Box<dyn ControlSurface> = Box::new(MqttControl::new("control.mqtt", cfg).unwrap());
    tokio::spawn(surface.serve(engine.handle.clone()));
    let (client, seen) = watch(&host, port, &[format!("{prefix}/control/result")]).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        client
            .publish(
                format!("{prefix}/control/nonScheduledAmpsMax"),
                QoS::AtLeastOnce,
                false,
                "14",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if engine.handle.status().settings.non_scheduled_amps == 14.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no command got through the 3.1.1 broker"
        );
    }
    seen.wait_for(&format!("{prefix}/control/result"), 10, |p| {
        p.contains("\"ok\":true")
    })
    .await;
    // Pinned to v5, the same broker never connects.
    let prefix5 = twc_testkit::unique_topic_prefix("v5only");
    let cfg = MqttControlConfig {
        url: format!("mqtt://127.0.0.1:{proxy}"),
        topic_prefix: prefix5.clone(),
        protocol: "5".into(),
        client_id: format!("ctl5-{}", twc_testkit::mqtt::rand_u32()),
        ..MqttControlConfig::default()
    };
    let surface: Box<dyn ControlSurface> = Box::new(MqttControl::new("control.mqtt", cfg).unwrap());
    tokio::spawn(surface.serve(engine.handle.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    client
        .publish(
            format!("{prefix5}/control/nonScheduledAmpsMax"),
            QoS::AtLeastOnce,
            false,
            "15",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(engine.handle.status().settings.non_scheduled_amps, 14.0);
}

#[test]
fn example_config_parses() {
    let ex = include_str!("../example.toml");
    let v: toml::Value = toml::from_str(ex).unwrap();
    let body = toml::to_string(&v["control"]["mqtt"]).unwrap();
    let cfg = PluginConfig::from_toml("control.mqtt", &body).unwrap();
    let c: MqttControlConfig = cfg.parse().unwrap();
    assert!(!c.allow_stop);
    assert!(MqttControl::new("control.mqtt", c).is_ok());
    let bad = PluginConfig::from_toml("control.mqtt", "allow_stpo = true\n").unwrap();
    let e = bad.parse::<MqttControlConfig>().unwrap_err();
    assert!(e.to_string().contains("allow_stpo"), "{e}");
    let bad = PluginConfig::from_toml("control.mqtt", "url = \"http://x\"\n").unwrap();
    assert!(MqttControl::new("control.mqtt", bad.parse().unwrap()).is_err());
}

/// A TCP relay to the broker that can be cut (every connection dropped, new ones refused) and
/// restored, to take the surface offline while the broker keeps running.
struct Cuttable {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(upstream: u16) -> Cuttable {
        use std::sync::atomic::Ordering;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (u, c) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = l.accept().await else {
                    return;
                };
                if !u.load(Ordering::SeqCst) {
                    continue;
                }
                let h = tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c.lock().unwrap().push(h);
            }
        });
        Cuttable { port, up, conns }
    }
    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_delivers_commands_sent_while_offline() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    assert_eq!(host, "127.0.0.1", "the relay forwards to a local broker");
    let relay = Cuttable::start(port).await;
    let prefix = twc_testkit::unique_topic_prefix("session");
    let (engine, _sim) = engine_with_twc(Settings::default()).await;
    let cfg = MqttControlConfig {
        url: format!("mqtt://127.0.0.1:{}", relay.port),
        topic_prefix: prefix.clone(),
        client_id: format!("ctl-session-{}", twc_testkit::mqtt::rand_u32()),
        session_expiry_secs: 300,
        ..MqttControlConfig::default()
    };
    let surface: Box<dyn ControlSurface> = Box::new(MqttControl::new("control.mqtt", cfg).unwrap());
    tokio::spawn(surface.serve(engine.handle.clone()));
    let (client, seen) = watch(&host, port, &[format!("{prefix}/control/result")]).await;
    let amps = |a: &'static str| {
        let c = client.clone();
        let t = format!("{prefix}/control/nonScheduledAmpsMax");
        async move { c.publish(t, QoS::AtLeastOnce, false, a).await.unwrap() }
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while engine.handle.status().settings.non_scheduled_amps != 8.0 {
        amps("8").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            tokio::time::Instant::now() < end,
            "the surface never answered"
        );
    }
    seen.wait_for(&format!("{prefix}/control/result"), 5, |p| {
        p.contains("\"ok\":true")
    })
    .await;

    // Offline, with the broker still up: the command waits in our session on the broker.
    relay.cut();
    tokio::time::sleep(Duration::from_secs(1)).await;
    amps("9").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(engine.handle.status().settings.non_scheduled_amps, 8.0);
    relay.restore();
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while engine.handle.status().settings.non_scheduled_amps != 9.0 {
        assert!(
            tokio::time::Instant::now() < end,
            "the command sent while offline was not delivered after the reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn r13_payloads_are_escaped_in_logs() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    // Other tests in this binary run in parallel without a subscriber: see `twc_testkit::logs`.
    let log = twc_testkit::logs::capture(tracing::Level::INFO);
    let mut rig = Rig::start(&host, port, false, "auto").await;
    let forged = "8,3600\n2026-01-01T00:00:00Z ERROR twc_core: FORGED line";
    let r = rig.send("chargeNow", forged).await;
    assert_eq!(r["ok"], false, "{r}");
    let r = rig.send("nonScheduledAmpsMax", "7\nFORGED applied").await;
    assert_eq!(r["ok"], false, "{r}");
    // The refusal is logged after the reply goes out: wait for both log lines.
    let mut text = String::new();
    for _ in 0..100 {
        text = log.text();
        if text.matches("MQTT control refused").count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(text.contains("MQTT control refused"), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-01-01") && !line.starts_with("FORGED"),
            "a payload forged a log line: {line:?}\n{text}"
        );
    }
    assert!(text.contains("\\nFORGED"), "escaped: {text}");
}
