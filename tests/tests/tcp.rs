//! The real binary with `[comms.tcp]` driving `twc-sim` slaves behind a TCP "bridge": client mode
//! with the bridge rebooting, and server mode with a bridge that dials in. Real time, loopback.

use serde_json::json;
use std::time::Duration;
use tokio::net::TcpListener;
use twc_core::model::CentiAmps;
use twc_e2e::{Daemon, Tap, free_port, run_tapped, slave, tesla_slave, wait_until};
use twc_sim::SimBus;

/// A bridge stand-in on `addr`: accepts one master connection at a time and runs the bus on it.
async fn bridge(bus: &SimBus, addr: &str, tap: &Tap) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.expect("bind the bridge port");
    let bus = bus.clone();
    let tap = tap.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            run_tapped(bus.clone(), stream, tap.clone()).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_links_obeys_commands_and_survives_the_bridge_rebooting() {
    let addr = format!("127.0.0.1:{}", free_port());
    let bus = SimBus::new(vec![tesla_slave(0x6789)]);
    let sim = bus.handle();
    let tap = Tap::default();
    let b = bridge(&bus, &addr, &tap).await;
    let mut d = Daemon::start(
        &format!("\n[comms.tcp]\nenabled = true\nconnect = \"{addr}\"\nconnect_timeout_secs = 2\n"),
        &[],
    );
    d.wait_status(15, "the slave to link at 6 A", |s| {
        slave(s, "6789").is_some_and(|x| x["offered_amps"] == 6.0)
    })
    .await;
    d.wait_log(5, "Connected to the RS-485 bridge").await;
    let (code, body) = d
        .post(
            "/api/chargeNow",
            json!({"chargeNowRate": 12, "chargeNowDuration": 600}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_until(10, "12 A to reach the slave over TCP", || {
        sim.slave(0).unwrap().limit == CentiAmps::from_amps(12)
    })
    .await;
    d.wait_status(20, "kWh read over TCP", |s| {
        slave(s, "6789").is_some_and(|x| x["lifetime_kwh"] == 1000)
    })
    .await;

    // The bridge reboots: its port is closed for a few seconds.
    b.abort();
    let _ = b.await;
    d.wait_status(10, "the link reported down", |s| {
        s["bus"]["link_up"] == false
    })
    .await;
    let cpu0 = d.cpu_secs();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(d.cpu_secs() - cpu0 < 0.5, "idle while the bridge is away");
    assert!(d.alive());
    let before = sim.slave(0).unwrap().heartbeats;
    let _b = bridge(&bus, &addr, &tap).await;
    d.wait_status(40, "the link and the slave back", |s| {
        s["bus"]["link_up"] == true && slave(s, "6789").is_some_and(|x| x["timed_out"] == false)
    })
    .await;
    wait_until(15, "heartbeats over the new connection", || {
        sim.slave(0).unwrap().heartbeats > before + 2
    })
    .await;
    assert_eq!(d.count("Bus link lost"), 1, "logged once:\n{}", d.log());
    // Charge Now still applies after the reconnect.
    assert_eq!(sim.slave(0).unwrap().limit, CentiAmps::from_amps(12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_waits_for_a_bridge_that_dials_in() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut d = Daemon::start(
        &format!("\n[comms.tcp]\nenabled = true\nlisten = \"{addr}\"\nconnect_timeout_secs = 2\n"),
        &[],
    );
    // No bridge yet: the link is down, the daemon waits without exiting.
    d.wait_status(15, "the missing bridge reported", |s| {
        s["bus"]["link_up"] == false
    })
    .await;
    let bus = SimBus::new(vec![tesla_slave(0x789A)]);
    let sim = bus.handle();
    let a = addr.clone();
    let b2 = bus.clone();
    let dialer = tokio::spawn(async move {
        loop {
            if let Ok(s) = tokio::net::TcpStream::connect(&a).await {
                run_tapped(b2.clone(), s, Tap::default()).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    d.wait_status(40, "the slave to link through the dialled-in bridge", |s| {
        s["bus"]["link_up"] == true && slave(s, "789A").is_some_and(|x| x["offered_amps"] == 6.0)
    })
    .await;
    wait_until(10, "the simulated slave to hold 6 A", || {
        sim.slave(0).unwrap().limit == CentiAmps::from_amps(6)
    })
    .await;
    dialer.abort();
    assert!(d.alive());
}
