//! Fixture, conformance and configuration tests of the TED source.

use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_ted::{Mtus, NAME, build, parse_export, parse_reading};
use twc_testkit::wiremock::matchers::{header, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture};

fn generating() -> Vec<u8> {
    fixture!("history_export_csv_generating_source_comment.txt")
}

fn night() -> Vec<u8> {
    fixture!("history_export_csv_night_zero_RECONSTRUCTED.txt")
}

fn solar() -> Mtus {
    Mtus {
        generation: Some("Solar".into()),
        ..Mtus::default()
    }
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.ted", t).unwrap()
}

fn source(base: &str, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\n{extra}\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

/// A fresh export with three MTUs, as the gateway writes it (CRLF lines).
fn three_mtus(seconds_ago: i64) -> Vec<u8> {
    let t = (chrono::Local::now() - chrono::TimeDelta::seconds(seconds_ago))
        .format("%m/%d/%Y %H:%M:%S");
    format!(
        "MTU, Time, Power, Cost, Voltage\r\nSolar,{t},-4.210,-0.42,121.9\r\nLoad,{t},1.530,0.15,121.9\r\nGrid,{t},-2.680,-0.27,121.9\r\n"
    )
    .into_bytes()
}

#[test]
fn generating_solar_mtu() {
    let r = parse_reading(&generating(), &solar()).unwrap();
    assert_reading(&r, Some(2957.0), None, None);
    // 11/11/2017 14:20:43: years old.
    assert!(r.age_secs(Instant::now()) > 365.0 * 86_400.0);
}

#[test]
fn night_is_a_measured_zero() {
    let r = parse_reading(&night(), &solar()).unwrap();
    assert_reading(&r, Some(0.0), None, None);
}

#[test]
fn an_inverter_drawing_at_night_is_no_generation() {
    // TWCManager takes abs() and would call this 35 W of generation.
    let body = b"MTU, Time, Power, Cost, Voltage\nSolar,11/11/2017 23:05:12,0.035,0.00,123.9\n";
    let r = parse_reading(body, &solar()).unwrap();
    assert_reading(&r, Some(0.0), None, None);
    let inverted = Mtus {
        invert_generation: true,
        ..solar()
    };
    assert_reading(
        &parse_reading(body, &inverted).unwrap(),
        Some(35.0),
        None,
        None,
    );
}

#[test]
fn several_mtus_and_their_time() {
    let want = Mtus {
        generation: Some("solar".into()),
        consumption: Some("Load".into()),
        grid: Some("Grid".into()),
        invert_generation: false,
    };
    let r = parse_reading(&three_mtus(25), &want).unwrap();
    assert_reading(&r, Some(4210.0), Some(1530.0), Some(-2680.0));
    let age = r.age_secs(Instant::now());
    assert!((24.0..28.0).contains(&age), "age {age}");
    assert_eq!(
        r.phase_voltages, None,
        "line-to-neutral volts of a split phase are not reported"
    );
}

#[test]
fn an_unknown_mtu_lists_the_real_ones() {
    let want = Mtus {
        generation: Some("PV".into()),
        ..Mtus::default()
    };
    let e = parse_reading(&three_mtus(0), &want).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("\"PV\"") && e.message.contains("Solar, Load, Grid"),
        "{e}"
    );
}

#[test]
fn invalid_exports_are_errors_never_zero() {
    let good = String::from_utf8(generating()).unwrap();
    for (body, kind) in [
        (good.replace("-2.957", ""), ErrorKind::Protocol),
        (good.replace("-2.957", "nan"), ErrorKind::Protocol),
        (good.replace("-2.957", "---"), ErrorKind::Protocol),
        (
            good.replace("11/11/2017 14:20:43", "2017-11-11"),
            ErrorKind::Protocol,
        ),
        (good[..good.len() - 20].to_string(), ErrorKind::Protocol),
        (
            "MTU, Time, Power, Cost, Voltage\n".to_string(),
            ErrorKind::Transient,
        ),
        ("Time, Power\n1,2\n".to_string(), ErrorKind::Protocol),
        ("".to_string(), ErrorKind::Protocol),
    ] {
        let e = parse_reading(body.as_bytes(), &solar()).unwrap_err();
        assert_eq!(e.kind, kind, "{body:?}: {e}");
    }
    let load = Mtus {
        consumption: Some("Solar".into()),
        ..Mtus::default()
    };
    assert_eq!(
        parse_reading(&generating(), &load).unwrap_err().kind,
        ErrorKind::Protocol
    );
    assert_eq!(parse_export(&generating()).unwrap().len(), 1);
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(|b| source(b, ""), &[("/history/export.csv", generating())])
        .await;
}

#[tokio::test]
async fn a_truncated_export_is_an_error() {
    let s = MockServer::start().await;
    let cut = generating()[..40].to_vec();
    twc_testkit::serve_fixture(&s, "/history/export.csv", cut).await;
    let e = source(&s.uri(), "").read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{}", e.chain());
}

#[tokio::test]
async fn sends_the_export_query_and_the_login() {
    let s = MockServer::start().await;
    Mock::given(path("/history/export.csv"))
        .and(query_param("T", "1"))
        .and(query_param("D", "0"))
        .and(query_param("M", "1"))
        .and(query_param("C", "1"))
        .and(header("authorization", "Basic YWRtaW46c2VjcmV0"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(three_mtus(2)))
        .mount(&s)
        .await;
    let r = source(
        &s.uri(),
        "grid_mtu = \"Grid\"\nusername = \"admin\"\npassword = \"secret\"",
    )
    .read()
    .await
    .unwrap();
    assert_reading(&r, Some(4210.0), None, Some(-2680.0));
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
    build(&cfg("url = \"http://h\"")).unwrap();
    for (t, key) in [
        ("url = \"http://h\"\nserverPort = 80", "serverPort"),
        (
            "url = \"http://h\"\ngeneration_mtu = \"\"",
            "generation_mtu",
        ),
        ("url = \"http://h\"\nusername = \"admin\"", "password"),
        ("url = \"ted5000\"", "url"),
    ] {
        let e = build(&cfg(t)).err().unwrap();
        assert!(e.to_string().contains(key), "{t}: {e}");
    }
}

#[tokio::test]
async fn r12_a_silent_mtu_reads_as_old_as_its_row() {
    let s = MockServer::start().await;
    twc_testkit::serve_fixture(&s, "/history/export.csv", three_mtus(600)).await;
    let r = source(&s.uri(), "grid_mtu = \"Grid\"")
        .read()
        .await
        .unwrap();
    let age = r.age_secs(Instant::now());
    assert!((599.0..603.0).contains(&age), "age {age}");
}
