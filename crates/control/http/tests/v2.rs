//! The typed v2 API, the OpenAPI document, live events, /metrics, and access control.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use twc_control_http::AuthMode;
use twc_core::plugin::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_slaves_policy_and_per_slave_commands() {
    let d = demo(2).await;
    d.wait_slaves(2).await;
    let s = d.json("/api/v2/status").await;
    assert_eq!(s["slaves"].as_array().unwrap().len(), 2);
    assert_eq!(s["wiring_max_all_amps"], 32.0);
    assert_eq!(s["policy"]["name"], "Non Scheduled Charging");
    assert!(s["site"]["generation_w"].as_f64().unwrap() >= 3000.0);
    assert!(
        s["trouble"].as_array().unwrap().is_empty(),
        "{}",
        s["trouble"]
    );
    let slaves = d.json("/api/v2/slaves").await;
    assert_eq!(slaves[0]["id"], "1111");
    assert_eq!(slaves[1]["id"], "2222");
    let one = d.json("/api/v2/slaves/2222").await;
    assert_eq!(one["id"], "2222");
    assert_eq!(d.get("/api/v2/slaves/9999").await.status(), 404);
    assert_eq!(d.get("/api/v2/slaves/zz").await.status(), 400);
    assert_eq!(d.post("/api/v2/slaves/1111/stop", "").await.status(), 204);
    assert_eq!(d.post("/api/v2/slaves/1111/start", "").await.status(), 204);
    assert_eq!(d.post("/api/v2/slaves/9999/start", "").await.status(), 404);
    assert_eq!(d.post("/api/v2/slaves/stop", "").await.status(), 204);
    assert_eq!(d.post("/api/v2/slaves/start", "").await.status(), 204);
    let p = d.json("/api/v2/policy").await;
    assert_eq!(p["active"]["name"], "Non Scheduled Charging");
    assert_eq!(p["active"]["action"], 1);
    // A fixed 6 A under a 32 A wiring limit: nothing cuts it, the policy's own amps bind.
    assert_eq!(p["active"]["binding"], "policy");
    assert_eq!(s["policy"]["binding"], "policy");
    assert!(
        p["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["active"] == true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_now_moves_the_offer_and_refuses_too_much() {
    let d = demo(2).await;
    d.wait_slaves(2).await;
    let r = d
        .http
        .post(d.url("/api/v2/charge-now"))
        .json(&json!({"amps": 12, "duration_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["charge_now"]["amps"], 12.0);
    // The car on slave 1111 is plugged in: its offer follows the 12 A budget.
    d.wait_until(Duration::from_secs(20), |s| {
        s.slaves
            .iter()
            .any(|x| x.id.to_string() == "1111" && x.offered.amps() == 12.0)
    })
    .await
    .expect("offer follows charge now");
    assert_eq!(d.json("/api/v2/charge-now").await["amps"], 12.0);
    for body in [
        json!({"amps": 33, "duration_secs": 60}),
        json!({"amps": -1, "duration_secs": 60}),
        json!({"amps": 10, "duration_secs": 0}),
        json!({"amps": "ten", "duration_secs": 60}),
        json!({"amps": 10}),
        json!({"amps": 10, "duration_secs": 60, "extra": 1}),
    ] {
        let r = d
            .http
            .post(d.url("/api/v2/charge-now"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    assert_eq!(d.settings().await.charge_now.unwrap().amps, 12.0);
    let r = d
        .http
        .delete(d.url("/api/v2/charge-now"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(d.json("/api/v2/charge-now").await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_schedules_offsets() {
    let d = demo(0).await;
    let s = d.json("/api/v2/settings").await;
    assert_eq!(s["non_scheduled_action"], "charge");
    let r = d
        .http
        .patch(d.url("/api/v2/settings"))
        .json(&json!({"non_scheduled_action": "green", "non_scheduled_amps": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let st = d.settings().await;
    assert_eq!(
        (st.non_scheduled_action.as_str(), st.non_scheduled_amps),
        ("green", 10.0)
    );
    for body in [
        json!({"non_scheduled_action": "fast"}),
        json!({"non_scheduled_amps": 99}),
        json!({"bogus": 1}),
        json!({"home": {"lat": 100, "lon": 0}}),
    ] {
        let r = d
            .http
            .patch(d.url("/api/v2/settings"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(d.settings().await.non_scheduled_amps, 10.0);
    let r = d
        .http
        .patch(d.url("/api/v2/settings"))
        .json(&json!({"home": {"lat": 48.1, "lon": 11.5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(d.json("/api/v2/settings").await["home"]["lat"], 48.1);

    let sched = json!({"enabled": true, "amps": 16, "windows": [{"weekday": 7, "start_minute": 60, "end_minute": 300}, {"weekday": 2, "start_minute": 1380, "end_minute": 360}]});
    let r = d
        .http
        .put(d.url("/api/v2/schedules"))
        .json(&sched)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = d.json("/api/v2/schedules").await;
    assert_eq!(got["windows"][0]["weekday"], 2, "sorted by weekday: {got}");
    assert_eq!(d.settings().await.schedule.windows.len(), 2);
    for bad in [
        json!({"enabled": true, "amps": 40, "windows": []}),
        json!({"enabled": true, "amps": 10, "windows": [{"weekday": 8, "start_minute": 0, "end_minute": 1}]}),
        json!({"enabled": true, "amps": 10, "windows": [{"weekday": 1, "start_minute": 0, "end_minute": 1440}]}),
        json!({"enabled": true, "amps": 10, "windows": [{"weekday": 1, "start_minute": 0, "end_minute": 1}, {"weekday": 1, "start_minute": 5, "end_minute": 9}]}),
        json!({"enabled": true, "amps": 0, "windows": []}),
    ] {
        let r = d
            .http
            .put(d.url("/api/v2/schedules"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(d.settings().await.schedule.amps, 16.0);

    let r = d
        .http
        .put(d.url("/api/v2/offsets/heatpump"))
        .json(&json!({"value": 1500, "unit": "W"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        d.json("/api/v2/offsets").await,
        json!({"heatpump": {"value": 1500.0, "unit": "W"}})
    );
    let r = d
        .http
        .put(d.url("/api/v2/offsets/x"))
        .json(&json!({"value": 0, "unit": "W"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = d
        .http
        .put(d.url("/api/v2/offsets/x"))
        .json(&json!({"value": 1, "unit": "kW"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        d.http
            .delete(d.url("/api/v2/offsets/heatpump"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        d.http
            .delete(d.url("/api/v2/offsets/heatpump"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vehicles_history_events_and_openapi() {
    let d = demo(2).await;
    d.wait_slaves(2).await;
    // The sim's Tesla reports its VIN once the car charges.
    d.wait_until(Duration::from_secs(30), |s| {
        s.slaves.iter().any(|x| x.vin.is_some())
    })
    .await
    .expect("vin");
    let v = d.json("/api/v2/vehicles").await;
    assert_eq!(v[0]["vin"], twc_sim::SAMPLE_VIN);
    assert_eq!(v[0]["plugged_into"], "1111");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let h = d.json("/api/v2/history").await;
    assert!(h["samples"].as_array().unwrap().len() >= 2, "{h}");
    assert!(h["samples"][0]["charger_w"].is_number());
    assert!(h["days"].is_array());
    // The Events page's list: the engine's events since start, shaped as the live stream's.
    let events = h["events"].as_array().unwrap();
    // (Slaves may link before the server's recorder exists; what follows is recorded.)
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "offer_changed" && e["slave"] == "1111" && e["to"] == 600),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["type"] == "vin_read"), "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["type"] != "reading" && e["type"] != "slave_status"),
        "readings and slave status updates are not listed"
    );
    // Energy for the history chart, summed by the server for each period.
    let day = h["energy"]["day"].as_array().unwrap();
    let local_days = h["days"].as_array().unwrap();
    assert_eq!(day.len(), local_days.len());
    assert_eq!(
        day.last().unwrap()["label"],
        local_days.last().unwrap()["date"]
    );
    assert!(
        day.last().unwrap()["generation_kwh"].as_f64().unwrap() > 0.0,
        "{day:?}"
    );
    let week = h["energy"]["week"].as_array().unwrap();
    let label = week.last().unwrap()["label"].as_str().unwrap();
    assert!(
        label.len() == 8 && &label[4..6] == "-W",
        "ISO week label {label}"
    );
    assert!(!h["energy"]["month"].as_array().unwrap().is_empty());
    // Two seconds of samples are a few Wh: too little to draw, so the chart shows its empty state.
    assert_eq!(h["energy"]["empty"], true);
    assert_eq!(d.get("/api/v2/history?since=abc").await.status(), 400);

    // Live events: a status message arrives first, then more as the numbers move.
    let mut r = d.get("/api/v2/events").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while text.matches("event: status").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = text.split("data: ").nth(1).unwrap().lines().next().unwrap();
    let s: Value = serde_json::from_str(first).unwrap();
    assert!(s["slaves"].is_array());

    let doc = d.json("/api/v2/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v2/status",
        "/api/v2/slaves",
        "/api/v2/slaves/{id}",
        "/api/v2/policy",
        "/api/v2/settings",
        "/api/v2/charge-now",
        "/api/v2/schedules",
        "/api/v2/offsets",
        "/api/v2/offsets/{name}",
        "/api/v2/vehicles",
        "/api/v2/history",
        "/api/v2/events",
    ] {
        assert!(paths.contains_key(p), "{p} missing in the OpenAPI document");
    }
    // The document matches the responses: every required property of StatusView is present.
    let schema = &doc["components"]["schemas"]["StatusView"];
    let live = d.json("/api/v2/status").await;
    for k in schema["required"].as_array().unwrap() {
        assert!(
            live.get(k.as_str().unwrap()).is_some(),
            "{k} is required by the schema but missing"
        );
    }
    for (k, _) in live.as_object().unwrap() {
        assert!(
            schema["properties"].get(k).is_some(),
            "{k} is served but not documented"
        );
    }
    let slave_schema = &doc["components"]["schemas"]["SlaveView"];
    for (k, _) in live["slaves"][0].as_object().unwrap() {
        assert!(
            slave_schema["properties"].get(k).is_some(),
            "slave.{k} not documented"
        );
    }
    assert_eq!(d.get("/api/v2/nope").await.status(), 404);
    assert_eq!(
        d.http
            .delete(d.url("/api/v2/status"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_text_format() {
    let d = demo(2).await;
    d.wait_slaves(2).await;
    let r = d.get("/metrics").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let t = r.text().await.unwrap();
    for needle in [
        "twc_budget_amps ",
        "twc_slave_offered_amps{slave=\"1111\"}",
        "twc_slave_actual_amps{slave=\"2222\"}",
        "twc_source_reading_age_seconds{source=\"meter\"}",
        "twc_bus_frames_tx_total ",
        "twc_bus_frame_errors_total{reason=\"bad_checksum\"}",
        "twc_plugin_errors_total{component=\"ems.meter\"}",
        "twc_reading_watts{quantity=\"generation\"}",
    ] {
        assert!(t.contains(needle), "{needle} missing:\n{t}");
    }
    for line in t.lines().filter(|l| !l.starts_with('#')) {
        let v = line.rsplit(' ').next().unwrap();
        assert!(v.parse::<f64>().is_ok(), "bad sample line {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_clients_need_a_login_and_csrf_is_enforced() {
    // auth = "always" stands in for a remote client (the test client is on loopback).
    let mut cfg = http_config();
    cfg.auth = AuthMode::Always;
    cfg.password = Secret::new("correct horse battery");
    cfg.tokens = vec![Secret::new("0123456789abcdef0123")];
    let d = demo_with(0, Default::default(), cfg).await;
    assert_eq!(d.get("/api/getStatus").await.status(), 401);
    assert_eq!(d.get("/metrics").await.status(), 401);
    let r = d
        .http
        .get(d.url("/api/getStatus"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = d
        .http
        .get(d.url("/api/getStatus"))
        .bearer_auth("0123456789abcdef0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = d
        .http
        .post(d.url("/api/cancelChargeNow"))
        .bearer_auth("0123456789abcdef0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Pages redirect to the login page, which is public.
    let nofollow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = nofollow.get(d.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(d.get("/login").await.status(), 200);
    let r = nofollow
        .post(d.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = nofollow
        .post(d.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=correct+horse+battery")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("twc_session="));
    let s: Value = nofollow
        .get(d.url("/api/v2/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["via"], "session");
    let csrf = s["csrf_token"].as_str().unwrap().to_string();
    // A session without the CSRF header cannot change anything.
    let r = nofollow
        .post(d.url("/api/chargeNow"))
        .header("cookie", &cookie)
        .body(r#"{"chargeNowRate": 10, "chargeNowDuration": 60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(d.settings().await.charge_now.is_none());
    let r = nofollow
        .post(d.url("/api/chargeNow"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .body(r#"{"chargeNowRate": 10, "chargeNowDuration": 60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A cross-site page cannot post, whatever it carries.
    let r = nofollow
        .post(d.url("/api/cancelChargeNow"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = nofollow
        .post(d.url("/api/cancelChargeNow"))
        .bearer_auth("0123456789abcdef0123")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(d.settings().await.charge_now.is_some());
    // Nothing served contains a secret.
    for p in [
        "/api/v2/status",
        "/api/getConfig",
        "/api/getStatus",
        "/metrics",
        "/api/v2/settings",
    ] {
        let t = d
            .http
            .get(d.url(p))
            .bearer_auth("0123456789abcdef0123")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !t.contains("correct horse") && !t.contains("0123456789abcdef0123"),
            "{p} leaks a secret"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_trusted_by_default_but_cross_site_posts_are_not() {
    let d = demo(0).await;
    let s = d.json("/api/v2/session").await;
    assert_eq!(s["via"], "loopback");
    let r = d
        .http
        .post(d.url("/api/cancelChargeNow"))
        .header("origin", "http://attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = d
        .http
        .post(d.url("/api/cancelChargeNow"))
        .header("origin", d.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_port_moves_to_the_next_one_only_with_fallback_ports() {
    let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = first.local_addr().unwrap().port();
    let cfg = twc_control_http::HttpConfig {
        listen: "127.0.0.1".parse().unwrap(),
        port,
        fallback_ports: 9,
        ..Default::default()
    };
    match twc_control_http::bind(&cfg).await {
        Ok(l) => assert!(l.local_addr().unwrap().port() > port),
        // The next ports can be taken by other tests; then the error names the key.
        Err(e) => assert!(e.to_string().contains("fallback_ports"), "{e}"),
    }
    // The default: no fallback; the error names the key, the port and the fix.
    let cfg = twc_control_http::HttpConfig {
        listen: "127.0.0.1".parse().unwrap(),
        port,
        ..Default::default()
    };
    assert_eq!(cfg.fallback_ports, 0);
    let e = twc_control_http::bind(&cfg).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("[control.http] port = {port} is in use"))
            && msg.contains("set fallback_ports = N"),
        "{e}"
    );
    // IPv6 loopback works too.
    let cfg = twc_control_http::HttpConfig {
        listen: "::1".parse().unwrap(),
        port: 0,
        ..Default::default()
    };
    if let Ok(l) = twc_control_http::bind(&cfg).await {
        assert!(l.local_addr().unwrap().is_ipv6());
    }
}

#[test]
fn example_toml_parses() {
    let d = inventory::iter::<twc_core::plugin::ControlPlugin>()
        .find(|d| d.name == "http")
        .expect("registered");
    let cfg = twc_core::plugin::PluginConfig::from_toml("control.http", d.example).unwrap();
    let c = twc_control_http::HttpConfig::from_plugin_config(&cfg).unwrap();
    assert_eq!(c.port, 8080);
    assert!((d.build)(&cfg).is_ok());
    let bad = twc_core::plugin::PluginConfig::from_toml("control.http", "prot = 1").unwrap();
    assert!(
        twc_control_http::HttpConfig::from_plugin_config(&bad)
            .unwrap_err()
            .to_string()
            .contains("prot")
    );
}

/// A stand-in for a database logger's history (the sqlite/mysql sinks implement the same trait).
struct StoredRows;

#[twc_core::async_trait]
impl twc_core::history::HistoryQuery for StoredRows {
    async fn power(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        _to: chrono::DateTime<chrono::Utc>,
        _max: usize,
    ) -> Result<Vec<twc_core::history::PowerPoint>, twc_core::plugin::PluginError> {
        Ok(vec![twc_core::history::PowerPoint {
            at: from + chrono::Duration::minutes(1),
            generation_w: Some(4100.0),
            consumption_w: Some(600.0),
            charger_w: Some(3300.0),
            grid_w: None,
        }])
    }

    async fn sessions(
        &self,
        _vin: Option<&str>,
        _from: chrono::DateTime<chrono::Utc>,
        _to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<twc_core::history::SessionRecord>, twc_core::plugin::PluginError> {
        Ok(vec![twc_core::history::SessionRecord {
            slave: twc_core::protocol::TwcId::from_u16(0x1111),
            vin: Some(twc_sim::SAMPLE_VIN.into()),
            started_at: chrono::Utc::now() - chrono::Duration::seconds(1),
            ended_at: None,
            start_kwh: Some(1000),
            end_kwh: Some(1007),
            car_name: None,
            soc_start_pct: None,
            soc_end_pct: None,
            metrics: None,
        }])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_history_from_a_database_logger_is_served() {
    let d = demo_full(
        0,
        Default::default(),
        http_config(),
        Some(std::sync::Arc::new(StoredRows)),
    )
    .await;
    let h = d.json("/api/v2/history?days=3&hours=2").await;
    let stored = &h["stored"];
    assert_eq!(stored["power"][0]["generation_w"], 4100.0);
    let days = stored["days"].as_array().unwrap();
    assert_eq!(days.len(), 3, "{stored}");
    assert_eq!(
        days[2]["energy_kwh"], 7.0,
        "today's session counts today: {stored}"
    );
    assert_eq!(days[2]["sessions"], 1);
    assert_eq!(stored["error"], Value::Null);
    assert_eq!(d.get("/api/v2/history?days=0").await.status(), 400);
    // Without a database logger there is no stored part.
    let d2 = demo(0).await;
    assert_eq!(d2.json("/api/v2/history").await["stored"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_limit_flex_and_vin_lists() {
    let d = demo(0).await;
    let patch = |b: Value| {
        let (http, url) = (d.http.clone(), d.url("/api/v2/settings"));
        async move { http.patch(url).json(&b).send().await.unwrap() }
    };
    let r = patch(json!({"max_grid_import": {"value": 20, "unit": "A"}, "flex_amps": 2, "vin_allow": ["5yj3e1ea0kf000316"], "vin_deny": ["LRW3E7FA1MC000001"]})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["max_grid_import"], json!({"value": 20.0, "unit": "A"}));
    assert_eq!(v["vin_allow"], json!(["5YJ3E1EA0KF000316"]));
    let s = d.settings().await;
    assert_eq!(s.flex_amps, 2.0);
    assert_eq!(s.vin_deny, vec!["LRW3E7FA1MC000001".to_string()]);
    for bad in [
        json!({"max_grid_import": {"value": -1, "unit": "A"}}),
        json!({"max_grid_import": {"value": 10, "unit": "kW"}}),
        json!({"flex_amps": 99}),
        json!({"vin_allow": ["not a vin!"]}),
        json!({"vin_deny": "5YJ3E1EA0KF000316"}),
    ] {
        assert_eq!(patch(bad.clone()).await.status(), 400, "{bad}");
    }
    assert_eq!(
        d.settings().await.flex_amps,
        2.0,
        "refused patches changed nothing"
    );
    let r = patch(json!({"clear_max_grid_import": true, "vin_allow": []})).await;
    assert_eq!(r.status(), 200);
    let s = d.settings().await;
    assert!(s.max_grid_import.is_none() && s.vin_allow.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_meter_is_shown_as_trouble_and_never_as_zero_watts() {
    let d = demo_failing_meter(0).await;
    d.wait_until(Duration::from_secs(10), |s| {
        s.reading.is_none() && s.sources.iter().any(|x| x.stale && x.errors > 0)
    })
    .await
    .expect("the meter goes stale");
    let s = d.json("/api/v2/status").await;
    let trouble = s["trouble"].to_string();
    assert!(
        trouble.contains("meter has no fresh reading") && trouble.contains("HTTP 503"),
        "{trouble}"
    );
    assert_eq!(s["site"]["generation_w"], Value::Null);
    assert_eq!(s["site"]["stale"], true);
    let g = d.json("/api/getStatus").await;
    assert_eq!(
        g["generationWatts"],
        Value::Null,
        "missing data never reads as 0 W"
    );
    assert_eq!(g["consumptionAmps"], Value::Null);
    let m = d.get("/metrics").await.text().await.unwrap();
    assert!(m.contains("twc_source_stale{source=\"meter\"} 1"), "{m}");
    assert!(
        !m.contains("twc_reading_watts{"),
        "no reading is exported while stale:\n{m}"
    );
}

/// Every property a v2 GET answer carries is documented in its OpenAPI schema, and every
/// required one is present, recursively through `$ref`s, objects and arrays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v2_get_answer_matches_its_openapi_schema() {
    // With stored sessions, so `/api/v2/sessions` answers 200 (without a database logger it
    // answers 503, tested in sessions_filter_page_total_and_export_as_csv).
    let d = demo_full(
        2,
        Default::default(),
        http_config(),
        Some(std::sync::Arc::new(StoredSessions(sample_sessions(5)))),
    )
    .await;
    d.wait_slaves(2).await;
    d.wait_until(Duration::from_secs(30), |s| {
        s.slaves.iter().any(|x| x.vin.is_some())
    })
    .await
    .expect("vin");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let doc = d.json("/api/v2/openapi.json").await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        if path.contains('{') || path.ends_with("/events") {
            continue;
        }
        let schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
        let live = d.json(path).await;
        check(&doc, schema, &live, path);
        checked += 1;
    }
    let schema = &doc["paths"]["/api/v2/slaves/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    check(
        &doc,
        schema,
        &d.json("/api/v2/slaves/1111").await,
        "/api/v2/slaves/1111",
    );
    assert!(checked >= 9, "only {checked} GET routes checked");
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(
            doc,
            &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        ),
        None => s,
    }
}

fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    let s = resolve(doc, schema);
    if let Some(alts) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
    {
        if v.is_null() && alts.iter().any(|a| resolve(doc, a)["type"] == "null") {
            return;
        }
        let a = alts
            .iter()
            .find(|a| resolve(doc, a)["type"] != "null")
            .expect("an alternative");
        return check(doc, a, v, at);
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if v.is_null() {
        assert!(
            types.is_empty() || types.contains(&"null"),
            "{at}: null but the schema says {types:?}"
        );
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(props) = s["properties"].as_object() {
                for (k, x) in m {
                    let p = props
                        .get(k)
                        .unwrap_or_else(|| panic!("{at}.{k} is served but not documented"));
                    check(doc, p, x, &format!("{at}.{k}"));
                }
                for r in s["required"].as_array().into_iter().flatten() {
                    assert!(
                        m.contains_key(r.as_str().unwrap()),
                        "{at}.{r} is required but missing"
                    );
                }
            } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, x) in m {
                    check(doc, ap, x, &format!("{at}.{k}"));
                }
            }
        }
        Value::Array(a) => {
            assert!(
                types.contains(&"array"),
                "{at}: array but the schema says {types:?}"
            );
            for (i, x) in a.iter().enumerate() {
                check(doc, &s["items"], x, &format!("{at}[{i}]"));
            }
        }
        Value::String(_) => assert!(
            types.is_empty() || types.contains(&"string"),
            "{at}: string vs {types:?}"
        ),
        Value::Bool(_) => assert!(
            types.is_empty() || types.contains(&"boolean"),
            "{at}: bool vs {types:?}"
        ),
        Value::Number(n) => assert!(
            types.is_empty()
                || types.contains(&"number")
                || (types.contains(&"integer") && (n.is_i64() || n.is_u64())),
            "{at}: number vs {types:?}"
        ),
        Value::Null => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_bounded() {
    let d = demo(0).await;
    let mut open = Vec::new();
    for _ in 0..64 {
        let r = d.get("/api/v2/events").await;
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let r = d.get("/api/v2/events").await;
    assert_eq!(r.status(), 429);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("at most 64")
    );
    drop(open.pop());
    // The slot comes back once the server notices the client left.
    let mut ok = false;
    for _ in 0..50 {
        let r = d.get("/api/v2/events").await;
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a closed stream frees its slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_openapi_history_parameters_are_query_parameters_with_bounds() {
    let d = demo(0).await;
    let doc = d.json("/api/v2/openapi.json").await;
    let params = doc["paths"]["/api/v2/history"]["get"]["parameters"]
        .as_array()
        .expect("history has parameters");
    let by_name = |n: &str| {
        params
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("no parameter {n}: {params:?}"))
    };
    for p in params {
        assert_eq!(p["in"], "query", "{p}");
    }
    for (name, max) in [("days", 366), ("hours", 168)] {
        let p = by_name(name);
        assert_eq!(p["schema"]["minimum"], 1, "{p}");
        assert_eq!(p["schema"]["maximum"], max, "{p}");
        // What the document says is what the server enforces.
        let r = d.get(&format!("/api/v2/history?{name}={}", max + 1)).await;
        assert_eq!(r.status(), 400, "{name}");
        let r = d.get(&format!("/api/v2/history?{name}={max}")).await;
        assert_eq!(r.status(), 200, "{name}");
    }
    by_name("since");
}

/// Issue 13 item 11: the document says what the server enforces. For a few fields, a value
/// just inside the documented bound is accepted and one just outside is refused with 400; every
/// operation documents its refusals with the `{"error": string}` schema, and 413/415 happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_openapi_bounds_are_what_the_server_enforces() {
    let d = demo(2).await;
    d.wait_slaves(2).await;
    let doc = d.json("/api/v2/openapi.json").await;
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        let r = d.http.request(method, d.url(path)).json(&body).send();
        async move { r.await.unwrap().status().as_u16() }
    };
    let post = reqwest::Method::POST;

    // Charge Now: amps in (0, wiring], duration 1 … max. The served maximum is this server's
    // wiring limit for all TWCs (32 A here), not the static 240 A.
    let cn = schema("ChargeNowRequest");
    assert_eq!(cn["additionalProperties"], false, "{cn}");
    let amps = &cn["properties"]["amps"];
    assert_eq!(amps["exclusiveMinimum"], 0.0, "{amps}");
    let max_amps = amps["maximum"].as_f64().expect("amps maximum");
    assert_eq!(max_amps, 32.0);
    let dur = &cn["properties"]["duration_secs"];
    let max_dur = dur["maximum"].as_u64().expect("duration maximum");
    assert_eq!(dur["minimum"], 1, "{dur}");
    assert!(max_dur <= 366 * 24 * 3600, "at most a year");
    let charge = |a: Value, s: Value| {
        send(
            post.clone(),
            "/api/v2/charge-now",
            json!({"amps": a, "duration_secs": s}),
        )
    };
    assert_eq!(charge(json!(max_amps), json!(max_dur)).await, 200);
    assert_eq!(charge(json!(0.1), json!(1)).await, 200);
    assert_eq!(charge(json!(max_amps + 0.01), json!(60)).await, 400);
    assert_eq!(charge(json!(0), json!(60)).await, 400);
    assert_eq!(charge(json!(10), json!(max_dur + 1)).await, 400);
    assert_eq!(charge(json!(10), json!(0)).await, 400);
    // JSON Schema's integers include 60.0; a fraction is not one.
    assert_eq!(dur["type"], "integer", "{dur}");
    assert_eq!(charge(json!(10), json!(60.0)).await, 200);
    assert_eq!(charge(json!(10), json!(60.5)).await, 400);

    // Schedules: weekdays 1..=7, minutes 0..=1439.
    let w = schema("WindowView");
    assert_eq!(w["properties"]["weekday"]["minimum"], 1, "{w}");
    assert_eq!(w["properties"]["weekday"]["maximum"], 7, "{w}");
    for k in ["start_minute", "end_minute"] {
        assert_eq!(w["properties"][k]["minimum"], 0, "{w}");
        assert_eq!(w["properties"][k]["maximum"], 1439, "{w}");
    }
    let sched = |day: u64, end: u64| {
        send(
            reqwest::Method::PUT,
            "/api/v2/schedules",
            json!({"enabled": false, "amps": 10, "windows": [{"weekday": day, "start_minute": 0, "end_minute": end}]}),
        )
    };
    assert_eq!(sched(7, 1439).await, 200);
    assert_eq!(sched(1, 1439).await, 200);
    assert_eq!(sched(7, 1440).await, 400);
    assert_eq!(sched(8, 60).await, 400);
    assert_eq!(sched(0, 60).await, 400);

    // TWCIDs: exactly 4 hex digits; inside the pattern an unknown slave is 404, outside 400.
    let p = &doc["paths"]["/api/v2/slaves/{id}"]["get"]["parameters"][0];
    assert_eq!(p["schema"]["pattern"], "^[0-9A-Fa-f]{4}$", "{p}");
    assert_eq!(d.get("/api/v2/slaves/abcd").await.status(), 404);
    assert_eq!(d.get("/api/v2/slaves/+abc").await.status(), 400);
    assert_eq!(d.get("/api/v2/slaves/abcde").await.status(), 400);

    // VINs: up to 17 letters and digits; units are an enum.
    let patch = |b: Value| send(reqwest::Method::PATCH, "/api/v2/settings", b);
    let vins = &schema("SettingsPatch")["properties"]["vin_allow"];
    assert_eq!(vins["items"]["maxLength"], 17, "{vins}");
    assert_eq!(
        patch(json!({"vin_allow": ["5YJ3E1EA7JF000001"]})).await,
        200
    );
    assert_eq!(
        patch(json!({"vin_allow": ["5YJ3E1EA7JF0000012"]})).await,
        400
    );
    assert_eq!(patch(json!({"vin_allow": []})).await, 200);
    assert_eq!(schema("UnitView")["enum"], json!(["A", "W"]));
    let offset = |u: &str| {
        send(
            reqwest::Method::PUT,
            "/api/v2/offsets/heat",
            json!({"value": 100, "unit": u}),
        )
    };
    assert_eq!(offset("W").await, 204);
    assert_eq!(offset("kW").await, 400);
    // The bound depends on the unit: one alternative per unit, 0 excluded.
    let alts = schema("OffsetRequest")["oneOf"].clone();
    let amps_alt = alts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["properties"]["unit"]["enum"] == json!(["A"]))
        .expect("an alternative for A");
    let pos = &amps_alt["properties"]["value"]["oneOf"][0];
    assert_eq!(pos["exclusiveMinimum"], 0.0, "{pos}");
    let max = pos["maximum"].as_f64().unwrap();
    let put = |v: f64| {
        send(
            reqwest::Method::PUT,
            "/api/v2/offsets/heat",
            json!({"value": v, "unit": "A"}),
        )
    };
    assert_eq!(put(max).await, 204);
    assert_eq!(put(-max).await, 204);
    assert_eq!(put(max + 0.5).await, 400);
    assert_eq!(put(0.0).await, 400);

    // Every operation documents its refusals with the error schema; bodies also 413 and 415.
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (code, r) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {code}"
                    );
                }
            }
            if op.get("requestBody").is_some() {
                bodies += 1;
                for code in ["400", "413", "415"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
        }
    }
    assert!(bodies >= 4, "only {bodies} operations with a body");
    let err = schema("ErrorBody");
    assert_eq!(err["required"], json!(["error"]), "{err}");
    assert_eq!(err["additionalProperties"], false, "{err}");
    let r = d
        .http
        .post(d.url("/api/v2/charge-now"))
        .header("content-type", "text/plain")
        .body(r#"{"amps": 10, "duration_secs": 60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = d
        .http
        .post(d.url("/api/v2/charge-now"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"amps": 10, "duration_secs": 60, "pad": "{}"}}"#,
            "x".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}

/// Issue 14: a settings PATCH is one atomic engine command (`PatchSettings`), not a read of the
/// settings and a write-back of the whole, so concurrent changes of different fields all land:
/// PATCHes racing each other, and commands reaching the engine from elsewhere (MQTT) meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r14_concurrent_settings_patches_of_different_fields_all_land() {
    use twc_core::engine::Command;
    let d = demo(0).await;
    for round in 0..6u8 {
        let n = f64::from(round);
        let action = ["green", "stop", "charge"][usize::from(round % 3)];
        let bodies = [
            json!({"flex_amps": 1.0 + n}),
            json!({"non_scheduled_amps": 7.0 + n}),
            json!({"home": {"lat": 40.0 + n, "lon": 10.0}}),
            json!({"vin_allow": [format!("ALLOW{round}")]}),
            json!({"vin_deny": [format!("deny{round}")]}),
            json!({"max_grid_import": {"value": 10.0 + n, "unit": "A"}}),
            json!({"non_scheduled_action": action}),
        ];
        let patches = futures::future::join_all(bodies.into_iter().map(|b| {
            let (http, url) = (d.http.clone(), d.url("/api/v2/settings"));
            async move { http.patch(url).json(&b).send().await.unwrap().status() }
        }));
        let elsewhere = futures::future::join_all((0..4).map(|i| {
            let e = d.engine.clone();
            async move {
                let cmd = if i % 2 == 0 {
                    Command::SetSetting {
                        key: format!("set{i}"),
                        value: Some(round.to_string()),
                    }
                } else {
                    Command::PatchSettings(
                        json!({"extra": {format!("mqtt{i}"): round.to_string()}}),
                    )
                };
                e.command(cmd).await.map(|_| ())
            }
        }));
        let (codes, others) = futures::future::join(patches, elsewhere).await;
        assert!(codes.iter().all(|c| *c == 200), "round {round}: {codes:?}");
        assert!(
            others.iter().all(Result::is_ok),
            "round {round}: {others:?}"
        );
        let s = d.settings().await;
        assert_eq!(s.flex_amps, 1.0 + n, "round {round}");
        assert_eq!(s.non_scheduled_amps, 7.0 + n, "round {round}");
        assert_eq!(s.home.map(|h| h.lat), Some(40.0 + n), "round {round}");
        assert_eq!(s.vin_allow, vec![format!("ALLOW{round}")], "round {round}");
        assert_eq!(s.vin_deny, vec![format!("DENY{round}")], "round {round}");
        assert_eq!(
            s.max_grid_import.map(|g| g.value),
            Some(10.0 + n),
            "round {round}"
        );
        assert_eq!(s.non_scheduled_action, action, "round {round}");
        for k in ["set0", "mqtt1", "set2", "mqtt3"] {
            assert_eq!(
                s.extra.get(k),
                Some(&round.to_string()),
                "round {round}: {k} was lost"
            );
        }
    }
    // The API's answer is the settings after the patch, and a clear beats a value sent with it.
    let r = d
        .http
        .patch(d.url("/api/v2/settings"))
        .json(&json!({"home": {"lat": 1, "lon": 2}, "clear_home": true, "clear_max_grid_import": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["home"].clone(), v["max_grid_import"].clone()),
        (Value::Null, Value::Null)
    );
}

/// A forecast-based source's generation is labelled an estimate, on the site and on its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estimated_reading_is_shown_as_an_estimate() {
    struct Forecast;
    #[twc_core::async_trait]
    impl twc_core::plugin::EmsSource for Forecast {
        async fn read(
            &self,
        ) -> Result<twc_core::model::EnergyReading, twc_core::plugin::PluginError> {
            Ok(twc_core::model::EnergyReading {
                generation_w: Some(2500.0),
                estimated: true,
                ..Default::default()
            })
        }
    }
    let d = demo_with_meter(
        0,
        twc_core::model::Settings::default(),
        engine_config(),
        Box::new(Forecast),
    )
    .await;
    d.wait_until(Duration::from_secs(10), |s| s.reading.is_some())
        .await
        .expect("a reading");
    let s = d.json("/api/v2/status").await;
    assert_eq!(s["site"]["generation_w"], 2500.0);
    assert_eq!(s["site"]["estimated"], true, "{}", s["site"]);
    assert_eq!(s["sources"][0]["estimated"], true, "{}", s["sources"]);
}

#[tokio::test]
async fn ui_pages_assets_compression_and_languages() {
    let d = demo(1).await;
    for p in [
        "/",
        "/schedule",
        "/settings",
        "/vehicles",
        "/events",
        "/debug",
    ] {
        assert_eq!(d.get(p).await.status(), 200, "{p}");
    }
    // Text assets go out compressed when the browser accepts it, plain otherwise.
    for (accept, want) in [
        ("gzip", Some("gzip")),
        ("br", Some("br")),
        ("identity", None),
    ] {
        let r = d
            .http
            .get(d.url("/static/vendor/uplot/uPlot.iife.min.js"))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            want,
            "{accept}"
        );
        let body = r.bytes().await.unwrap();
        if want.is_some() {
            assert!(body.len() < 30_000, "{accept}: {} bytes", body.len());
        } else {
            assert!(body.len() > 50_000);
        }
    }
    let licence = d
        .get("/static/vendor/uplot/LICENSE")
        .await
        .text()
        .await
        .unwrap();
    assert!(licence.contains("MIT License"), "{licence}");
    // Every language file has every key English has, and no key English lacks.
    let en = d.json("/static/i18n/en.json").await;
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    for lang in ["de", "nl"] {
        let other = d.json(&format!("/static/i18n/{lang}.json")).await;
        assert_eq!(
            keys(&other),
            keys(&en),
            "{lang}.json keys differ from en.json"
        );
        assert_ne!(
            other["nav.schedule"], en["nav.schedule"],
            "{lang} is translated"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_crud_with_reasons() {
    let d = demo(2).await;
    d.wait_slaves(2).await;
    let put = |body: Value| {
        d.http
            .put(d.url("/api/v2/plans/weekday"))
            .json(&body)
            .send()
    };
    let ok = json!({"twc": "1111", "target": {"kind": "energy", "kwh": 20},
        "departure": {"kind": "weekly", "weekdays": [1,2,3,4,5], "minute": 420}});
    assert_eq!(put(ok.clone()).await.unwrap().status(), 204);
    let p = d.json("/api/v2/plans/weekday").await;
    assert_eq!(p["id"], "weekday");
    assert_eq!(p["plan"]["target"]["kwh"], 20.0);
    assert!(p["departure_unix"].as_i64().is_some(), "{p}");
    assert!(p["needed_kwh"].as_f64().unwrap() > 0.0, "{p}");
    assert_eq!(d.json("/api/v2/plans").await.as_array().unwrap().len(), 1);
    // A state-of-charge target without a car: 400 naming the field.
    let r = put(json!({"twc": "1111", "target": {"kind": "soc", "pct": 80},
        "departure": {"kind": "once", "at_unix": 4000000000i64}}))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("vin"), "{e}");
    let r = put(json!({"twc": "zz", "target": {"kind": "energy", "kwh": 5},
        "departure": {"kind": "once", "at_unix": 4000000000i64}}))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = put(
        json!({"twc": "1111", "target": {"kind": "energy", "kwh": 5}, "extra": 1,
        "departure": {"kind": "once", "at_unix": 4000000000i64}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(d.get("/api/v2/plans/nope").await.status(), 404);
    let del = d
        .http
        .delete(d.url("/api/v2/plans/weekday"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let del = d
        .http
        .delete(d.url("/api/v2/plans/weekday"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_filter_page_total_and_export_as_csv() {
    let d = demo_full(
        0,
        Default::default(),
        http_config(),
        Some(std::sync::Arc::new(StoredSessions(sample_sessions(60)))),
    )
    .await;
    // Default: the last 30 days, newest first, 50 a page.
    let v = d.json("/api/v2/sessions").await;
    assert_eq!(v["total"], 30, "{v}");
    assert_eq!(v["pages"], 1);
    let s = v["sessions"].as_array().unwrap();
    assert!(s[0]["started_unix"].as_i64() > s[1]["started_unix"].as_i64());
    // Session 0: half solar, priced; session 2: unmetered (share unknown, cost an upper bound);
    // session 3: no price (cost unknown).
    assert_eq!(s[0]["solar_share"], 0.5);
    assert_eq!(s[0]["energy_kwh"], 10.0);
    assert_eq!(s[0]["cost"], 1.5);
    assert_eq!(s[0]["currency"], "EUR");
    assert_eq!(s[0]["soc_start_pct"], 30.0);
    assert_eq!(s[2]["solar_share"], Value::Null);
    assert_eq!(s[2]["cost_upper_bound"], true);
    assert_eq!(s[3]["cost"], Value::Null);
    let months = v["months"].as_array().unwrap();
    let sessions: u64 = months.iter().map(|m| m["sessions"].as_u64().unwrap()).sum();
    assert_eq!(sessions, 30);
    // Filters: TWC, car by VIN or (case-insensitive) name, a range, pages.
    let from = (chrono::Utc::now() - chrono::Duration::days(65)).timestamp();
    let v = d
        .json(&format!(
            "/api/v2/sessions?twc=2222&from={from}&per_page=7&page=2"
        ))
        .await;
    assert_eq!(v["total"], 30, "{v}");
    assert_eq!(v["pages"], 5);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 7);
    assert!(
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["twc"] == "2222")
    );
    let v = d
        .json("/api/v2/sessions?car=model%203%20WITH%20a%20rather%20long%20name%20for%20phones")
        .await;
    assert_eq!(v["total"], 15);
    let v = d
        .json(&format!(
            "/api/v2/sessions?car=5YJ3E1EA7KF000002&from={from}"
        ))
        .await;
    assert_eq!(v["total"], 30);
    // CSV: every matching session, oldest first, unknown cells empty.
    let r = d.get("/api/v2/sessions?format=csv&twc=1111").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("sessions.csv")
    );
    let body = r.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines[0]
            .starts_with("started_at,ended_at,twc,vin,car,energy_kwh,solar_kwh,solar_share,cost")
    );
    assert_eq!(lines.len(), 1 + 15, "{body}");
    assert!(lines.iter().skip(1).all(|l| l.contains(",1111,")));
    // Bad parameters: 400 with a reason naming the parameter.
    for (q, word) in [
        ("twc=12", "twc"),
        ("from=yesterday", "from"),
        ("from=2026-11-20&to=2026-11-10", "before"),
        ("per_page=0", "per_page"),
        ("from=1", "366"),
        ("page=x", "page"),
        ("format=xml", "format"),
        ("colour=red", "colour"),
    ] {
        let r = d.get(&format!("/api/v2/sessions?{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains(word), "{q}: {e}");
    }
    // Without a database logger: 503 saying what to configure.
    let none = demo(0).await;
    let r = none.get("/api/v2/sessions").await;
    assert_eq!(r.status(), 503);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("logging.sqlite"),
        "{e}"
    );
}

/// A Wall Connector Gen3 (an external load point) in `/status` and `/load_points`, with the
/// values of its fixtures, matching the OpenAPI document; and in TWCManager's `getSlaveTWCs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen3_load_point_shows_in_status_load_points_and_get_slave_twcs() {
    let d = demo(1).await;
    d.wait_slaves(1).await;
    report_gen3(&d.engine).await;
    d.wait_until(Duration::from_secs(10), |s| !s.load_points.is_empty())
        .await
        .expect("the load point in Status");
    let doc = d.json("/api/v2/openapi.json").await;
    let st = d.json("/api/v2/status").await;
    check(
        &doc,
        &doc["paths"]["/api/v2/status"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        &st,
        "/api/v2/status",
    );
    let l = &st["load_points"][0];
    assert_eq!(l["name"], "gen3.garage");
    assert_eq!(l["ident"], "gen3_garage");
    assert_eq!(l["kind"], "gen3");
    assert_eq!(l["state"], "charging");
    assert_eq!(l["state_name"], "charging");
    assert_eq!(l["charging"], true);
    assert_eq!(l["stale"], false);
    assert_eq!(l["draw_amps"], 31.9);
    assert_eq!(l["power_w"], 7703.85);
    assert_eq!(l["phases"], 1);
    assert_eq!(l["currents_a"], json!([31.8, 31.9, 0.1]));
    assert_eq!(l["voltages_v"], json!([241.5, 241.5, 118.7]));
    assert_eq!(l["session_energy_wh"], 11562.4);
    assert_eq!(l["session_secs"], 5421.0);
    assert_eq!(l["lifetime_kwh"], 386.204);
    assert_eq!(l["firmware"], "21.29.1+g4152353e50f744");
    assert_eq!(l["wifi_signal_pct"], 44.0);
    assert_eq!(l["wifi_rssi_dbm"], -68.0);
    assert_eq!(l["alerts"], json!([]));
    assert_eq!(l["max_amps"], 48.0);
    let temps: Vec<(String, f64)> = l["temperatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["celsius"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        temps,
        [
            ("handle".to_string(), 30.6),
            ("mcu".into(), 45.1),
            ("pcba".into(), 41.2)
        ]
    );
    assert!(l["allocated_amps"].as_f64().unwrap() <= 48.0);
    // Next to the slave, and in the chargers' power.
    assert_eq!(st["slaves"].as_array().unwrap().len(), 1);
    assert!(st["site"]["charger_w"].as_f64().unwrap() >= 7703.85);

    let list = d.json("/api/v2/load_points").await;
    check(
        &doc,
        &doc["paths"]["/api/v2/load_points"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"],
        &list,
        "/api/v2/load_points",
    );
    assert_eq!(list[0]["name"], "gen3.garage");
    for key in ["gen3.garage", "gen3_garage"] {
        let one = d.json(&format!("/api/v2/load_points/{key}")).await;
        assert_eq!(one["power_w"], 7703.85, "{key}");
    }
    let missing = d.get("/api/v2/load_points/nope").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");

    // TWCManager's getSlaveTWCs: the slave under its TWCID, the Gen3 under its ident.
    let twcs = d.json("/api/getSlaveTWCs").await;
    let g = &twcs["gen3_garage"];
    assert_eq!(g["TWCID"], "gen3_garage");
    assert_eq!(g["carsCharging"], true);
    assert_eq!(g["chargerLoadInW"], 7704);
    assert_eq!(g["reportedAmpsActual"], 31.9);
    assert_eq!(g["maxAmps"], 48.0);
    assert_eq!(g["voltsPhaseA"], 242);
    assert_eq!(g["voltsPhaseC"], 119);
    assert_eq!(g["lifetimekWh"], 386);
    assert_eq!(g["chargeTime"], "1:30:21");
    assert_eq!(g["kind"], "gen3");
    assert_eq!(
        twcs.as_object().unwrap().len(),
        3,
        "slave, gen3, total: {twcs}"
    );
    let slave_actual = twcs["1111"]["reportedAmpsActual"].as_f64().unwrap();
    let total = twcs["total"]["reportedAmpsActual"].as_f64().unwrap();
    assert!((total - (slave_actual + 31.9)).abs() < 0.02, "{twcs}");
    assert!(twcs["total"]["carsCharging"].as_i64().unwrap() >= 1);
}
