use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::Duration;
use twc_core::plugin::{ErrorKind, PluginConfig};
use twc_ems_mqtt::{TopicChannel, build, parse_payload};
use twc_testkit::{assert_reading, fixture, mqtt_broker, unique_topic_prefix};

fn plain(topic: &str) -> TopicChannel {
    TopicChannel::new(topic)
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
    let mut ch = TopicChannel::new("t");
    ch.pointer = Some("/ENERGY/Power".into());
    ch.invert = true;
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
    let e = build(&cfg(
        "url = \"mqtt://h\"\ngrid = { topic = \"a\", timestamp_pointer = \"ts\" }",
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("grid.timestamp_pointer"), "{e}");
    let e = build(&cfg("url = \"mqtt://h\"\ntopic = \"a\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("topic"), "{e}");
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn publisher(host: &str, port: u16) -> AsyncClient {
    // Unique per publisher: tests run in parallel, and a broker drops a client whose id reconnects.
    let opts = MqttOptions::new(
        format!("twc-test-pub-{}-{:08x}", std::process::id(), rand_suffix()),
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

/// Read until `pred` holds for the outcome, for up to 5 s.
async fn read_until(
    src: &dyn twc_core::plugin::EmsSource,
    pred: impl Fn(&Result<twc_core::model::EnergyReading, twc_core::plugin::PluginError>) -> bool,
) -> Result<twc_core::model::EnergyReading, twc_core::plugin::PluginError> {
    let mut last = src.read().await;
    for _ in 0..50 {
        if pred(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = src.read().await;
    }
    panic!("no matching outcome within 5 s; last {last:?}");
}

#[tokio::test]
async fn r12_retained_value_is_not_fresh_until_a_live_one_arrives() {
    let Some((host, port)) = mqtt_broker().await else {
        return;
    };
    let p = unique_topic_prefix("ems-mqtt-held");
    let topic = format!("{p}/gen");
    let pubc = publisher(&host, port).await;
    // A value the broker has held since some unknown time (its integration may be long dead).
    pubc.publish(
        &topic,
        QoS::AtLeastOnce,
        true,
        fixture!("topicGeneration_payload_RECONSTRUCTED.txt"),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let src = build(&cfg(&format!(
        "url = \"mqtt://{host}:{port}\"\ngeneration = {{ topic = \"{topic}\" }}"
    )))
    .unwrap();
    let e = read_until(src.as_ref(), |r| {
        r.as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("only a retained message"))
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains(&topic), "{e}");

    // A live message counts from its arrival...
    pubc.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        fixture!("topicGeneration_payload_RECONSTRUCTED.txt"),
    )
    .await
    .unwrap();
    let r = read_until(src.as_ref(), |r| r.is_ok()).await.unwrap();
    assert_reading(&r, Some(1111.0), None, None);
    assert!(r.measured_at.elapsed() < Duration::from_secs(5));
    // ...and reading it again does not make it younger.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = src.read().await.unwrap();
    assert_eq!(again.measured_at, r.measured_at);
    assert!(again.measured_at.elapsed() >= Duration::from_millis(1100));

    // Clear the retained message.
    pubc.publish(&topic, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn r12_retained_value_with_a_payload_timestamp_is_as_old_as_it_says() {
    let Some((host, port)) = mqtt_broker().await else {
        return;
    };
    let p = unique_topic_prefix("ems-mqtt-stamped");
    let topic = format!("{p}/meter");
    let pubc = publisher(&host, port).await;
    let ten_min_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 600;
    pubc.publish(
        &topic,
        QoS::AtLeastOnce,
        true,
        format!(r#"{{"power": 1703.5, "ts": {ten_min_ago}}}"#).into_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let src = build(&cfg(&format!(
        "url = \"mqtt://{host}:{port}\"\ngrid = {{ topic = \"{topic}\", pointer = \"/power\", timestamp_pointer = \"/ts\" }}"
    )))
    .unwrap();
    let r = read_until(src.as_ref(), |r| r.is_ok()).await.unwrap();
    assert_reading(&r, None, None, Some(1703.5));
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 5.0, "age {age}");

    pubc.publish(&topic, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await
        .unwrap();
}

#[test]
fn tls_and_protocol_keys_are_checked_and_named() {
    let e = build(&cfg(
        "url = \"mqtts://h\"\nca_file = \"/nonexistent/ca.pem\"\ngrid = { topic = \"a\" }",
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("ca_file"), "{e}");
    let e = build(&cfg(
        "url = \"mqtt://h\"\nprotocol = \"3\"\ngrid = { topic = \"a\" }",
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("protocol"), "{e}");
    // Empty means not set, as in the other MQTT plugins.
    build(&cfg(
        "url = \"mqtt://h\"\nusername = \"\"\npassword = \"\"\nca_file = \"\"\nclient_id = \"\"\nprotocol = \"\"\ngrid = { topic = \"a\" }",
    ))
    .unwrap();
    for p in ["auto", "5", "3.1.1"] {
        build(&cfg(&format!(
            "url = \"mqtt://h\"\nprotocol = \"{p}\"\nkeep_alive_secs = 10\ngrid = {{ topic = \"a\" }}"
        )))
        .unwrap();
    }
}

/// The same TLS broker set-up as the MQTT status publisher's test (its certificates and password
/// file): the source reads over `mqtts://` with a user, a password, a CA file and MQTT v5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_over_tls_with_v5_and_a_login() {
    if mqtt_broker().await.is_none() {
        return;
    }
    use twc_testkit::mqtt::{Broker, free_port};
    let fx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../status/mqtt/tests/fixtures"
    );
    let plain = free_port();
    let broker = Broker::start_with(|tls| {
        format!(
            "per_listener_settings false\nallow_anonymous false\npassword_file {fx}/passwd_RECONSTRUCTED\n\
             listener {tls} 127.0.0.1\ncafile {fx}/ca_RECONSTRUCTED.pem\ncertfile {fx}/server_RECONSTRUCTED.pem\n\
             keyfile {fx}/server_RECONSTRUCTED.key\nlistener {plain} 127.0.0.1\n"
        )
    })
    .await;
    let topic = format!("{}/gen", unique_topic_prefix("ems-mqtt-tls"));
    let src = build(&cfg(&format!(
        "url = \"mqtts://localhost:{}\"\nca_file = \"{fx}/ca_RECONSTRUCTED.pem\"\nusername = \"twcmanager\"\npassword = \"test-password\"\nprotocol = \"5\"\ngeneration = {{ topic = \"{topic}\" }}",
        broker.port
    )))
    .unwrap();
    let _ = src.read().await;
    let mut opts = MqttOptions::new(
        format!("twc-test-tls-pub-{:08x}", rand_suffix()),
        "127.0.0.1",
        plain,
    );
    opts.set_credentials("twcmanager", "test-password");
    let (pubc, mut ev) = AsyncClient::new(opts, 16);
    tokio::spawn(async move {
        loop {
            if ev.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let mut reading = None;
    for _ in 0..100 {
        pubc.publish(&topic, QoS::AtLeastOnce, false, "1111 W")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(r) = src.read().await {
            reading = Some(r);
            break;
        }
    }
    let r = reading.expect("no reading over TLS within 10 s");
    assert_reading(&r, Some(1111.0), None, None);
}
