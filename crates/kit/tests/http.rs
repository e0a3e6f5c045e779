use std::time::Duration;
use twc_core::plugin::ErrorKind;
use twc_plugin_kit::{HttpClient, HttpOptions, HttpSource, Request, num};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(retries: u32, timeout_secs: f64) -> HttpClient {
    let o = HttpOptions {
        timeout_secs,
        retries,
        backoff_ms: 10,
        accept_invalid_certs: false,
    };
    HttpClient::new("test", "ems.test", &o).unwrap()
}

#[tokio::test]
async fn retries_a_transient_failure_then_succeeds() {
    let s = MockServer::start().await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("42 W"))
        .mount(&s)
        .await;
    let text = client(2, 1.0)
        .text(&Request::get(format!("{}/x", s.uri())))
        .await
        .unwrap();
    assert_eq!(text, "42 W");
    assert_eq!(s.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn does_not_retry_auth_failures_and_names_the_request() {
    let s = MockServer::start().await;
    Mock::given(path("/api/states/sensor.pv"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s)
        .await;
    let e = client(3, 1.0)
        .json(&Request::get(format!(
            "{}/api/states/sensor.pv?key=SECRET",
            s.uri()
        )))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    let msg = e.chain();
    assert!(msg.contains("GET /api/states/sensor.pv: HTTP 401"), "{msg}");
    assert!(!msg.contains("SECRET"), "{msg}");
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn gives_up_after_the_retries_with_the_status_in_context() {
    let s = MockServer::start().await;
    Mock::given(path("/solar_api/v1/GetPowerFlowRealtimeData.fcgi"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&s)
        .await;
    let e = client(2, 1.0)
        .json(&Request::get(format!(
            "{}/solar_api/v1/GetPowerFlowRealtimeData.fcgi?Scope=System",
            s.uri()
        )))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.to_string()
            .contains("GET /solar_api/v1/GetPowerFlowRealtimeData.fcgi: HTTP 503"),
        "{e}"
    );
    assert_eq!(s.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn times_out() {
    let s = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&s)
        .await;
    let t0 = std::time::Instant::now();
    let e = client(0, 0.3)
        .text(&Request::get(format!("{}/slow", s.uri())))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = client(0, 1.0)
        .text(&Request::get(format!("http://127.0.0.1:{port}/x")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
}

#[tokio::test]
async fn posts_json_and_sends_headers() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login"))
        .and(header("authorization", "Bearer tok"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("set-cookie", "AuthCookie=abc; Path=/"),
        )
        .mount(&s)
        .await;
    let r = client(0, 1.0)
        .send(
            &Request::post_json(format!("{}/login", s.uri()), &serde_json::json!({"a": 1}))
                .bearer("tok"),
        )
        .await
        .unwrap();
    assert_eq!(r.set_cookies, vec!["AuthCookie=abc; Path=/".to_string()]);
}

#[tokio::test]
async fn http_source_stamps_and_maps_parse_errors() {
    let s = MockServer::start().await;
    Mock::given(path("/v"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"p\": \"1.5 kW\"}"))
        .mount(&s)
        .await;
    let src = HttpSource::new(
        client(0, 1.0),
        Request::get(format!("{}/v", s.uri())),
        |b| {
            let v = num::json(b)?;
            Ok(twc_core::model::EnergyReading {
                generation_w: num::pointer_power_w(&v, "/p")?,
                ..Default::default()
            })
        },
    );
    use twc_core::plugin::EmsSource;
    let before = tokio::time::Instant::now();
    let r = src.read().await.unwrap();
    assert_eq!(r.generation_w, Some(1500.0));
    assert!(r.measured_at >= before);

    let bad = HttpSource::new(
        client(0, 1.0),
        Request::get(format!("{}/v", s.uri())),
        |b| {
            let v = num::json(b)?;
            Ok(twc_core::model::EnergyReading {
                generation_w: num::pointer_power_w(&v, "/missing")?,
                ..Default::default()
            })
        },
    );
    let e = bad.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains("GET /v: missing /missing"), "{e}");
}

#[tokio::test]
async fn min_interval_spares_the_service_and_keeps_the_age() {
    use twc_core::plugin::EmsSource;
    use twc_plugin_kit::{MinInterval, min_interval_for};
    assert_eq!(min_interval_for(300, 1), Duration::from_secs(288));
    assert_eq!(min_interval_for(300, 2), Duration::from_secs(576));
    let s = MockServer::start().await;
    Mock::given(path("/v"))
        .respond_with(ResponseTemplate::new(200).set_body_string("5"))
        .mount(&s)
        .await;
    let inner = HttpSource::new(
        client(0, 1.0),
        Request::get(format!("{}/v", s.uri())),
        |b| {
            Ok(twc_core::model::EnergyReading {
                generation_w: Some(num::parse_power_w(std::str::from_utf8(b).unwrap_or(""))?),
                ..Default::default()
            })
        },
    );
    let src = MinInterval::new(inner, Duration::from_millis(400));
    let a = src.read().await.unwrap();
    let b = src.read().await.unwrap();
    assert_eq!(
        a.measured_at, b.measured_at,
        "a cached reading keeps its age"
    );
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let c = src.read().await.unwrap();
    assert!(c.measured_at > a.measured_at);
    assert_eq!(s.received_requests().await.unwrap().len(), 2);
}
