//! The source against an in-process Modbus TCP server serving SunSpec maps built from the
//! fixtures (point offsets, types and values recorded there, with their provenance).

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, PluginError, Registry};
use twc_ems_sunspec::model::{ModelKind, decode_inverter, decode_meter};
use twc_ems_sunspec::{MeterSign, build, combine};
use twc_testkit::modbus::{Registers, put_f32, serve_registers, serve_silence, serve_units};
use twc_testkit::{assert_reading, fixture};

const SOLAREDGE: &str = "solaredge_int_sf_103_203_export_RECONSTRUCTED.json";
const FRONIUS: &str = "fronius_float_113_213_import_RECONSTRUCTED.json";

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&twc_testkit::read_fixture(&path)).unwrap()
}

/// A point's registers as the device serves them.
fn put(regs: &mut Registers, at: u16, p: &Value) {
    let ty = p["type"].as_str().unwrap();
    let v = &p["value"];
    match ty {
        "uint16" | "enum16" => {
            regs.insert(at, v.as_u64().unwrap() as u16);
        }
        "int16" | "sunssf" => {
            regs.insert(at, v.as_i64().unwrap() as i16 as u16);
        }
        "float32" => put_f32(regs, at, v.as_f64().unwrap() as f32, false),
        "string16" => {
            let mut b = v.as_str().unwrap().as_bytes().to_vec();
            b.resize(32, 0);
            for (i, w) in b.chunks(2).enumerate() {
                regs.insert(at + i as u16, u16::from_be_bytes([w[0], w[1]]));
            }
        }
        other => panic!("point type {other}"),
    }
}

/// One unit's map from the fixture, at `base` (the fixture's own when `None`), with `edit`
/// applied to each model's points (model id, point name) → replacement raw value.
fn unit_map(
    fx: &Value,
    unit: &str,
    base: Option<u16>,
    edit: &dyn Fn(u16, &str) -> Option<u16>,
) -> Registers {
    let u = &fx["units"][unit];
    let base = base.unwrap_or(u["base"].as_u64().unwrap() as u16);
    let mut regs = Registers::new();
    regs.insert(base, 0x5375);
    regs.insert(base + 1, 0x6E53);
    let mut at = base + 2;
    for m in u["models"].as_array().unwrap() {
        let id = m["id"].as_u64().unwrap() as u16;
        let len = m["L"].as_u64().unwrap() as u16;
        regs.insert(at, id);
        regs.insert(at + 1, len);
        for o in 2..len + 2 {
            regs.insert(at + o, 0);
        }
        for p in m["points"].as_array().unwrap() {
            let off = p["offset"].as_u64().unwrap() as u16;
            put(&mut regs, at + off, p);
            if let Some(raw) = edit(id, p["name"].as_str().unwrap()) {
                regs.insert(at + off, raw);
                if p["type"] == "float32" {
                    regs.insert(at + off + 1, 0);
                }
            }
        }
        at += 2 + len;
    }
    regs.insert(at, 0xFFFF);
    regs.insert(at + 1, 0);
    regs
}

fn plain(fx: &Value, unit: &str) -> Registers {
    unit_map(fx, unit, None, &|_, _| None)
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.sunspec", t).unwrap()
}

fn source(addr: SocketAddr, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "modbus = \"{addr}\"\nmodbus_timeout_secs = 0.5\n{extra}"
    )))
    .unwrap()
}

fn kind(r: Result<EnergyReading, PluginError>) -> (ErrorKind, String) {
    let e = r.expect_err("a failure must not be a reading");
    (e.kind(), e.to_string())
}

fn assert_close(actual: &Option<Vec<f64>>, expected: &[f64]) {
    let a = actual.as_ref().expect("per-phase values");
    assert_eq!(a.len(), expected.len(), "{a:?}");
    for (x, y) in a.iter().zip(expected) {
        assert!((x - y).abs() < 1e-9, "{a:?} != {expected:?}");
    }
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == twc_ems_sunspec::NAME && !s.is_empty())
    );
}

#[tokio::test]
async fn solaredge_int_sf_map_exporting() {
    let fx = load(SOLAREDGE);
    let e = &fx["_meta"]["expected"];
    assert_eq!(e["grid_W"], -1500);
    let addr = serve_registers(plain(&fx, "1"), 1, None).await;
    let s = source(addr, "meter_sign = \"export_positive\"");
    for _ in 0..2 {
        let r = s.read().await.unwrap();
        assert_reading(&r, Some(4321.0), Some(2821.0), Some(-1500.0));
        assert_close(&r.phase_voltages, &[230.1, 231.2, 229.8]);
        assert_close(&r.phase_currents_a, &[-3.48, -1.74, -1.31]);
    }
    // Read with SunSpec's own sign, the same meter reads as importing: the key matters.
    let r = source(addr, "").read().await.unwrap();
    assert_eq!(r.grid_w, Some(1500.0));
}

#[tokio::test]
async fn fronius_float_map_importing_with_the_meter_on_unit_200() {
    let fx = load(FRONIUS);
    let units = HashMap::from([(1, plain(&fx, "1")), (200, plain(&fx, "200"))]);
    let addr = serve_units(units, None).await;
    let r = source(addr, "meter_unit = 200").read().await.unwrap();
    assert_reading(&r, Some(3012.5), Some(3862.5), Some(850.0));
    assert_close(&r.phase_voltages, &[231.25, 229.75, 230.5]);
    assert_close(&r.phase_currents_a, &[2.25, 1.0, 0.75]);
    // Without meter_unit the inverter's unit has no meter model: a config error naming both.
    let (k, msg) = kind(source(addr, "").read().await);
    assert_eq!(k, ErrorKind::Config, "{msg}");
    assert!(
        msg.contains("meter") && msg.contains("1, 113, 120"),
        "{msg}"
    );
    // Inverter only: generation, the inverter's voltages, no grid.
    let r = source(addr, "meter = false").read().await.unwrap();
    assert_reading(&r, Some(3012.5), None, None);
    assert_close(&r.phase_voltages, &[231.25, 229.75, 230.5]);
    assert_eq!(r.phase_currents_a, None);
    // Meter only.
    let r = source(addr, "inverter = false\nmeter_unit = 200")
        .read()
        .await
        .unwrap();
    assert_reading(&r, None, None, Some(850.0));
}

#[tokio::test]
async fn the_map_is_found_at_40000_0_and_50000() {
    let fx = load(SOLAREDGE);
    for base in [40000u16, 0, 50000] {
        let regs = unit_map(&fx, "1", Some(base), &|_, _| None);
        let addr = serve_registers(regs, 1, None).await;
        let r = source(addr, "meter_sign = \"export_positive\"")
            .read()
            .await
            .unwrap();
        assert_eq!(r.grid_w, Some(-1500.0), "base {base}");
        let pinned = format!("base_address = {base}\nmeter_sign = \"export_positive\"");
        assert_eq!(
            source(addr, &pinned).read().await.unwrap().generation_w,
            Some(4321.0)
        );
    }
    // Pinned to a base without the map: a config error.
    let addr = serve_registers(unit_map(&fx, "1", Some(0), &|_, _| None), 1, None).await;
    let (k, msg) = kind(source(addr, "base_address = 40000").read().await);
    assert_eq!(k, ErrorKind::Config, "{msg}");
    assert!(msg.contains("SunS"), "{msg}");
}

#[tokio::test]
async fn not_implemented_values_are_missing_never_zero() {
    let fx = load(SOLAREDGE);
    // Inverter W = 0x8000 (int16 not implemented): no generation, no consumption; grid stays.
    let regs = unit_map(&fx, "1", None, &|m, p| {
        (m == 103 && p == "W").then_some(0x8000)
    });
    let addr = serve_registers(regs, 1, None).await;
    let r = source(addr, "meter_sign = \"export_positive\"")
        .read()
        .await
        .unwrap();
    assert_eq!((r.generation_w, r.consumption_w), (None, None));
    assert_eq!(r.grid_w, Some(-1500.0));
    // Meter W_SF not implemented: the power cannot be scaled, so it is missing.
    let regs = unit_map(&fx, "1", None, &|m, p| {
        (m == 203 && p == "W_SF").then_some(0x8000)
    });
    let addr = serve_registers(regs, 1, None).await;
    let r = source(addr, "").read().await.unwrap();
    assert_eq!((r.grid_w, r.consumption_w), (None, None));
    assert_eq!(r.generation_w, Some(4321.0));
    // One phase current not implemented: no per-phase currents at all, never a 0 A phase.
    let regs = unit_map(&fx, "1", None, &|m, p| {
        (m == 203 && p == "AphB").then_some(0x8000)
    });
    let addr = serve_registers(regs, 1, None).await;
    let r = source(addr, "").read().await.unwrap();
    assert_eq!(r.phase_currents_a, None);
    // uint16 not implemented (0xFFFF) in an inverter voltage; meter = false so the inverter's
    // voltages would be used: none.
    let regs = unit_map(&fx, "1", None, &|m, p| {
        (m == 103 && p == "PhVphC").then_some(0xFFFF)
    });
    let addr = serve_registers(regs, 1, None).await;
    let r = source(addr, "meter = false").read().await.unwrap();
    assert_eq!(r.phase_voltages, None);
    // Both powers not implemented: an error, not a reading.
    let regs = unit_map(&fx, "1", None, &|m, p| {
        (p == "W" && (m == 103 || m == 203)).then_some(0x8000)
    });
    let addr = serve_registers(regs, 1, None).await;
    assert_eq!(kind(source(addr, "").read().await).0, ErrorKind::Protocol);

    // Float NaN (0x7FC0 0000) is not implemented.
    let fx = load(FRONIUS);
    let units = HashMap::from([
        (
            1,
            unit_map(&fx, "1", None, &|m, p| {
                (m == 113 && p == "W").then_some(0x7FC0)
            }),
        ),
        (200, plain(&fx, "200")),
    ]);
    let addr = serve_units(units, None).await;
    let r = source(addr, "meter_unit = 200").read().await.unwrap();
    assert_reading(&r, None, None, Some(850.0));
    let units = HashMap::from([
        (
            1,
            unit_map(&fx, "1", None, &|m, p| {
                (m == 113 && p == "W").then_some(0x7FC0)
            }),
        ),
        (
            200,
            unit_map(&fx, "200", None, &|m, p| {
                (m == 213 && p == "W").then_some(0x7FC0)
            }),
        ),
    ]);
    let addr = serve_units(units, None).await;
    assert_eq!(
        kind(source(addr, "meter_unit = 200").read().await).0,
        ErrorKind::Protocol
    );
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let fx = load(SOLAREDGE);
    // A scale factor outside −10..=10.
    let regs = unit_map(&fx, "1", None, &|m, p| {
        (m == 203 && p == "W_SF").then_some(20)
    });
    let addr = serve_registers(regs, 1, None).await;
    let (k, msg) = kind(source(addr, "").read().await);
    assert_eq!(k, ErrorKind::Protocol);
    assert!(msg.contains("W_SF"), "{msg}");
    // An infinite float.
    let fx2 = load(FRONIUS);
    let units = HashMap::from([
        (
            1,
            unit_map(&fx2, "1", None, &|m, p| {
                (m == 113 && p == "W").then_some(0x7F80)
            }),
        ),
        (200, plain(&fx2, "200")),
    ]);
    let addr = serve_units(units, None).await;
    assert_eq!(
        kind(source(addr, "meter_unit = 200").read().await).0,
        ErrorKind::Protocol
    );
    // A chain of models that never ends (every register reads 1: model 1, length 1, …).
    let mut regs: Registers = HashMap::new();
    regs.insert(40000, 0x5375);
    regs.insert(40001, 0x6E53);
    let addr = serve_registers(regs, 1, Some(1)).await;
    let (k, msg) = kind(source(addr, "base_address = 40000").read().await);
    assert_eq!(k, ErrorKind::Protocol, "{msg}");
    // A model that declares fewer registers than the standard.
    let mut regs = plain(&fx, "1");
    regs.insert(40070, 10); // model 103's L
    let addr = serve_registers(regs, 1, None).await;
    assert_eq!(
        kind(source(addr, "meter = false").read().await).0,
        ErrorKind::Protocol
    );
}

#[test]
fn a_model_that_moved_is_transient_and_looked_up_again() {
    let k = ModelKind::inverter(103).unwrap();
    let mut block = vec![0u16; 16];
    block[0] = 101;
    block[1] = 50;
    assert_eq!(
        decode_inverter(&block, &k).unwrap_err().kind,
        ErrorKind::Transient
    );
    let m = ModelKind::meter(203).unwrap();
    assert_eq!(
        decode_meter(&block[..5], &m).unwrap_err().kind,
        ErrorKind::Transient
    );
    block[0] = 103;
    assert_eq!(
        decode_inverter(&block[..10], &k).unwrap_err().kind,
        ErrorKind::Protocol,
        "truncated"
    );
    assert!(combine(None, None, MeterSign::ImportPositive).is_err());
}

#[tokio::test]
async fn a_map_without_the_expected_model_is_a_config_error() {
    let fx = load(SOLAREDGE);
    let mut without_meter = fx.clone();
    without_meter["units"]["1"]["models"]
        .as_array_mut()
        .unwrap()
        .truncate(2);
    let addr = serve_registers(plain(&without_meter, "1"), 1, None).await;
    let (k, msg) = kind(source(addr, "").read().await);
    assert_eq!(k, ErrorKind::Config);
    assert!(
        msg.contains("no meter model") && msg.contains("models found: 1, 103"),
        "{msg}"
    );
    assert_eq!(
        source(addr, "meter = false")
            .read()
            .await
            .unwrap()
            .generation_w,
        Some(4321.0)
    );
    let mut meter_only = fx.clone();
    meter_only["units"]["1"]["models"]
        .as_array_mut()
        .unwrap()
        .drain(0..2);
    let addr = serve_registers(plain(&meter_only, "1"), 1, None).await;
    let (k, msg) = kind(source(addr, "").read().await);
    assert_eq!(k, ErrorKind::Config);
    assert!(msg.contains("no inverter model"), "{msg}");
    // No SunSpec map at all.
    let addr = serve_registers(HashMap::new(), 1, Some(0)).await;
    let (k, msg) = kind(source(addr, "").read().await);
    assert_eq!(k, ErrorKind::Config);
    assert!(msg.contains("40000, 0, 50000"), "{msg}");
}

#[tokio::test]
async fn link_failures_are_transient_errors() {
    let fx = load(SOLAREDGE);
    // Wrong unit id: Modbus exception "gateway target device failed to respond".
    let addr = serve_registers(plain(&fx, "1"), 1, None).await;
    assert_eq!(
        kind(source(addr, "unit = 2").read().await).0,
        ErrorKind::Transient
    );
    // A model block with registers the device does not serve: Modbus exception
    // "illegal data address" while reading it.
    let mut regs = plain(&fx, "1");
    regs.retain(|a, _| *a < 40188 + 10 || *a >= 40188 + 107);
    let addr = serve_registers(regs, 1, None).await;
    assert_eq!(
        kind(source(addr, "").read().await).0,
        ErrorKind::Unsupported
    );
    // Connection refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(kind(source(free, "").read().await).0, ErrorKind::Transient);
    // A server that accepts and never answers.
    let addr = serve_silence().await;
    let (k, msg) = kind(source(addr, "").read().await);
    assert_eq!(k, ErrorKind::Transient);
    assert!(msg.contains("timed out"), "{msg}");
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    for (body, needle) in [
        ("modbus = \"inverter\"", "modbus"),
        ("modbus = \"i:502\"\nunits = 1", "units"),
        ("modbus = \"i:502\"\nbase_address = 40001", "base_address"),
        ("modbus = \"i:502\"\nmeter_sign = \"positive\"", "positive"),
        (
            "modbus = \"i:502\"\ninverter = false\nmeter = false",
            "inverter",
        ),
        (
            "modbus = \"i:502\"\nmeter = false\nmeter_unit = 200",
            "meter_unit",
        ),
        (
            "modbus = \"i:502\"\nmodbus_timeout_secs = -1",
            "modbus_timeout_secs",
        ),
        ("unit = 1", "modbus"),
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
    let section = twc_testkit::default_toml_section("ems", twc_ems_sunspec::NAME);
    let e = build(&section).err().expect("no device address by default");
    assert!(e.to_string().contains("modbus"), "{e}");
    let text = include_str!("../../../../config/default.toml");
    let body: String = text
        .split("[ems.sunspec]")
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

#[test]
fn fixtures_record_their_provenance() {
    for v in [
        fixture!("solaredge_int_sf_103_203_export_RECONSTRUCTED.json"),
        fixture!("fronius_float_113_213_import_RECONSTRUCTED.json"),
    ] {
        let v: Value = serde_json::from_slice(&v).unwrap();
        let p = v["_meta"]["provenance"].as_str().unwrap();
        assert!(
            p.contains("sunspec/models") && p.starts_with("RECONSTRUCTED"),
            "{p}"
        );
    }
}
