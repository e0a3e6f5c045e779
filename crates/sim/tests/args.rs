//! `twcmanager sim` options and the fleet they describe.

use clap::Parser;
use twc_core::model::CentiAmps;
use twc_core::protocol::{ProtocolVersion, TwcId, message::vin_is_valid};
use twc_sim::{FleetSpec, SAMPLE_VIN, SimArgs, sample_vin, vin_check_digit};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn parse(args: &[&str]) -> Result<SimArgs, String> {
    Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
        .map(|c| c.sim)
        .map_err(|e| e.to_string())
}

#[test]
fn options_build_the_fleet() {
    let a = parse(&[
        "--slaves",
        "3",
        "--protocol",
        "1",
        "--max-amps",
        "80",
        "--plugged",
        "true,false,true",
        "--vin",
        "none,5yj3e1ea0kf000316",
        "--id",
        "1234,ABCD",
        "--car-max-amps",
        "48",
    ])
    .unwrap();
    let fleet = a.fleet().unwrap();
    assert_eq!(fleet.len(), 3);
    assert_eq!(fleet[0].slave.id, TwcId([0x12, 0x34]));
    assert_eq!(fleet[1].slave.id, TwcId([0xAB, 0xCD]));
    assert!(![TwcId([0x12, 0x34]), TwcId([0xAB, 0xCD])].contains(&fleet[2].slave.id));
    assert!(fleet.iter().all(|s| s.slave.version == ProtocolVersion::V1));
    assert!(
        fleet
            .iter()
            .all(|s| s.slave.max_amps == CentiAmps(8000) && s.slave.volts == [240, 0, 0])
    );
    assert_eq!(fleet[0].car.vin, None);
    assert_eq!(fleet[1].car.vin.as_deref(), Some(SAMPLE_VIN));
    assert!(fleet[2].car.vin.as_deref().is_some_and(vin_is_valid));
    let plugged: Vec<bool> = fleet.iter().map(|s| s.car.plugged_in).collect();
    assert_eq!(plugged, vec![true, false, true]);
    assert_eq!(fleet[2].car.max_amps, CentiAmps(4800));
}

#[test]
fn defaults_are_one_eu_slave_with_a_car_on_a_pty() {
    let a = parse(&[]).unwrap();
    assert!(a.tcp_listen.is_none() && a.tcp_connect.is_none());
    let fleet = a.fleet().unwrap();
    assert_eq!(fleet.len(), 1);
    assert!(fleet[0].car.plugged_in);
    assert_eq!(fleet[0].slave.max_amps, CentiAmps(3200));
    assert_eq!(fleet[0].slave.version, ProtocolVersion::V2);
}

#[test]
fn bad_options_are_refused_naming_the_option() {
    let e = parse(&["--pty", "--tcp-listen", "127.0.0.1:1"])
        .err()
        .unwrap();
    assert!(e.contains("--tcp-listen"), "{e}");
    let e = parse(&["--protocol", "3"]).err().unwrap();
    assert!(e.contains("--protocol"), "{e}");
    let e = parse(&["--id", "12345"]).err().unwrap();
    assert!(e.contains("--id"), "{e}");
    let e = parse(&["--vin", "SHORT"])
        .unwrap()
        .fleet()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--vin"), "{e}");
    let e = parse(&["--ramp-amps-per-sec", "0"])
        .unwrap()
        .fleet()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--ramp-amps-per-sec"), "{e}");
}

#[test]
fn generated_vins_are_valid_and_distinct() {
    assert_eq!(sample_vin(316), SAMPLE_VIN);
    let vins: Vec<String> = (0..50).map(sample_vin).collect();
    assert!(vins.iter().all(|v| vin_is_valid(v)), "{vins:?}");
    let mut d = vins.clone();
    d.dedup();
    assert_eq!(d.len(), 50);
    assert_eq!(vin_check_digit("5YJ3E1EA?KF000316"), None);
    let fleet = FleetSpec {
        count: 3,
        ..FleetSpec::default()
    }
    .build();
    let mut ids: Vec<TwcId> = fleet.iter().map(|s| s.slave.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}
