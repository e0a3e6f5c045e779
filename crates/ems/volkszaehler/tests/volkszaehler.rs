//! Fixture, conformance and configuration tests of the Volkszähler source.

use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_volkszaehler::{
    NAME, build, derive_consumption, parse_current_txt, parse_data_json, parse_data_txt,
};
use twc_testkit::wiremock::matchers::{path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, assert_w, fixture};

const PV: &str = "a1b2c3d4-0000-11e4-8000-000000000001";
const GRID: &str = "a1b2c3d4-0000-11e4-8000-000000000002";

fn grid_exporting() -> Vec<u8> {
    fixture!("api_data_txt_from_now_grid_exporting_doc_example.txt")
}

fn grid_importing() -> Vec<u8> {
    fixture!("api_data_txt_from_now_grid_importing_RECONSTRUCTED.txt")
}

fn pv() -> Vec<u8> {
    fixture!("api_data_txt_from_now_pv_RECONSTRUCTED.txt")
}

fn demo_json() -> Vec<u8> {
    fixture!("middleware_data_uuid_json_demo_server.json")
}

/// A `from=now` JSON answer measured `seconds_ago`.
fn json_now(value: f64, seconds_ago: i64) -> Vec<u8> {
    let ms = chrono::Utc::now().timestamp_millis() - seconds_ago * 1000;
    format!(
        r#"{{"version":"0.3","data":{{"uuid":"{PV}","from":{ms},"to":{ms},"tuples":[[{ms},{value},1]],"rows":1}}}}"#
    )
    .into_bytes()
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.volkszaehler", t).unwrap()
}

fn source(base: &str, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}/middleware.php\"\ngeneration_uuid = \"{PV}\"\ngrid_uuid = \"{GRID}\"\n{extra}\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[test]
fn text_values() {
    assert_w(
        "grid",
        Some(parse_data_txt(&grid_exporting()).unwrap()),
        -5520.8,
    );
    assert_w(
        "grid",
        Some(parse_data_txt(&grid_importing()).unwrap()),
        1703.7,
    );
    assert_w("pv", Some(parse_data_txt(&pv()).unwrap()), 1111.0);
}

#[test]
fn json_values_carry_their_time() {
    let (v, at) = parse_data_json(&demo_json()).unwrap();
    assert_w("demo", Some(v), 0.01);
    // The demo server's last tuple is from 2020.
    assert!(Instant::now() - at.unwrap() > Duration::from_secs(365 * 86_400));
    let (v, at) = parse_data_json(&json_now(-5520.8, 15)).unwrap();
    assert_w("grid", Some(v), -5520.8);
    let age = (Instant::now() - at.unwrap()).as_secs_f64();
    assert!((14.0..18.0).contains(&age), "age {age}");
}

#[test]
fn consumption_is_generation_plus_grid() {
    let mut r = EnergyReading {
        generation_w: Some(1111.0),
        grid_w: Some(1703.7),
        ..EnergyReading::default()
    };
    derive_consumption(&mut r);
    assert_reading(&r, Some(1111.0), Some(2814.7), Some(1703.7));
    // PV 1111 W with 5520.8 W export cannot both be true: TWCManager says 0 W, here it is unknown.
    let mut r = EnergyReading {
        generation_w: Some(1111.0),
        grid_w: Some(-5520.8),
        ..EnergyReading::default()
    };
    derive_consumption(&mut r);
    assert_eq!(r.consumption_w, None);
}

#[test]
fn invalid_values_are_errors_never_zero() {
    for (body, kind) in [
        (&b"1703"[..], ErrorKind::Protocol),
        (b"1703.7 kWh", ErrorKind::Protocol),
        (b"nan W", ErrorKind::Protocol),
        (b" W", ErrorKind::Protocol),
        (b"", ErrorKind::Protocol),
    ] {
        let e = parse_data_txt(body).unwrap_err();
        assert_eq!(e.kind, kind, "{}: {e}", String::from_utf8_lossy(body));
    }
    for (body, kind) in [
        (&br#"{"version":"0.3","data":{"uuid":"x","rows":0}}"#[..], ErrorKind::Transient),
        (br#"{"version":"0.3","data":{"tuples":[]}}"#, ErrorKind::Transient),
        (br#"{"version":"0.3","data":{"tuples":[[1598106085887,null,1]]}}"#, ErrorKind::Transient),
        (br#"{"version":"0.3","data":{"tuples":[[1598106085887,"x",1]]}}"#, ErrorKind::Protocol),
        (br#"{"version":"0.3","data":{"tuples":[[1598106085887]]}}"#, ErrorKind::Protocol),
        (br#"{"version":"0.3","data":{"tuples":[[-1,5,1]]}}"#, ErrorKind::Protocol),
        (
            br#"{"version":"0.3","exception":{"type":"Exception","message":"Invalid UUID","code":0}}"#,
            ErrorKind::Config,
        ),
    ] {
        let e = parse_data_json(body).unwrap_err();
        assert_eq!(e.kind, kind, "{}: {e}", String::from_utf8_lossy(body));
    }
}

#[tokio::test]
async fn conformance_txt() {
    twc_testkit::check_http_source(
        |b| source(b, "format = \"txt\""),
        &[
            (&format!("/middleware.php/data/{PV}.txt"), pv()),
            (
                &format!("/middleware.php/data/{GRID}.txt"),
                grid_importing(),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn conformance_json() {
    twc_testkit::check_http_source(
        |b| {
            build(&cfg(&format!(
                "url = \"{b}\"\ngrid_uuid = \"{GRID}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
            )))
            .unwrap()
        },
        &[(&format!("/data/{GRID}.json"), demo_json())],
    )
    .await;
}

#[tokio::test]
async fn pv_and_grid_give_consumption_as_old_as_the_oldest_channel() {
    let s = MockServer::start().await;
    for (uuid, body) in [(PV, json_now(1111.0, 40)), (GRID, json_now(1703.7, 5))] {
        Mock::given(path(format!("/middleware.php/data/{uuid}.json")))
            .and(query_param("from", "now"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
            .mount(&s)
            .await;
    }
    let r = source(&s.uri(), "").read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.7), Some(1703.7));
    let age = r.age_secs(Instant::now());
    assert!((39.0..43.0).contains(&age), "age {age}");
}

#[tokio::test]
async fn txt_exporting_and_inverted_channels() {
    let s = MockServer::start().await;
    twc_testkit::serve_fixture(&s, &format!("/middleware.php/data/{PV}.txt"), pv()).await;
    twc_testkit::serve_fixture(
        &s,
        &format!("/middleware.php/data/{GRID}.txt"),
        grid_exporting(),
    )
    .await;
    let r = source(&s.uri(), "format = \"txt\"").read().await.unwrap();
    assert_reading(&r, Some(1111.0), None, Some(-5520.8));
    let r = source(&s.uri(), "format = \"txt\"\ninvert_grid = true")
        .read()
        .await
        .unwrap();
    assert_reading(&r, Some(1111.0), Some(6631.8), Some(5520.8));
    let r = source(&s.uri(), "format = \"txt\"\ninvert_generation = true")
        .read()
        .await
        .unwrap();
    assert_reading(&r, Some(0.0), None, Some(-5520.8));
}

#[tokio::test]
async fn one_failing_channel_fails_the_read() {
    let s = MockServer::start().await;
    twc_testkit::serve_fixture(&s, &format!("/middleware.php/data/{PV}.txt"), pv()).await;
    Mock::given(path(format!("/middleware.php/data/{GRID}.txt")))
        .respond_with(ResponseTemplate::new(200).set_body_string("1703."))
        .mount(&s)
        .await;
    let e = source(&s.uri(), "format = \"txt\"")
        .read()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{}", e.chain());
}

const L: [&str; 3] = [
    "a1b2c3d4-0000-11e4-8000-0000000000a1",
    "a1b2c3d4-0000-11e4-8000-0000000000a2",
    "a1b2c3d4-0000-11e4-8000-0000000000a3",
];

#[tokio::test]
async fn phase_currents_follow_the_grid_channel() {
    let s = MockServer::start().await;
    let bodies = [
        (PV, json_now(1111.0, 3)),
        (GRID, json_now(1703.7, 3)),
        (L[0], json_now(4.0, 3)),
        (L[1], json_now(-1.8, 3)),
        (L[2], json_now(1.7, 70)),
    ];
    for (uuid, body) in &bodies {
        Mock::given(path(format!("/middleware.php/data/{uuid}.json")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body.clone()))
            .mount(&s)
            .await;
    }
    let extra = format!(
        "phase_current_uuids = [\"{}\", \"{}\", \"{}\"]",
        L[0], L[1], L[2]
    );
    let r = source(&s.uri(), &extra).read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.7), Some(1703.7));
    // Magnitudes, counted as import: the safe side for the grid limit.
    assert_eq!(r.phase_currents_a, Some(vec![4.0, 1.8, 1.7]));
    // The L3 value is 70 s old, and so is the reading.
    let age = r.age_secs(Instant::now());
    assert!((69.0..73.0).contains(&age), "age {age}");
    // A current channel without a value fails the read.
    s.reset().await;
    for (uuid, body) in bodies.iter().take(4) {
        Mock::given(path(format!("/middleware.php/data/{uuid}.json")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body.clone()))
            .mount(&s)
            .await;
    }
    Mock::given(path(format!("/middleware.php/data/{}.json", L[2])))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"version":"0.3","data":{"tuples":[]}}"#),
        )
        .mount(&s)
        .await;
    let e = source(&s.uri(), &extra).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.chain());
}

#[test]
fn text_currents_need_their_unit() {
    assert_eq!(parse_current_txt(b"7.25 A").unwrap(), 7.25);
    for body in [&b"7.25"[..], b"7.25 W", b"x A", b""] {
        let e = parse_current_txt(body).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Protocol,
            "{}",
            String::from_utf8_lossy(body)
        );
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
            "url = \"http://h\"\nuuidTotalGridW = \"x\"",
            "uuidTotalGridW",
        ),
        ("url = \"http://h\"", "generation_uuid"),
        (
            "url = \"http://h\"\ngrid_uuid = \"not a uuid\"",
            "grid_uuid",
        ),
        (
            "url = \"http://h\"\ngrid_uuid = \"abcdef12-3\"\nformat = \"xml\"",
            "format must be \"json\" or \"txt\", got \"xml\"",
        ),
        ("url = \"vz.local\"\ngrid_uuid = \"abcdef12-3\"", "url"),
        (
            "url = \"http://h\"\ngeneration_uuid = \"abcdef12-3\"\nphase_current_uuids = [\"abcdef12-4\"]",
            "needs grid_uuid",
        ),
        (
            "url = \"http://h\"\ngrid_uuid = \"abcdef12-3\"\nphase_current_uuids = [\"abcdef12-4\", \"abcdef12-5\"]",
            "1 or 3",
        ),
        (
            "url = \"http://h\"\ngrid_uuid = \"abcdef12-3\"\nphase_current_uuids = [\"L1\"]",
            "phase_current_uuids must be a channel UUID",
        ),
    ] {
        let e = build(&cfg(t)).err().unwrap();
        assert!(e.to_string().contains(key), "{t}: {e}");
    }
}
