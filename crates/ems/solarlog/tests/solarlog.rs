//! Fixture, protocol, conformance and configuration tests of the Solar-Log source.

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_solarlog::{NAME, build, parse_basic, parse_device_powers, reading};
use twc_testkit::wiremock::matchers::{body_json, header, method, path};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture};

fn basic() -> Vec<u8> {
    fixture!("getjp_801_170_basic_data.json")
}

fn devices() -> Vec<u8> {
    fixture!("getjp_782_power_per_inverter.json")
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.solarlog", t).unwrap()
}

fn source(base: &str, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\n{extra}\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[test]
fn basic_data() {
    let b = parse_basic(&basic()).unwrap();
    assert_eq!((b.pac_w, b.consumption_w), (2891.0, 3110.0));
    let r = reading(&b, &BTreeMap::new(), &[]).unwrap();
    assert_reading(&r, Some(2891.0), Some(3110.0), None);
    // 26.08.24 14:19:45 is long ago.
    assert!(r.age_secs(Instant::now()) > 365.0 * 86_400.0);
}

#[test]
fn device_powers_and_exclusion() {
    let p = parse_device_powers(&devices()).unwrap();
    assert_eq!(
        p.into_iter().collect::<Vec<_>>(),
        vec![(0, 3170.0), (1, 43.0), (2, 0.0), (3, 2816.0)]
    );
    let b = parse_basic(&basic()).unwrap();
    let p = parse_device_powers(&devices()).unwrap();
    assert_reading(
        &reading(&b, &p, &[3]).unwrap(),
        Some(2891.0),
        Some(294.0),
        None,
    );
    assert_reading(
        &reading(&b, &p, &[1, 2]).unwrap(),
        Some(2891.0),
        Some(3067.0),
        None,
    );
    // More excluded than consumed: the house load is unknown, never 0 W.
    let r = reading(&b, &p, &[0]).unwrap();
    assert_eq!(r.consumption_w, None);
    assert_eq!(r.generation_w, Some(2891.0));
    let e = reading(&b, &p, &[7]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("device 7") && e.message.contains("0, 1, 2, 3"),
        "{e}"
    );
}

#[test]
fn the_solarlog_time_is_when_it_was_measured() {
    let t = (chrono::Local::now() - chrono::TimeDelta::seconds(30)).format("%d.%m.%y %H:%M:%S");
    let body = String::from_utf8(basic())
        .unwrap()
        .replace("26.08.24 14:19:45", &t.to_string());
    let b = parse_basic(body.as_bytes()).unwrap();
    let age = Instant::now() - b.measured_at.unwrap();
    assert!((29.0..33.0).contains(&age.as_secs_f64()), "{age:?}");
}

#[test]
fn invalid_answers_are_errors_never_zero() {
    let s = String::from_utf8(basic()).unwrap();
    for (body, kind) in [
        (
            s.replace("\"101\":2891", "\"101\":null"),
            ErrorKind::Transient,
        ),
        (
            s.replace("\"110\":3110", "\"110\":\"n/a\""),
            ErrorKind::Protocol,
        ),
        (s.replace("\"101\":2891", "\"101\":-5"), ErrorKind::Protocol),
        (
            s.replace("26.08.24 14:19:45", "gestern"),
            ErrorKind::Protocol,
        ),
        (s.replace("\"110\":3110,", ""), ErrorKind::Protocol),
        (r#"{"801":{"170":null}}"#.into(), ErrorKind::Transient),
        (r#"{"782":{"0":"1"}}"#.into(), ErrorKind::Protocol),
        ("ACCESS DENIED".into(), ErrorKind::Auth),
        ("QUERY IMPOSSIBLE 000".into(), ErrorKind::Transient),
    ] {
        let e = parse_basic(body.as_bytes()).unwrap_err();
        assert_eq!(e.kind, kind, "{body}: {e}");
    }
    for (body, kind) in [
        (&br#"{"782":{"0":null}}"#[..], ErrorKind::Transient),
        (br#"{"782":{"0":"x"}}"#, ErrorKind::Protocol),
        (br#"{"782":{"first":"1"}}"#, ErrorKind::Protocol),
        (br#"{"782":[]}"#, ErrorKind::Protocol),
        (b"ACCESS DENIED", ErrorKind::Auth),
    ] {
        let e = parse_device_powers(body).unwrap_err();
        assert_eq!(e.kind, kind, "{}: {e}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(|b| source(b, ""), &[("/getjp", basic())]).await;
}

async fn serve(s: &MockServer, query: serde_json::Value, reply: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/getjp"))
        .and(header("content-type", "application/json"))
        .and(body_json(query))
        .respond_with(reply)
        .mount(s)
        .await;
}

#[tokio::test]
async fn posts_both_queries_and_subtracts_excluded_devices() {
    let s = MockServer::start().await;
    serve(
        &s,
        json!({"801": {"170": null}}),
        ResponseTemplate::new(200).set_body_bytes(basic()),
    )
    .await;
    serve(
        &s,
        json!({"782": null}),
        ResponseTemplate::new(200).set_body_bytes(devices()),
    )
    .await;
    let r = source(&s.uri(), "exclude_inverters = [3]")
        .read()
        .await
        .unwrap();
    assert_reading(&r, Some(2891.0), Some(294.0), None);
    // Without exclusions only the first query is sent.
    s.reset().await;
    serve(
        &s,
        json!({"801": {"170": null}}),
        ResponseTemplate::new(200).set_body_bytes(basic()),
    )
    .await;
    let r = source(&s.uri(), "").read().await.unwrap();
    assert_reading(&r, Some(2891.0), Some(3110.0), None);
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_device_query_fails_the_read() {
    for (reply, kind) in [
        (ResponseTemplate::new(500), ErrorKind::Transient),
        (
            ResponseTemplate::new(200).set_body_string("<html>"),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"782":{"0":"31"#),
            ErrorKind::Protocol,
        ),
        (
            ResponseTemplate::new(200)
                .set_body_bytes(devices())
                .set_delay(Duration::from_secs(2)),
            ErrorKind::Transient,
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"782":{"0":"31"}}"#),
            ErrorKind::Config,
        ),
    ] {
        let s = MockServer::start().await;
        serve(
            &s,
            json!({"801": {"170": null}}),
            ResponseTemplate::new(200).set_body_bytes(basic()),
        )
        .await;
        serve(&s, json!({"782": null}), reply).await;
        let e = source(&s.uri(), "exclude_inverters = [3]")
            .read()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{}", e.chain());
    }
}

#[test]
fn registers_itself() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == NAME && !s.is_empty())
    );
}

#[test]
fn example_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    for (t, key) in [
        (
            "url = \"http://h\"\nexcludeConsumptionInverters = [1]",
            "excludeConsumptionInverters",
        ),
        (
            "url = \"http://h\"\nexclude_inverters = [-1]",
            "exclude_inverters",
        ),
        ("url = \"solarlog\"", "url"),
    ] {
        let e = build(&cfg(t)).err().unwrap();
        assert!(e.to_string().contains(key), "{t}: {e}");
    }
}

#[tokio::test]
async fn r12_a_solarlog_without_new_data_reads_as_old_as_its_time() {
    let s = MockServer::start().await;
    let t = (chrono::Local::now() - chrono::TimeDelta::seconds(600)).format("%d.%m.%y %H:%M:%S");
    let body = String::from_utf8(basic())
        .unwrap()
        .replace("26.08.24 14:19:45", &t.to_string());
    serve(
        &s,
        json!({"801": {"170": null}}),
        ResponseTemplate::new(200).set_body_string(body),
    )
    .await;
    serve(
        &s,
        json!({"782": null}),
        ResponseTemplate::new(200).set_body_bytes(devices()),
    )
    .await;
    let r = source(&s.uri(), "exclude_inverters = [1]")
        .read()
        .await
        .unwrap();
    assert_reading(&r, Some(2891.0), Some(3067.0), None);
    let age = r.age_secs(Instant::now());
    assert!((599.0..603.0).contains(&age), "age {age}");
}
