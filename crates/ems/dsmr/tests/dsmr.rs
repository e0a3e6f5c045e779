//! The source on a pseudo-terminal standing in for the P1 cable, fed the fixture telegrams
//! byte-exact; its configuration; its registration. Real time, real I/O.

use serialport::{SerialPort, TTYPort};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, PluginError, Registry};
use twc_ems_dsmr::{self as plugin, Dsmr, crc16};
use twc_testkit::{assert_w, read_fixture};

fn fx(name: &str) -> Vec<u8> {
    read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

const DSMR50: &str = "p1_telegram_dsmr50_ISK5_2M550T.txt";
const ADN9: &str = "p1_telegram_ADN9_combined_registers.txt";

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.dsmr", body).unwrap()
}

fn source(port: &str, extra: &str) -> Dsmr {
    plugin::build_source(&cfg(&format!("port = \"{port}\"\n{extra}"))).unwrap()
}

/// The DSMR 5 fixture with the meter's time set to now (as winter time, UTC+1) and `from`
/// replaced by `to`, with a matching CRC.
fn fresh(from: &str, to: &str) -> Vec<u8> {
    let raw = String::from_utf8(fx(DSMR50)).unwrap();
    let stamp = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%y%m%d%H%M%SW")
        .to_string();
    let body = raw[..=raw.rfind('!').unwrap()]
        .replacen("170531201444S", &stamp, 1)
        .replacen(from, to, 1);
    format!("{body}{:04X}\r\n", crc16(body.as_bytes())).into_bytes()
}

/// Read until `ok` accepts the outcome, for up to 5 s.
async fn read_until(
    src: &Dsmr,
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

fn pair() -> (TTYPort, TTYPort, String) {
    let (far, near) = TTYPort::pair().expect("pty pair");
    let path = near.name().expect("pty name");
    (far, near, path)
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty()),
        "not registered: {:?}",
        registry.list()
    );
}

#[test]
fn the_example_and_the_default_section_build_and_bad_keys_are_named() {
    assert!(plugin::build(&cfg(include_str!("../example.toml"))).is_ok());
    // The default section has every key commented out but the port is required.
    let default = twc_testkit::default_toml_section("ems", plugin::NAME);
    let e = plugin::build(&default).err().expect("port is required");
    assert!(e.to_string().contains("port"), "{e}");
    let mut with_port = default.clone();
    with_port
        .values
        .insert("port".into(), serde_json::json!("/dev/ttyUSB0"));
    assert!(plugin::build(&with_port).is_ok());
    for (body, key) in [
        ("port = \"/dev/ttyUSB0\"\nbaudrate = 9600", "baudrate"),
        ("port = \"/dev/ttyUSB0\"\nbaud = 5", "baud = 5"),
        ("port = \"/dev/ttyUSB0\"\nframing = \"8E2\"", "framing"),
        ("port = \"\"", "port"),
    ] {
        let e = plugin::build(&cfg(body)).err().expect(body);
        assert!(e.to_string().contains(key), "{body}: {e}");
    }
    let c: plugin::DsmrConfig = cfg("port = \"/dev/ttyUSB0\"").parse().unwrap();
    assert_eq!(
        (c.baud, c.framing.as_str(), c.use_meter_clock),
        (115_200, "8N1", true)
    );
}

#[tokio::test]
async fn fixture_telegrams_through_a_pty() {
    let (mut far, _near, path) = pair();
    let src = source(&path, "");
    // Nothing sent yet: an error, never 0 W.
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.chain());

    // The tail of a telegram, one cut short, then the DSMR 5 fixture byte-exact (CRLF).
    let good = fx(DSMR50);
    far.write_all(b"1-0:72.7.0(238.4*V)\r\n!ABCD\r\n").unwrap();
    far.write_all(&good[..200]).unwrap();
    far.write_all(&good).unwrap();
    let r = read_until(&src, "the DSMR 5 fixture", |r| r.is_ok())
        .await
        .unwrap();
    assert_w("grid_w", r.grid_w, 532.0);
    assert_eq!(r.phase_currents_a.as_ref().map(Vec::len), Some(3));
    // Its meter time is in 2017: measured long ago, so the engine treats it as stale.
    assert!(r.age_secs(Instant::now()) > 365.0 * 86_400.0, "{r:?}");
    assert_eq!(src.stats().telegrams, 1);

    // A live telegram, the meter's clock saying now.
    far.write_all(&fresh("00.532*kW", "01.111*kW")).unwrap();
    let r = read_until(&src, "the fresh telegram", |r| {
        r.as_ref().is_ok_and(|r| r.grid_w == Some(1111.0))
    })
    .await
    .unwrap();
    assert!(r.age_secs(Instant::now()) < 10.0, "{r:?}");

    // A bad CRC: counted and skipped; the last good reading stays.
    let mut bad = fresh("00.532*kW", "02.222*kW");
    let at = bad.windows(5).position(|w| w == b"2.222").unwrap();
    bad[at] = b'3';
    far.write_all(&bad).unwrap();
    let _ = read_until(&src, "the bad CRC to be counted", |_| {
        src.stats().bad_crc == 1
    })
    .await;
    let r = src.read().await.unwrap();
    assert_eq!(r.grid_w, Some(1111.0));

    // The other fixture, with its combined registers.
    far.write_all(&fx(ADN9)).unwrap();
    read_until(&src, "the ADN9 fixture", |r| {
        r.as_ref().is_ok_and(|r| r.grid_w == Some(4251.0))
    })
    .await
    .unwrap();

    // A good CRC around a garbage value: a protocol error, not a value.
    far.write_all(&fresh("1-0:1.7.0(00.532*kW)", "1-0:1.7.0(0x.532*kW)"))
        .unwrap();
    let e = read_until(&src, "the garbage telegram", |r| r.is_err())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{}", e.chain());
    assert!(e.chain().contains("1-0:1.7.0"), "{}", e.chain());
    assert_eq!(src.stats().invalid, 1);

    // The cable pulled: an error naming the port's trouble.
    drop(far);
    drop(_near);
    let e = read_until(&src, "the hang-up", |r| {
        r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Transient)
    })
    .await
    .unwrap_err();
    assert!(
        e.chain().contains(&path) || e.chain().contains("hung up"),
        "{}",
        e.chain()
    );
}

#[tokio::test]
async fn without_the_meter_clock_the_arrival_counts() {
    let (mut far, _near, path) = pair();
    let src = source(&path, "use_meter_clock = false");
    src.read().await.unwrap_err();
    far.write_all(&fx(DSMR50)).unwrap();
    let r = read_until(&src, "the fixture", |r| r.is_ok())
        .await
        .unwrap();
    assert_w("grid_w", r.grid_w, 532.0);
    assert!(r.age_secs(Instant::now()) < 10.0, "{r:?}");
}

#[tokio::test]
async fn a_missing_port_is_a_transient_error() {
    let src = source("/dev/twc-no-such-p1-cable", "");
    let e = read_until(&src, "the open error", |r| {
        r.as_ref()
            .is_err_and(|e| e.chain().contains("no such device"))
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.chain().contains("/dev/twc-no-such-p1-cable"),
        "{}",
        e.chain()
    );
}

/// A DSMR 2.2 meter: 9600 baud, 7E1, telegrams without CRC or time stamp (arrival counts).
#[tokio::test]
async fn a_dsmr22_meter_at_9600_7e1() {
    let (mut far, _near, path) = pair();
    let src = source(&path, "baud = 9600\nframing = \"7E1\"");
    src.read().await.unwrap_err();
    let telegram = "/ISk5\\2ME382-1003\r\n\r\n0-0:96.1.1(4B414C37303035313135383630323132)\r\n1-0:1.8.1(00185.000*kWh)\r\n1-0:2.8.1(00013.000*kWh)\r\n1-0:1.7.0(0000.98*kW)\r\n1-0:2.7.0(0000.00*kW)\r\n0-1:24.3.0(120517020000)(08)(60)(1)(0-1:24.2.1)(m3)\r\n(00124.477)\r\n!\r\n";
    far.write_all(telegram.as_bytes()).unwrap();
    let r = read_until(&src, "the DSMR 2.2 telegram", |r| r.is_ok())
        .await
        .unwrap();
    assert_w("grid_w", r.grid_w, 980.0);
    assert!(r.age_secs(Instant::now()) < 10.0, "{r:?}");
}
