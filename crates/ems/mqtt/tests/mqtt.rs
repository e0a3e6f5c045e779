use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig};
use twc_ems_mqtt::{TopicChannel, build, parse_payload};
use twc_testkit::{assert_reading, fixture, mqtt_broker, unique_topic_prefix};

fn plain(topic: &str) -> TopicChannel {
    TopicChannel {
        topic: topic.into(),
        pointer: None,
        scale: 1.0,
        invert: false,
    }
}

#[test]
fn topic_consumption_payload() {
    assert_eq!(
        parse_payload(
            &plain("c"),
            &fixture!("topicConsumption_payload_RECONSTRUCTED.txt")
        )
        .unwrap(),
        2814.7
    );
}

#[test]
fn topic_generation_payload() {
    assert_eq!(
        parse_payload(
            &plain("g"),
            &fixture!("topicGeneration_payload_RECONSTRUCTED.txt")
        )
        .unwrap(),
        1111.0
    );
}

#[test]
fn non_numeric_payload_is_an_error() {
    let e = parse_payload(
        &plain("g"),
        &fixture!("non_numeric_payload_RECONSTRUCTED.txt"),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
}

#[test]
fn json_payload_with_pointer() {
    let ch = TopicChannel {
        topic: "t".into(),
        pointer: Some("/ENERGY/Power".into()),
        scale: 1.0,
        invert: true,
    };
    assert_eq!(
        parse_payload(&ch, br#"{"ENERGY":{"Power":350}}"#).unwrap(),
        -350.0
    );
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.mqtt", t).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("url = \"mqtt://h\"")).err().unwrap();
    assert!(e.to_string().contains("generation"), "{e}");
    let e = build(&cfg("url = \"mqtt://h\"\ngrid = { topic = \"a/#\" }"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("a/#"), "{e}");
    let e = build(&cfg("url = \"http://h\"\ngrid = { topic = \"a\" }"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("url"), "{e}");
    let e = build(&cfg("url = \"mqtt://h\"\ntopic = \"a\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("topic"), "{e}");
}

async fn publisher(host: &str, port: u16) -> AsyncClient {
    let opts = MqttOptions::new(format!("twc-test-pub-{}", std::process::id()), host, port);
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

#[tokio::test]
async fn reads_latest_payloads_from_mosquitto() {
    let Some((host, port)) = mqtt_broker().await else {
        return;
    };
    let p = unique_topic_prefix("ems-mqtt");
    let src = build(&cfg(&format!(
        "url = \"mqtt://{host}:{port}\"\ngeneration = {{ topic = \"{p}/gen\" }}\nconsumption = {{ topic = \"{p}/cons\" }}\ngrid = {{ topic = \"{p}/meter\", pointer = \"/power\", invert = true }}"
    )))
    .unwrap();
    // Nothing published yet: an error, not 0 W.
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.to_string().contains("no message yet") || e.to_string().contains("unreachable"),
        "{e}"
    );

    let pubc = publisher(&host, port).await;
    let mut reading = None;
    for _ in 0..50 {
        pubc.publish(
            format!("{p}/gen"),
            QoS::AtLeastOnce,
            false,
            fixture!("topicGeneration_payload_RECONSTRUCTED.txt"),
        )
        .await
        .unwrap();
        pubc.publish(
            format!("{p}/cons"),
            QoS::AtLeastOnce,
            false,
            fixture!("topicConsumption_payload_RECONSTRUCTED.txt"),
        )
        .await
        .unwrap();
        pubc.publish(
            format!("{p}/meter"),
            QoS::AtLeastOnce,
            false,
            br#"{"power": 1703.5}"#.to_vec(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(r) = src.read().await {
            reading = Some(r);
            break;
        }
    }
    let r = reading.expect("no reading from mosquitto within 5 s");
    assert_reading(&r, Some(1111.0), Some(2814.7), Some(-1703.5));
    assert!(r.measured_at.elapsed() < Duration::from_secs(5));

    // A garbage payload replaces the value: the read fails instead of reporting 0 W.
    pubc.publish(
        format!("{p}/gen"),
        QoS::AtLeastOnce,
        false,
        fixture!("non_numeric_payload_RECONSTRUCTED.txt"),
    )
    .await
    .unwrap();
    let mut last = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = src.read().await {
            last = Some(e);
            break;
        }
    }
    let e = last.expect("garbage payload never seen");
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains(&format!("{p}/gen")), "{e}");
}

#[tokio::test]
async fn unreachable_broker_is_a_transient_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let src = build(&cfg(&format!(
        "url = \"mqtt://127.0.0.1:{port}\"\ngeneration = {{ topic = \"x/y\" }}"
    )))
    .unwrap();
    let _ = src.read().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("unreachable"), "{e}");
}
