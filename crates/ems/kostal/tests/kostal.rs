use serde_json::Value;
use std::time::Duration;
use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_kostal::{REG_GRID, REG_PHASE_BLOCK, REG_POWER_BLOCK, build, decode, decode_order};
use twc_plugin_kit::modbus::WordOrder;
use twc_testkit::modbus::{Registers, put_f32, serve_registers, serve_silence};
use twc_testkit::{assert_reading, fixture};

/// The snapshot's registers for one word order, plus phase voltages.
fn snapshot(key: &str) -> Registers {
    let v: Value =
        serde_json::from_slice(&fixture!("plenticore_register_snapshot_RECONSTRUCTED.json"))
            .unwrap();
    let mut regs = Registers::new();
    for (addr, entry) in v[key].as_object().unwrap() {
        let a: u16 = addr.parse().unwrap();
        let words = entry.get("words").unwrap_or(entry);
        for (i, w) in words.as_array().unwrap().iter().enumerate() {
            regs.insert(a + i as u16, w.as_u64().unwrap() as u16);
        }
    }
    let swapped = key.starts_with("little");
    for (reg, v) in [(158, 230.5f32), (164, 231.0), (170, 229.5)] {
        put_f32(&mut regs, reg, v, swapped);
    }
    regs
}

fn block(regs: &Registers, start: u16, n: u16) -> Vec<u16> {
    (start..start + n)
        .map(|a| regs.get(&a).copied().unwrap_or(0))
        .collect()
}

#[test]
fn register_map_names_the_registers_we_read() {
    let v: Value = serde_json::from_slice(&fixture!(
        "plenticore_modbus_register_map_RECONSTRUCTED.json"
    ))
    .unwrap();
    let regs = v["registers"].as_array().unwrap();
    for (addr, needle) in [
        (5, "byte order"),
        (100, "Total DC power"),
        (106, "from battery"),
        (108, "from grid"),
        (116, "from PV"),
        (158, "Voltage Phase 1"),
        (252, "powermeter"),
        (514, "SOC"),
        (582, "battery"),
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
    }
    assert_eq!(v["_meta"]["transport"]["default_unit_id"], 71);
}

#[test]
fn plenticore_register_snapshot_both_word_orders() {
    for (key, order) in [
        ("little_endian_word_order_CDAB", WordOrder::Cdab),
        ("big_endian_word_order_ABCD", WordOrder::Abcd),
    ] {
        let regs = snapshot(key);
        assert_eq!(decode_order(regs[&5]).unwrap(), order);
        let r = decode(
            &block(&regs, REG_POWER_BLOCK, 18),
            &block(&regs, REG_GRID, 2),
            &block(&regs, REG_PHASE_BLOCK, 22),
            order,
        )
        .unwrap();
        assert_reading(&r, Some(6012.5), Some(3000.0), Some(-2850.4));
        assert_eq!(r.phase_voltages, Some(vec![230.5, 231.0, 229.5]));
    }
    assert!(decode_order(7).is_err());
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.kostal", t).unwrap()
}

fn source(addr: std::net::SocketAddr, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "modbus = \"{addr}\"\nmodbus_timeout_secs = 0.5\n{extra}"
    )))
    .unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("modbus = \"h\"")).err().unwrap();
    assert!(e.to_string().contains("modbus"), "{e}");
    let e = build(&cfg("modbus = \"h:1502\"\nword_order = \"big\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("big"), "{e}");
}

#[tokio::test]
async fn reads_both_word_orders_over_modbus_tcp_unit_71() {
    for key in [
        "little_endian_word_order_CDAB",
        "big_endian_word_order_ABCD",
    ] {
        let addr = serve_registers(snapshot(key), 71, Some(0)).await;
        let r = source(addr, "").read().await.unwrap();
        assert_reading(&r, Some(6012.5), Some(3000.0), Some(-2850.4));
    }
    // A pinned wrong order decodes garbage that must not pass as a sane reading.
    let addr = serve_registers(snapshot("little_endian_word_order_CDAB"), 71, Some(0)).await;
    let r = source(addr, "word_order = \"abcd\"").read().await.unwrap();
    assert_ne!(r.generation_w, Some(6012.5));
}

#[tokio::test]
async fn battery_registers() {
    let mut regs = snapshot("big_endian_word_order_ABCD");
    regs.insert(514, 57);
    regs.insert(582, (-1200i16) as u16);
    let addr = serve_registers(regs, 71, Some(0)).await;
    let r = source(addr, "battery = true").read().await.unwrap();
    assert_eq!(r.battery_soc_pct, Some(57.0));
    assert_eq!(r.battery_w, Some(-1200.0));
}

#[tokio::test]
async fn failures_are_errors_never_zero() {
    let addr = serve_registers(snapshot("big_endian_word_order_ABCD"), 1, Some(0)).await;
    assert!(source(addr, "").read().await.is_err(), "wrong unit id");
    let addr = serve_registers(snapshot("big_endian_word_order_ABCD"), 71, None).await;
    assert_eq!(
        source(addr, "").read().await.unwrap_err().kind(),
        ErrorKind::Unsupported,
        "missing registers"
    );
    let mut bad = snapshot("big_endian_word_order_ABCD");
    bad.insert(5, 9);
    let addr = serve_registers(bad, 71, Some(0)).await;
    assert_eq!(
        source(addr, "").read().await.unwrap_err().kind(),
        ErrorKind::Protocol
    );
    let addr = serve_silence().await;
    let t0 = std::time::Instant::now();
    assert_eq!(
        source(addr, "").read().await.unwrap_err().kind(),
        ErrorKind::Transient
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}
