use std::time::Duration;
use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_solaredge::{
    INVERTER_BASE, METER_STEP, METER1_BASE, build, parse_overview, parse_power_flow,
};
use twc_testkit::modbus::{Registers, serve_registers, serve_silence};
use twc_testkit::wiremock::matchers::{path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, assert_w, fixture};

#[test]
fn current_power_flow_kw_storage_discharging() {
    let r = parse_power_flow(&fixture!("currentPowerFlow_kW_storage_discharging.json")).unwrap();
    assert_reading(&r, Some(0.0), Some(1370.0), Some(10.0));
    assert_w("battery", r.battery_w, 1360.0);
    assert_w("soc", r.battery_soc_pct, 38.0);
}

#[test]
fn current_power_flow_w_unit_ha_fixture() {
    let r = parse_power_flow(&fixture!("currentPowerFlow_W_unit_ha_fixture.json")).unwrap();
    assert_reading(&r, Some(1500.0), Some(1500.0), Some(250.0));
    assert_w("battery", r.battery_w, -250.0);
}

#[test]
fn current_power_flow_kw_exporting() {
    let r = parse_power_flow(&fixture!(
        "currentPowerFlow_kW_exporting_RECONSTRUCTED.json"
    ))
    .unwrap();
    assert_reading(&r, Some(4000.0), Some(410.0), Some(-3590.0));
    assert_eq!(r.battery_w, None);
}

#[test]
fn overview_ha_fixture() {
    let r = parse_overview(&fixture!("overview_ha_fixture.json")).unwrap();
    assert_reading(&r, Some(1234.5), None, None);
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.solaredge", t).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("")).err().unwrap();
    assert!(e.to_string().contains("api_key"), "{e}");
    let e = build(&cfg("api_key = \"k\"")).err().unwrap();
    assert!(e.to_string().contains("site_id"), "{e}");
    let e = build(&cfg(
        "api_key = \"k\"\nsite_id = \"1\"\ncalls_per_day = 1000",
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("calls_per_day"), "{e}");
    let e = build(&cfg("modbus = \"h\"")).err().unwrap();
    assert!(e.to_string().contains("modbus"), "{e}");
    let e = build(&cfg("modbus = \"h:1502\"\nmeter = 4")).err().unwrap();
    assert!(e.to_string().contains("meter"), "{e}");
}

fn cloud(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!("api_key = \"KEY\"\nsite_id = \"42\"\ncloud_url = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"))).unwrap()
}

#[tokio::test]
async fn conformance_cloud() {
    twc_testkit::check_http_source(
        cloud,
        &[(
            "/site/42/currentPowerFlow",
            fixture!("currentPowerFlow_kW_exporting_RECONSTRUCTED.json"),
        )],
    )
    .await;
}

#[tokio::test]
async fn cloud_calls_at_most_once_per_budgeted_interval() {
    let s = MockServer::start().await;
    Mock::given(path("/site/42/currentPowerFlow"))
        .and(query_param("api_key", "KEY"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture!("currentPowerFlow_W_unit_ha_fixture.json")),
        )
        .mount(&s)
        .await;
    let src = cloud(&s.uri());
    let first = src.read().await.unwrap();
    for _ in 0..5 {
        let again = src.read().await.unwrap();
        assert_eq!(
            again.measured_at, first.measured_at,
            "cached readings keep their age"
        );
    }
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

fn sunspec_map(inverter_w: i16, meter_w: i16, meter: u8) -> Registers {
    let mut r = Registers::new();
    let inv = [
        103u16,
        50,
        120,
        40,
        40,
        40,
        0xFFFE,
        4000,
        4000,
        4000,
        2301,
        2302,
        2303,
        0xFFFF,
        inverter_w as u16,
        0,
    ];
    for (i, v) in inv.iter().enumerate() {
        r.insert(INVERTER_BASE + i as u16, *v);
    }
    let base = METER1_BASE + METER_STEP * u16::from(meter - 1);
    let mut m = [0u16; 23];
    m[0] = 203;
    m[1] = 105;
    m[7] = 2300;
    m[8] = 2300;
    m[9] = 2310;
    m[10] = 2320;
    m[15] = 0xFFFF; // voltage SF -1
    m[18] = meter_w as u16;
    m[22] = 0; // power SF 0
    for (i, v) in m.iter().enumerate() {
        r.insert(base + i as u16, *v);
    }
    r
}

fn local(addr: std::net::SocketAddr, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "modbus = \"{addr}\"\nmodbus_timeout_secs = 0.5\n{extra}"
    )))
    .unwrap()
}

#[tokio::test]
async fn modbus_inverter_and_export_meter() {
    // Inverter 4000 W, meter +2500 W = exporting (SolarEdge sign) → grid −2500, house 1500.
    let addr = serve_registers(sunspec_map(4000, 2500, 1), 1, None).await;
    let r = local(addr, "").read().await.unwrap();
    assert_reading(&r, Some(4000.0), Some(1500.0), Some(-2500.0));
    assert_eq!(r.phase_voltages, Some(vec![230.0, 231.0, 232.0]));
}

#[tokio::test]
async fn modbus_importing_meter_2_and_no_meter() {
    let addr = serve_registers(sunspec_map(300, -1200, 2), 1, None).await;
    let r = local(addr, "meter = 2").read().await.unwrap();
    assert_reading(&r, Some(300.0), Some(1500.0), Some(1200.0));
    let r = local(addr, "meter = 0").read().await.unwrap();
    assert_reading(&r, Some(300.0), None, None);
    assert_eq!(r.phase_voltages, Some(vec![230.1, 230.2, 230.3]));
}

#[tokio::test]
async fn modbus_failures_are_errors() {
    // Wrong unit id: the device answers with an exception.
    let addr = serve_registers(sunspec_map(4000, 2500, 1), 7, None).await;
    assert!(local(addr, "").read().await.is_err());
    // Meter not there: registers missing → exception → error, never a 0 W grid.
    let addr = serve_registers(sunspec_map(4000, 2500, 1), 1, None).await;
    let e = local(addr, "meter = 3").read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{}", e.chain());
    // Not a SunSpec inverter.
    let mut m = sunspec_map(4000, 2500, 1);
    m.insert(INVERTER_BASE, 0);
    let addr = serve_registers(m, 1, None).await;
    assert_eq!(
        local(addr, "").read().await.unwrap_err().kind(),
        ErrorKind::Protocol
    );
    // Silent device: a timeout.
    let addr = serve_silence().await;
    let t0 = std::time::Instant::now();
    let e = local(addr, "").read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(t0.elapsed() < Duration::from_secs(3));
    // Nothing listening.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    assert_eq!(
        local(dead, "").read().await.unwrap_err().kind(),
        ErrorKind::Transient
    );
}

#[tokio::test]
async fn r12_overview_counts_from_last_update_time_and_keeps_its_age_when_reserved() {
    let s = MockServer::start().await;
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture!("overview_ha_fixture.json")).unwrap();
    // The site last sent data 10 minutes ago (site-local time, no offset, as SolarEdge writes it).
    let ten_min_ago = chrono::Local::now() - chrono::TimeDelta::seconds(600);
    v["overview"]["lastUpdateTime"] = ten_min_ago.format("%Y-%m-%d %H:%M:%S").to_string().into();
    Mock::given(path("/site/42/overview"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(serde_json::to_vec(&v).unwrap()))
        .mount(&s)
        .await;
    let src = build(&cfg(&format!(
        "api_key = \"KEY\"\nsite_id = \"42\"\noverview = true\ncloud_url = \"{}\"",
        s.uri()
    )))
    .unwrap();
    let first = src.read().await.unwrap();
    assert_eq!(first.generation_w, Some(1234.5));
    let age = first.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 3.0, "age {age}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Within the call budget the value is re-served, still dated by lastUpdateTime.
    let again = src.read().await.unwrap();
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
    assert_eq!(again.measured_at, first.measured_at);
    assert!(again.measured_at.elapsed().as_secs_f64() > 601.0);

    // As recorded (2025-01-01): far too old to count.
    let r = twc_ems_solaredge::parse_overview(&fixture!("overview_ha_fixture.json")).unwrap();
    assert!(r.measured_at.elapsed() > std::time::Duration::from_secs(86_400));
}

#[test]
fn r12_missing_pv_is_not_zero_watts() {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture!(
        "currentPowerFlow_kW_exporting_RECONSTRUCTED.json"
    ))
    .unwrap();
    v["siteCurrentPowerFlow"]
        .as_object_mut()
        .unwrap()
        .remove("PV");
    let r = twc_ems_solaredge::parse_power_flow(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(r.generation_w, None);
    assert!(r.grid_w.is_some());
}
