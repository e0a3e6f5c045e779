use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_powerwall::{
    build, cookie_header, parse_aggregates, parse_grid_status, parse_operation, parse_soe,
};
use twc_testkit::wiremock::matchers::{body_partial_json, header, method, path};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, assert_w, fixture};

#[test]
fn api_meters_aggregates_exporting_tesla_powerwall_lib() {
    let r = parse_aggregates(&fixture!(
        "api_meters_aggregates_exporting_tesla_powerwall_lib.json"
    ))
    .unwrap();
    assert_reading(&r, Some(6099.03), Some(734.15), Some(-5347.46));
    assert_w("battery", r.battery_w, -10.0);
    assert!(r.phase_voltages.is_some());
}

#[test]
fn api_meters_aggregates_fw21_44_running() {
    let r = parse_aggregates(&fixture!("api_meters_aggregates_fw21.44_running.json")).unwrap();
    assert_reading(&r, Some(1144.0), Some(1154.0), Some(72.0));
    assert_w("battery", r.battery_w, -60.0);
}

#[test]
fn stopped_502_files_are_empty_bodies() {
    for f in [
        fixture!("api_meters_aggregates_sitemaster_stopped_502_http.txt"),
        fixture!("api_system_status_soe_sitemaster_stopped_502_http.txt"),
    ] {
        let text = String::from_utf8(f).unwrap();
        assert!(text.starts_with("HTTP/2 502 \r\n"), "{text:?}");
        assert!(text.contains("content-length: 0\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(parse_aggregates(body.as_bytes()).is_err());
    }
}

#[test]
fn api_system_status_soe() {
    let app = parse_soe(&fixture!("api_system_status_soe_fw21.44.json"), true).unwrap();
    assert!((app - 39.38).abs() < 0.01, "{app}");
    let raw = parse_soe(&fixture!("api_system_status_soe_fw21.44.json"), false).unwrap();
    assert!((raw - 42.415).abs() < 0.001);
    let doc = parse_soe(
        &fixture!("api_system_status_soe_readme_example.json"),
        false,
    )
    .unwrap();
    assert!((doc - 69.1676).abs() < 0.001);
}

#[test]
fn api_operation() {
    assert_eq!(
        parse_operation(&fixture!("api_operation_autonomous_fw21.44.json")).unwrap(),
        ("autonomous".to_string(), 30.0)
    );
    let (mode, reserve) =
        parse_operation(&fixture!("api_operation_self_consumption.json")).unwrap();
    assert_eq!(mode, "self_consumption");
    assert!((reserve - 5.00002).abs() < 1e-6);
}

#[test]
fn api_system_status_grid_status_connected() {
    assert!(parse_grid_status(&fixture!("api_system_status_grid_status_connected.json")).unwrap());
    assert!(!parse_grid_status(br#"{"grid_status":"SystemIslandedActive"}"#).unwrap());
}

#[test]
fn cookies() {
    assert_eq!(
        cookie_header(&[
            "AuthCookie=abc; Path=/; HttpOnly".into(),
            "UserRecord=def; Path=/".into()
        ])
        .as_deref(),
        Some("AuthCookie=abc; UserRecord=def")
    );
    assert_eq!(cookie_header(&[]), None);
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.powerwall", t).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("url = \"https://h\"\npassword = \"\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("password"), "{e}");
    let e = build(&cfg("url = \"https://h\"")).err().unwrap();
    assert!(e.to_string().contains("password"), "{e}");
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\npassword = \"pw\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

fn good() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("/api/login/Basic", br#"{"email":"","firstname":"Tesla","lastname":"Energy","roles":["Home_Owner"],"token":"tok","provider":"Basic","loginTime":"2021-12-26T12:00:00-08:00"}"#.to_vec()),
        ("/api/meters/aggregates", fixture!("api_meters_aggregates_exporting_tesla_powerwall_lib.json")),
        ("/api/system_status/soe", fixture!("api_system_status_soe_fw21.44.json")),
        ("/api/system_status/grid_status", fixture!("api_system_status_grid_status_connected.json")),
    ]
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(source, &good()).await;
}

async fn mount_data(s: &MockServer, cookie: &str) {
    for (p, body) in good().into_iter().skip(1) {
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("cookie", cookie))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
            .with_priority(2)
            .mount(s)
            .await;
    }
    // Anything without the right cookie is refused, as the gateway does.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(10)
        .mount(s)
        .await;
}

#[tokio::test]
async fn logs_in_keeps_the_cookie_and_renews_it_when_refused() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/login/Basic"))
        .and(body_partial_json(
            serde_json::json!({"username": "customer", "password": "pw"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header("set-cookie", "AuthCookie=one; Path=/")
                .append_header("set-cookie", "UserRecord=u1; Path=/"),
        )
        .up_to_n_times(1)
        .mount(&s)
        .await;
    mount_data(&s, "AuthCookie=one; UserRecord=u1").await;
    let src = source(&s.uri());
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(6099.03), Some(734.15), Some(-5347.46));
    assert_w("soc", r.battery_soc_pct, 39.38);
    assert_eq!(
        r.grid_connected,
        Some(true),
        "grid status reaches the reading"
    );
    src.read().await.unwrap();
    let logins = |reqs: &[twc_testkit::wiremock::Request]| {
        reqs.iter()
            .filter(|r| r.url.path() == "/api/login/Basic")
            .count()
    };
    assert_eq!(
        logins(&s.received_requests().await.unwrap()),
        1,
        "the session is reused"
    );

    // The gateway forgets the session: the next read logs in again and goes on.
    s.reset().await;
    Mock::given(method("POST"))
        .and(path("/api/login/Basic"))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header("set-cookie", "AuthCookie=two; Path=/")
                .append_header("set-cookie", "UserRecord=u2; Path=/"),
        )
        .mount(&s)
        .await;
    mount_data(&s, "AuthCookie=two; UserRecord=u2").await;
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(6099.03), Some(734.15), Some(-5347.46));
    assert_eq!(logins(&s.received_requests().await.unwrap()), 1);
}

#[tokio::test]
async fn wrong_password_is_auth_and_stopped_sitemaster_is_transient() {
    let s = MockServer::start().await;
    Mock::given(path("/api/login/Basic"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s)
        .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(
        e.to_string().contains("POST /api/login/Basic: HTTP 401"),
        "{e}"
    );

    let s = MockServer::start().await;
    Mock::given(path("/api/login/Basic"))
        .respond_with(
            ResponseTemplate::new(200).append_header("set-cookie", "AuthCookie=x; Path=/"),
        )
        .mount(&s)
        .await;
    Mock::given(path("/api/meters/aggregates"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&s)
        .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("sitemaster"), "{e}");
}

/// The recorded aggregates with each meter's `last_communication_time` set `secs` ago
/// (`None` leaves the recorded one).
fn aggregates_aged(ages: &[(&str, i64)]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture!(
        "api_meters_aggregates_exporting_tesla_powerwall_lib.json"
    ))
    .unwrap();
    for (m, secs) in ages {
        v[*m]["last_communication_time"] = (chrono::Utc::now() - chrono::TimeDelta::seconds(*secs))
            .to_rfc3339()
            .into();
    }
    serde_json::to_vec(&v).unwrap()
}

async fn read_with_aggregates(body: Vec<u8>) -> twc_core::model::EnergyReading {
    let s = MockServer::start().await;
    for (p, b) in good() {
        let b = if p == "/api/meters/aggregates" {
            body.clone()
        } else {
            b
        };
        twc_testkit::serve_fixture(&s, p, b).await;
    }
    source(&s.uri()).read().await.unwrap()
}

#[tokio::test]
async fn r12_reading_is_as_old_as_the_meter_that_talked_last_longest_ago() {
    // The solar meter stopped talking to the gateway 10 minutes ago; the others are current.
    let r = read_with_aggregates(aggregates_aged(&[
        ("site", 1),
        ("load", 1),
        ("battery", 1),
        ("solar", 600),
    ]))
    .await;
    assert_reading(&r, Some(6099.03), Some(734.15), Some(-5347.46));
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 5.0, "age {age}");

    let r = read_with_aggregates(aggregates_aged(&[
        ("site", 1),
        ("load", 1),
        ("battery", 1),
        ("solar", 1),
    ]))
    .await;
    assert!(r.measured_at.elapsed().as_secs_f64() < 3.0);

    // As recorded (2020): far too old to count.
    let r = twc_ems_powerwall::parse_aggregates(&fixture!(
        "api_meters_aggregates_fw21.44_running.json"
    ))
    .unwrap();
    assert!(r.measured_at.elapsed() > std::time::Duration::from_secs(365 * 86_400));
}
