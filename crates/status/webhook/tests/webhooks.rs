//! Webhooks fire when a policy becomes active (POST with the status as JSON) or stops being active
//! (GET), against a local HTTP server, in real time: a running engine with the webhook plugin
//! spawned as the bin does (from the `[policy]` keys).

use std::time::Duration;
use twc_core::engine::{self, Command, EngineConfig};
use twc_core::model::Settings;
use twc_core::plugin::StatusPublisher;
use twc_core::policy::Webhook;
use twc_core::transport::StreamComms;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn policy_changes_call_the_webhooks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/enter"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/exit"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut cfg = EngineConfig::default();
    cfg.policy.rules.webhooks = vec![
        Webhook {
            policy: "*".into(),
            event: "enter".into(),
            url: format!("{}/enter", server.uri()),
            method: "POST".into(),
        },
        Webhook {
            policy: "Non Scheduled Charging".into(),
            event: "exit".into(),
            url: format!("{}/exit", server.uri()),
            method: "GET".into(),
        },
    ];
    // A bus with no slaves on it.
    let (ours, _theirs) = tokio::io::duplex(1024);
    let publisher = twc_status_webhook::WebhookPublisher::new(twc_status_webhook::from_policy(
        &cfg.policy.rules,
    ));
    let every = publisher.min_interval().expect("webhooks see every change");
    let eng = engine::spawn(
        cfg,
        Box::new(StreamComms::new(ours, "test")),
        Vec::new(),
        Settings::default(),
    );
    engine::spawn_publisher(&eng.handle, "webhook".into(), Box::new(publisher), every);
    let received = |n: usize| {
        let server = &server;
        async move {
            for _ in 0..100 {
                let r = server.received_requests().await.unwrap_or_default();
                if r.len() >= n {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            server.received_requests().await.unwrap_or_default()
        }
    };
    // The first policy (Non Scheduled Charging) enters.
    let r = received(1).await;
    assert_eq!(r.len(), 1, "{r:?}");
    let body: serde_json::Value = serde_json::from_slice(&r[0].body).unwrap();
    assert_eq!(body["policy"]["name"], "Non Scheduled Charging", "{body}");
    // Charge Now: exit of Non Scheduled Charging (GET) and enter of Charge Now (POST).
    eng.handle
        .command(Command::ChargeNow {
            amps: 6.0,
            duration: Duration::from_secs(60),
        })
        .await
        .unwrap();
    let r = received(3).await;
    assert_eq!(r.len(), 3, "{r:?}");
    let kinds: Vec<String> = r
        .iter()
        .map(|q| format!("{} {}", q.method, q.url.path()))
        .collect();
    assert!(kinds.contains(&"GET /exit".to_string()), "{kinds:?}");
    let last: serde_json::Value =
        serde_json::from_slice(&r.iter().rfind(|q| q.url.path() == "/enter").unwrap().body)
            .unwrap();
    assert_eq!(last["policy"]["name"], "Charge Now");
    // No change, no call.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    eng.handle.command(Command::Shutdown).await.unwrap();
}

#[test]
fn the_section_is_validated_naming_the_key() {
    let bad = twc_core::plugin::PluginConfig::from_toml(
        "status.webhook",
        "[[webhooks]]\npolicy = \"*\"\nurl = \"ftp://x\"\n",
    )
    .unwrap();
    let reg = twc_core::plugin::Registry::collect().unwrap();
    let e = (reg.status["webhook"].build)(&bad).err().unwrap();
    assert!(e.to_string().contains("webhooks[0].url"), "{e}");
    let good = twc_status_webhook::plugin_config(
        "status.webhook",
        &twc_status_webhook::WebhookConfig::default(),
    );
    assert!((reg.status["webhook"].build)(&good).is_ok());
}
