//! The tcp transport against `twc-sim` slaves standing in for an RS-485 bridge: client mode with
//! the bridge restarting, server mode with the bridge dialling in (twice), config errors, and the
//! engine linking a slave through it. Loopback only, real time.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use twc_comms_tcp::{Endpoint, Tcp, TcpConfig};
use twc_core::engine::{self, EngineConfig};
use twc_core::model::{CentiAmps, Settings};
use twc_core::plugin::{Comms, PluginConfig, Received};
use twc_core::protocol::{Message, TwcId};
use twc_sim::{CarConfig, SimSlave, SlaveConfig};

fn slaves(id: u16) -> Vec<SimSlave> {
    vec![SimSlave {
        slave: SlaveConfig::eu().with_id(TwcId::from_u16(id)),
        car: CarConfig::tesla(),
    }]
}

fn tcp(cfg: TcpConfig) -> Tcp {
    let ep = cfg.endpoint("comms.tcp").expect("valid");
    Tcp::new(cfg, ep)
}

/// Receive until a slave link-ready from `id` arrives.
async fn expect_link_ready(c: &mut Tcp, id: u16) {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match c.recv().await {
                Ok(Received::Frame(f)) => {
                    if let Ok(Message::SlaveLinkReady { slave, .. }) = Message::decode(&f)
                        && slave == TwcId::from_u16(id)
                    {
                        return;
                    }
                }
                Ok(Received::Dropped(e)) => panic!("clean link dropped a frame: {e}"),
                Err(e) => panic!("link failed: {}", e.chain()),
            }
        }
    })
    .await
    .expect("a link-ready within 15 s");
}

async fn bridge(addr: &str, id: u16) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let local = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = twc_sim::serve_listener(slaves(id), listener).await;
    });
    (local, task)
}

#[test]
fn example_config_parses_and_mistakes_are_named() {
    let cfg = PluginConfig::from_toml("comms.tcp", include_str!("../example.toml")).unwrap();
    let c: TcpConfig = cfg.parse().unwrap();
    assert_eq!(
        c.endpoint("comms.tcp").unwrap(),
        Endpoint::Connect("192.168.1.50:8899".into())
    );
    assert!(twc_comms_tcp::build(&cfg).is_ok());
    // The defaults file lists both keys empty; setting one of them is enough.
    let cfg = PluginConfig::from_toml("comms.tcp", "connect = \"bridge.lan:8899\"\nlisten = \"\"")
        .unwrap();
    assert!(twc_comms_tcp::build(&cfg).is_ok());
    for (text, needle) in [
        ("", "set connect"),
        ("connect = \"\"\nlisten = \"\"", "set connect"),
        ("connect = \"a:1\"\nlisten = \"0.0.0.0:1\"", "both set"),
        ("connect = \"192.168.1.50\"", "connect = \"192.168.1.50\""),
        ("listen = \"nowhere:80\"", "listen = \"nowhere:80\""),
        (
            "connect = \"h:1\"\nconect_timeout_secs = 3",
            "conect_timeout_secs",
        ),
        (
            "connect = \"h:1\"\nconnect_timeout_secs = 0",
            "connect_timeout_secs = 0",
        ),
    ] {
        let cfg = PluginConfig::from_toml("comms.tcp", text).unwrap();
        let e = twc_comms_tcp::build(&cfg).err().expect(text);
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
        assert!(e.to_string().starts_with("[comms.tcp]"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_survives_the_bridge_restarting() {
    let (addr, task) = bridge("127.0.0.1:0", 0x1111).await;
    let mut c = tcp(TcpConfig::connect(addr.to_string()));
    expect_link_ready(&mut c, 0x1111).await;

    // The bridge reboots: its port goes away for a while.
    task.abort();
    let _ = task.await;
    let e = tokio::time::timeout(Duration::from_secs(5), c.recv())
        .await
        .expect("the drop is noticed")
        .expect_err("the link is gone");
    assert!(!e.chain().is_empty());
    let e = c.reconnect().await.expect_err("nobody listens");
    assert!(e.chain().contains(&addr.to_string()), "{}", e.chain());

    let (_, _task) = bridge(&addr.to_string(), 0x1111).await;
    c.reconnect().await.expect("the bridge is back");
    expect_link_ready(&mut c, 0x1111).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_takes_the_bridge_dialling_in_and_again_after_it_reboots() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cfg = TcpConfig::listen(&addr);
    cfg.connect_timeout_secs = 2;
    let mut c = tcp(cfg);
    // Nobody dials in yet: a bounded wait, then an error naming the address.
    let e = c.recv().await.expect_err("no bridge yet");
    assert!(e.chain().contains("no bridge connected"), "{}", e.chain());

    let a = addr.clone();
    let dialer = tokio::spawn(async move {
        let _ = twc_sim::connect_tcp(slaves(0x2222), &a).await;
    });
    c.reconnect().await.expect("the bridge dialled in");
    expect_link_ready(&mut c, 0x2222).await;

    // The bridge reboots and dials in again (its old connection dies with it).
    dialer.abort();
    let _ = dialer.await;
    let a = addr.clone();
    let _dialer2 = tokio::spawn(async move {
        let _ = twc_sim::connect_tcp(slaves(0x3333), &a).await;
    });
    let mut seen = false;
    for _ in 0..5 {
        match tokio::time::timeout(Duration::from_secs(15), c.recv()).await {
            Ok(Ok(Received::Frame(f))) => {
                if let Ok(Message::SlaveLinkReady { slave, .. }) = Message::decode(&f)
                    && slave == TwcId::from_u16(0x3333)
                {
                    seen = true;
                    break;
                }
            }
            Ok(Ok(Received::Dropped(_))) => {}
            Ok(Err(_)) => {
                let _ = c.reconnect().await;
            }
            Err(_) => break,
        }
    }
    assert!(seen, "frames from the re-connected bridge arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_links_a_slave_through_the_bridge_and_again_after_a_restart() {
    let (addr, task) = bridge("127.0.0.1:0", 0x4444).await;
    let mut cfg = EngineConfig::default();
    cfg.master.wiring_max_all = CentiAmps::from_amps(16);
    cfg.master.wiring_max_per_twc = CentiAmps::from_amps(16);
    let eng = engine::spawn(
        cfg,
        Box::new(tcp(TcpConfig::connect(addr.to_string()))),
        vec![],
        Settings::default(),
    );
    let mut rx = eng.handle.watch_status();
    let linked = |rx: &mut tokio::sync::watch::Receiver<twc_core::model::Status>| {
        let s = rx.borrow_and_update();
        s.bus.link_up
            && s.slaves.iter().any(|x| {
                x.id == TwcId::from_u16(0x4444) && !x.timed_out && x.offered > CentiAmps::ZERO
            })
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while !linked(&mut rx) {
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("linked within 10 s");

    task.abort();
    let _ = task.await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while rx.borrow_and_update().bus.link_up {
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the link is reported down");

    let (_, _task) = bridge(&addr.to_string(), 0x4444).await;
    let hb_before = eng.handle.status().bus.decode.frames_ok;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            {
                let s = rx.borrow_and_update();
                if s.bus.link_up && s.bus.decode.frames_ok > hb_before + 3 && linked_now(&s) {
                    return;
                }
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the slave is driven again within 30 s");
    assert_eq!(eng.handle.status().slaves.len(), 1);
}

fn linked_now(s: &twc_core::model::Status) -> bool {
    s.slaves
        .iter()
        .any(|x| x.id == TwcId::from_u16(0x4444) && !x.timed_out)
}
