//! MQTT test helpers: a client that records what it sees, and a private Mosquitto a test can kill
//! and restart.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Every message a watcher saw: (topic, payload, retained).
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, String, bool)>>>);

impl Seen {
    /// The latest payload on `topic`, and whether it came retained.
    pub fn latest(&self, topic: &str) -> Option<(String, bool)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _, _)| t == topic)
            .map(|(_, p, r)| (p.clone(), *r))
    }
    /// Every payload seen on `topic`, oldest first.
    pub fn all(&self, topic: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, p, _)| p.clone())
            .collect()
    }
    /// Every topic seen, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _, _)| t.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }
    /// Wait until `topic` has a payload for which `pred` holds; panics after `secs`.
    pub async fn wait_for(&self, topic: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((p, _)) = self.latest(topic)
                && pred(&p)
            {
                return p;
            }
            if Instant::now() > end {
                panic!(
                    "{topic}: no matching message within {secs} s; latest {:?}; topics seen: {:?}",
                    self.latest(topic),
                    self.topics()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A client that subscribes to `filters` and records what arrives; returns the client too.
pub async fn watch(host: &str, port: u16, filters: &[String]) -> (AsyncClient, Seen) {
    watch_as(host, port, filters, None).await
}

/// As `watch`, logging in as (user, password).
pub async fn watch_as(
    host: &str,
    port: u16,
    filters: &[String],
    login: Option<(&str, &str)>,
) -> (AsyncClient, Seen) {
    let id = format!("watch-{}-{}", std::process::id(), rand_u32());
    let mut o = MqttOptions::new(id, host, port);
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 100);
    let seen = Seen::default();
    let s = seen.clone();
    let c = client.clone();
    let filters = filters.to_vec();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for f in &filters {
                        c.subscribe(f.clone(), QoS::AtLeastOnce).await.unwrap();
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = ready_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    s.0.lock().unwrap().push((
                        p.topic.clone(),
                        String::from_utf8_lossy(&p.payload).into_owned(),
                        p.retain,
                    ));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("watcher subscribed")
        .unwrap();
    (client, seen)
}

/// A number that differs between calls and processes (for client ids).
pub fn rand_u32() -> u32 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    n ^ std::process::id().rotate_left(16)
}

/// A private Mosquitto on a free port (so a test can restart it); killed on drop.
pub struct Broker {
    /// The port it listens on.
    pub port: u16,
    child: Option<Child>,
    conf: Option<std::path::PathBuf>,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mosquitto_bin() -> String {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    "mosquitto".to_string()
}

impl Broker {
    /// Start `mosquitto -p <free port>`.
    pub async fn start() -> Broker {
        let mut b = Broker {
            port: free_port(),
            child: None,
            conf: None,
        };
        b.restart().await;
        b
    }
    /// A broker run with the config file `conf(port)`; `port` is the one waited for.
    pub async fn start_with(conf: impl Fn(u16) -> String) -> Broker {
        let port = free_port();
        let path =
            std::env::temp_dir().join(format!("twc-mosquitto-{}-{port}.conf", std::process::id()));
        std::fs::write(&path, conf(port)).unwrap();
        let mut b = Broker {
            port,
            child: None,
            conf: Some(path),
        };
        b.restart().await;
        b
    }
    /// Start it (again) on the same port and wait until it accepts connections.
    pub async fn restart(&mut self) {
        let args: Vec<String> = match &self.conf {
            Some(c) => vec!["-c".into(), c.display().to_string()],
            None => vec!["-p".into(), self.port.to_string()],
        };
        let child = Command::new(mosquitto_bin())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed to restart a broker in a test (apt-get install mosquitto)");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < end,
                "private mosquitto did not start on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    /// Kill it (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if let Some(c) = &self.conf {
            let _ = std::fs::remove_file(c);
        }
    }
}
