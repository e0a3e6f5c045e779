//! Events and breadcrumbs captured by a local endpoint playing Sentry's envelope ingest API.

use chrono::Utc;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::{SinkOptions, spawn_sink};
use twc_core::model::{CentiAmps, Event};
use twc_core::plugin::{Logger, PluginConfig};
use twc_core::protocol::TwcId;
use twc_logging_sentry::{Dsn, SentryConfig, SentrySink};
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn sink(server: &MockServer) -> SentrySink {
    let dsn = format!("http://abc123@{}/42", server.address());
    let c = PluginConfig::from_toml(
        "logging.sentry",
        &format!("dsn = {dsn:?}\nserver_name = \"garage\"\nmax_breadcrumbs = 2"),
    )
    .unwrap();
    let cfg: SentryConfig = c.parse().unwrap();
    SentrySink::new(cfg, Dsn::parse(&dsn).unwrap()).unwrap()
}

async fn ingest(server: &MockServer, status: u16) {
    Mock::given(method("POST"))
        .and(path("/api/42/envelope/"))
        .and(header_regex(
            "X-Sentry-Auth",
            "^Sentry sentry_version=7, sentry_client=twcmanager/[0-9.]+, sentry_key=abc123$",
        ))
        .respond_with(ResponseTemplate::new(status).set_body_string("{\"id\":\"x\"}"))
        .mount(server)
        .await;
}

/// The envelope's three lines: header, item header, event.
fn parse(r: &Request) -> (Value, Value, Value) {
    let text = String::from_utf8(r.body.clone()).unwrap();
    let mut lines = text.lines();
    let h: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let i: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let body = lines.next().unwrap();
    assert_eq!(i["length"].as_u64().unwrap() as usize, body.len());
    (h, i, serde_json::from_str(body).unwrap())
}

fn fault(msg: &str) -> Event {
    Event::Fault {
        at: Utc::now(),
        component: "bus".into(),
        message: msg.into(),
    }
}

fn offer(to: u16) -> Event {
    Event::OfferChanged {
        at: Utc::now(),
        slave: TwcId::from_u16(0x4142),
        from: CentiAmps::from_amps(6),
        to: CentiAmps::from_amps(to),
    }
}

#[test]
fn example_config_parses_and_dsns_are_checked() {
    let c = PluginConfig::from_toml("logging.sentry", include_str!("../example.toml")).unwrap();
    let cfg: SentryConfig = c.parse().unwrap();
    assert!(
        !format!("{cfg:?}").contains("0123456789abcdef"),
        "the DSN is a secret"
    );
    let d = Dsn::parse("https://key:secret@o1.ingest.sentry.io/path/99").unwrap();
    assert_eq!(
        d.envelope_url,
        "https://o1.ingest.sentry.io/path/api/99/envelope/"
    );
    assert_eq!(d.key.expose(), "key");
    for bad in [
        "o1.ingest.sentry.io/1",
        "https://o1.ingest.sentry.io/1",
        "https://k@host",
        "ftp://k@h/1",
    ] {
        assert!(Dsn::parse(bad).unwrap_err().contains("dsn"), "{bad}");
    }
}

#[tokio::test]
async fn faults_become_events_carrying_the_latest_breadcrumbs() {
    let server = MockServer::start().await;
    ingest(&server, 200).await;
    let s = sink(&server);
    s.record(&offer(10)).await.unwrap();
    s.record(&offer(12)).await.unwrap();
    s.record(&offer(16)).await.unwrap();
    // Muted on Sentry by default: readings.
    s.record(&Event::Reading {
        at: Utc::now(),
        source: "sim".into(),
        reading: Default::default(),
    })
    .await
    .unwrap();
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "breadcrumbs are not sent alone"
    );
    s.record(&fault("another master (7777) is on the bus"))
        .await
        .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let (h, i, e) = parse(&reqs[0]);
    assert_eq!(h["event_id"], e["event_id"]);
    assert_eq!(e["event_id"].as_str().unwrap().len(), 32);
    assert_eq!(i["type"], "event");
    assert_eq!(e["level"], "error");
    assert_eq!(
        e["message"]["formatted"],
        "Fault in bus: another master (7777) is on the bus"
    );
    assert_eq!(e["tags"]["component"], "bus");
    assert_eq!(e["server_name"], "garage");
    assert_eq!(e["extra"]["event"]["type"], "fault");
    let crumbs: Vec<&str> = e["breadcrumbs"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        crumbs,
        vec![
            "Offer to slave 4142 changed from 6.00 A to 12.00 A",
            "Offer to slave 4142 changed from 6.00 A to 16.00 A"
        ]
    );
    s.record(&Event::SlaveTimedOut {
        at: Utc::now(),
        slave: TwcId::from_u16(0x4142),
    })
    .await
    .unwrap();
    let reqs = server.received_requests().await.unwrap();
    let (_, _, e) = parse(&reqs[1]);
    assert_eq!(
        (e["level"].as_str(), e["tags"]["slave"].as_str()),
        (Some("warning"), Some("4142"))
    );
}

#[tokio::test]
async fn an_ingest_outage_delays_events_but_loses_none() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(4)
        .with_priority(1)
        .mount(&server)
        .await;
    ingest(&server, 200).await;
    let (tx, rx) = broadcast::channel(64);
    let opts = SinkOptions {
        retry_min_ms: 20,
        retry_max_ms: 100,
        ..SinkOptions::default()
    };
    let h = spawn_sink(rx, "sentry", Box::new(sink(&server)), opts);
    for i in 0..3 {
        tx.send(fault(&format!("fault {i}"))).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.status().written < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", h.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = h.status();
    assert_eq!((st.errors, st.dropped), (4, 0));
    let reqs = server.received_requests().await.unwrap();
    let ok: Vec<String> = reqs[4..]
        .iter()
        .map(|r| {
            parse(r).2["message"]["formatted"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ok,
        vec![
            "Fault in bus: fault 0",
            "Fault in bus: fault 1",
            "Fault in bus: fault 2"
        ]
    );
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let e = sink(&server).record(&fault("x")).await.unwrap_err();
    assert_eq!(e.kind(), twc_core::plugin::ErrorKind::Auth);
    assert!(e.to_string().contains("401"), "{e}");
}
