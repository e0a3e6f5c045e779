//! Against a local HTTP server playing Home Assistant's `/api/states/<entity>` API (wiremock),
//! fed by the real engine over a simulated TWC or by hand-made snapshots.

use serde_json::Value;
use std::time::Duration;
use twc_core::engine::spawn_publisher;
use twc_core::model::{Settings, Status};
use twc_core::plugin::{PluginConfig, Secret, StatusPublisher};
use twc_status_hass::{HassStatus, HassStatusConfig};
use twc_testkit::engine::engine_with_twc;
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "test-long-lived-token";
const STATE_REPLY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/states_sensor_pv_generation_RECONSTRUCTED.json"
));

fn config(url: &str, batch: u64, resend: u64, retry: u64) -> HassStatusConfig {
    HassStatusConfig {
        url: url.to_string(),
        token: Secret::new(TOKEN),
        batch_secs: batch,
        resend_secs: resend,
        retry_secs: retry,
        timeout_secs: 2,
    }
}

async fn ha() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/api/states/sensor\.twcmanager_[a-z0-9]+_[a-z_]+$",
        ))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        // HA answers a state update with the state object (200, or 201 when it is new).
        .respond_with(ResponseTemplate::new(200).set_body_raw(STATE_REPLY, "application/json"))
        .mount(&server)
        .await;
    server
}

/// Bodies POSTed to `entity` that HA accepted (`ok = true`) or all of them.
async fn posts(server: &MockServer, entity: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == format!("/api/states/{entity}"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn wait_posts(server: &MockServer, entity: &str, n: usize, secs: u64) -> Vec<Value> {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let p = posts(server, entity).await;
        if p.len() >= n {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{entity}: {} posts within {secs} s, wanted {n}",
            p.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_reach_home_assistant_with_twcmanager_entity_ids() {
    let server = ha().await;
    let settings = Settings {
        non_scheduled_amps: 10.0,
        ..Settings::default()
    };
    let (engine, _sim) = engine_with_twc(settings).await;
    let p = HassStatus::new("status.hass", config(&server.uri(), 1, 3600, 1)).unwrap();
    let _task = spawn_publisher(
        &engine.handle,
        "hass".into(),
        Box::new(p),
        Duration::from_millis(200),
    );

    let b = wait_posts(&server, "sensor.twcmanager_all_max_amps_for_slaves", 1, 10).await;
    let last = b.last().unwrap();
    assert_eq!(last["state"], "10.0");
    assert_eq!(last["attributes"]["unit_of_measurement"], "A");
    assert_eq!(last["attributes"]["device_class"], "current");
    assert_eq!(last["attributes"]["state_class"], "measurement");
    assert_eq!(
        last["attributes"]["friendly_name"],
        "TWC all maxAmpsForSlaves"
    );

    let b = wait_posts(&server, "sensor.twcmanager_all_current_policy", 1, 10).await;
    assert_eq!(b[0]["state"], engine.handle.status().policy.name);
    assert!(b[0]["attributes"].get("unit_of_measurement").is_none());
    assert_eq!(b[0]["attributes"]["friendly_name"], "TWC all currentPolicy");

    let b = wait_posts(&server, "sensor.twcmanager_config_min_amps_per_twc", 1, 10).await;
    assert_eq!(b[0]["state"], "6");

    // Per-TWC sensors; the offer reaches 10 A.
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let b = posts(&server, "sensor.twcmanager_7777_amps_offered").await;
        if b.last().is_some_and(|v| v["state"] == "10.0") {
            assert_eq!(
                b.last().unwrap()["attributes"]["friendly_name"],
                "TWC 7777 ampsOffered"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "7777 ampsOffered never reached 10.0: {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for entity in [
        "sensor.twcmanager_7777_amps_in_use",
        "sensor.twcmanager_7777_amps_max",
        "sensor.twcmanager_7777_state",
        "sensor.twcmanager_7777_cars_charging",
    ] {
        wait_posts(&server, entity, 1, 10).await;
    }
    // Every request carried the token.
    for r in server.received_requests().await.unwrap() {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {TOKEN}")
        );
    }
}

fn status_named(name: &str) -> Status {
    let mut s = Status::default();
    s.policy.name = name.to_string();
    s
}

const POLICY: &str = "sensor.twcmanager_all_current_policy";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_inside_a_batch_go_out_once_with_the_latest_value() {
    let server = ha().await;
    let p = HassStatus::new("status.hass", config(&server.uri(), 2, 3600, 1)).unwrap();
    p.publish(&status_named("A")).await.unwrap();
    wait_posts(&server, POLICY, 1, 5).await;
    p.publish(&status_named("B")).await.unwrap();
    p.publish(&status_named("C")).await.unwrap();
    let b = wait_posts(&server, POLICY, 2, 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b2 = posts(&server, POLICY).await;
    assert_eq!(b.len(), b2.len());
    let states: Vec<&str> = b2.iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["A", "C"]);
    // An unchanged value is not sent again before resend_secs.
    let n = posts(&server, "sensor.twcmanager_all_total_amps_in_use")
        .await
        .len();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_retried_and_values_are_resent() {
    let server = MockServer::start().await;
    // Home Assistant is restarting (502), then refuses the token once (401), then works.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(3)
        .mount(&server)
        .await;
    let p = HassStatus::new("status.hass", config(&server.uri(), 1, 3, 1)).unwrap();
    let t0 = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_millis(200), p.publish(&status_named("A")))
        .await
        .expect("publish never waits for Home Assistant")
        .unwrap();
    // Each batch stops at the first failure and is retried after retry_secs; the entities go in
    // name order, so the three failures all hit the first one, then everything goes through.
    wait_posts(
        &server,
        "sensor.twcmanager_config_non_scheduled_amps_max",
        1,
        15,
    )
    .await;
    let reqs = posts(&server, POLICY).await;
    assert_eq!(reqs.len(), 4, "3 refused + 1 accepted: {reqs:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(2500),
        "retries came too fast: {:?}",
        t0.elapsed()
    );
    assert!(reqs.iter().all(|r| r["state"] == "A"));
    // Unchanged, the value is sent again after resend_secs (HA forgets API states on restart).
    let before = posts(&server, POLICY).await.len();
    let b = wait_posts(&server, POLICY, before + 1, 8).await;
    assert_eq!(b.last().unwrap()["state"], "A");
}

#[test]
fn example_config_parses() {
    let ex = include_str!("../example.toml");
    let v: toml::Value = toml::from_str(ex).unwrap();
    let body = toml::to_string(&v["status"]["hass"]).unwrap();
    let cfg = PluginConfig::from_toml("status.hass", &body).unwrap();
    let c: HassStatusConfig = cfg.parse().unwrap();
    assert_eq!(c.batch_secs, 60);
    assert!(format!("{c:?}").contains("***"), "the token is not printed");
    assert!(HassStatus::new("status.hass", c).is_ok());
    let no_token = PluginConfig::from_toml("status.hass", "url = \"http://ha:8123\"\n").unwrap();
    let e = HassStatus::new("status.hass", no_token.parse().unwrap())
        .err()
        .unwrap();
    assert!(e.to_string().contains("token"), "{e}");
    let bad_url =
        PluginConfig::from_toml("status.hass", "url = \"ha:8123\"\ntoken = \"x\"\n").unwrap();
    let e = HassStatus::new("status.hass", bad_url.parse().unwrap())
        .err()
        .unwrap();
    assert!(e.to_string().contains("url"), "{e}");
    let typo = PluginConfig::from_toml("status.hass", "batch_sec = 5\n").unwrap();
    assert!(
        typo.parse::<HassStatusConfig>()
            .unwrap_err()
            .to_string()
            .contains("batch_sec")
    );
}
