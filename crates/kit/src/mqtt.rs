//! An MQTT subscription for push sources (rumqttc): subscribe to topics, keep the latest payload
//! of each with its arrival time, poll the event loop forever with backoff, and resubscribe after
//! every reconnect (the session is clean, so the broker forgets subscriptions).
//!
//! The arrival time is kept with the message: reading the same message again does not make it
//! younger. A retained message, which the broker hands out at subscribe time, may be hours old;
//! it is marked [`Message::retained`] so that the source can treat its age as unknown. When the
//! retained copy after a reconnect repeats the payload already held, the held message (with its
//! known arrival time) is kept.

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use twc_core::plugin::{BuildError, Secret};

/// Where and how to connect.
#[derive(Debug, Clone, Default)]
pub struct MqttSettings {
    /// `mqtt://host:port`, `host:port` or `host` (port 1883).
    pub url: String,
    /// Broker user name.
    pub username: Option<String>,
    /// Broker password.
    pub password: Option<Secret>,
    /// Client id; default `twcmanager-<plugin>-<random>`.
    pub client_id: Option<String>,
}

/// The latest message on one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Raw payload.
    pub payload: Bytes,
    /// When it arrived, on tokio's clock.
    pub arrived: Instant,
    /// The broker delivered a stored (retained) copy at subscribe time: it was published at some
    /// unknown earlier time, so `arrived` says nothing about when it was measured.
    pub retained: bool,
}

#[derive(Default)]
struct Shared {
    latest: Mutex<HashMap<String, Message>>,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// Split `mqtt://host:port` into host and port.
pub fn parse_broker_url(section: &str, url: &str) -> Result<(String, u16), BuildError> {
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", r)) => r,
        Some((scheme, _)) => {
            return Err(BuildError::new(
                section,
                format!("url scheme {scheme:?} is not supported; use mqtt://host:port"),
            ));
        }
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| BuildError::new(section, format!("url has a bad port: {url:?}")))?,
        ),
        None => (rest, 1883),
    };
    if host.is_empty() {
        return Err(BuildError::new(
            section,
            format!("url has no host: {url:?}"),
        ));
    }
    Ok((host.to_string(), port))
}

/// A running subscription. Build it synchronously; the event loop task starts on first use (so
/// `build` needs no runtime) and stops when this is dropped.
pub struct Subscription {
    shared: Arc<Shared>,
    pending: Mutex<Option<(AsyncClient, EventLoop)>>,
    topics: Vec<String>,
    task: Mutex<Option<JoinHandle<()>>>,
    plugin: String,
}

impl Subscription {
    /// Prepare a subscription to `topics` (exact topics, no wildcards).
    pub fn new(
        plugin: &str,
        section: &str,
        settings: &MqttSettings,
        topics: Vec<String>,
    ) -> Result<Self, BuildError> {
        let (host, port) = parse_broker_url(section, &settings.url)?;
        for t in &topics {
            if t.is_empty() || t.contains(['+', '#']) {
                return Err(BuildError::new(
                    section,
                    format!("topic {t:?} must be a non-empty exact topic without wildcards"),
                ));
            }
        }
        let id = settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("twcmanager-{plugin}-{:08x}", rand::random::<u32>()));
        let mut opts = MqttOptions::new(id, host, port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(true);
        if let Some(u) = &settings.username {
            let pw = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            opts.set_credentials(u.clone(), pw);
        }
        let (client, eventloop) = AsyncClient::new(opts, 64);
        Ok(Subscription {
            shared: Arc::new(Shared::default()),
            pending: Mutex::new(Some((client, eventloop))),
            topics,
            task: Mutex::new(None),
            plugin: plugin.to_string(),
        })
    }

    /// Start the event loop task if it is not running yet. Must be called inside a tokio runtime.
    pub fn ensure_started(&self) {
        let Some((client, eventloop)) = self.pending.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let handle = tokio::spawn(run(
            client,
            eventloop,
            self.topics.clone(),
            self.shared.clone(),
            self.plugin.clone(),
        ));
        if let Ok(mut t) = self.task.lock() {
            *t = Some(handle);
        }
    }

    /// The latest message on `topic`, if any arrived since start.
    pub fn latest(&self, topic: &str) -> Option<Message> {
        self.ensure_started();
        self.shared.latest.lock().ok()?.get(topic).cloned()
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// The last connection error, for error messages.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().ok()?.clone()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(h) = t.take()
        {
            h.abort();
        }
    }
}

async fn run(
    client: AsyncClient,
    mut eventloop: EventLoop,
    topics: Vec<String>,
    shared: Arc<Shared>,
    plugin: String,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(500);
                for t in &topics {
                    if let Err(e) = client.try_subscribe(t.clone(), QoS::AtMostOnce) {
                        tracing::warn!(kind = "ems", plugin = %plugin, topic = %t, error = %e, "Cannot subscribe");
                    }
                }
                if !shared.connected.swap(true, Ordering::Relaxed) {
                    tracing::info!(kind = "ems", plugin = %plugin, "Connected to MQTT broker");
                }
                if let Ok(mut e) = shared.last_error.lock() {
                    *e = None;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Ok(mut m) = shared.latest.lock() {
                    let topic = p.topic.to_string();
                    // The retained copy resent after a reconnect: when it repeats what we hold,
                    // keep what we hold, whose age we know.
                    let repeat =
                        p.retain && m.get(&topic).is_some_and(|old| old.payload == p.payload);
                    if !repeat {
                        m.insert(
                            topic,
                            Message {
                                payload: p.payload.clone(),
                                arrived: Instant::now(),
                                retained: p.retain,
                            },
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                if shared.connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(kind = "ems", plugin = %plugin, error = %msg, "MQTT connection lost; reconnecting");
                } else {
                    tracing::debug!(kind = "ems", plugin = %plugin, error = %msg, "MQTT connect failed");
                }
                if let Ok(mut le) = shared.last_error.lock() {
                    *le = Some(msg);
                }
                let jitter: f64 = rand::random_range(0.75..1.25);
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker_url("s", "mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_string(), 1883)
        );
        assert_eq!(
            parse_broker_url("s", "broker").unwrap(),
            ("broker".to_string(), 1883)
        );
        assert!(parse_broker_url("s", "http://x:1").is_err());
        assert!(parse_broker_url("s", "mqtt://:1883").is_err());
        assert!(parse_broker_url("s", "mqtt://h:abc").is_err());
    }

    #[test]
    fn wildcards_rejected() {
        let s = MqttSettings {
            url: "mqtt://127.0.0.1:1883".into(),
            ..Default::default()
        };
        assert!(Subscription::new("mqtt", "ems.mqtt", &s, vec!["a/#".into()]).is_err());
        assert!(Subscription::new("mqtt", "ems.mqtt", &s, vec!["a/b".into()]).is_ok());
    }
}
