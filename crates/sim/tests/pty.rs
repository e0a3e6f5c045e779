//! A standalone simulated slave on a real pseudo-terminal and on TCP, in real time.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use twc_core::model::CentiAmps;
use twc_core::protocol::{FrameDecoder, MasterCommand, Message, ProtocolVersion, TwcId};
use twc_sim::{CarConfig, SimBus, SimSlave, SlaveConfig, open_pty};

const MASTER: TwcId = TwcId([0xAB, 0xCD]);
const SLAVE: TwcId = TwcId([0x77, 0x77]);

/// A master's receive side on a blocking port: frames decoded in one read are queued, not lost.
struct Rx {
    dec: FrameDecoder,
    pending: VecDeque<Message>,
}

impl Rx {
    fn new() -> Self {
        Rx {
            dec: FrameDecoder::new(),
            pending: VecDeque::new(),
        }
    }

    fn read_until(
        &mut self,
        port: &mut dyn Read,
        within: Duration,
        want: impl Fn(&Message) -> bool,
    ) -> Message {
        let end = Instant::now() + within;
        let mut buf = [0u8; 128];
        let mut seen = Vec::new();
        loop {
            while let Some(m) = self.pending.pop_front() {
                if want(&m) {
                    return m;
                }
                seen.push(m);
            }
            assert!(
                Instant::now() < end,
                "nothing wanted within {within:?}; saw {seen:?}"
            );
            match port.read(&mut buf) {
                Ok(n) if n > 0 => {
                    for f in self.dec.push(&buf[..n]) {
                        let f = f.expect("valid frame from the simulator");
                        self.pending
                            .push_back(Message::decode(&f).expect("decodes"));
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_slave_answers_link_ready_and_heartbeat() {
    let dir = std::env::temp_dir().join(format!("twc-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("twc-sim");
    let (pty, stream) = open_pty(Some(&link)).expect("pty");
    assert_eq!(std::fs::read_link(&link).unwrap(), pty.path());

    // The master opens its side before the slave starts (spec §10), like a user would.
    let mut port = serialport::new(link.to_string_lossy(), 9600)
        .timeout(Duration::from_millis(50))
        .open_native()
        .expect("open the pty like a serial port");
    let bus = SimBus::new(vec![SimSlave {
        slave: SlaveConfig::eu().with_id(SLAVE),
        car: CarConfig::tesla(),
    }]);
    let sim = bus.clone().spawn(stream);

    let mut rx = Rx::new();
    let (out, rx) = tokio::task::spawn_blocking(move || {
        // The power-on link-ready.
        let m = rx.read_until(&mut port, Duration::from_secs(3), |m| {
            matches!(m, Message::SlaveLinkReady { .. })
        });
        assert!(matches!(
            m,
            Message::SlaveLinkReady {
                slave: SLAVE,
                version: ProtocolVersion::V2,
                ..
            }
        ));
        // Master link-ready bursts (as TWCManager sends them), then one heartbeat with 16 A.
        for _ in 0..5 {
            port.write_all(
                &Message::MasterLinkReady1 {
                    master: MASTER,
                    sign: 0x42,
                }
                .encode()
                .unwrap()
                .to_wire(),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..5 {
            port.write_all(
                &Message::MasterLinkReady2 {
                    master: MASTER,
                    sign: 0x42,
                }
                .encode()
                .unwrap()
                .to_wire(),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut link_readies = 0;
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end && link_readies < 5 {
            rx.read_until(&mut port, Duration::from_secs(2), |m| {
                matches!(m, Message::SlaveLinkReady { .. })
            });
            link_readies += 1;
        }
        let hb = Message::MasterHeartbeat {
            master: MASTER,
            slave: SLAVE,
            command: MasterCommand::SET_LIMIT_V2,
            amps: CentiAmps::from_amps(16),
            master_plugged_in: false,
            version: ProtocolVersion::V2,
        };
        let sent = Instant::now();
        port.write_all(&hb.encode().unwrap().to_wire()).unwrap();
        let reply = rx.read_until(&mut port, Duration::from_secs(2), |m| {
            matches!(m, Message::SlaveHeartbeat { .. })
        });
        ((link_readies, reply, sent.elapsed()), rx)
    })
    .await
    .unwrap();
    let (link_readies, reply, latency) = out;
    assert_eq!(link_readies, 5);
    match reply {
        Message::SlaveHeartbeat {
            slave, master, max, ..
        } => {
            assert_eq!(
                (slave, master, max),
                (SLAVE, MASTER, CentiAmps::from_amps(16))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        latency < Duration::from_millis(500),
        "reply took {latency:?}"
    );
    assert_eq!(rx.dec.stats().errors(), 0);
    assert_eq!(sim.slave(0).unwrap().limit, CentiAmps::from_amps(16));
    drop(pty);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "symlink removed with the pty"
    );
    let _ = std::fs::remove_dir(&dir);
}

#[tokio::test]
async fn tcp_listener_serves_a_master() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slaves = vec![SimSlave {
        slave: SlaveConfig::eu()
            .with_id(SLAVE)
            .with_version(ProtocolVersion::V1),
        car: CarConfig::none(),
    }];
    tokio::spawn(twc_sim::serve_listener(slaves, listener));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut dec = FrameDecoder::new();
    let mut buf = [0u8; 128];
    let hb = Message::MasterHeartbeat {
        master: MASTER,
        slave: SLAVE,
        command: MasterCommand::SET_LIMIT_V1,
        amps: CentiAmps::from_amps(10),
        master_plugged_in: false,
        version: ProtocolVersion::V1,
    };
    s.write_all(&hb.encode().unwrap().to_wire()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(n > 0);
        for f in dec.push(&buf[..n]) {
            let f = f.unwrap();
            if let Message::SlaveHeartbeat { max, .. } = Message::decode(&f).unwrap() {
                assert_eq!(f.len(), 14);
                assert_eq!(max, CentiAmps::from_amps(10));
                return;
            }
        }
    }
}
