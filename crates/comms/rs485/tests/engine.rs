//! The engine driving `twc-sim` slaves through this transport on a pseudo-terminal, in real time:
//! the slave links and gets offers; the pty is removed and recreated under the same symlink (an
//! adapter unplugged and plugged back) and the slave is driven again without a restart.

use std::path::Path;
use std::time::Duration;
use twc_comms_rs485::{Rs485, Rs485Config};
use twc_core::engine::{self, EngineConfig};
use twc_core::model::{CentiAmps, Settings, Status};
use twc_sim::{CarConfig, SimBus, SimSlave, SlaveConfig};

fn slave(id: u16) -> SimSlave {
    SimSlave {
        slave: SlaveConfig::eu().with_id(twc_core::protocol::TwcId::from_u16(id)),
        car: CarConfig::tesla(),
    }
}

fn config() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.master.wiring_max_all = CentiAmps::from_amps(16);
    cfg.master.wiring_max_per_twc = CentiAmps::from_amps(16);
    cfg
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<Status>,
    secs: u64,
    what: &str,
    ok: impl Fn(&Status) -> bool,
) -> Status {
    let r = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            {
                let s = rx.borrow_and_update();
                if ok(&s) {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                panic!("engine stopped while waiting for {what}");
            }
        }
    })
    .await;
    match r {
        Ok(s) => s,
        Err(_) => panic!("timed out waiting for {what}: {:#?}", rx.borrow().bus),
    }
}

/// Run the simulated bus on a new pty behind `link` until the returned task is aborted.
fn plug(bus: &SimBus, link: &Path) -> (twc_sim::Pty, tokio::task::JoinHandle<()>) {
    let (pty, stream) = twc_sim::open_pty(Some(link)).expect("pty");
    let bus = bus.clone();
    let task = tokio::spawn(async move {
        let _ = bus.run(stream).await;
    });
    (pty, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slaves_link_and_relink_after_the_adapter_is_replugged() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![slave(0x1234)]);
    let sim = bus.handle();
    let (pty, task) = plug(&bus, &link);

    let comms = Rs485::new(Rs485Config::new(link.to_str().unwrap()));
    let eng = engine::spawn(config(), Box::new(comms), vec![], Settings::default());
    let mut rx = eng.handle.watch_status();
    let s = wait_for(&mut rx, 10, "the slave to link", |s| {
        s.slaves
            .iter()
            .any(|x| x.id.as_u16() == 0x1234 && x.offered > CentiAmps::ZERO)
    })
    .await;
    assert!(s.bus.link_up);
    assert!(s.bus.decode.frames_ok > 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snap = sim.slave(0).unwrap();
    assert!(snap.linked, "the simulated slave hears heartbeats");
    assert_eq!(
        snap.limit,
        CentiAmps::from_amps(6),
        "non-scheduled charge at 6 A"
    );

    // Unplug: the pty vanishes along with its symlink.
    task.abort();
    drop(pty);
    let s = wait_for(&mut rx, 10, "the link to be reported down", |s| {
        !s.bus.link_up
    })
    .await;
    assert!(s.bus.last_error.is_some());
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Plug back in: a new pty (another number) behind the same name.
    let (_pty2, _task2) = plug(&bus, &link);
    let before = sim.slave(0).unwrap().heartbeats;
    wait_for(&mut rx, 20, "the link to come back", |s| s.bus.link_up).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let h = sim.slave(0).unwrap().heartbeats;
        if h >= before + 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slave gets heartbeats again after the re-plug ({before} → {h})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = eng.handle.status();
    assert_eq!(
        s.slaves.len(),
        1,
        "still one slave, no phantom: {:?}",
        s.slaves
    );
}

/// While the adapter is missing the engine keeps serving commands and status: frames it would
/// send pile up nowhere (three slaves heartbeat until they time out, ~80 frames).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_stays_responsive_while_the_adapter_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTWC");
    let bus = SimBus::new(vec![slave(0x0A01), slave(0x0A02), slave(0x0A03)]);
    let (pty, task) = plug(&bus, &link);
    let comms = Rs485::new(Rs485Config::new(link.to_str().unwrap()));
    let mut cfg = config();
    cfg.master.wiring_max_all = CentiAmps::from_amps(32);
    let eng = engine::spawn(cfg, Box::new(comms), vec![], Settings::default());
    let mut rx = eng.handle.watch_status();
    wait_for(&mut rx, 15, "three slaves", |s| {
        s.slaves.len() == 3 && s.slaves.iter().all(|x| x.reported_limit == x.offered)
    })
    .await;
    task.abort();
    drop(pty);
    wait_for(&mut rx, 10, "the link reported down", |s| !s.bus.link_up).await;
    let mut worst = Duration::ZERO;
    for _ in 0..28 {
        let t = std::time::Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            eng.handle
                .command(twc_core::engine::Command::CancelChargeNow),
        )
        .await;
        assert!(
            r.is_ok(),
            "a command went unanswered for 5 s while the bus was down"
        );
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        worst < Duration::from_secs(1),
        "commands took up to {worst:?} while the bus was down"
    );
}

/// Line noise that never forms a frame (bytes before the first delimiter, a half frame followed
/// by silence) shows in `Status.bus.decode` too, not only frames the codec rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_partial_frames_are_counted_in_the_status() {
    use std::io::Write;
    let (mut far, near) = serialport::TTYPort::pair().expect("pty pair");
    let path = serialport::SerialPort::name(&near).expect("pty name");
    let mut cfg = Rs485Config::new(&path);
    cfg.partial_timeout_ms = 100;
    let eng = engine::spawn(
        config(),
        Box::new(Rs485::new(cfg)),
        vec![],
        Settings::default(),
    );
    let mut rx = eng.handle.watch_status();
    tokio::time::sleep(Duration::from_millis(500)).await; // the port is open
    let lr = twc_core::protocol::Message::SlaveLinkReady {
        slave: twc_core::protocol::TwcId::from_u16(0x0B0B),
        sign: 1,
        max_amps: CentiAmps::from_amps(32),
        version: twc_core::protocol::ProtocolVersion::V2,
    }
    .encode()
    .unwrap()
    .to_wire();
    far.write_all(&[0x00, 0xFF, 0x13]).unwrap(); // before any delimiter
    far.write_all(&lr[..9]).unwrap(); // half a frame, then silence
    tokio::time::sleep(Duration::from_millis(400)).await;
    far.write_all(&lr).unwrap();
    let s = wait_for(&mut rx, 10, "the counters", |s| {
        s.bus.decode.timed_out == 1 && s.bus.decode.garbage_bytes == 3
    })
    .await;
    assert_eq!(s.bus.decode.frames_ok, 1);
    assert_eq!(
        s.slaves.len(),
        1,
        "the valid link-ready links; the noise does not"
    );
}
