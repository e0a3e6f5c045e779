//! The rs485 transport on pseudo-terminal pairs standing in for a USB adapter: frames both ways,
//! noise, the device vanishing and coming back (as another pty behind the same symlink, like a
//! by-id name), and a device missing at start-up. Real time, real I/O.

use serialport::{SerialPort, TTYPort};
use std::io::{Read, Write};
use std::time::Duration;
use twc_comms_rs485::{Rs485, Rs485Config};
use twc_core::plugin::{Comms, PluginConfig, Received};
use twc_core::protocol::{Frame, FrameError, Message, TwcId};

const T: Duration = Duration::from_secs(3);

fn link_ready(id: u16) -> Frame {
    Message::SlaveLinkReady {
        slave: TwcId::from_u16(id),
        sign: 0x56,
        max_amps: twc_core::model::CentiAmps::from_amps(32),
        version: twc_core::protocol::ProtocolVersion::V2,
    }
    .encode()
    .unwrap()
}

fn pair() -> (TTYPort, TTYPort, String) {
    let (mut far, near) = TTYPort::pair().expect("pty pair");
    far.set_timeout(Duration::from_millis(200)).unwrap();
    let path = near.name().expect("pty name");
    (far, near, path)
}

async fn recv(c: &mut Rs485) -> Received {
    tokio::time::timeout(T, c.recv())
        .await
        .expect("something arrives within 3 s")
        .expect("link is up")
}

fn read_some(far: &mut TTYPort, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let deadline = std::time::Instant::now() + T;
    while got.len() < want && std::time::Instant::now() < deadline {
        if let Ok(n) = far.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

#[test]
fn example_config_parses_and_bad_keys_are_named() {
    let cfg = PluginConfig::from_toml("comms.rs485", include_str!("../example.toml")).unwrap();
    let c: Rs485Config = cfg.parse().unwrap();
    assert_eq!(c.baud, 9600);
    assert!(c.port.starts_with("/dev/serial/by-id/"));
    assert!(twc_comms_rs485::build(&cfg).is_ok());

    let typo =
        PluginConfig::from_toml("comms.rs485", "port = \"/dev/ttyUSB0\"\nbaudrate = 9600").unwrap();
    let e = twc_comms_rs485::build(&typo)
        .err()
        .expect("unknown key refused");
    assert!(e.to_string().contains("baudrate"), "{e}");
    let missing = PluginConfig::from_toml("comms.rs485", "baud = 9600").unwrap();
    let e = twc_comms_rs485::build(&missing)
        .err()
        .expect("port is required");
    assert!(e.to_string().contains("port"), "{e}");
    let slow = PluginConfig::from_toml("comms.rs485", "port = \"/dev/ttyUSB0\"\nbaud = 5").unwrap();
    let e = twc_comms_rs485::build(&slow)
        .err()
        .expect("absurd baud refused");
    assert!(e.to_string().contains("baud = 5"), "{e}");
}

#[tokio::test]
async fn frames_flow_both_ways() {
    let (mut far, _near, path) = pair();
    let mut c = Rs485::new(Rs485Config::new(&path));
    // Open by receiving first (nothing there yet), then let the slave side speak.
    let f = link_ready(0x1234);
    let mut wire = f.to_wire();
    wire.push(0xFE);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        far.write_all(&wire).unwrap();
        far
    });
    assert_eq!(recv(&mut c).await, Received::Frame(f));
    let mut far = writer.join().unwrap();

    let hb = Message::MasterHeartbeat {
        master: TwcId::from_u16(0x7777),
        slave: TwcId::from_u16(0x1234),
        command: twc_core::protocol::MasterCommand::SET_LIMIT_V2,
        amps: twc_core::model::CentiAmps::from_amps(16),
        master_plugged_in: false,
        version: twc_core::protocol::ProtocolVersion::V2,
    }
    .encode()
    .unwrap();
    c.send(&hb).await.unwrap();
    let want = hb.to_wire();
    let got = tokio::task::spawn_blocking(move || read_some(&mut far, want.len()))
        .await
        .unwrap();
    assert_eq!(got, hb.to_wire());
    assert!(c.describe().contains(&path));
}

#[tokio::test]
async fn noise_is_dropped_and_counted_never_a_frame() {
    let (mut far, _near, path) = pair();
    let mut c = Rs485::new(Rs485Config::new(&path));
    // Open the port before the noise arrives (opening flushes stale input).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.recv())
            .await
            .is_err()
    );

    let good = link_ready(0x4142);
    let mut bad_sum = good.to_wire();
    let n = bad_sum.len();
    bad_sum[n - 2] ^= 0x01; // flip the checksum byte
    let mut noise = vec![0x00, 0xFF, 0x13, 0x37]; // garbage before any delimiter
    noise.extend_from_slice(&bad_sum);
    noise.extend_from_slice(&[0xC0, 0xFD, 0xE2, 0x41, 0xC0]); // truncated frame
    noise.extend_from_slice(&[
        0xC0, 0xFD, 0xDB, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xC0,
    ]); // bad escape
    noise.extend_from_slice(&good.to_wire());
    far.write_all(&noise).unwrap();

    let mut drops = Vec::new();
    loop {
        match recv(&mut c).await {
            Received::Frame(f) => {
                assert_eq!(f, good, "only the valid frame gets through");
                break;
            }
            Received::Dropped(e) => drops.push(e),
        }
    }
    assert!(
        matches!(drops[0], FrameError::BadChecksum { .. }),
        "{drops:?}"
    );
    assert!(drops.contains(&FrameError::Truncated(3)), "{drops:?}");
    assert!(
        drops.iter().any(|e| matches!(e, FrameError::BadEscape(1))),
        "{drops:?}"
    );
    let s = c.stats();
    assert_eq!(s.frames_ok, 1);
    assert_eq!(s.garbage_bytes, 4);
    assert_eq!(s.bad_checksum, 1);
    assert_eq!(s.bad_length, 1);
    assert_eq!(s.bad_escape, 1);
}

#[tokio::test]
async fn a_truncated_frame_followed_by_silence_is_dropped_and_the_next_one_decodes() {
    let (mut far, _near, path) = pair();
    let mut cfg = Rs485Config::new(&path);
    cfg.partial_timeout_ms = 100;
    let mut c = Rs485::new(cfg);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.recv())
            .await
            .is_err()
    );
    let good = link_ready(0x4142);
    let wire = good.to_wire();
    far.write_all(&wire[..8]).unwrap(); // half a frame, then the line goes quiet
    let rest = wire.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        far.write_all(&[0xFE]).unwrap();
        far.write_all(&rest).unwrap();
        far
    });
    // The silence drops the half frame (counted), so the FE after it cannot join it: the next
    // frame decodes and nothing else is reported.
    assert_eq!(recv(&mut c).await, Received::Frame(good));
    assert_eq!(c.stats().timed_out, 1);
    assert_eq!(c.stats().errors(), 1);
    drop(writer.join());
}

#[tokio::test]
async fn unplugged_adapter_is_reopened_through_its_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("usb-FTDI_TWC-if00-port0");
    let (mut far, near, path) = pair();
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let mut c = Rs485::new(Rs485Config::new(link.to_str().unwrap()));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.recv())
            .await
            .is_err()
    );
    far.write_all(&link_ready(0x0001).to_wire()).unwrap();
    assert_eq!(recv(&mut c).await, Received::Frame(link_ready(0x0001)));

    // Unplug: the device disappears (both pty ends close, the by-id link goes away).
    drop(far);
    drop(near);
    std::fs::remove_file(&link).unwrap();
    let e = tokio::time::timeout(T, c.recv())
        .await
        .expect("the hang-up is noticed")
        .expect_err("reading an unplugged device fails");
    assert!(!e.chain().is_empty());
    let e = c
        .reconnect()
        .await
        .expect_err("nothing to open while unplugged");
    assert!(e.chain().contains("no such device"), "{}", e.chain());

    // Re-plug: a new device node (another ttyUSB number), same by-id name.
    let (mut far2, _near2, path2) = pair();
    assert_ne!(path, path2, "the new pty has another number");
    std::os::unix::fs::symlink(&path2, &link).unwrap();
    c.reconnect().await.expect("re-opened");
    far2.write_all(&link_ready(0x0002).to_wire()).unwrap();
    assert_eq!(recv(&mut c).await, Received::Frame(link_ready(0x0002)));
}

#[tokio::test]
async fn a_missing_device_is_an_error_not_a_hang() {
    let mut c = Rs485::new(Rs485Config::new("/dev/ttyTWC-does-not-exist"));
    let started = std::time::Instant::now();
    let e = c.recv().await.expect_err("no device");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        e.chain().contains("/dev/ttyTWC-does-not-exist"),
        "{}",
        e.chain()
    );
    let e = c.send(&link_ready(1)).await.expect_err("no device");
    assert!(e.chain().contains("no such device"), "{}", e.chain());
}
