//! `[comms.dummy]` parsing and validation.

use twc_comms_dummy::{DummyConfig, NAME};
use twc_core::plugin::{PluginConfig, Registry};

fn parse(text: &str) -> Result<DummyConfig, String> {
    let cfg = PluginConfig::from_toml("comms.dummy", text).map_err(|e| e.to_string())?;
    DummyConfig::from_plugin_config(&cfg).map_err(|e| e.to_string())
}

#[test]
fn example_toml_parses_and_is_the_registered_example() {
    let example = include_str!("../example.toml");
    let doc: toml::Table = toml::from_str(example).unwrap();
    let section = toml::to_string(&doc["comms"]["dummy"]).unwrap();
    let c = parse(&section).unwrap();
    let plugged = |c: &DummyConfig| -> Vec<bool> {
        c.fleet().build().iter().map(|s| s.car.plugged_in).collect()
    };
    assert_eq!(plugged(&c), vec![true, false]);
    assert_eq!(plugged(&c), plugged(&DummyConfig::default()));
    assert_eq!(
        DummyConfig {
            cars_plugged_in: None,
            ..c
        },
        DummyConfig::default(),
        "the example shows the defaults"
    );
    let reg = Registry::collect().unwrap();
    let d = reg.comms.get(NAME).expect("dummy is registered");
    assert_eq!(d.example, example);
}

#[test]
fn empty_section_gives_the_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.slaves, 2);
    assert_eq!(c.max_amps, 32);
    assert_eq!(c.protocol, 2);
    assert_eq!(c.cars_plugged_in, None);
    let fleet = c.fleet().build();
    assert!(fleet[0].car.plugged_in && !fleet[1].car.plugged_in);
    assert_eq!(c.vins, None);
}

#[test]
fn full_section_parses() {
    let c = parse(
        r#"
        slaves = 3
        max_amps = 80
        protocol = 1
        cars_plugged_in = [true, true, false]
        vins = ["5YJ3E1EA0KF000316", ""]
        car_max_amps = 48
        ramp_amps_per_sec = 4.5
        "#,
    )
    .unwrap();
    let fleet = c.fleet().build();
    assert_eq!(fleet.len(), 3);
    assert_eq!(fleet[0].car.vin.as_deref(), Some("5YJ3E1EA0KF000316"));
    assert_eq!(fleet[1].car.vin, None, "\"\" is a non-Tesla");
    assert!(
        fleet[2].car.vin.is_some(),
        "missing entries get a generated VIN"
    );
    assert!(!fleet[2].car.plugged_in);
    assert_eq!(
        fleet[0].slave.version,
        twc_core::protocol::ProtocolVersion::V1
    );
    assert_eq!(fleet[0].slave.max_amps.0, 8000);
    assert_eq!(fleet[0].car.max_amps.0, 4800);
}

#[test]
fn unknown_key_error_names_the_key_and_section() {
    let e = parse("slave = 3").unwrap_err();
    assert!(e.contains("comms.dummy") && e.contains("`slave`"), "{e}");
}

#[test]
fn bad_values_name_the_key() {
    for (text, key) in [
        ("protocol = 3", "protocol"),
        ("slaves = 0", "slaves"),
        ("max_amps = 0", "max_amps"),
        (
            "slaves = 1\ncars_plugged_in = [true, true]",
            "cars_plugged_in",
        ),
        ("vins = [\"SHORT\"]", "vins"),
        ("ramp_amps_per_sec = 0.0", "ramp_amps_per_sec"),
        ("car_max_amps = 500", "car_max_amps"),
        ("protocol = \"two\"", "invalid type"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(key), "{text:?}: {e}");
        assert!(e.starts_with("[comms.dummy]"), "{e}");
    }
}

#[test]
fn build_outside_a_runtime_is_an_error_not_a_panic() {
    let reg = Registry::collect().unwrap();
    let d = reg.comms.get(NAME).unwrap();
    let cfg = PluginConfig::from_toml("comms.dummy", "").unwrap();
    let e = (d.build)(&cfg).err().expect("needs a runtime");
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}

#[tokio::test]
async fn build_inside_a_runtime_returns_a_working_bus() {
    use twc_core::plugin::Received;
    let reg = Registry::collect().unwrap();
    let d = reg.comms.get(NAME).unwrap();
    let cfg = PluginConfig::from_toml("comms.dummy", "slaves = 1").unwrap();
    let mut comms = (d.build)(&cfg).unwrap();
    // The slave's power-on link-ready arrives without any master traffic.
    let r = tokio::time::timeout(std::time::Duration::from_secs(2), comms.recv())
        .await
        .expect("link-ready within 2 s")
        .unwrap();
    let Received::Frame(f) = r else {
        panic!("{r:?}")
    };
    assert_eq!(f.code(), 0xFDE2);
    assert_eq!(comms.describe(), NAME);
}

/// The `[comms.dummy]` section the daemon sees: `config/default.toml` with the user's keys laid
/// over it, key by key, as the layered config does.
fn layered(user: &str) -> Result<DummyConfig, String> {
    let root: toml::Table =
        toml::from_str(include_str!("../../../../config/default.toml")).unwrap();
    let mut section = root["comms"]["dummy"].as_table().unwrap().clone();
    let over: toml::Table = toml::from_str(user).unwrap();
    section.extend(over);
    parse(&toml::to_string(&section).unwrap())
}

#[test]
fn r13_slaves_1_alone_works_over_the_default_toml() {
    let c = layered("enabled = true\nslaves = 1").unwrap();
    let fleet = c.fleet().build();
    assert_eq!(fleet.len(), 1);
    assert!(
        fleet[0].car.plugged_in,
        "the default: a car on the first slave"
    );
    let c = layered("enabled = true\nslaves = 4").unwrap();
    let plugged: Vec<bool> = c.fleet().build().iter().map(|s| s.car.plugged_in).collect();
    assert_eq!(plugged, [true, false, false, false]);
}

#[test]
fn r13_per_slave_lists_shorter_take_defaults_longer_name_the_key() {
    let c = parse("slaves = 3\ncars_plugged_in = [false, true]\nvins = [\"\"]").unwrap();
    let fleet = c.fleet().build();
    let plugged: Vec<bool> = fleet.iter().map(|s| s.car.plugged_in).collect();
    assert_eq!(plugged, [false, true, false]);
    assert_eq!(fleet[0].car.vin, None);
    assert!(fleet[1].car.vin.is_some() && fleet[2].car.vin.is_some());
    for (text, key) in [
        (
            "slaves = 1\ncars_plugged_in = [true, false]",
            "cars_plugged_in: 2 entries for 1 slaves",
        ),
        (
            "slaves = 1\nvins = [\"\", \"\"]",
            "vins: 2 entries for 1 slaves",
        ),
        (
            "slaves = 1\nids = [\"AB\", \"CD\"]",
            "ids: 2 entries for 1 slaves",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(key), "{text:?}: {e}");
    }
}

#[test]
fn r13_ids_set_the_slave_twcids_twcmanager_style_or_hex() {
    let c = parse("slaves = 3\nids = [\"AB\", \"7777\"]").unwrap();
    let fleet = c.fleet().build();
    assert_eq!(
        fleet[0].slave.id.to_string(),
        "4142",
        "TWCManager's twcID \"AB\""
    );
    assert_eq!(fleet[1].slave.id.to_string(), "7777");
    let third = fleet[2].slave.id.to_string();
    assert!(
        third != "4142" && third != "7777",
        "a missing entry is random and distinct"
    );
    for (text, reason) in [
        ("slaves = 2\nids = [\"AB\", \"4142\"]", "appears twice"),
        ("slaves = 1\nids = [\"XYZ\"]", "4 hex digits"),
        ("slaves = 1\nids = [\"ffff\"]", "reserved"),
        ("slaves = 1\nids = [\"\"]", "4 hex digits"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains("ids") && e.contains(reason), "{text:?}: {e}");
    }
}

#[test]
fn config_examples_dummy_toml_parses_over_the_default_toml() {
    let ex: toml::Table =
        toml::from_str(include_str!("../../../../config/examples/dummy.toml")).unwrap();
    let c = layered(&toml::to_string(&ex["comms"]["dummy"]).unwrap()).unwrap();
    let ids: Vec<String> = c
        .fleet()
        .build()
        .iter()
        .map(|s| s.slave.id.to_string())
        .collect();
    assert_eq!(ids, ["4142", "4143", "4144"]);
}
