//! What the MQTT link logs when the broker cannot be reached: one warning with the broker's
//! address and the error, not silence and not one line per retry.

use std::time::Duration;
use twc_plugin_kit::mqtt_link::{Link, LinkSettings, prepare};

#[tokio::test]
async fn r13_an_unreachable_broker_at_start_warns_once_with_address_and_error() {
    // The current-thread runtime runs the link's task on this thread, where the capture is.
    let buf = twc_testkit::logs::capture(tracing::Level::DEBUG);
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = prepare(
        "status.mqtt",
        "status.mqtt",
        LinkSettings::new(format!("mqtt://127.0.0.1:{port}"), "t"),
    )
    .unwrap();
    let (link, _events) = Link::start(p);
    // Backoff 0.25 s, 0.5 s, 1 s …: at least three attempts in 2.5 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(link);
    let text = buf.text();
    let warns: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 1, "one warning, not one per retry:\n{text}");
    let addr = format!("127.0.0.1:{port}");
    assert!(warns[0].contains(&addr), "names the broker: {}", warns[0]);
    assert!(
        warns[0].to_lowercase().contains("refused"),
        "says why: {}",
        warns[0]
    );
    let retries = text
        .lines()
        .filter(|l| l.contains("DEBUG") && l.contains("MQTT connect failed"))
        .count();
    assert!(retries >= 2, "the retries go on, at debug:\n{text}");
}
