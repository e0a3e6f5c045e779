//! Through the real engine: a simulated car that starts and stops charging is one
//! notification each.

use std::time::Duration;
use twc_core::model::{ChargeNow, Settings};
use twc_core::plugin::{Logger, PluginConfig};
use twc_testkit::engine::{engine_with_twc_and, wait_status};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_start_and_end_are_one_notification_each() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let cfg = PluginConfig::from_toml(
        "logging.notify_webhook",
        &format!("url = \"{}/hook\"", server.uri()),
    )
    .unwrap();
    let notifier = twc_logging_notify_webhook::notifier(&cfg).unwrap();
    let stats = notifier.stats();
    let settings = Settings {
        charge_now: Some(ChargeNow {
            amps: 12.0,
            until_unix: chrono::Utc::now().timestamp() + 3600,
        }),
        ..Settings::default()
    };
    let (engine, sim) = engine_with_twc_and(settings, move |p| {
        let sink: Box<dyn Logger> = Box::new(notifier);
        p.loggers.push(("notify_webhook".into(), sink));
    })
    .await;
    wait_status(&engine, 60, |s| s.slaves.iter().any(|x| x.charging)).await;
    sim.unplug(0).unwrap();
    wait_status(&engine, 60, |s| s.slaves.iter().all(|x| !x.charging)).await;

    let topics = |reqs: &[wiremock::Request]| -> Vec<String> {
        reqs.iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                v["topic"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    };
    let t0 = std::time::Instant::now();
    loop {
        let got = topics(&server.received_requests().await.unwrap());
        if got.iter().any(|t| t == "session_ended") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no session_ended: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything else would have arrived by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = topics(&server.received_requests().await.unwrap());
    let count = |t: &str| got.iter().filter(|x| *x == t).count();
    assert_eq!(count("session_started"), 1, "{got:?}");
    assert_eq!(count("session_ended"), 1, "{got:?}");
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    engine.shutdown().await;
}
