//! The source over HTTP (the testkit's conformance check on a mock server serving the fixture)
//! and over a pseudo-terminal standing in for the Arduino's USB serial port (fixture lines
//! byte-exact); its configuration; its registration.

use serialport::{SerialPort, TTYPort};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, PluginError, Registry};
use twc_ems_sct013::{self as plugin, build};
use twc_testkit::{assert_reading, fixture};

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.sct013", body).unwrap()
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty())
    );
}

#[test]
fn the_example_and_the_default_section_build_and_bad_keys_are_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let default = twc_testkit::default_toml_section("ems", plugin::NAME);
    let e = build(&default).err().expect("url or port is required");
    assert!(
        e.to_string().contains("url") && e.to_string().contains("port"),
        "{e}"
    );
    let mut with_url = default.clone();
    with_url
        .values
        .insert("url".into(), serde_json::json!("http://192.168.1.60/"));
    build(&with_url).unwrap();
    for (body, named) in [
        (
            "url = \"http://a/\"\nport = \"/dev/ttyACM0\"",
            "both url and port",
        ),
        ("url = \"192.168.1.60\"", "url"),
        ("port = \"/dev/ttyACM0\"\nphases = 2", "phases = 2"),
        ("port = \"/dev/ttyACM0\"\nvoltage = 0.0", "voltage = 0"),
        ("port = \"/dev/ttyACM0\"\nbaud = 1", "baud = 1"),
        (
            "port = \"/dev/ttyACM0\"\nconsumption = false\ngeneration = false",
            "at least one",
        ),
        (
            "port = \"/dev/ttyACM0\"\narduinoPort = \"/dev/ttyACM0\"",
            "arduinoPort",
        ),
    ] {
        let e = build(&cfg(body)).err().expect(body);
        assert!(e.to_string().contains(named), "{body}: {e}");
    }
}

#[tokio::test]
async fn http_conformance() {
    let report = twc_testkit::check_http_source(
        |base| {
            build(&cfg(&format!(
                "url = \"{base}/\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
            )))
            .unwrap()
        },
        &[("/", fixture!("http_body_single_phase_RECONSTRUCTED.txt"))],
    )
    .await;
    assert!(report.failure_cases >= 7);
}

#[tokio::test]
async fn http_reading_and_empty_values() {
    use twc_testkit::wiremock::MockServer;
    let server = MockServer::start().await;
    twc_testkit::serve_fixture(
        &server,
        "/",
        fixture!("http_body_single_phase_RECONSTRUCTED.txt"),
    )
    .await;
    let src = build(&cfg(&format!("url = \"{}/\"", server.uri()))).unwrap();
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(1242.0), Some(738.3), None);
    assert!(r.age_secs(Instant::now()) < 5.0);

    server.reset().await;
    twc_testkit::serve_fixture(
        &server,
        "/",
        fixture!("serial_line_empty_values_RECONSTRUCTED.txt"),
    )
    .await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.chain());
}

async fn read_until(
    src: &dyn EmsSource,
    what: &str,
    ok: impl Fn(&Result<EnergyReading, PluginError>) -> bool,
) -> Result<EnergyReading, PluginError> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let r = src.read().await;
        if ok(&r) {
            return r;
        }
        if Instant::now() > until {
            panic!("timed out waiting for {what}; last: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serial_lines_through_a_pty() {
    let (mut far, near) = TTYPort::pair().expect("pty pair");
    let path = near.name().expect("pty name");
    let src = build(&cfg(&format!("port = \"{path}\"\nphases = 3"))).unwrap();
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.chain());

    // The end of a line begun before the port opened, a line of other output, then the fixture.
    far.write_all(b"A5 = 5.41 EndA5\r\nCalibrating...\r\n")
        .unwrap();
    far.write_all(&fixture!("serial_line_three_phase_RECONSTRUCTED.txt"))
        .unwrap();
    let r = read_until(src.as_ref(), "the three-phase line", |r| r.is_ok())
        .await
        .unwrap();
    assert_reading(
        &r,
        Some((5.40 + 5.38 + 5.41) * 230.0),
        Some((3.21 + 2.87 + 4.02) * 230.0),
        None,
    );
    assert!(r.age_secs(Instant::now()) < 5.0);

    // Empty values: an error until a good line comes, never 0 W.
    far.write_all(&fixture!("serial_line_empty_values_RECONSTRUCTED.txt"))
        .unwrap();
    let e = read_until(src.as_ref(), "the empty line", |r| r.is_err())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.chain());

    // A cut line with a marker: a protocol error.
    far.write_all(b"IrmsA0 = 3.21 EndA0 IrmsA1 = 2.\r\n")
        .unwrap();
    let e = read_until(src.as_ref(), "the cut line", |r| {
        r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Protocol)
    })
    .await
    .unwrap_err();
    assert!(e.chain().contains("EndA1"), "{}", e.chain());

    // The Arduino unplugged.
    drop(far);
    drop(near);
    let e = read_until(src.as_ref(), "the hang-up", |r| {
        r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Transient)
    })
    .await
    .unwrap_err();
    assert!(!e.chain().is_empty());
}

#[tokio::test]
async fn a_missing_arduino_is_a_transient_error() {
    let src = build(&cfg("port = \"/dev/twc-no-such-arduino\"")).unwrap();
    let e = read_until(src.as_ref(), "the open error", |r| {
        r.as_ref()
            .is_err_and(|e| e.chain().contains("no such device"))
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
}
