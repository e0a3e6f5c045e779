//! The real binary with `[comms.rs485]` on a pseudo-terminal (a USB RS-485 adapter stand-in)
//! driving `twc-sim` slaves: link, heartbeats, an amps change on command, kWh and VIN queries,
//! the adapter unplugged and plugged back, noise, an echoing adapter, another master, and
//! `twcmanager spy`. Real time.

use serde_json::json;
use std::time::Duration;
use twc_core::model::CentiAmps;
use twc_core::protocol::{Message, ProtocolVersion, TwcId};
use twc_e2e::{Daemon, Plugged, Tap, slave, tesla_slave, wait_until};
use twc_sim::SimBus;

const RS485: &str = "\n[comms.rs485]\nenabled = true\n";

/// The daemon on a pty behind `<dir>/ttyTWC`, the port given through the environment as a user
/// of a container would. `master` adds keys to `[master]`.
fn start(link: &std::path::Path, master: &str) -> Daemon {
    Daemon::start(
        &format!("{RS485}\n[master]\n{master}\n"),
        &[(
            "TWCMANAGER__COMMS__RS485__PORT",
            link.to_str().expect("utf-8 path"),
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_heartbeats_obeys_commands_and_reads_kwh_and_vin() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![tesla_slave(0x1234)]);
    let sim = bus.handle();
    let tap = Tap::default();
    let _plugged = Plugged::new(&bus, &link, &tap);
    let mut d = start(&link, "");

    let s = d
        .wait_status(15, "the slave to link at 6 A", |s| {
            slave(s, "1234").is_some_and(|x| x["offered_amps"] == 6.0)
        })
        .await;
    assert_eq!(s["bus"]["link_up"], true);
    assert_eq!(s["bus"]["transmitting"], true);
    d.wait_log(5, "Slave linked").await;
    // Heartbeats flow both ways and the simulated unit obeys the offer.
    wait_until(10, "the simulated slave to hold 6 A", || {
        let x = sim.slave(0).unwrap();
        x.linked && x.limit == CentiAmps::from_amps(6) && x.heartbeats >= 3
    })
    .await;

    // Lifetime kWh (FB EB) and the car's VIN (FB EE/EF/F1) are asked for and shown.
    let s = d
        .wait_status(20, "kWh and VIN", |s| {
            slave(s, "1234")
                .is_some_and(|x| x["lifetime_kwh"] == 1000 && x["vin"] == twc_sim::SAMPLE_VIN)
        })
        .await;
    assert_eq!(slave(&s, "1234").unwrap()["volts"], json!([230, 230, 230]));
    let compat = d.get("/api/getSlaveTWCs").await.expect("compat API");
    assert_eq!(compat["1234"]["lifetimekWh"], 1000);
    assert_eq!(compat["1234"]["currentVIN"], twc_sim::SAMPLE_VIN);

    // A command raises the offer: Charge Now at 16 A reaches the unit over the wire.
    let (code, body) = d
        .post(
            "/api/chargeNow",
            json!({"chargeNowRate": 16, "chargeNowDuration": 3600}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_until(10, "the simulated slave to get 16 A", || {
        sim.slave(0).unwrap().limit == CentiAmps::from_amps(16)
    })
    .await;
    d.wait_status(5, "offered 16 A in the status", |s| {
        slave(s, "1234").is_some_and(|x| x["offered_amps"] == 16.0)
    })
    .await;
    // And back down when it is cancelled.
    let (code, _) = d.post("/api/cancelChargeNow", json!({})).await;
    assert_eq!(code, 200);
    wait_until(10, "the simulated slave back at 6 A", || {
        sim.slave(0).unwrap().limit == CentiAmps::from_amps(6)
    })
    .await;
    assert!(sim.slave(0).unwrap().max_limit_seen <= CentiAmps::from_amps(16));
    assert!(d.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_adapter_unplugged_and_replugged_with_idle_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![tesla_slave(0x2345)]);
    let sim = bus.handle();
    let tap = Tap::default();
    let plugged = Plugged::new(&bus, &link, &tap);
    // A short slave timeout so the unplugged slave times out during the test.
    let mut d = start(&link, "slave_timeout_secs = 5");
    d.wait_status(15, "the slave to link", |s| slave(s, "2345").is_some())
        .await;

    plugged.unplug();
    assert!(!link.exists(), "the device node is gone");
    d.wait_status(10, "the link reported down", |s| {
        s["bus"]["link_up"] == false
    })
    .await;
    // Unplugged for a while: the process stays, its CPU stays idle, it logs the loss once.
    let cpu0 = d.cpu_secs();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cpu = d.cpu_secs() - cpu0;
    assert!(
        cpu < 0.5,
        "{cpu} s of CPU in 6 s while the adapter is missing"
    );
    assert!(d.alive());
    assert_eq!(d.count("Bus link lost"), 1, "logged once:\n{}", d.log());
    d.wait_log(5, "Slave timed out").await;
    let s = d.status().await.expect("status");
    let lost = slave(&s, "2345").expect("a timed-out slave is still shown");
    assert_eq!(lost["timed_out"], true, "{lost}");
    assert_eq!(lost["offered_amps"], 0.0, "{lost}");
    assert!(lost["last_heartbeat_secs"].as_f64() >= Some(5.0), "{lost}");

    // Plug back in: a new pty (another device number) behind the same name.
    let before = sim.slave(0).unwrap().heartbeats;
    let _plugged = Plugged::new(&bus, &link, &tap);
    d.wait_status(40, "the link back", |s| s["bus"]["link_up"] == true)
        .await;
    // The master announces itself again at once, so the slave re-links in about a second
    // rather than at its next 10 s link-ready.
    d.wait_status(4, "the slave re-linked", |s| {
        slave(s, "2345").is_some_and(|x| x["timed_out"] == false && x["offered_amps"] == 6.0)
    })
    .await;
    wait_until(10, "heartbeats to reach the slave again", || {
        sim.slave(0).unwrap().heartbeats > before + 2
    })
    .await;
    assert!(d.count("Bus link restored") >= 1, "{}", d.log());
    let s = d.status().await.unwrap();
    assert_eq!(s["slaves"].as_array().unwrap().len(), 1, "{}", s["slaves"]);
}

/// A frame from `id` in wire form with the real trailer byte.
fn wire(m: Message) -> Vec<u8> {
    let mut w = m.encode().expect("encodes").to_wire();
    w.push(0xFE);
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_is_counted_and_never_makes_a_phantom_slave() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![tesla_slave(0x3456)]);
    let sim = bus.handle();
    let tap = Tap::default();
    let _plugged = Plugged::new(&bus, &link, &tap);
    let mut d = start(&link, "");
    d.wait_status(15, "the slave to link", |s| slave(s, "3456").is_some())
        .await;

    let stranger = TwcId::from_u16(0xBEEF);
    let hb = Message::SlaveHeartbeat {
        slave: stranger,
        master: TwcId::from_u16(0x7777),
        state: twc_core::protocol::SlaveState::CHARGING,
        max: CentiAmps::from_amps(32),
        actual: CentiAmps::from_amps(30),
        version: ProtocolVersion::V2,
    };
    let link_ready = Message::SlaveLinkReady {
        slave: stranger,
        sign: 0x11,
        max_amps: CentiAmps::from_amps(32),
        version: ProtocolVersion::V2,
    };
    for round in 0..20u8 {
        // Garbage between frames (mains hum on an unterminated bus).
        tap.inject(vec![0xF8, 0xF0, 0x00, 0xFF, round]);
        // A corrupted slave link-ready: bad checksum.
        let mut bad = wire(link_ready.clone());
        let n = bad.len();
        bad[n - 3] ^= 0x40;
        tap.inject(bad);
        // A truncated frame and a bad escape.
        tap.inject(vec![0xC0, 0xFD, 0xE2, 0xBE, 0xEF, 0xC0]);
        tap.inject(vec![
            0xC0, 0xFD, 0xE0, 0xDB, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0,
        ]);
        // A valid heartbeat from a slave that never linked, and a link-ready with a length
        // no firmware sends (15 bytes).
        tap.inject(wire(hb.clone()));
        let odd = twc_core::protocol::Frame::from_body(&[
            0xFD, 0xE2, 0xBE, 0xEF, 0x11, 0x0C, 0x80, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let mut w = odd.to_wire();
        w.push(0xFE);
        tap.inject(w);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let s = d
        .wait_status(10, "the noise counted", |s| {
            s["bus"]["bad_checksum"].as_u64() >= Some(20)
                && s["bus"]["framing_errors"].as_u64() >= Some(40)
                && s["bus"]["malformed_messages"].as_u64() >= Some(20)
        })
        .await;
    assert!(
        slave(&s, "BEEF").is_none(),
        "phantom slave: {}",
        s["slaves"]
    );
    assert_eq!(s["slaves"].as_array().unwrap().len(), 1, "{}", s["slaves"]);
    assert_eq!(s["bus"]["link_up"], true);
    // The real slave is still driven.
    let before = sim.slave(0).unwrap().heartbeats;
    wait_until(10, "heartbeats to continue through the noise", || {
        sim.slave(0).unwrap().heartbeats > before + 2
    })
    .await;
    assert!(d.alive());
    assert_eq!(d.count("panicked"), 0, "{}", d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoing_adapter_is_not_mistaken_for_another_master() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![tesla_slave(0x4567)]);
    let sim = bus.handle();
    let tap = Tap::default();
    tap.set_echo(true);
    let _plugged = Plugged::new(&bus, &link, &tap);
    let mut d = start(&link, "");
    d.wait_status(15, "the slave to link despite the echo", |s| {
        slave(s, "4567").is_some_and(|x| x["offered_amps"] == 6.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = d.status().await.unwrap();
    assert_eq!(s["bus"]["transmitting"], true, "{}", s["bus"]);
    assert!(s["bus"]["foreign_master"].is_null(), "{}", s["bus"]);
    assert_eq!(d.count("Another master"), 0, "{}", d.log());
    assert!(sim.slave(0).unwrap().linked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_master_silences_us_until_it_goes_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![tesla_slave(0x5678)]);
    let tap = Tap::default();
    let _plugged = Plugged::new(&bus, &link, &tap);
    let mut d = start(&link, "foreign_master_hold_secs = 4");
    d.wait_status(15, "the slave to link", |s| slave(s, "5678").is_some())
        .await;

    // A real TWC left at a current setting announces itself as master.
    let other = TwcId::from_u16(0x035D);
    let announce = |tap: &Tap| {
        tap.inject(wire(Message::MasterLinkReady1 {
            master: other,
            sign: 0x39,
        }));
        tap.inject(wire(Message::MasterHeartbeat {
            master: other,
            slave: TwcId::from_u16(0x5678),
            command: twc_core::protocol::MasterCommand::SET_LIMIT_V2,
            amps: CentiAmps::from_amps(32),
            master_plugged_in: false,
            version: ProtocolVersion::V2,
        }));
    };
    announce(&tap);
    let s = d
        .wait_status(5, "the other master reported", |s| {
            s["bus"]["transmitting"] == false
        })
        .await;
    assert_eq!(s["bus"]["foreign_master"], "035D", "{}", s["bus"]);
    d.wait_log(5, "Another master is on the bus").await;
    // We stay silent while it keeps talking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quiet_from = tap.master_bytes();
    for _ in 0..6 {
        announce(&tap);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        tap.master_bytes(),
        quiet_from,
        "not a byte sent while another master talks"
    );
    assert_eq!(d.count("Another master is on the bus"), 1, "{}", d.log());
    // Holding back costs no CPU (no busy wake-ups while heartbeats are overdue).
    let cpu0 = d.cpu_secs();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = d.cpu_secs() - cpu0;
    assert!(cpu < 0.5, "{cpu} s of CPU in 2 s while silent");
    // It goes quiet: after the hold we take over again and drive the slave.
    d.wait_status(15, "transmitting again", |s| {
        s["bus"]["transmitting"] == true
    })
    .await;
    let resumed = tap.master_bytes();
    wait_until(10, "frames sent again", || {
        tap.master_bytes() > resumed + 40
    })
    .await;
    d.wait_log(5, "transmitting again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spy_decodes_a_real_masters_conversation_without_transmitting() {
    use serialport::{SerialPort, TTYPort};
    use std::io::{Read, Write};
    let (mut bus_end, port_end) = TTYPort::pair().expect("pty pair");
    bus_end.set_timeout(Duration::from_millis(100)).unwrap();
    let path = port_end.name().expect("pty name");
    let child = twc_e2e::spawn(
        std::process::Command::new(twc_e2e::binary())
            .args(["spy", "--port", &path, "--count", "6"])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let master = TwcId::from_u16(0x035D);
    let twc = TwcId::from_u16(0x1F2E);
    let mut traffic = Vec::new();
    traffic.extend(wire(Message::MasterLinkReady1 { master, sign: 0x39 }));
    traffic.extend(wire(Message::SlaveLinkReady {
        slave: twc,
        sign: 0x52,
        max_amps: CentiAmps::from_amps(32),
        version: ProtocolVersion::V2,
    }));
    traffic.extend([0x00, 0x13, 0x37]); // line noise
    let mut corrupt = wire(Message::MasterLinkReady1 { master, sign: 0x39 });
    corrupt[5] ^= 0x01;
    traffic.extend(corrupt);
    traffic.extend(wire(Message::MasterHeartbeat {
        master,
        slave: twc,
        command: twc_core::protocol::MasterCommand::SET_LIMIT_V2,
        amps: CentiAmps::from_amps(16),
        master_plugged_in: false,
        version: ProtocolVersion::V2,
    }));
    traffic.extend(wire(Message::SlaveHeartbeat {
        slave: twc,
        master,
        state: twc_core::protocol::SlaveState::CHARGING,
        max: CentiAmps::from_amps(16),
        actual: CentiAmps(1540),
        version: ProtocolVersion::V2,
    }));
    bus_end.write_all(&traffic).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("spy ends after --count 6");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(
        lines[0].contains("FC E1 master 035D link-ready, sign 39  [FC E1 03 5D 39"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("FD E2 slave 1F2E link-ready, sign 52, max 32.00 A, protocol 2"),
        "{stdout}"
    );
    // The trailer byte plus the noise between two frames: counted, not a frame.
    assert!(
        lines[2].contains("dropped: truncated frame of 4 bytes"),
        "{stdout}"
    );
    assert!(lines[3].contains("dropped: bad checksum"), "{stdout}");
    assert!(
        lines[4].contains("master 035D → slave 1F2E heartbeat: set limit (09) 16.00 A"),
        "{stdout}"
    );
    assert!(
        lines[5].contains("slave 1F2E → master 035D heartbeat:")
            && lines[5].contains("car draws 15.40 A"),
        "{stdout}"
    );
    // Listen-only: nothing came back on the wire.
    let mut buf = [0u8; 64];
    let echoed = bus_end.read(&mut buf).unwrap_or(0);
    assert_eq!(echoed, 0, "spy transmitted {:02X?}", &buf[..echoed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_the_adapter_and_links_once_it_is_plugged_in() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let mut d = start(&link, "");
    d.wait_status(10, "the missing adapter reported", |s| {
        s["bus"]["link_up"] == false
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(d.alive(), "no adapter is no reason to exit:\n{}", d.log());
    assert_eq!(d.count("Cannot open the serial port"), 1, "{}", d.log());
    let bus = SimBus::new(vec![tesla_slave(0x6A6A)]);
    let sim = bus.handle();
    let _plugged = Plugged::new(&bus, &link, &Tap::default());
    d.wait_status(40, "the slave to link after the adapter appeared", |s| {
        s["bus"]["link_up"] == true && slave(s, "6A6A").is_some_and(|x| x["offered_amps"] == 6.0)
    })
    .await;
    wait_until(10, "the simulated slave to hold 6 A", || {
        sim.slave(0).unwrap().limit == CentiAmps::from_amps(6)
    })
    .await;
}
