//! The JSON telegram parser on the fixtures and broken payloads, the config, and the source
//! against the real Mosquitto (127.0.0.1:1883, or TWC_TEST_MQTT_URL): live, retained with and
//! without a timestamp, garbage, an unreachable broker.

use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, PluginError, Registry};
use twc_ems_dsmrreader::{self as plugin, build, parse_json};
use twc_testkit::{assert_w, fixture, mqtt_broker, unique_topic_prefix};

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.dsmrreader", t).unwrap()
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-3, "{what}: {got:?} vs {want:?}");
    }
}

#[test]
fn mqtt_json_telegram_exporting() {
    let p = parse_json(&fixture!("dsmrreader_mqtt_dsmr_json_RECONSTRUCTED.json")).unwrap();
    let r = &p.reading;
    // Delivered 0.000 kW, returned 1.644 kW: exporting.
    assert_w("grid_w", r.grid_w, -1644.0);
    assert!(r.generation_w.is_none() && r.consumption_w.is_none());
    close(
        "voltages",
        r.phase_voltages.as_ref().unwrap(),
        &[235.0, 234.0, 236.0],
    );
    // Whole-ampere "2" on each phase, below the phase powers' 548/235, 551/234, 545/236 A; all
    // three export.
    close(
        "currents",
        r.phase_currents_a.as_ref().unwrap(),
        &[-548.0 / 235.0, -551.0 / 234.0, -545.0 / 236.0],
    );
    // 2020-10-24T12:12:13.990Z: years ago.
    let at = p.measured_at.unwrap();
    assert!(at.elapsed() > Duration::from_secs(365 * 86_400));
}

#[test]
fn api_doc_example_with_null_phases() {
    let p = parse_json(&fixture!("dsmrreader_api_v2_dsmrreading_doc_example.json")).unwrap();
    // 1.500 kW delivered, 0.025 kW returned.
    assert_w("grid_w", p.reading.grid_w, 1475.0);
    assert_eq!(p.reading.phase_currents_a, None);
    assert_eq!(p.reading.phase_voltages, None);
    assert!(p.measured_at.is_some());
}

#[test]
fn broken_payloads_are_protocol_errors_never_values() {
    let good = String::from_utf8(fixture!("dsmrreader_mqtt_dsmr_json_RECONSTRUCTED.json")).unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("<html>NaN-garbage</html>".into(), "JSON"),
        (String::new(), "JSON"),
        (good[..good.len() / 2].to_string(), "JSON"),
        ("[1, 2]".into(), "object"),
        (
            good.replace("\"electricity_currently_delivered\": \"0.000\", ", ""),
            "electricity_currently_delivered",
        ),
        (
            good.replace(
                "\"electricity_currently_returned\": \"1.644\"",
                "\"electricity_currently_returned\": null",
            ),
            "electricity_currently_returned",
        ),
        (
            good.replace("\"1.644\"", "\"unavailable\""),
            "electricity_currently_returned",
        ),
        (good.replace("\"1.644\"", "\"-1.644\""), "negative"),
        (
            good.replace(
                "\"phase_voltage_l2\": \"234.0\"",
                "\"phase_voltage_l2\": \"NaN\"",
            ),
            "phase_voltage_l2",
        ),
        (
            good.replace("2020-10-24T12:12:13.990Z", "yesterday"),
            "timestamp",
        ),
        (
            good.replace("\"2020-10-24T12:12:13.990Z\"", "true"),
            "timestamp",
        ),
    ];
    for (payload, named) in cases {
        let e = parse_json(payload.as_bytes()).expect_err(&payload);
        assert_eq!(e.kind, ErrorKind::Protocol, "{payload}");
        assert!(e.message.contains(named), "{payload}: {}", e.message);
    }
    // Numbers instead of strings are fine too.
    let p = parse_json(
        br#"{"electricity_currently_delivered": 0.5, "electricity_currently_returned": 0}"#,
    )
    .unwrap();
    assert_w("grid_w", p.reading.grid_w, 500.0);
    assert_eq!(p.measured_at, None);
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty())
    );
}

#[test]
fn the_example_and_the_default_section_build_and_bad_keys_are_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let default = twc_testkit::default_toml_section("ems", plugin::NAME);
    let e = build(&default).err().expect("url is required");
    assert!(e.to_string().contains("url"), "{e}");
    let mut with_url = default.clone();
    with_url
        .values
        .insert("url".into(), serde_json::json!("mqtt://127.0.0.1:1883"));
    build(&with_url).unwrap();
    for (body, named) in [
        ("url = \"mqtt://h\"\ntopic = \"dsmr/#\"", "topic"),
        ("url = \"mqtt://h\"\ntopic = \"\"", "topic"),
        ("url = \"mqtt://h\"\ntopics = \"dsmr/json\"", "topics"),
        ("url = \"http://h\"", "url"),
        ("url = \"mqtt://h\"\nprotocol = \"3\"", "protocol"),
    ] {
        let e = build(&cfg(body)).err().expect(body);
        assert!(e.to_string().contains(named), "{body}: {e}");
    }
    let c: plugin::DsmrReaderConfig = cfg("url = \"mqtt://h\"").parse().unwrap();
    assert_eq!(c.topic, "dsmr/json");
}

async fn publisher(host: &str, port: u16) -> AsyncClient {
    let opts = MqttOptions::new(
        format!("twc-test-dsmrreader-{}-{}", std::process::id(), rand_u32()),
        host,
        port,
    );
    let (client, mut ev) = AsyncClient::new(opts, 16);
    tokio::spawn(async move {
        loop {
            if ev.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    client
}

fn rand_u32() -> u32 {
    twc_testkit::mqtt::rand_u32()
}

/// The fixture with its timestamp set to now.
fn live_fixture(returned: &str) -> Vec<u8> {
    String::from_utf8(fixture!("dsmrreader_mqtt_dsmr_json_RECONSTRUCTED.json"))
        .unwrap()
        .replace(
            "2020-10-24T12:12:13.990Z",
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .replace("\"1.644\"", &format!("\"{returned}\""))
        .into_bytes()
}

/// Publish `payload` (again every 100 ms, for a broker still subscribing) until `ok` accepts
/// a read, for up to 5 s.
async fn publish_until(
    pubc: &AsyncClient,
    topic: &str,
    retain: bool,
    payload: &[u8],
    src: &dyn EmsSource,
    ok: impl Fn(&Result<EnergyReading, PluginError>) -> bool,
) -> Result<EnergyReading, PluginError> {
    let mut last = None;
    for _ in 0..50 {
        pubc.publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = src.read().await;
        if ok(&r) {
            return r;
        }
        last = Some(r);
    }
    panic!("not reached within 5 s; last: {last:?}");
}

#[tokio::test]
async fn live_telegrams_from_mosquitto() {
    let Some((host, port)) = mqtt_broker().await else {
        return;
    };
    let topic = format!("{}/dsmr/json", unique_topic_prefix("ems-dsmrreader"));
    let src = build(&cfg(&format!(
        "url = \"mqtt://{host}:{port}\"\ntopic = \"{topic}\""
    )))
    .unwrap();
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");

    let pubc = publisher(&host, port).await;
    // A live telegram whose meter time is now.
    let r = publish_until(
        &pubc,
        &topic,
        false,
        &live_fixture("1.644"),
        src.as_ref(),
        |r| r.is_ok(),
    )
    .await
    .unwrap();
    assert_w("grid_w", r.grid_w, -1644.0);
    assert_eq!(r.phase_currents_a.as_ref().map(Vec::len), Some(3));
    assert!(r.age_secs(Instant::now()) < 10.0);

    // The fixture as it is: its timestamp of 2020 makes it stale at once, never fresh.
    let r = publish_until(
        &pubc,
        &topic,
        false,
        &fixture!("dsmrreader_mqtt_dsmr_json_RECONSTRUCTED.json"),
        src.as_ref(),
        |r| {
            r.as_ref()
                .is_ok_and(|r| r.age_secs(Instant::now()) > 86_400.0)
        },
    )
    .await
    .unwrap();
    assert_w("grid_w", r.grid_w, -1644.0);

    // Garbage replaces the telegram: an error, not 0 W.
    let e = publish_until(&pubc, &topic, false, b"NaN-garbage", src.as_ref(), |r| {
        r.is_err()
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains(&topic), "{e}");
}

#[tokio::test]
async fn a_retained_telegram_without_timestamp_waits_for_a_live_one() {
    let Some((host, port)) = mqtt_broker().await else {
        return;
    };
    let topic = format!(
        "{}/dsmr/json",
        unique_topic_prefix("ems-dsmrreader-retained")
    );
    let pubc = publisher(&host, port).await;
    let undated = br#"{"electricity_currently_delivered": "0.321", "electricity_currently_returned": "0.000"}"#;
    pubc.publish(&topic, QoS::AtLeastOnce, true, undated.to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let src = build(&cfg(&format!(
        "url = \"mqtt://{host}:{port}\"\ntopic = \"{topic}\""
    )))
    .unwrap();
    let mut seen = None;
    for _ in 0..50 {
        if let Err(e) = src.read().await
            && e.to_string().contains("only a retained telegram")
        {
            seen = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = seen.expect("the retained telegram was refused as of unknown age");
    assert_eq!(e.kind(), ErrorKind::Transient);

    // A live one counts.
    let r = publish_until(&pubc, &topic, false, undated, src.as_ref(), |r| r.is_ok())
        .await
        .unwrap();
    assert_w("grid_w", r.grid_w, 321.0);
    assert!(r.age_secs(Instant::now()) < 10.0);

    // A retained telegram that carries its time is as old as it says.
    let src2 = build(&cfg(&format!(
        "url = \"mqtt://{host}:{port}\"\ntopic = \"{topic}\""
    )))
    .unwrap();
    pubc.publish(
        &topic,
        QoS::AtLeastOnce,
        true,
        fixture!("dsmrreader_mqtt_dsmr_json_RECONSTRUCTED.json"),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut r = None;
    for _ in 0..50 {
        if let Ok(x) = src2.read().await {
            r = Some(x);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = r.expect("the dated retained telegram reads");
    assert_w("grid_w", r.grid_w, -1644.0);
    assert!(r.age_secs(Instant::now()) > 86_400.0);
    // Clear the retained message.
    pubc.publish(&topic, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_is_a_transient_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let src = build(&cfg(&format!("url = \"mqtt://127.0.0.1:{port}\""))).unwrap();
    let _ = src.read().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("unreachable"), "{e}");
}
