//! Fixture tests and the source against an in-process Modbus TCP server playing a GX device.

use serde_json::Value;
use std::collections::HashMap;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, PluginError, Registry};
use twc_ems_victron::{
    GRID_METER_BLOCK_LEN, PvSource, REG_BATTERY, REG_GRID_METER_BLOCK, REG_PV_DC, REG_SYSTEM_BLOCK,
    SYSTEM_BLOCK_LEN, build, decode_grid_meter, decode_system,
};
use twc_testkit::modbus::{Registers, serve_registers, serve_silence, serve_units};
use twc_testkit::{assert_reading, fixture};

const ALL_PV: [PvSource; 3] = [PvSource::AcOutput, PvSource::AcInput, PvSource::Dc];

/// The snapshot's unit 100 registers, as the GX serves them.
fn snapshot() -> Registers {
    let v: Value =
        serde_json::from_slice(&fixture!("gx_modbus_unit100_snapshot_RECONSTRUCTED.json")).unwrap();
    v["unit_100_input_registers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, w)| (a.parse().unwrap(), w.as_u64().unwrap() as u16))
        .collect()
}

fn block(regs: &Registers, start: u16, n: u16) -> Vec<u16> {
    (start..start + n).map(|a| regs[&a]).collect()
}

/// Every register of 808..=822 is served (814-816, genset PV, are not in the snapshot: 0 W).
fn gx(mut regs: Registers) -> Registers {
    for a in REG_SYSTEM_BLOCK..REG_SYSTEM_BLOCK + SYSTEM_BLOCK_LEN {
        regs.entry(a).or_insert(0);
    }
    regs
}

fn decode(regs: &Registers) -> Result<twc_core::model::EnergyReading, twc_plugin_kit::ParseError> {
    decode_system(
        &block(regs, REG_SYSTEM_BLOCK, SYSTEM_BLOCK_LEN),
        Some([regs[&REG_BATTERY], regs[&(REG_BATTERY + 1)]]),
        Some(regs[&REG_PV_DC]),
        &ALL_PV,
    )
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == twc_ems_victron::NAME && !s.is_empty())
    );
}

#[test]
fn register_map_names_the_registers_we_read() {
    let v: Value = serde_json::from_slice(&fixture!(
        "gx_modbus_system_unit100_register_map_RECONSTRUCTED.json"
    ))
    .unwrap();
    assert_eq!(v["_meta"]["transport"]["unit_id"], 100);
    assert_eq!(v["_meta"]["transport"]["port"], 502);
    let regs = v["registers"].as_array().unwrap();
    for (addr, needle, ty) in [
        (808, "AC-coupled on output L1", "uint16"),
        (811, "AC-coupled on input", "uint16"),
        (817, "AC consumption L1", "uint16"),
        (819, "AC consumption L3", "uint16"),
        (820, "positive = import", "int16"),
        (822, "Grid L3", "int16"),
        (842, "positive = charging", "int16"),
        (843, "state of charge", "uint16"),
        (850, "DC-coupled", "uint16"),
    ] {
        let r = regs
            .iter()
            .find(|r| r["address"] == addr)
            .unwrap_or_else(|| panic!("register {addr} missing"));
        assert!(
            r["name"].as_str().unwrap().contains(needle),
            "{addr}: {}",
            r["name"]
        );
        assert_eq!(r["type"], ty, "{addr}");
        assert_eq!(r["scale"], 1, "{addr}");
    }
}

#[test]
fn gx_modbus_unit100_snapshot() {
    let r = decode(&gx(snapshot())).unwrap();
    // 620 + 590 + 600 W AC-coupled on the output; 252 + 565 + 137 W house; −400 W on L1.
    assert_reading(&r, Some(1810.0), Some(954.0), Some(-400.0));
    // The GX says +456 W charging; ours is − charging.
    assert_eq!(r.battery_w, Some(-456.0));
    assert_eq!(r.battery_soc_pct, Some(87.0));
}

/// TWCManager's Victron module returned consumption × −1 (−954 W for this snapshot) and read the
/// grid registers unsigned (820 = 65136 W); both are wrong here.
#[test]
fn r16_consumption_is_positive_and_grid_is_signed() {
    let r = decode(&gx(snapshot())).unwrap();
    assert!(r.consumption_w.unwrap() > 0.0);
    assert_eq!(r.grid_w, Some(-400.0));
}

#[test]
fn pv_sources_choose_what_counts_as_generation() {
    let mut regs = gx(snapshot());
    regs.insert(811, 100);
    regs.insert(850, 1200);
    let sys = block(&regs, REG_SYSTEM_BLOCK, SYSTEM_BLOCK_LEN);
    let gen_of = |pv: &[PvSource]| {
        decode_system(&sys, None, Some(1200), pv)
            .unwrap()
            .generation_w
    };
    assert_eq!(gen_of(&ALL_PV), Some(1810.0 + 100.0 + 1200.0));
    assert_eq!(
        gen_of(&[PvSource::AcOutput]),
        Some(1810.0),
        "TWCManager's choice"
    );
    assert_eq!(gen_of(&[PvSource::Dc]), Some(1200.0));
    assert_eq!(gen_of(&[]), None);
}

#[test]
fn values_marked_not_available_are_missing_never_zero() {
    let mut regs = gx(snapshot());
    regs.insert(818, 0xFFFF);
    regs.insert(850, 0xFFFF);
    regs.insert(842, 0x8000);
    regs.insert(843, 0xFFFF);
    let r = decode(&regs).unwrap();
    assert_eq!(r.consumption_w, None);
    assert_eq!(
        r.generation_w, None,
        "one PV part unknown: the sum is unknown"
    );
    assert_eq!(r.battery_w, None);
    assert_eq!(r.battery_soc_pct, None);
    assert_eq!(r.grid_w, Some(-400.0), "what is known is still reported");
    regs.insert(821, 0x7FFF);
    regs.insert(842, 456);
    let r = decode(&regs).unwrap();
    assert_eq!(r.grid_w, None);
    assert_eq!(r.battery_w, Some(-456.0));

    regs.insert(842, 0x7FFF);
    let e = decode(&regs).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "nothing known is an error");
}

#[test]
fn garbage_state_of_charge_is_a_protocol_error() {
    let mut regs = gx(snapshot());
    regs.insert(843, 250);
    assert_eq!(decode(&regs).unwrap_err().kind, ErrorKind::Protocol);
    assert_eq!(
        decode_system(&[0; 3], None, None, &ALL_PV)
            .unwrap_err()
            .kind,
        ErrorKind::Protocol,
        "a truncated block"
    );
}

/// `com.victronenergy.grid` L1-L3: power 2600-2602 (int16 W), voltage 2616/2618/2620 (uint16,
/// V × 10), current 2617/2619/2621 (int16, A × 10).
fn grid_meter(powers: [i16; 3], volts_x10: [u16; 3], amps_x10: [i16; 3]) -> Registers {
    let mut m: Registers = (REG_GRID_METER_BLOCK..REG_GRID_METER_BLOCK + GRID_METER_BLOCK_LEN)
        .map(|a| (a, 0))
        .collect();
    for i in 0..3u16 {
        m.insert(2600 + i, powers[i as usize] as u16);
        m.insert(2616 + 2 * i, volts_x10[i as usize]);
        m.insert(2617 + 2 * i, amps_x10[i as usize] as u16);
    }
    m
}

#[test]
fn grid_meter_phase_currents_take_the_sign_of_their_power() {
    let m = grid_meter([-400, 230, 0], [2301, 2315, 2298], [18, 11, 0]);
    let b = block(&m, REG_GRID_METER_BLOCK, GRID_METER_BLOCK_LEN);
    let (v, a) = decode_grid_meter(&b, 3).unwrap();
    assert_eq!(v, Some(vec![230.1, 231.5, 229.8]));
    assert_eq!(a, Some(vec![-1.8, 1.1, 0.0]));
    let (v, a) = decode_grid_meter(&b, 1).unwrap();
    assert_eq!((v, a), (Some(vec![230.1]), Some(vec![-1.8])));

    let mut m2 = m.clone();
    m2.insert(2619, 0x7FFF);
    let (v, a) =
        decode_grid_meter(&block(&m2, REG_GRID_METER_BLOCK, GRID_METER_BLOCK_LEN), 3).unwrap();
    assert_eq!(a, None, "an unknown phase drops the list, never reads 0 A");
    assert_eq!(v.map(|v| v.len()), Some(3));
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.victron", t).unwrap()
}

fn source(addr: std::net::SocketAddr, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "modbus = \"{addr}\"\nmodbus_timeout_secs = 0.5\n{extra}"
    )))
    .unwrap()
}

#[tokio::test]
async fn reads_the_snapshot_from_unit_100_over_modbus_tcp() {
    let addr = serve_registers(gx(snapshot()), 100, None).await;
    let s = source(addr, "");
    for _ in 0..2 {
        let r = s.read().await.unwrap();
        assert_reading(&r, Some(1810.0), Some(954.0), Some(-400.0));
        assert_eq!(r.battery_w, Some(-456.0));
        assert_eq!(r.battery_soc_pct, Some(87.0));
        assert_eq!(r.phase_currents_a, None);
    }
    let r = source(addr, "battery = false\npv_sources = [\"ac_output\"]")
        .read()
        .await
        .unwrap();
    assert_eq!((r.battery_w, r.battery_soc_pct), (None, None));
    assert_eq!(r.generation_w, Some(1810.0));
}

#[tokio::test]
async fn reads_the_grid_meter_on_its_own_unit_over_the_same_connection() {
    let units = HashMap::from([
        (100, gx(snapshot())),
        (31, grid_meter([-400, 0, 0], [2301, 2310, 2299], [17, 0, 0])),
    ]);
    let addr = serve_units(units, None).await;
    let r = source(addr, "grid_meter_unit = 31").read().await.unwrap();
    assert_eq!(r.grid_w, Some(-400.0));
    assert_eq!(r.phase_currents_a, Some(vec![-1.7, 0.0, 0.0]));
    assert_eq!(r.phase_voltages, Some(vec![230.1, 231.0, 229.9]));
    // A grid meter that is gone (no such unit on the GX) fails the read; it is not 0 A.
    let e = source(addr, "grid_meter_unit = 32")
        .read()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}

#[tokio::test]
async fn failures_are_errors_never_zero() {
    fn kind(r: Result<twc_core::model::EnergyReading, PluginError>) -> ErrorKind {
        r.expect_err("a failure must not be a reading").kind()
    }
    // Wrong unit id: the GX answers "gateway target device failed to respond".
    let addr = serve_registers(gx(snapshot()), 100, None).await;
    assert_eq!(
        kind(source(addr, "unit = 246").read().await),
        ErrorKind::Transient
    );
    // A register the GX does not have: Modbus exception "illegal data address".
    let mut regs = gx(snapshot());
    regs.remove(&REG_PV_DC);
    let addr = serve_registers(regs, 100, None).await;
    assert_eq!(kind(source(addr, "").read().await), ErrorKind::Unsupported);
    // Garbage state of charge.
    let mut regs = gx(snapshot());
    regs.insert(843, 1000);
    let addr = serve_registers(regs, 100, None).await;
    assert_eq!(kind(source(addr, "").read().await), ErrorKind::Protocol);
    // Connection refused: a port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(kind(source(free, "").read().await), ErrorKind::Transient);
    // Timeout: a server that accepts and never answers.
    let addr = serve_silence().await;
    let e = source(addr, "").read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    for (body, needle) in [
        ("modbus = \"gx.local\"", "modbus"),
        ("modbus = \"gx:502\"\nunits = 100", "units"),
        ("modbus = \"gx:502\"\npv_sources = [\"roof\"]", "roof"),
        (
            "modbus = \"gx:502\"\npv_sources = [\"dc\", \"dc\"]",
            "pv_sources",
        ),
        ("modbus = \"gx:502\"\nphases = 4", "phases"),
        (
            "modbus = \"gx:502\"\nmodbus_timeout_secs = 0",
            "modbus_timeout_secs",
        ),
        ("unit = 100", "modbus"),
    ] {
        let e = build(&cfg(body))
            .err()
            .unwrap_or_else(|| panic!("{body} builds"));
        assert!(e.to_string().contains(needle), "{body}: {e}");
    }
}

/// The documented keys in config/default.toml, uncommented, build.
#[test]
fn the_default_section_documents_keys_that_build() {
    let section = twc_testkit::default_toml_section("ems", twc_ems_victron::NAME);
    let e = build(&section).err().expect("no device address by default");
    assert!(e.to_string().contains("modbus"), "{e}");
    let text = include_str!("../../../../config/default.toml");
    let body: String = text
        .split("[ems.victron]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    build(&cfg(&body)).unwrap_or_else(|e| panic!("{body}: {e}"));
}
