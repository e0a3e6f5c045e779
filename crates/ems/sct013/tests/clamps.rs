//! The clamp-text parser on every fixture and on broken text.

use twc_core::plugin::ErrorKind;
use twc_ems_sct013::{Layout, parse, parse_clamps};
use twc_testkit::{assert_reading, fixture};

const ONE: Layout = Layout {
    phases: 1,
    voltage: 230.0,
    consumption: true,
    generation: true,
};
const THREE: Layout = Layout { phases: 3, ..ONE };

#[test]
fn single_phase_serial_line() {
    // The marker is at the very start of the line: TWCManager2 reads that as "missing"
    // (str.index() returning 0); here it is read.
    let line = fixture!("serial_line_single_phase_RECONSTRUCTED.txt");
    assert!(line.starts_with(b"IrmsA0") && line.ends_with(b"\r\n"));
    let r = parse(&line, &ONE).unwrap();
    // 3.21 A and 5.40 A at 230 V.
    assert_reading(&r, Some(5.40 * 230.0), Some(3.21 * 230.0), None);
    assert_eq!(r.phase_currents_a, None);
}

#[test]
fn single_phase_http_body() {
    let r = parse(&fixture!("http_body_single_phase_RECONSTRUCTED.txt"), &ONE).unwrap();
    assert_reading(&r, Some(1242.0), Some(738.3), None);
}

#[test]
fn three_phase_serial_line() {
    let r = parse(
        &fixture!("serial_line_three_phase_RECONSTRUCTED.txt"),
        &THREE,
    )
    .unwrap();
    assert_reading(
        &r,
        Some((5.40 + 5.38 + 5.41) * 230.0),
        Some((3.21 + 2.87 + 4.02) * 230.0),
        None,
    );
    // Read as single-phase, only A0 and A3 count.
    let r = parse(&fixture!("serial_line_three_phase_RECONSTRUCTED.txt"), &ONE).unwrap();
    assert_reading(&r, Some(1242.0), Some(738.3), None);
}

#[test]
fn empty_values_are_an_error_never_0_w() {
    // TWCManager2 turns an empty value into 0 W.
    let text = fixture!("serial_line_empty_values_RECONSTRUCTED.txt");
    let c = parse_clamps(&text).unwrap();
    assert_eq!(c[0], Some(None));
    let e = parse(&text, &ONE).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.contains("A0"), "{}", e.message);
}

#[test]
fn voltage_and_groups_follow_the_layout() {
    let line = fixture!("serial_line_single_phase_RECONSTRUCTED.txt");
    let cons_only = Layout {
        generation: false,
        voltage: 120.0,
        ..ONE
    };
    let r = parse(&line, &cons_only).unwrap();
    assert_reading(&r, None, Some(3.21 * 120.0), None);
    // The generation clamp may be empty when it is not read.
    let r = parse(b"IrmsA0 = 1.5 EndA0 IrmsA3 =  EndA3", &cons_only).unwrap();
    assert_reading(&r, None, Some(180.0), None);
}

#[test]
fn broken_text_is_a_protocol_error() {
    let single = String::from_utf8(fixture!("serial_line_single_phase_RECONSTRUCTED.txt")).unwrap();
    let three = fixture!("serial_line_three_phase_RECONSTRUCTED.txt");
    let cases: Vec<(Vec<u8>, Layout, &str)> = vec![
        (b"<html>NaN-garbage</html>".to_vec(), ONE, "marker"),
        (Vec::new(), ONE, "marker"),
        (three[..three.len() / 2].to_vec(), THREE, "A3"),
        (three[..three.len() / 2 + 8].to_vec(), THREE, "EndA3"),
        (single.replace("3.21", "3,21").into_bytes(), ONE, "A0"),
        (single.replace("3.21", "-3.21").into_bytes(), ONE, "A0"),
        (single.replace("3.21", "NaN").into_bytes(), ONE, "A0"),
        (single.replace("5.40", "inf").into_bytes(), ONE, "A3"),
        (single.replace(" = 3.21", " 3.21").into_bytes(), ONE, "'='"),
        (format!("{single}{single}").into_bytes(), ONE, "twice"),
        (b"IrmsA0 = 1.0 EndA0".to_vec(), ONE, "A3"),
        (single.clone().into_bytes(), THREE, "A1"),
        (b"IrmsAx = 1 EndAx".to_vec(), ONE, "number"),
        (vec![0xff, 0xfe, b'I'], ONE, "UTF-8"),
    ];
    for (text, layout, named) in cases {
        let e = parse(&text, &layout).expect_err(&String::from_utf8_lossy(&text));
        assert_eq!(
            e.kind,
            ErrorKind::Protocol,
            "{:?}",
            String::from_utf8_lossy(&text)
        );
        assert!(e.message.contains(named), "{named}: {}", e.message);
    }
}
