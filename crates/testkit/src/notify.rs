//! One check for every notification plugin (ntfy, Telegram, the generic webhook): a local mock
//! service answers success, 429 with `Retry-After`, 5xx then success, a timeout then success,
//! and 401; plus the dedupe window and a full queue that must not block. Runs on real time (the
//! mock server is real I/O): call it from a current-thread `#[tokio::test]` so the plugin's
//! worker logs on the test's thread and [`crate::logs::capture`] sees its lines.

use std::time::{Duration, Instant};
use twc_core::model::{ChargeSession, Event};
use twc_core::plugin::Logger;
use twc_core::protocol::TwcId;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// What the check needs to know about one notification plugin.
pub struct NotifierCase {
    /// The plugin as its registry builds it, from the TOML body of its section; `{server}` in
    /// the text is the mock server's address. The common keys (`timeout_secs`, `queue_size`,
    /// `dedupe_secs`) are appended by the check.
    pub build: fn(&str) -> Box<dyn Logger>,
    /// The section's body (with `{server}`).
    pub toml: &'static str,
    /// The path the plugin posts to.
    pub path: &'static str,
    /// The service's answer to a successful post.
    pub ok_body: &'static str,
    /// The secret of the section, which must appear in no log line.
    pub secret: &'static str,
    /// The key a refused credential's error must name.
    pub credentials_key: &'static str,
}

/// A session that ended: 12.35 kWh in 1 h 25 min on TWC 7777.
pub fn session_ended() -> Event {
    Event::SessionEnded {
        at: "2026-11-02T18:25:00Z".parse().expect("a date"),
        session: ChargeSession {
            slave: TwcId::from_u16(0x7777),
            vin: Some("5YJ3E1EA0KF000001".into()),
            started_at: "2026-11-02T17:00:00Z".parse().expect("a date"),
            start_kwh: Some(100),
            energy_kwh: 12.345,
            metrics: Default::default(),
        },
    }
}

/// A fault of component `c`.
pub fn fault(c: &str, message: &str) -> Event {
    Event::Fault {
        at: chrono::Utc::now(),
        component: c.into(),
        message: message.into(),
    }
}

async fn build(case: &NotifierCase, server: &MockServer, extra: &str) -> Box<dyn Logger> {
    let timeout = if extra.contains("timeout_secs") {
        ""
    } else {
        "timeout_secs = 1"
    };
    let text = format!(
        "{}\n{timeout}\n{extra}",
        case.toml.replace("{server}", &server.uri())
    );
    (case.build)(&text)
}

/// Wait until `server` has received `n` requests (panics after `within`), then `settle` longer
/// to see that no more arrive; the requests.
async fn requests(
    server: &MockServer,
    n: usize,
    within: Duration,
    settle: Duration,
) -> Vec<Request> {
    let t0 = Instant::now();
    loop {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n {
            break;
        }
        assert!(
            t0.elapsed() < within,
            "{} requests after {within:?}, expected {n}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(settle).await;
    let got = server.received_requests().await.unwrap_or_default();
    assert_eq!(got.len(), n, "more requests than expected: {got:?}");
    got
}

fn ok(case: &NotifierCase) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(case.ok_body.as_bytes().to_vec(), "application/json")
}

/// A server that answers `first` `times` times, then the plugin's success; one session-end
/// event is recorded and `expected` requests must arrive within `within`. Returns when the
/// event was recorded (for timing the retries).
async fn fails_then_succeeds(
    case: &NotifierCase,
    first: ResponseTemplate,
    times: u64,
    expected: usize,
    within: Duration,
) -> Instant {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(case))
        .mount(&server)
        .await;
    let n = build(case, &server, "").await;
    let t0 = Instant::now();
    n.record(&session_ended())
        .await
        .expect("record never fails");
    requests(&server, expected, within, Duration::from_millis(300)).await;
    t0
}

/// Run every path; returns the request of the plain success for the plugin's own checks of
/// its format.
pub async fn check_notifier(case: NotifierCase) -> Request {
    let logs = crate::logs::capture(tracing::Level::INFO);

    // Success: one event, one request.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(case.path))
        .respond_with(ok(&case))
        .mount(&server)
        .await;
    let n = build(&case, &server, "").await;
    n.record(&session_ended())
        .await
        .expect("record never fails");
    let first = requests(
        &server,
        1,
        Duration::from_secs(5),
        Duration::from_millis(300),
    )
    .await;

    // 429 with Retry-After: 1, then success: sent once more, not before a second.
    let t0 = fails_then_succeeds(
        &case,
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_string(r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#),
        1,
        2,
        Duration::from_secs(8),
    )
    .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 honoured"
    );

    // 503 twice, then success.
    fails_then_succeeds(
        &case,
        ResponseTemplate::new(503),
        2,
        3,
        Duration::from_secs(12),
    )
    .await;

    // A timeout (the answer takes 3 s, the limit is 1 s), then success.
    fails_then_succeeds(
        &case,
        ok(&case).set_delay(Duration::from_secs(3)),
        1,
        2,
        Duration::from_secs(10),
    )
    .await;
    assert!(logs.text().contains("timed out"), "the timeout is logged");

    // 401: given up at once, with an error naming the key; the secret is in no log line.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
        )
        .mount(&server)
        .await;
    let n = build(&case, &server, "").await;
    n.record(&session_ended())
        .await
        .expect("record never fails");
    requests(
        &server,
        1,
        Duration::from_secs(5),
        Duration::from_millis(2500),
    )
    .await;
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("401") && l.contains(case.credentials_key)),
        "a 401 is an error naming {}:\n{text}",
        case.credentials_key
    );

    // Dedupe: the same fault twice (different numbers) is one notification; another is sent.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(&case))
        .mount(&server)
        .await;
    let n = build(&case, &server, "dedupe_secs = 600").await;
    n.record(&fault(
        "slave 7777",
        "car draws 17.5 A, more than the limit 16.0 A",
    ))
    .await
    .unwrap();
    n.record(&fault(
        "slave 7777",
        "car draws 18.2 A, more than the limit 16.0 A",
    ))
    .await
    .unwrap();
    n.record(&fault("bus", "bus link lost: gone"))
        .await
        .unwrap();
    requests(
        &server,
        2,
        Duration::from_secs(5),
        Duration::from_millis(300),
    )
    .await;

    // A slow service and a full queue: record never waits; the excess is dropped.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(&case).set_delay(Duration::from_millis(700)))
        .mount(&server)
        .await;
    let n = build(&case, &server, "queue_size = 1\ntimeout_secs = 5").await;
    n.record(&fault("ems.meter", "stale")).await.unwrap();
    // The worker takes the first and waits for the slow answer.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let t0 = Instant::now();
    for i in 0..20 {
        n.record(&fault(&format!("ems.meter{i}"), "stale"))
            .await
            .unwrap();
    }
    assert!(
        t0.elapsed() < Duration::from_millis(300),
        "record does not wait for the service"
    );
    // The first is in flight, one waits; the other 19 were dropped.
    requests(
        &server,
        2,
        Duration::from_secs(5),
        Duration::from_millis(1000),
    )
    .await;

    assert!(
        !logs.text().contains(case.secret),
        "a secret was logged:\n{}",
        logs.text()
    );
    first.into_iter().next().expect("one request")
}
