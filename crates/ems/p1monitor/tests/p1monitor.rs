//! P1 Monitor against its recorded `/api/v1/phase` replies, served by a mock server.

use std::time::Duration;
use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_p1monitor::{self as plugin, PhaseOptions, build, parse_phase};
use twc_testkit::wiremock::matchers::{path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture};

fn fx(name: &str) -> Vec<u8> {
    twc_testkit::read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

const ONE_PHASE: &str = "api_v1_phase_limit1_json_object_1phase.json";
const THREE_PHASE: &str = "api_v1_phase_limit3_json_object_3phase_exporting_RECONSTRUCTED.json";

fn opts(samples: usize, phases: u8) -> PhaseOptions {
    PhaseOptions { samples, phases }
}

#[test]
fn single_phase_row_is_650_w_import_on_l1_only() {
    let r = parse_phase(&fx(ONE_PHASE), PhaseOptions::default()).unwrap();
    // The P1 port measures the grid connection: no generation or consumption.
    assert_reading(&r, None, None, Some(650.0));
    assert_eq!(r.phase_currents_a, Some(vec![3.0]), "L2/L3 absent: 1 phase");
    assert_eq!(r.phase_voltages, Some(vec![224.0]));
    assert!(!r.estimated);
}

#[test]
fn three_phase_export_uses_the_newest_row_with_signed_currents() {
    let r = parse_phase(&fx(THREE_PHASE), PhaseOptions::default()).unwrap();
    // 13:00:00 row: L2 draws 412 W, L1 and L3 feed in 2104 + 1388 W.
    assert_reading(&r, None, None, Some(412.0 - 2104.0 - 1388.0));
    assert_eq!(r.phase_currents_a, Some(vec![-9.0, 2.0, -6.0]));
    assert_eq!(r.phase_voltages, Some(vec![236.0, 235.0, 237.0]));
}

#[test]
fn samples_average_the_rows_and_date_the_reading_by_the_oldest() {
    let all = parse_phase(&fx(THREE_PHASE), opts(3, 0)).unwrap();
    // Means: import L2 421.67; export L1 2107.33, L3 1387 (TWCManager: 1263 "consumption" =
    // 421 x 3 and 3494 "generation", which are the grid import and export).
    let grid = (412.0 + 398.0 + 455.0) / 3.0
        - (2104.0 + 2131.0 + 2087.0) / 3.0
        - (1388.0 + 1402.0 + 1371.0) / 3.0;
    assert_reading(&all, None, None, Some(grid));
    let now = unix_now();
    let body = String::from_utf8(fx(THREE_PHASE))
        .unwrap()
        .replace("1655290800", &(now - 10).to_string())
        .replace("1655290790", &(now - 20).to_string())
        .replace("1655290780", &(now - 30).to_string());
    let age = |samples| {
        parse_phase(body.as_bytes(), opts(samples, 0))
            .unwrap()
            .age_secs(Instant::now())
    };
    assert!((9.0..14.0).contains(&age(1)), "newest row: {}", age(1));
    assert!(
        (29.0..34.0).contains(&age(3)),
        "oldest of three: {}",
        age(3)
    );
    // More samples than rows: all rows.
    let r = parse_phase(&fx(THREE_PHASE), opts(10, 0)).unwrap();
    assert_eq!(r.grid_w, all.grid_w);
}

fn with_timestamp(body: &[u8], unix: u64) -> Vec<u8> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .replace("1611953641", &unix.to_string())
        .into_bytes()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_row_timestamp_is_when_it_was_measured() {
    let body = with_timestamp(&fx(ONE_PHASE), unix_now() - 40);
    let r = parse_phase(&body, PhaseOptions::default()).unwrap();
    let age = r.age_secs(Instant::now());
    assert!((38.0..45.0).contains(&age), "age {age}");
    // A recorded 2021 row is old, never fresh.
    let old = parse_phase(&fx(ONE_PHASE), PhaseOptions::default()).unwrap();
    assert!(old.measured_at < Instant::now() - Duration::from_secs(1));
}

#[test]
fn phases_can_be_fixed_and_a_meter_without_voltage_gives_none() {
    let r = parse_phase(&fx(ONE_PHASE), opts(1, 3)).unwrap();
    assert_eq!(r.phase_currents_a, Some(vec![3.0, 0.0, 0.0]));
    assert_eq!(r.phase_voltages, None, "0 V on L2/L3 is not a voltage");
    // A 3-phase meter whose voltage registers are not reported: detection still sees 3 phases
    // from the currents, and no voltage is invented.
    let body = String::from_utf8(fx(THREE_PHASE))
        .unwrap()
        .replace("\"L1_V\": 236.0", "\"L1_V\": 0.0");
    let r = parse_phase(body.as_bytes(), opts(1, 0)).unwrap();
    assert_eq!(r.phase_currents_a.map(|c| c.len()), Some(3));
    assert_eq!(r.phase_voltages, None);
}

#[test]
fn r12_garbage_never_reads_as_zero() {
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("no rows yet", b"[]".to_vec(), ErrorKind::Transient),
        (
            "object, not rows",
            b"{\"CONSUMPTION_L1_W\": 0}".to_vec(),
            ErrorKind::Protocol,
        ),
        (
            "the smartmeter endpoint",
            fixture!("api_v1_smartmeter_json_object_python_p1monitor.json"),
            ErrorKind::Protocol,
        ),
        (
            "null power",
            String::from_utf8(fx(ONE_PHASE))
                .unwrap()
                .replace("650.0", "null")
                .into_bytes(),
            ErrorKind::Protocol,
        ),
        (
            "text power",
            String::from_utf8(fx(ONE_PHASE))
                .unwrap()
                .replace("650.0", "\"n/a\"")
                .into_bytes(),
            ErrorKind::Protocol,
        ),
        (
            "negative power",
            String::from_utf8(fx(ONE_PHASE))
                .unwrap()
                .replace("650.0", "-650.0")
                .into_bytes(),
            ErrorKind::Protocol,
        ),
        (
            "a row that is not an object",
            b"[1, 2]".to_vec(),
            ErrorKind::Protocol,
        ),
    ];
    for (what, body, kind) in cases {
        match parse_phase(&body, PhaseOptions::default()) {
            Ok(r) => panic!("{what}: gave a reading {r:?}"),
            Err(e) => assert_eq!(e.kind, kind, "{what}: {e}"),
        }
    }
    let e = parse_phase(
        &fixture!("api_v1_smartmeter_json_object_python_p1monitor.json"),
        PhaseOptions::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("CONSUMPTION_L1_W"), "{e}");
}

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.p1monitor", body).unwrap()
}

fn source(base: &str, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}\n{extra}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        |base| source(base, ""),
        &[("/api/v1/phase", fx(THREE_PHASE))],
    )
    .await;
}

#[tokio::test]
async fn asks_for_the_configured_number_of_rows_as_objects() {
    let s = MockServer::start().await;
    Mock::given(path("/api/v1/phase"))
        .and(query_param("limit", "3"))
        .and(query_param("json", "object"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fx(THREE_PHASE)))
        .expect(1)
        .mount(&s)
        .await;
    let r = source(&format!("{}/", s.uri()), "samples = 3")
        .read()
        .await
        .unwrap();
    assert!(r.grid_w.unwrap() < -3000.0, "{r:?}");
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
        "p1monitor.toml",
        "ems",
        plugin::NAME,
    ))
    .expect("config/examples/p1monitor.toml");
    // The default section is disabled and has no url.
    let e = build(&twc_testkit::default_toml_section("ems", plugin::NAME))
        .err()
        .unwrap();
    assert!(e.to_string().contains("url"), "{e}");
    for (body, key) in [
        ("url = \"p1mon.local\"", "url"),
        ("url = \"http://p1mon\"\nsamples = 0", "samples"),
        ("url = \"http://p1mon\"\nsamples = 31", "samples"),
        ("url = \"http://p1mon\"\nphases = 2", "phases"),
        ("url = \"http://p1mon\"\nsample = 2", "sample"),
    ] {
        let e = build(&cfg(body))
            .err()
            .unwrap_or_else(|| panic!("{body} built"));
        assert!(e.to_string().contains(key), "{body}: {e}");
    }
}
