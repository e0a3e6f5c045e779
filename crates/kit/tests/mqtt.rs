//! The subscription (over the MQTT link) against the real Mosquitto, through a TCP proxy the test
//! can cut, to show that it reconnects and resubscribes (the session is clean, so without
//! resubscribing nothing arrives).

use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use twc_plugin_kit::mqtt_link::{LinkSettings, Subscription};

type Conns = Arc<Mutex<Vec<JoinHandle<()>>>>;

async fn proxy(host: String, port: u16) -> (u16, Conns) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = l.local_addr().unwrap().port();
    let conns: Conns = Arc::default();
    let c2 = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            let (h, pt) = (host.clone(), port);
            let t = tokio::spawn(async move {
                if let Ok(mut out) = TcpStream::connect((h.as_str(), pt)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
            c2.lock().unwrap().push(t);
        }
    });
    (p, conns)
}

async fn wait_for(
    sub: &Subscription,
    topic: &str,
    want: &[u8],
    publish: impl Fn() -> tokio::task::JoinHandle<()>,
) -> bool {
    for _ in 0..100 {
        publish();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if sub
            .latest(topic)
            .is_some_and(|m| m.payload.as_ref() == want)
        {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_the_link_breaks() {
    let Some((host, port)) = twc_testkit::mqtt_broker().await else {
        return;
    };
    let (pport, conns) = proxy(host.clone(), port).await;
    let topic = format!("{}/power", twc_testkit::unique_topic_prefix("kit-mqtt"));
    let mut settings = LinkSettings::new(
        format!("mqtt://127.0.0.1:{pport}"),
        format!("kit-sub-{}", std::process::id()),
    );
    settings.subscriptions = vec![topic.clone()];
    let sub = Subscription::new("test", "ems.test", settings).unwrap();
    assert!(sub.latest(&topic).is_none());

    let (pubc, mut ev) = AsyncClient::new(
        MqttOptions::new(format!("kit-pub-{}", std::process::id()), host, port),
        16,
    );
    tokio::spawn(async move {
        loop {
            if ev.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let send = |payload: &'static str| {
        let (c, t) = (pubc.clone(), topic.clone());
        move || {
            let (c, t) = (c.clone(), t.clone());
            tokio::spawn(async move {
                let _ = c.publish(t, QoS::AtLeastOnce, false, payload).await;
            })
        }
    };
    assert!(
        wait_for(&sub, &topic, b"100", send("100")).await,
        "first value never arrived"
    );
    assert!(sub.is_connected());
    let first = sub.latest(&topic).unwrap().arrived;

    // Cut every proxied connection: the broker drops the clean session and its subscription.
    for t in conns.lock().unwrap().drain(..) {
        t.abort();
    }
    assert!(
        wait_for(&sub, &topic, b"200", send("200")).await,
        "no value after the reconnect: not resubscribed"
    );
    assert!(sub.latest(&topic).unwrap().arrived > first);
    assert!(
        !conns.lock().unwrap().is_empty(),
        "the subscription did not reconnect through the proxy"
    );
}
