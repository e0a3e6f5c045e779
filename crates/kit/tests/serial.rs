//! The serial reader on a pseudo-terminal standing in for a device: data reaches the callback,
//! the other end closing is seen and the port reopened, a missing device is an error. Real time.

use serialport::{SerialPort, TTYPort};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_plugin_kit::serial::{CharFormat, SerialEvent, SerialReader, SerialSettings};

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Opened,
    Data(Vec<u8>),
    Closed,
}

fn reader(port: &str) -> (SerialReader, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let r = SerialReader::new(
        "test",
        SerialSettings {
            port: port.to_string(),
            baud: 115_200,
            format: CharFormat::N81,
        },
        move |ev| {
            let e = match ev {
                SerialEvent::Opened => Seen::Opened,
                SerialEvent::Data { bytes, .. } => Seen::Data(bytes.to_vec()),
                SerialEvent::Closed => Seen::Closed,
            };
            s.lock().unwrap().push(e);
        },
    );
    (r, seen)
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn data(seen: &Mutex<Vec<Seen>>) -> Vec<u8> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Data(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test]
async fn bytes_arrive_and_a_hangup_is_seen() {
    let (mut far, near) = TTYPort::pair().expect("pty pair");
    let path = near.name().expect("pty name");
    let (r, seen) = reader(&path);
    assert!(!r.is_connected(), "nothing opens before first use");
    assert!(seen.lock().unwrap().is_empty());
    r.ensure_started();
    r.ensure_started();
    wait_for("open", || r.is_connected()).await;
    far.write_all(b"hello\r\n").unwrap();
    wait_for("data", || data(&seen) == b"hello\r\n").await;
    assert_eq!(seen.lock().unwrap()[0], Seen::Opened);
    drop(far);
    drop(near);
    wait_for("the hang-up", || {
        seen.lock().unwrap().contains(&Seen::Closed)
    })
    .await;
    wait_for("an error", || !r.is_connected() && r.last_error().is_some()).await;
}

#[tokio::test]
async fn a_missing_device_is_an_error_not_data() {
    let (r, seen) = reader("/dev/twc-no-such-serial-device");
    r.ensure_started();
    wait_for("the error", || r.last_error().is_some()).await;
    let e = r.last_error().unwrap();
    assert!(e.contains("no such device"), "{e}");
    assert!(!r.is_connected());
    assert!(seen.lock().unwrap().is_empty());
}
