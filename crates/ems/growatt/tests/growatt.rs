//! Growatt's web portal against the recorded MIX status, served by a mock server.

use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_growatt::{
    self as plugin, LOGIN, MIX_STATUS, build, form_encode, md5_hex, parse_login, parse_mix_status,
    parse_status_answer,
};
use twc_testkit::wiremock::matchers::{body_string_contains, header, method, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, assert_w, fixture};

fn status_obj() -> serde_json::Value {
    serde_json::from_slice(&fixture!("mix_status_docstring_example.json")).unwrap()
}

/// The portal's envelope around the recorded status object.
fn envelope() -> Vec<u8> {
    let mut b = br#"{"result":1,"obj":"#.to_vec();
    b.extend(fixture!("mix_status_docstring_example.json"));
    b.push(b'}');
    b
}

const LOGIN_OK: &[u8] = br#"{"result":1,"msg":"OK"}"#;

#[test]
fn mix_status_in_kw_becomes_watts_with_our_signs() {
    let r = parse_mix_status(&status_obj()).unwrap();
    // ppv 1.18 kW, pLocalLoad 0.84 kW, pactogrid 0.34 kW export (pPv1/pPv2 are W strings and
    // would give 1184 000 W if taken as kW).
    assert_reading(&r, Some(1180.0), Some(840.0), Some(-340.0));
    assert_w("battery_w", r.battery_w, 0.0);
    assert_w("soc", r.battery_soc_pct, 95.0);
    assert_eq!(r.phase_voltages, Some(vec![236.7]));
    assert!(!r.estimated);
}

#[test]
fn battery_and_import_directions() {
    let mut o = status_obj();
    o["pdisCharge1"] = 1.5.into();
    o["pactouser"] = "0.2".into();
    o["pactogrid"] = 0.into();
    let r = parse_mix_status(&o).unwrap();
    assert_w("battery discharging", r.battery_w, 1500.0);
    assert_w("grid importing", r.grid_w, 200.0);
    o["pdisCharge1"] = 0.into();
    o["chargePower"] = 2.into();
    let r = parse_mix_status(&o).unwrap();
    assert_w("battery charging", r.battery_w, -2000.0);
}

#[test]
fn r12_lost_inverters_and_garbage_never_read_as_zero() {
    let mut lost = status_obj();
    lost["lost"] = "mix.status.lost".into();
    assert_eq!(
        parse_mix_status(&lost).unwrap_err().kind,
        ErrorKind::Transient
    );
    for (key, bad) in [
        ("ppv", serde_json::Value::Null),
        ("ppv", "n/a".into()),
        ("pLocalLoad", (-0.84).into()),
        ("pactogrid", serde_json::json!({"v": 1})),
    ] {
        let mut o = status_obj();
        o[key] = bad.clone();
        let e = parse_mix_status(&o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol, "{key} = {bad}: {e}");
        assert!(e.message.contains(key), "{e}");
    }
    let mut o = status_obj();
    o.as_object_mut().unwrap().remove("ppv");
    assert!(parse_mix_status(&o).unwrap_err().message.contains("ppv"));
    let e = parse_status_answer(br#"{"result":0,"obj":null}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("mix_sn"), "{e}");
    assert_eq!(
        parse_login(br#"{"result":-2,"msg":"502"}"#)
            .unwrap_err()
            .kind,
        ErrorKind::Auth
    );
    assert_eq!(parse_login(b"{}").unwrap_err().kind, ErrorKind::Protocol);
}

#[test]
fn login_form_helpers() {
    assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex("secret"), "5ebe2294ecd0e0f08eab7690d2a6ee69");
    assert_eq!(form_encode("my user&x@y.z"), "my+user%26x%40y.z");
}

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.growatt", body).unwrap()
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "username = \"my user\"\npassword = \"secret\"\nplant_id = \"1234567\"\nmix_sn = \"ODCUTJF8IF\"\nurl = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        source,
        &[(LOGIN, LOGIN_OK.to_vec()), (MIX_STATUS, envelope())],
    )
    .await;
}

async fn mount_login(s: &MockServer, session: &str) {
    Mock::given(method("POST"))
        .and(path(LOGIN))
        .and(body_string_contains("account=my+user"))
        .and(body_string_contains(
            "passwordCrc=5ebe2294ecd0e0f08eab7690d2a6ee69",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header(
                    "Set-Cookie",
                    format!("JSESSIONID={session}; Path=/; HttpOnly"),
                )
                .append_header("Set-Cookie", "SERVERID=srv1; Path=/")
                .set_body_bytes(LOGIN_OK.to_vec()),
        )
        .mount(s)
        .await;
}

async fn mount_status(s: &MockServer, session: &str, body: Vec<u8>) {
    Mock::given(method("POST"))
        .and(path(MIX_STATUS))
        .and(query_param("plantId", "1234567"))
        .and(header(
            "cookie",
            format!("JSESSIONID={session}; SERVERID=srv1").as_str(),
        ))
        .and(body_string_contains("mixSn=ODCUTJF8IF"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(s)
        .await;
}

async fn logins(s: &MockServer) -> usize {
    s.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == LOGIN)
        .count()
}

#[tokio::test]
async fn logs_in_once_and_reads_with_the_session_cookie() {
    let s = MockServer::start().await;
    mount_login(&s, "abc").await;
    mount_status(&s, "abc", envelope()).await;
    let src = source(&s.uri());
    for _ in 0..3 {
        let r = src.read().await.unwrap();
        assert_reading(&r, Some(1180.0), Some(840.0), Some(-340.0));
        // No time in the answer: its arrival counts.
        assert!(r.age_secs(Instant::now()) < 2.0);
    }
    assert_eq!(logins(&s).await, 1);
}

#[tokio::test]
async fn an_expired_session_logs_in_again_once() {
    let s = MockServer::start().await;
    mount_login(&s, "abc").await;
    mount_status(&s, "abc", envelope()).await;
    let src = source(&s.uri());
    src.read().await.unwrap();
    // The portal forgets the session: the old cookie gets the login page, a new login works.
    s.reset().await;
    mount_login(&s, "def").await;
    mount_status(&s, "def", envelope()).await;
    mount_status(
        &s,
        "abc",
        b"<!DOCTYPE html><html><title>Login</title></html>".to_vec(),
    )
    .await;
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(1180.0), Some(840.0), Some(-340.0));
    assert_eq!(logins(&s).await, 1);
}

#[tokio::test]
async fn a_refused_login_is_an_auth_error_never_a_reading() {
    let s = MockServer::start().await;
    Mock::given(path(LOGIN))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"result":-1,"msg":"501"}"#))
        .mount(&s)
        .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{}", e.chain());
    // Logged in, but the status still says "log in": Auth, after one fresh login only.
    s.reset().await;
    mount_login(&s, "abc").await;
    mount_status(&s, "abc", b"<html>login</html>".to_vec()).await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{}", e.chain());
    assert_eq!(logins(&s).await, 1);
    assert!(!e.chain().contains("secret"), "{}", e.chain());
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty())
    );
}

#[test]
fn the_examples_build_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).expect("example.toml");
    build(&twc_testkit::example_file_section(
        "growatt.toml",
        "ems",
        plugin::NAME,
    ))
    .expect("config/examples/growatt.toml");
    let e = build(&twc_testkit::default_toml_section("ems", plugin::NAME))
        .err()
        .unwrap();
    assert!(e.to_string().contains("username"), "{e}");
    let ok = "username = \"u\"\npassword = \"p\"\nplant_id = \"1\"\nmix_sn = \"AB1\"";
    for (body, key) in [
        (
            ok.replace("username = \"u\"", "username = \" \""),
            "username",
        ),
        (
            ok.replace("password = \"p\"", "password = \"\""),
            "password",
        ),
        (
            ok.replace("plant_id = \"1\"", "plant_id = \"my plant\""),
            "plant_id",
        ),
        (ok.replace("mix_sn = \"AB1\"", "mix_sn = \"\""), "mix_sn"),
        (format!("{ok}\nurl = \"server.growatt.com\""), "url"),
        (format!("{ok}\nuseBatteryAt = 50"), "useBatteryAt"),
    ] {
        let e = build(&cfg(&body))
            .err()
            .unwrap_or_else(|| panic!("{body} built"));
        assert!(e.to_string().contains(key), "{body}: {e}");
    }
}
