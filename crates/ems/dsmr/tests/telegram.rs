//! The pure telegram parser on every fixture telegram, on telegrams made from them (a bad CRC, a
//! value that is garbage, a missing end), and the splitter on a noisy stream.

use twc_ems_dsmr::{Splitter, TelegramError, crc16, parse, to_reading};
use twc_testkit::{assert_w, read_fixture};

fn fx(name: &str) -> Vec<u8> {
    read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

const DSMR50: &str = "p1_telegram_dsmr50_ISK5_2M550T.txt";
const ADN9: &str = "p1_telegram_ADN9_combined_registers.txt";
const DSMR40: &str = "p1_telegram_dsmr40_ISk5_2MT382.txt";
const DSMR42: &str = "p1_telegram_dsmr42_exporting_SYNTHETIC.txt";

/// `body` (from `/` to `!` inclusive) with its CRC and CRLF.
fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut v = body.to_vec();
    v.extend_from_slice(format!("{:04X}\r\n", crc16(body)).as_bytes());
    v
}

/// A fixture's body (up to `!`) with `from` replaced by `to`, and a CRC that matches.
fn edited(name: &str, from: &str, to: &str) -> Vec<u8> {
    let raw = String::from_utf8(fx(name)).unwrap();
    let body = &raw[..=raw.rfind('!').unwrap()];
    assert!(body.contains(from), "{from} in {name}");
    with_crc(body.replacen(from, to, 1).as_bytes())
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-3, "{what}: {got:?} vs {want:?}");
    }
}

#[test]
fn crc16_arc_matches_the_published_crcs() {
    // The check value of CRC-16/ARC.
    assert_eq!(crc16(b"123456789"), 0xBB3D);
    for (name, crc) in [
        (DSMR50, 0x3F8B),
        (ADN9, 0x759E),
        (DSMR40, 0xF46A),
        (DSMR42, 0x0A98),
    ] {
        let raw = fx(name);
        let bang = raw.iter().rposition(|&b| b == b'!').unwrap();
        assert_eq!(crc16(&raw[..=bang]), crc, "{name}");
        assert!(raw.ends_with(b"\r\n"), "{name} keeps its CRLF");
    }
}

#[test]
fn dsmr50_importing_with_phases() {
    let t = parse(&fx(DSMR50)).unwrap();
    assert_eq!(t.header, "ISK5\\2M550T-1011");
    assert_eq!(t.version.as_deref(), Some("50"));
    // 170531201444S: summer time, UTC+2.
    assert_eq!(
        t.timestamp.unwrap().to_rfc3339(),
        "2017-05-31T18:14:44+00:00"
    );
    assert_eq!(t.phase_import_kw, [Some(0.056), Some(0.270), Some(0.206)]);
    let r = to_reading(&t).unwrap();
    assert_w("grid_w", r.grid_w, 532.0);
    assert!(r.generation_w.is_none() && r.consumption_w.is_none());
    close(
        "voltages",
        r.phase_voltages.as_ref().unwrap(),
        &[236.8, 236.1, 238.4],
    );
    // Whole amperes (0, 1, 1 A) against the phase powers: 56 W / 236.8 V, 270 W / 236.1 V, and
    // the meter's 1 A where it is more than 206 W / 238.4 V.
    close(
        "currents",
        r.phase_currents_a.as_ref().unwrap(),
        &[56.0 / 236.8, 270.0 / 236.1, 1.0],
    );
}

#[test]
fn adn9_combined_registers() {
    let t = parse(&fx(ADN9)).unwrap();
    assert_eq!(t.version, None);
    // 240108164940W: winter time, UTC+1.
    assert_eq!(
        t.timestamp.unwrap().to_rfc3339(),
        "2024-01-08T15:49:40+00:00"
    );
    let r = to_reading(&t).unwrap();
    assert_w("grid_w", r.grid_w, 4251.0);
    close(
        "voltages",
        r.phase_voltages.as_ref().unwrap(),
        &[221.2, 224.3, 223.3],
    );
    close(
        "currents",
        r.phase_currents_a.as_ref().unwrap(),
        &[7.0, 6.0, 6.9],
    );
}

#[test]
fn dsmr40_with_malformed_lines_and_gas() {
    let t = parse(&fx(DSMR40)).unwrap();
    assert_eq!(t.version.as_deref(), Some("40"));
    assert_eq!(
        t.timestamp.unwrap().to_rfc3339(),
        "2010-12-09T10:30:20+00:00"
    );
    let r = to_reading(&t).unwrap();
    assert_w("grid_w", r.grid_w, 1193.0);
    assert_eq!(r.phase_currents_a, None);
    assert_eq!(r.phase_voltages, None);
}

#[test]
fn dsmr42_exporting_is_negative() {
    let r = to_reading(&parse(&fx(DSMR42)).unwrap()).unwrap();
    assert_w("grid_w", r.grid_w, -2450.0);
    // Its L3 exports: that phase's current is negative (the fixture's currents are otherwise
    // inconsistent, so only the sign is checked).
    assert!(r.phase_currents_a.unwrap()[2] < 0.0);
}

#[test]
fn a_bad_crc_is_refused_as_such() {
    let mut raw = fx(DSMR50);
    let at = raw.windows(6).position(|w| w == b"00.532").unwrap();
    raw[at + 5] = b'3';
    match parse(&raw) {
        Err(TelegramError::BadCrc { sent, computed }) => {
            assert_eq!(sent, 0x3F8B);
            assert_ne!(computed, sent);
        }
        other => panic!("{other:?}"),
    }
    let mut raw = fx(DSMR50);
    let n = raw.len();
    raw[n - 3] = b'X';
    assert!(
        matches!(parse(&raw), Err(TelegramError::Truncated(_))),
        "CRC not hex"
    );
}

#[test]
fn truncated_garbage_and_empty_are_refused() {
    let raw = fx(DSMR50);
    for cut in [raw.len() / 2, 1, raw.len() - 8] {
        assert!(parse(&raw[..cut]).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        parse(&raw[..raw.len() / 2]),
        Err(TelegramError::Truncated(_))
    ));
    assert!(parse(b"<html>NaN-garbage</html>").is_err());
    assert!(parse(b"").is_err());
    // A DSMR 5 telegram whose CRC was cut off.
    let bang = raw.iter().rposition(|&b| b == b'!').unwrap();
    let mut no_crc = raw[..=bang].to_vec();
    no_crc.extend_from_slice(b"\r\n");
    assert!(matches!(parse(&no_crc), Err(TelegramError::Truncated(_))));
}

#[test]
fn garbage_values_with_a_good_crc_are_invalid_never_a_value() {
    for (from, to) in [
        ("1-0:1.7.0(00.532*kW)", "1-0:1.7.0(00.5x2*kW)"),
        ("1-0:1.7.0(00.532*kW)", "1-0:1.7.0(-0.532*kW)"),
        ("1-0:1.7.0(00.532*kW)", "1-0:1.7.0(00.532)"),
        ("1-0:1.7.0(00.532*kW)", "1-0:1.7.0(00.532*kWh)"),
        ("1-0:1.7.0(00.532*kW)", "1-0:1.7.0()"),
        ("1-0:32.7.0(236.8*V)", "1-0:32.7.0(NaN*V)"),
        ("0-0:1.0.0(170531201444S)", "0-0:1.0.0(170531201444X)"),
        ("0-0:1.0.0(170531201444S)", "0-0:1.0.0(171331201444S)"),
    ] {
        let raw = edited(DSMR50, from, to);
        assert!(
            matches!(parse(&raw), Err(TelegramError::Invalid(_))),
            "{to}: {:?}",
            parse(&raw)
        );
    }
    // The power lines missing: no reading (never 0 W).
    for gone in ["1-0:1.7.0(00.532*kW)\r\n", "1-0:2.7.0(00.000*kW)\r\n"] {
        let t = parse(&edited(DSMR50, gone, "")).unwrap();
        let e = to_reading(&t).unwrap_err();
        assert!(e.to_string().contains(&gone[..9]), "{e}");
    }
}

/// The DSMR 2.2 form: 9600 7E1, no version line, no CRC, the gas value on a continuation line.
const DSMR22: &str = "/ISk5\\2ME382-1003\r\n\r\n0-0:96.1.1(4B414C37303035313135383630323132)\r\n1-0:1.8.1(00185.000*kWh)\r\n1-0:1.8.2(00084.000*kWh)\r\n1-0:2.8.1(00013.000*kWh)\r\n1-0:2.8.2(00019.000*kWh)\r\n0-0:96.14.0(0001)\r\n1-0:1.7.0(0000.98*kW)\r\n1-0:2.7.0(0000.00*kW)\r\n0-0:17.0.0(999*A)\r\n0-0:96.3.10(1)\r\n0-0:96.13.1()\r\n0-0:96.13.0()\r\n0-1:24.1.0(3)\r\n0-1:96.1.0(3238313031453631373038389930337131)\r\n0-1:24.3.0(120517020000)(08)(60)(1)(0-1:24.2.1)(m3)\r\n(00124.477)\r\n0-1:24.4.0(1)\r\n!\r\n";

#[test]
fn dsmr22_without_crc_or_time() {
    let t = parse(DSMR22.as_bytes()).unwrap();
    assert_eq!(t.version, None);
    assert_eq!(t.timestamp, None);
    let r = to_reading(&t).unwrap();
    assert_w("grid_w", r.grid_w, 980.0);
    assert_eq!(r.phase_currents_a, None);
}

/// A Belgian (Fluvius e-MUCS) telegram: version in 0-0:96.1.4, currents with decimals, the
/// capacity-tariff lines with several values.
fn belgian() -> Vec<u8> {
    with_crc(
        b"/FLU5\\253769484_A\r\n\r\n0-0:96.1.4(50217)\r\n0-0:96.1.1(3153414123456789303132333435363738)\r\n0-0:1.0.0(250412143010S)\r\n1-0:1.8.1(000123.456*kWh)\r\n1-0:1.8.2(000234.567*kWh)\r\n1-0:2.8.1(000345.678*kWh)\r\n1-0:2.8.2(000012.345*kWh)\r\n0-0:96.14.0(0001)\r\n1-0:1.4.0(02.351*kW)\r\n1-0:1.6.0(250405134558S)(03.589*kW)\r\n0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(250301000000W)(250218192538W)(03.695*kW)(250401000000S)(250312190000W)(04.103*kW)\r\n1-0:1.7.0(00.000*kW)\r\n1-0:2.7.0(01.234*kW)\r\n1-0:21.7.0(00.000*kW)\r\n1-0:41.7.0(00.310*kW)\r\n1-0:61.7.0(00.000*kW)\r\n1-0:22.7.0(01.544*kW)\r\n1-0:42.7.0(00.000*kW)\r\n1-0:62.7.0(00.000*kW)\r\n1-0:32.7.0(236.1*V)\r\n1-0:52.7.0(235.4*V)\r\n1-0:72.7.0(237.0*V)\r\n1-0:31.7.0(006.61*A)\r\n1-0:51.7.0(001.52*A)\r\n1-0:71.7.0(000.12*A)\r\n0-0:96.3.10(1)\r\n0-0:17.0.0(999.9*kW)\r\n1-0:31.4.0(999*A)\r\n0-0:96.13.0()\r\n!",
    )
}

#[test]
fn belgian_meter_with_export_on_one_phase() {
    let t = parse(&belgian()).unwrap();
    assert_eq!(t.version.as_deref(), Some("50217"));
    assert_eq!(
        t.timestamp.unwrap().to_rfc3339(),
        "2025-04-12T12:30:10+00:00"
    );
    let r = to_reading(&t).unwrap();
    assert_w("grid_w", r.grid_w, -1234.0);
    close(
        "currents",
        r.phase_currents_a.as_ref().unwrap(),
        &[-6.61, 1.52, 0.12],
    );
}

#[test]
fn single_phase_meters_give_one_phase() {
    let raw = edited(ADN9, "1-0:41.7.0(0001.263*kW)", "1-0:99.7.0(0001.263*kW)");
    let raw = String::from_utf8(raw).unwrap();
    // Keep L1 only: drop every L2/L3 line and recompute the CRC.
    let body: String = raw[..=raw.rfind('!').unwrap()]
        .split_inclusive("\r\n")
        .filter(|l| {
            !["1-0:4", "1-0:5", "1-0:6", "1-0:7"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let r = to_reading(&parse(&with_crc(body.as_bytes())).unwrap()).unwrap();
    assert_eq!(r.phase_voltages, Some(vec![221.2]));
    assert_eq!(r.phase_currents_a, Some(vec![7.0]));
}

#[test]
fn the_splitter_finds_telegrams_in_a_noisy_stream() {
    let good = fx(DSMR50);
    let mut stream = Vec::new();
    stream.extend_from_slice(b"0-0:96.7.21(00004)\r\n!1234\r\n"); // the tail of an earlier one
    stream.extend_from_slice(&good[..300]); // a telegram cut short by a restart
    stream.extend_from_slice(&good);
    stream.extend_from_slice(b"\x00\xff noise \r\n");
    stream.extend_from_slice(&fx(ADN9));
    let mut s = Splitter::new();
    // Byte by byte and in one go, the same telegrams come out.
    let mut one_by_one = Vec::new();
    for b in &stream {
        one_by_one.extend(s.push(std::slice::from_ref(b)));
    }
    let mut s2 = Splitter::new();
    let at_once = s2.push(&stream);
    assert_eq!(one_by_one, at_once);
    assert_eq!(at_once, vec![good.clone(), fx(ADN9)]);
    assert!(s.dropped_bytes() >= 300);
    // A reset drops a half telegram.
    assert!(s.push(&good[..100]).is_empty());
    s.reset();
    assert!(s.push(&good[100..]).is_empty());
    assert_eq!(s.push(&good), vec![good.clone()]);
    // A run of noise without an end is not kept forever.
    let mut s3 = Splitter::new();
    let mut junk = vec![b'/'];
    junk.extend(std::iter::repeat_n(b'x', 20_000));
    assert!(s3.push(&junk).is_empty());
    assert_eq!(s3.push(&good), vec![good.clone()]);
}
