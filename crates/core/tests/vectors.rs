//! Every test vector of the protocol spec (§8), decoded in one table.
//! R = real capture, P = partly elided / documented (reconstructed), F = DRACO's fake slave,
//! C = constructed by us, N = negative.

use twc_core::model::CentiAmps;
use twc_core::protocol::codec::{FrameDecoder, parse_hex};
use twc_core::protocol::{
    Frame, FrameError, MasterCommand, Message, MessageCode, ProtocolVersion, SlaveState, TwcId,
};

fn id(s: &str) -> TwcId {
    s.parse().unwrap()
}
fn ca(v: u16) -> CentiAmps {
    CentiAmps(v)
}

/// Decode a wire string; exactly one frame must come out. Re-encoding must give the same frame
/// bytes, and the frame's wire form must equal the input without garbage and trailer bytes.
fn check(name: &str, wire: &str, expected: Message) {
    let bytes = parse_hex(wire).unwrap_or_else(|| panic!("{name}: bad hex"));
    let mut d = FrameDecoder::new();
    let out = d.push(&bytes);
    let frames: Vec<Frame> = out
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    assert_eq!(
        frames.len(),
        1,
        "{name}: expected one frame, got {frames:?}"
    );
    let frame = &frames[0];
    let msg = Message::decode(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(msg, expected, "{name}");
    // The wire form of the decoded frame appears verbatim in the input.
    let w = frame.to_wire();
    assert!(
        bytes.windows(w.len()).any(|x| x == w.as_slice()),
        "{name}: re-encoded wire {} not in input",
        twc_core::protocol::codec::hex(&w)
    );
}

#[test]
fn real_captures() {
    check(
        "R01",
        "C0 FC 1D 00 00 00 00 00 00 00 00 00 00 00 1D C0",
        Message::Idle,
    );
    check(
        "R02",
        "C0 FC E1 03 5D 39 00 00 00 00 00 00 00 00 7A C0 FE",
        Message::MasterLinkReady1 {
            master: id("035D"),
            sign: 0x39,
        },
    );
    check(
        "R03",
        "C0 FB E2 03 5D 5F 00 00 00 00 00 00 00 00 A1 C0 FE",
        Message::MasterLinkReady2 {
            master: id("035D"),
            sign: 0x5F,
        },
    );
    check(
        "R04",
        "C0 FC E1 77 77 77 00 00 00 00 00 00 00 00 46 C0",
        Message::MasterLinkReady1 {
            master: id("7777"),
            sign: 0x77,
        },
    );
    check(
        "R05",
        "C0 FB E2 77 77 77 00 00 00 00 00 00 00 00 47 C0",
        Message::MasterLinkReady2 {
            master: id("7777"),
            sign: 0x77,
        },
    );
    check(
        "R06",
        "C0 FD E2 18 39 52 0C 80 00 00 00 00 00 00 00 00 11 C0",
        Message::SlaveLinkReady {
            slave: id("1839"),
            sign: 0x52,
            max_amps: ca(3200),
            version: ProtocolVersion::V2,
        },
    );
    let hb = |slave: &str, cmd: u8, amps: u16, v| Message::MasterHeartbeat {
        master: id("7777"),
        slave: id(slave),
        command: MasterCommand(cmd),
        amps: ca(amps),
        master_plugged_in: false,
        version: v,
    };
    check(
        "R08",
        "C0 FB E0 77 77 20 19 00 00 00 00 00 00 00 00 00 07 C0",
        hb("2019", 0, 0, ProtocolVersion::V2),
    );
    check(
        "R09",
        "F8 C0 FD E0 20 19 77 77 08 02 58 02 10 00 00 00 00 7B C0",
        Message::SlaveHeartbeat {
            slave: id("2019"),
            master: id("7777"),
            state: SlaveState::STARTING,
            max: ca(600),
            actual: ca(528),
            version: ProtocolVersion::V2,
        },
    );
    let q = |code, len| Message::Query {
        code,
        master: id("7777"),
        slave: id("2019"),
        len,
    };
    check(
        "R10",
        "C0 FB EE 77 77 20 19 00 00 00 00 00 00 00 00 15 C0",
        q(MessageCode::QUERY_VIN1, 15),
    );
    check(
        "R11",
        "C0 FB EF 77 77 20 19 00 00 00 00 00 00 00 00 16 C0",
        q(MessageCode::QUERY_VIN2, 15),
    );
    check(
        "R12",
        "C0 FB F1 77 77 20 19 00 00 00 00 00 00 00 00 18 C0",
        q(MessageCode::QUERY_VIN3, 15),
    );
    check(
        "R13",
        "C0 FB E0 77 77 87 25 00 00 00 00 00 00 00 00 00 7A C0",
        hb("8725", 0, 0, ProtocolVersion::V2),
    );
    check(
        "R14",
        "C0 FB E0 77 77 87 25 00 00 00 00 00 00 00 00 00 7A C0 FF",
        hb("8725", 0, 0, ProtocolVersion::V2),
    );
    check(
        "R15",
        "C0 FD B1 58 50 00 00 00 00 00 00 00 00 00 00 00 59 C0",
        Message::StartAck { slave: id("5850") },
    );
}

#[test]
fn reconstructed_and_documented() {
    check(
        "P01",
        "C0 FD B2 58 50 00 00 00 00 00 00 00 00 00 00 00 5A C0",
        Message::StopAck { slave: id("5850") },
    );
    // P02/P03 elide the TWCID; any pair of bytes with the stated sum fits. Use 58 54 (sum AC) and 58 50 (sum A8).
    check(
        "P02",
        "C0 FD EB 58 54 00 00 03 9C 00 F4 00 F0 00 F5 00 00 00 00 00 0F C0",
        Message::LifetimeKwh {
            slave: id("5854"),
            kwh: 924,
            volts: [244, 240, 245],
            phase_current_bytes: Some([0, 0, 0]),
        },
    );
    check(
        "P03",
        "FC C0 FD EB 58 50 00 00 03 4A 00 FA 00 00 00 00 00 00 00 00 00 DA C0",
        Message::LifetimeKwh {
            slave: id("5850"),
            kwh: 842,
            volts: [250, 0, 0],
            phase_current_bytes: Some([0, 0, 0]),
        },
    );
    check(
        "P04",
        "C0 FD EE 23 88 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 99 C0",
        Message::VinPart {
            slave: id("2388"),
            part: 1,
            chars: vec![0; 7],
        },
    );
    check(
        "P05",
        "C0 FD EB 77 77 00 00 00 14 00 F6 00 00 00 00 00 E3 C0",
        Message::LifetimeKwh {
            slave: id("7777"),
            kwh: 20,
            volts: [246, 0, 0],
            phase_current_bytes: None,
        },
    );
    // P06 gives no TWCID or checksum: build it and check the fields decode.
    let p06 = Frame::from_body(&parse_hex("FD EB 12 34 00 00 00 38 00 E6 00 F1 00 E8 00").unwrap());
    assert_eq!(
        Message::decode(&p06).unwrap(),
        Message::LifetimeKwh {
            slave: id("1234"),
            kwh: 56,
            volts: [230, 241, 232],
            phase_current_bytes: None
        }
    );
}

#[test]
fn draco_fake_slave() {
    let m = id("ABCD");
    let s = id("7777");
    let mhb = |cmd: u8, amps: u16, v| Message::MasterHeartbeat {
        master: m,
        slave: s,
        command: MasterCommand(cmd),
        amps: ca(amps),
        master_plugged_in: false,
        version: v,
    };
    let shb = |st: u8, max: u16, act: u16, v| Message::SlaveHeartbeat {
        slave: s,
        master: m,
        state: SlaveState(st),
        max: ca(max),
        actual: ca(act),
        version: v,
    };
    use ProtocolVersion::{V1, V2};
    check(
        "F01",
        "C0 FC E1 AB CD 42 00 00 00 00 00 00 00 00 9B C0",
        Message::MasterLinkReady1 {
            master: m,
            sign: 0x42,
        },
    );
    check(
        "F02",
        "C0 FB E2 AB CD 42 00 00 00 00 00 00 00 00 9C C0",
        Message::MasterLinkReady2 {
            master: m,
            sign: 0x42,
        },
    );
    check(
        "F03",
        "C0 FD E2 77 77 77 1F 40 00 00 00 00 00 00 A6 C0",
        Message::SlaveLinkReady {
            slave: s,
            sign: 0x77,
            max_amps: ca(8000),
            version: V1,
        },
    );
    check(
        "F04",
        "C0 FB E0 AB CD 77 77 00 00 00 00 00 00 00 46 C0",
        mhb(0, 0, V1),
    );
    check(
        "F05",
        "C0 FD E0 77 77 AB CD 01 0F A0 0F A0 00 00 A5 C0",
        shb(1, 4000, 4000, V1),
    );
    check(
        "F06",
        "C0 FB E0 AB CD 77 77 05 0C 80 00 00 00 00 D7 C0",
        mhb(5, 3200, V1),
    );
    check(
        "F07",
        "C0 FD E0 77 77 AB CD 01 0C 80 0C 30 00 00 0F C0",
        shb(1, 3200, 3120, V1),
    );
    check(
        "F08",
        "C0 FB E0 AB CD 77 77 09 07 D0 00 00 00 00 00 00 26 C0",
        mhb(9, 2000, V2),
    );
    check(
        "F09",
        "C0 FD E0 77 77 AB CD 01 07 D0 07 80 00 00 A5 C0",
        shb(1, 2000, 1920, V1),
    );
    check(
        "F10",
        "C0 FB EB AB CD 77 77 00 00 00 00 00 00 00 00 00 51 C0",
        Message::Query {
            code: MessageCode::QUERY_KWH,
            master: m,
            slave: s,
            len: 16,
        },
    );
    check(
        "F11",
        "C0 FD EB 77 77 00 00 00 77 00 F0 00 00 00 00 00 40 C0",
        Message::LifetimeKwh {
            slave: s,
            kwh: 119,
            volts: [240, 0, 0],
            phase_current_bytes: None,
        },
    );
    check(
        "F12",
        "C0 FD E0 77 77 AB CD 06 08 98 08 48 00 00 3C C0",
        shb(6, 2200, 2120, V1),
    );
    check(
        "F13",
        "C0 FD E0 77 77 AB CD 07 08 98 07 80 00 00 74 C0",
        shb(7, 2200, 1920, V1),
    );
    check(
        "F14",
        "C0 FB E0 AB CD 77 77 09 0B DB DC 00 00 00 00 00 00 1A C0",
        mhb(9, 0x0BC0, V2),
    );
    check(
        "F15",
        "C0 FD E0 77 77 AB CD 07 0B DB DC 0B 70 00 00 93 C0",
        shb(7, 0x0BC0, 0x0B70, V1),
    );
    check(
        "F16",
        "C0 FB E0 AB CD 77 77 09 0D DB DD 00 00 00 00 00 00 37 C0",
        mhb(9, 0x0DDB, V2),
    );
    check(
        "F17",
        "C0 FD E0 77 77 AB CD 07 0D DB DD 0D 8B 00 00 CD C0",
        shb(7, 0x0DDB, 0x0D8B, V1),
    );
    check(
        "F18",
        "C0 FD E2 77 77 77 1F 40 00 00 00 00 00 00 00 00 A6 C0",
        Message::SlaveLinkReady {
            slave: s,
            sign: 0x77,
            max_amps: ca(8000),
            version: V2,
        },
    );
    check(
        "F19",
        "C0 FD E0 77 77 AB CD 01 0C 80 0C 30 00 00 00 00 0F C0",
        shb(1, 3200, 3120, V2),
    );
}

#[test]
fn constructed() {
    use ProtocolVersion::{V1, V2};
    check(
        "C01",
        "C0 FB E0 03 5D 03 2E 05 12 DB DC 00 00 00 00 48 C0",
        Message::MasterHeartbeat {
            master: id("035D"),
            slave: id("032E"),
            command: MasterCommand::SET_LIMIT_V1,
            amps: ca(4800),
            master_plugged_in: false,
            version: V1,
        },
    );
    let shb = |st: u8, max: u16, act: u16| Message::SlaveHeartbeat {
        slave: id("032E"),
        master: id("035D"),
        state: SlaveState(st),
        max: ca(max),
        actual: ca(act),
        version: V1,
    };
    check(
        "C02",
        "C0 FD E0 03 2E 03 5D 00 00 00 00 19 00 00 8A C0",
        shb(0, 0, 25),
    );
    check(
        "C03",
        "C0 FD E0 03 2E 03 5D 04 00 00 00 19 00 00 8E C0",
        shb(4, 0, 25),
    );
    check(
        "C04",
        "C0 FB E0 77 77 12 4B 09 0C 80 00 00 00 00 00 00 DB DC C0",
        Message::MasterHeartbeat {
            master: id("7777"),
            slave: id("124B"),
            command: MasterCommand::SET_LIMIT_V2,
            amps: ca(3200),
            master_plugged_in: false,
            version: V2,
        },
    );
    check(
        "C05",
        "C0 FD E0 12 46 77 77 01 0C 80 0C 1C 00 00 DB DD C0",
        Message::SlaveHeartbeat {
            slave: id("1246"),
            master: id("7777"),
            state: SlaveState::CHARGING,
            max: ca(3200),
            actual: ca(0x0C1C),
            version: V1,
        },
    );
    check(
        "C06",
        "C0 FD E2 DB DC DB DD DB DD 0C 80 00 00 00 00 00 00 00 00 E4 C0",
        Message::SlaveLinkReady {
            slave: TwcId([0xC0, 0xDB]),
            sign: 0xDB,
            max_amps: ca(3200),
            version: V2,
        },
    );
    check(
        "C07",
        "C0 FD EB 12 34 00 00 04 D2 00 E7 00 E5 00 E9 20 20 20 00 00 1C C0",
        Message::LifetimeKwh {
            slave: id("1234"),
            kwh: 1234,
            volts: [231, 229, 233],
            phase_current_bytes: Some([0x20; 3]),
        },
    );
    check(
        "C08",
        "C0 FD EE 12 34 35 59 4A 33 45 31 45 00 00 00 00 00 00 00 00 FA C0",
        Message::VinPart {
            slave: id("1234"),
            part: 1,
            chars: b"5YJ3E1E".to_vec(),
        },
    );
    check(
        "C09",
        "C0 FD EF 12 34 41 30 4B 46 30 30 30 00 00 00 00 00 00 00 00 C7 C0",
        Message::VinPart {
            slave: id("1234"),
            part: 2,
            chars: b"A0KF000".to_vec(),
        },
    );
    check(
        "C10",
        "C0 FD F1 12 34 33 31 36 00 00 00 00 00 00 00 00 00 00 00 00 D1 C0",
        Message::VinPart {
            slave: id("1234"),
            part: 3,
            chars: b"316".to_vec(),
        },
    );
    assert!(twc_core::protocol::message::vin_is_valid(
        "5YJ3E1EA0KF000316"
    ));
    let q = |code, sum: &str| {
        let wire = format!(
            "C0 {:04X} 77 77 12 34 00 00 00 00 00 00 00 00 00 {sum} C0",
            code
        );
        check(
            "C11",
            &wire,
            Message::Query {
                code: MessageCode(code),
                master: id("7777"),
                slave: id("1234"),
                len: 16,
            },
        );
        // Our master encodes exactly this frame.
        let ours = Message::Query {
            code: MessageCode(code),
            master: id("7777"),
            slave: id("1234"),
            len: 16,
        }
        .encode()
        .unwrap();
        assert_eq!(ours.to_wire(), parse_hex(&wire).unwrap());
    };
    q(0xFBEB, "1F");
    q(0xFBEE, "22");
    q(0xFB1B, "4F");
    check(
        "C12 stop",
        "C0 FC B2 77 77 12 34 00 00 00 00 00 00 00 00 00 E6 C0",
        Message::StopCharging {
            master: id("7777"),
            slave: id("1234"),
        },
    );
    check(
        "C12 start",
        "C0 FC B1 77 77 12 34 00 00 00 00 00 00 00 00 00 E5 C0",
        Message::StartCharging {
            master: id("7777"),
            slave: id("1234"),
        },
    );
}

fn decode_all(wire: &str) -> (Vec<Result<Frame, FrameError>>, FrameDecoder) {
    let mut d = FrameDecoder::new();
    let out = d.push(&parse_hex(wire).unwrap());
    (out, d)
}

#[test]
fn negatives_are_rejected_and_counted() {
    let (out, d) = decode_all("C0 FB E0 77 77 20 19 00 00 00 00 00 00 00 00 00 08 C0");
    assert_eq!(
        out,
        vec![Err(FrameError::BadChecksum {
            got: 0x08,
            expected: 0x07
        })],
        "N01"
    );
    assert_eq!(d.stats().bad_checksum, 1);

    let (out, d) = decode_all("C0 FD E0 77 77 AB CD 07 0B DB 00 0B 70 00 00 93 C0");
    assert_eq!(out, vec![Err(FrameError::BadEscape(0x00))], "N02");
    assert_eq!(d.stats().bad_escape, 1);

    let (out, d) = decode_all("C0 FD E0 20 19 77 77 08 02 58 C0");
    assert_eq!(out, vec![Err(FrameError::Truncated(9))], "N03");
    assert_eq!(d.stats().bad_length, 1);

    // N04 = R07: 17 bytes; its last byte also fails as a checksum. Never "repaired".
    let (out, _) = decode_all("C0 FD E2 18 39 52 0C 80 00 00 00 00 00 00 00 00 11 FF C0");
    assert_eq!(out.len(), 1);
    assert!(out[0].is_err(), "N04: {:?}", out[0]);

    // N05: garbage around R15 is skipped and R15 decodes.
    check(
        "N05",
        "FE FE C0 FD B1 58 50 00 00 00 00 00 00 00 00 00 00 00 59 C0 FE",
        Message::StartAck { slave: id("5850") },
    );
}

#[test]
fn a_slave_frame_of_17_bytes_with_a_good_checksum_is_not_a_link_ready() {
    let f =
        Frame::from_body(&parse_hex("FD E2 18 39 52 0C 80 00 00 00 00 00 00 00 00 11").unwrap());
    assert_eq!(f.len(), 17);
    assert!(Message::decode(&f).is_err());
}

#[test]
fn dangerous_codes_are_never_encoded() {
    for code in [0xFC19u16, 0xFC1A, 0xFBE8] {
        let m = Message::Unknown {
            code: MessageCode(code),
            payload: vec![0x77, 0x77, 0x12, 0x34],
        };
        assert!(m.encode().is_err(), "{code:04X}");
        assert!(MessageCode(code).is_dangerous());
    }
}

#[test]
fn unknown_codes_decode_to_unknown() {
    let f = Frame::from_body(&parse_hex("FD 1B 12 34 04 05 03 00 00 00 00 00 00 00 00").unwrap());
    match Message::decode(&f).unwrap() {
        Message::Unknown { code, payload } => {
            assert_eq!(code, MessageCode(0xFD1B));
            assert_eq!(code.to_string(), "FD 1B");
            assert_eq!(payload[0..2], [0x12, 0x34]);
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn frames_split_across_reads_and_shared_delimiters() {
    let wire = parse_hex("C0 FC E1 77 77 77 00 00 00 00 00 00 00 00 46 C0 FB E2 77 77 77 00 00 00 00 00 00 00 00 47 C0").unwrap();
    let mut d = FrameDecoder::new();
    let mut frames = Vec::new();
    for b in &wire {
        frames.extend(d.push(std::slice::from_ref(b)));
    }
    assert_eq!(
        frames.len(),
        2,
        "two frames sharing one delimiter both decode"
    );
    assert!(frames.iter().all(|f| f.is_ok()));
}
