use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_fronius::{POWERFLOW, build, parse_inverter, parse_meter, parse_powerflow};
use twc_testkit::{assert_reading, assert_w, fixture, serve_fixture, wiremock::MockServer};

const PF_PATH: &str = "/solar_api/v1/GetPowerFlowRealtimeData.fcgi";

#[test]
fn powerflow_symo_day_importing() {
    let r = parse_powerflow(&fixture!("powerflow_symo_day_importing.json")).unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.74), Some(1703.74));
}

#[test]
fn powerflow_symo82_exporting() {
    let r = parse_powerflow(&fixture!("powerflow_symo82_exporting.json")).unwrap();
    assert_reading(&r, Some(8106.0), Some(1271.45), Some(-6834.55));
}

#[test]
fn powerflow_symo_night_null_pv_is_zero() {
    let r = parse_powerflow(&fixture!("powerflow_symo_night.json")).unwrap();
    assert_reading(&r, Some(0.0), Some(975.31), Some(975.31));
}

#[test]
fn powerflow_gen24_storage() {
    let r = parse_powerflow(&fixture!("powerflow_gen24_storage.json")).unwrap();
    assert_reading(&r, Some(216.43), Some(2459.31), Some(2274.90));
    assert_w("battery_w", r.battery_w, 0.159);
    assert_w("soc", r.battery_soc_pct, 4.6);
}

#[test]
fn powerflow_primo_two_inverters_meter_at_load() {
    let r = parse_powerflow(&fixture!("powerflow_primo_two_inverters.json")).unwrap();
    assert_reading(&r, Some(1834.0), Some(2218.93), Some(384.93));
}

#[test]
fn powerflow_night_vague_meter_load() {
    let r = parse_powerflow(&fixture!("powerflow_night_vague_meter_load.json")).unwrap();
    assert_reading(&r, Some(0.0), Some(367.72), Some(367.72));
}

#[test]
fn meter_device0_symo_smartmeter63a_at_grid() {
    let r = parse_meter(&fixture!("meter_device0_symo_smartmeter63a.json")).unwrap();
    assert_reading(&r, None, None, Some(5592.57));
    assert_eq!(r.phase_voltages, Some(vec![228.6, 228.6, 231.0]));
    assert_eq!(r.phase_currents_a, Some(vec![7.755, 6.68, 10.102]));
}

#[test]
fn meter_device0_minimal_at_load() {
    let r = parse_meter(&fixture!("meter_device0_minimal.json")).unwrap();
    assert_reading(&r, None, Some(367.72), None);
}

#[test]
fn inverter_common_symo_day() {
    let r = parse_inverter(&fixture!("inverter_common_symo_day.json")).unwrap();
    assert_w("generation", r.generation_w, 1190.0);
    assert_eq!(r.phase_voltages, Some(vec![227.9]));
}

#[test]
fn inverter_common_pyfronius_asleep() {
    let r = parse_inverter(&fixture!("inverter_common_pyfronius.json")).unwrap();
    assert_w("generation", r.generation_w, 0.0);
    assert_eq!(r.phase_voltages, None);
}

#[test]
fn garbage_and_error_status_are_errors() {
    assert!(parse_powerflow(b"{\"Body\":{}}").is_err());
    let e = parse_powerflow(
        br#"{"Head":{"Status":{"Code":8,"Reason":"busy"}},"Body":{"Data":{"Site":{"P_PV":1}}}}"#,
    )
    .unwrap_err();
    assert!(e.message.contains("status code 8"), "{e}");
    assert!(parse_powerflow(br#"{"Body":{"Data":{"Site":{"P_PV":"x"}}}}"#).is_err());
}

fn cfg(toml: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.fronius", toml).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_names_the_key() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("")).err().unwrap();
    assert!(e.to_string().contains("urls"), "{e}");
    let e = build(&cfg("urls = [\"192.168.1.5\"]")).err().unwrap();
    assert!(e.to_string().contains("urls"), "{e}");
    let e = build(&cfg("url = \"http://a\"\nserver = 1")).err().unwrap();
    assert!(e.to_string().contains("server"), "{e}");
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    let r = twc_testkit::check_http_source(
        source,
        &[(PF_PATH, fixture!("powerflow_symo_day_importing.json"))],
    )
    .await;
    assert!(r.failure_cases >= 7);
}

#[tokio::test]
async fn two_dataloggers_are_summed_and_the_request_is_right() {
    let a = MockServer::start().await;
    let b = MockServer::start().await;
    serve_fixture(&a, PF_PATH, fixture!("powerflow_symo_day_importing.json")).await;
    serve_fixture(&b, PF_PATH, fixture!("powerflow_symo82_exporting.json")).await;
    let src = build(&cfg(&format!("urls = [\"{}\", \"{}/\"]", a.uri(), b.uri()))).unwrap();
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(9217.0), Some(4086.19), Some(-5130.81));
    let reqs = a.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].url.query(),
        Some(POWERFLOW.split_once('?').unwrap().1)
    );

    // One datalogger down: an error, not half a reading.
    b.reset().await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{}", e.chain());
}

#[tokio::test]
async fn meter_device_adds_phases() {
    let s = MockServer::start().await;
    serve_fixture(&s, PF_PATH, fixture!("powerflow_symo_day_importing.json")).await;
    serve_fixture(
        &s,
        "/solar_api/v1/GetMeterRealtimeData.cgi",
        fixture!("meter_device0_symo_smartmeter63a.json"),
    )
    .await;
    let src = build(&cfg(&format!("url = \"{}\"\nmeter_device = 0", s.uri()))).unwrap();
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.74), Some(1703.74));
    assert_eq!(r.phase_voltages, Some(vec![228.6, 228.6, 231.0]));
    assert_eq!(r.phase_currents_a, Some(vec![7.755, 6.68, 10.102]));
    let reqs = s.received_requests().await.unwrap();
    assert!(
        reqs.iter()
            .any(|q| q.url.query() == Some("Scope=Device&DeviceId=0"))
    );
}

/// `secs` ago as the datalogger writes it (RFC 3339 in its local offset, here +02:00).
fn ago(secs: i64) -> String {
    let cest = chrono::FixedOffset::east_opt(7200).unwrap();
    (chrono::Utc::now() - chrono::TimeDelta::seconds(secs))
        .with_timezone(&cest)
        .to_rfc3339()
}

/// A recorded answer with only `Head.Timestamp` rewritten.
fn with_head_time(fixture: Vec<u8>, ts: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture).unwrap();
    v["Head"]["Timestamp"] = ts.into();
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn r12_powerflow_is_dated_by_head_timestamp() {
    let s = MockServer::start().await;
    // The datalogger's data is 10 minutes old (a hung Solar API serving its last snapshot).
    serve_fixture(
        &s,
        PF_PATH,
        with_head_time(fixture!("powerflow_symo_day_importing.json"), &ago(600)),
    )
    .await;
    let r = source(&s.uri()).read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.74), Some(1703.74));
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 5.0, "age {age}");

    // A datalogger clock ahead of ours: counts as now, not as the future.
    s.reset().await;
    serve_fixture(
        &s,
        PF_PATH,
        with_head_time(fixture!("powerflow_symo_day_importing.json"), &ago(-300)),
    )
    .await;
    let r = source(&s.uri()).read().await.unwrap();
    assert!(r.measured_at.elapsed().as_secs_f64() < 2.0);
}

#[tokio::test]
async fn r12_two_dataloggers_and_a_meter_count_from_the_oldest() {
    let a = MockServer::start().await;
    let b = MockServer::start().await;
    serve_fixture(
        &a,
        PF_PATH,
        with_head_time(fixture!("powerflow_symo_day_importing.json"), &ago(5)),
    )
    .await;
    serve_fixture(
        &b,
        PF_PATH,
        with_head_time(fixture!("powerflow_symo82_exporting.json"), &ago(120)),
    )
    .await;
    let src = build(&cfg(&format!("urls = [\"{}\", \"{}\"]", a.uri(), b.uri()))).unwrap();
    let age = src
        .read()
        .await
        .unwrap()
        .measured_at
        .elapsed()
        .as_secs_f64();
    assert!((age - 120.0).abs() < 5.0, "age {age}");

    // The meter's own TimeStamp (its last reading) is older than the answer's head.
    let mut m: serde_json::Value =
        serde_json::from_slice(&fixture!("meter_device0_symo_smartmeter63a.json")).unwrap();
    m["Head"]["Timestamp"] = ago(1).into();
    m["Body"]["Data"]["TimeStamp"] = (chrono::Utc::now().timestamp() - 300).into();
    serve_fixture(
        &a,
        "/solar_api/v1/GetMeterRealtimeData.cgi",
        serde_json::to_vec(&m).unwrap(),
    )
    .await;
    let src = build(&cfg(&format!("url = \"{}\"\nmeter_device = 0", a.uri()))).unwrap();
    let r = src.read().await.unwrap();
    assert_eq!(r.phase_voltages, Some(vec![228.6, 228.6, 231.0]));
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 300.0).abs() < 5.0, "age {age}");
}

#[test]
fn r12_recorded_answers_are_as_old_as_their_timestamps() {
    let year = std::time::Duration::from_secs(365 * 86_400);
    for r in [
        parse_powerflow(&fixture!("powerflow_symo_day_importing.json")).unwrap(),
        parse_meter(&fixture!("meter_device0_symo_smartmeter63a.json")).unwrap(),
        parse_inverter(&fixture!("inverter_common_symo_day.json")).unwrap(),
    ] {
        assert!(r.measured_at.elapsed() > year);
    }
    let bad = with_head_time(fixture!("powerflow_symo_day_importing.json"), "noon");
    let e = parse_powerflow(&bad).unwrap_err();
    assert!(e.message.contains("Head.Timestamp"), "{e}");
}
