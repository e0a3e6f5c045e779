//! The one MQTT client of the plugins (rumqttc): a long-lived connection that publishes and
//! subscribes, for control surfaces and status publishers, and a [`Subscription`] that keeps the
//! latest message per topic, for push sources (EMS).
//!
//! - MQTT v5 first, falling back to 3.1.1 when the broker refuses v5 during the handshake
//!   (`protocol = "auto"`); or pinned to either.
//! - `mqtt://` or `mqtts://` (rustls; the system's CA bundle or a `ca_file`), user name and
//!   password.
//! - A last will, so subscribers see the owner go offline when the process dies.
//! - Logs: info on every connect, warn once when the first connect fails (with the broker's
//!   address and the error) or the connection is lost, debug for the retries after that.
//! - The event loop runs in its own task forever and reconnects with backoff and jitter; after each
//!   reconnect it resubscribes and tells the owner ([`LinkEvent::Connected`]) so it can republish
//!   its retained state. Publishing never waits for the broker: [`Link::publish`] queues or fails.
//! - Dropping every clone of the [`Link`] ends the task and closes the socket without a
//!   DISCONNECT, so the broker publishes the will.

mod event_loop;
mod latest;
mod tls;

pub use latest::{Message, Subscription};

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use twc_core::plugin::{BuildError, Secret};

/// Which MQTT protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// v5, falling back to 3.1.1 if the broker refuses v5.
    Auto,
    /// v5 only.
    V5,
    /// 3.1.1 only.
    V311,
}

impl Protocol {
    /// Parse the `protocol` config key: `"auto"`, `"5"` or `"3.1.1"`.
    pub fn parse(section: &str, s: &str) -> Result<Self, BuildError> {
        match s.trim() {
            "auto" | "" => Ok(Protocol::Auto),
            "5" | "5.0" | "v5" => Ok(Protocol::V5),
            "3.1.1" | "4" | "v3.1.1" => Ok(Protocol::V311),
            other => Err(BuildError::new(
                section,
                format!("protocol must be \"auto\", \"5\" or \"3.1.1\", got {other:?}"),
            )),
        }
    }
    /// `"5"` or `"3.1.1"` (`"auto"` for [`Protocol::Auto`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::V5 => "5",
            Protocol::V311 => "3.1.1",
        }
    }
}

/// A last-will message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Retained.
    pub retain: bool,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`; a bare `host[:port]` means `mqtt://`.
    pub url: String,
    /// Broker user name.
    pub username: Option<String>,
    /// Broker password.
    pub password: Option<Secret>,
    /// PEM file with the CA certificate(s) for `mqtts://`; default: the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// Protocol version.
    pub protocol: Protocol,
    /// Client id (must be unique on the broker).
    pub client_id: String,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Last will.
    pub will: Option<Will>,
    /// Topic filters to subscribe to (QoS 1) after every connect.
    pub subscriptions: Vec<String>,
    /// Ask the broker to keep the session (subscriptions and queued QoS 1 messages) for this long
    /// across a disconnect; `None` = clean session.
    pub session_expiry: Option<Duration>,
}

impl LinkSettings {
    /// Settings for `url` with defaults: auto protocol, 30 s keep-alive, no will, clean session.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        LinkSettings {
            url: url.into(),
            username: None,
            password: None,
            ca_file: None,
            protocol: Protocol::Auto,
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(30),
            will: None,
            subscriptions: Vec::new(),
            session_expiry: None,
        }
    }
}

/// What happened on the link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Connected (first time or after a reconnect); subscriptions have been requested.
    Connected {
        /// The protocol the broker accepted.
        protocol: Protocol,
        /// True when the broker kept our session.
        session_present: bool,
    },
    /// A message on a subscribed topic.
    Message {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Bytes,
        /// True when the broker delivered a retained message (sent before we subscribed).
        retain: bool,
    },
    /// The connection broke; the link retries with backoff.
    Disconnected {
        /// Why.
        error: String,
    },
}

#[derive(Clone)]
enum AnyClient {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

struct Inner {
    client: Mutex<Option<AnyClient>>,
    connected: AtomicBool,
    /// 0 = none yet, 5, 4 (= 3.1.1).
    protocol: AtomicU8,
    /// Why the last connection attempt or connection failed; cleared on connect.
    last_error: Mutex<Option<String>>,
}

/// A running MQTT connection; cheap to clone. The task ends when the last clone is dropped.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
    /// Dropped with the last clone, which ends the task.
    stop: Arc<oneshot::Sender<()>>,
}

/// Validated connection parameters (built synchronously at config time).
#[derive(Clone)]
pub struct Prepared {
    host: String,
    port: u16,
    tls: Option<rumqttc::TlsConfiguration>,
    settings: LinkSettings,
    plugin: String,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

impl Prepared {
    /// Host and port.
    pub fn address(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
    /// True for `mqtts://`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
    /// The settings.
    pub fn settings(&self) -> &LinkSettings {
        &self.settings
    }
}

/// Check `settings` and prepare the TLS configuration. Synchronous; call from `build`. `plugin`
/// names the link in logs (e.g. `status.mqtt`).
pub fn prepare(
    plugin: &str,
    section: &str,
    settings: LinkSettings,
) -> Result<Prepared, BuildError> {
    let url = settings.url.trim();
    let (tls, rest) = match url.split_once("://") {
        Some(("mqtt" | "tcp", r)) => (false, r),
        Some(("mqtts" | "ssl", r)) => (true, r),
        Some((scheme, _)) => {
            return Err(BuildError::new(
                section,
                format!(
                    "url scheme {scheme:?} is not supported; use mqtt://host:port or mqtts://host:port"
                ),
            ));
        }
        None => (false, url),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| BuildError::new(section, format!("url has a bad port: {url:?}")))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(BuildError::new(
            section,
            format!("url has no host: {url:?}"),
        ));
    }
    if settings.client_id.is_empty() {
        return Err(BuildError::new(section, "client_id must not be empty"));
    }
    if settings.password.is_some() && settings.username.is_none() {
        return Err(BuildError::new(
            section,
            "password is set but username is not",
        ));
    }
    let tls = if tls {
        Some(tls::tls_config(section, settings.ca_file.as_deref())?)
    } else {
        if settings.ca_file.is_some() {
            return Err(BuildError::new(
                section,
                "ca_file is set but the url is not mqtts://",
            ));
        }
        None
    };
    Ok(Prepared {
        host: host.to_string(),
        port,
        tls,
        settings,
        plugin: plugin.to_string(),
    })
}

/// A [`Link`] that does not keep the connection alive (for tasks the owner spawned).
#[derive(Clone)]
pub struct WeakLink {
    inner: std::sync::Weak<Inner>,
    stop: std::sync::Weak<oneshot::Sender<()>>,
}

impl WeakLink {
    /// The link, unless every [`Link`] has been dropped.
    pub fn upgrade(&self) -> Option<Link> {
        Some(Link {
            inner: self.inner.upgrade()?,
            stop: self.stop.upgrade()?,
        })
    }
}

impl Link {
    /// A handle that does not keep the connection alive.
    pub fn downgrade(&self) -> WeakLink {
        WeakLink {
            inner: Arc::downgrade(&self.inner),
            stop: Arc::downgrade(&self.stop),
        }
    }

    /// Start the connection task. Must be called inside a tokio runtime.
    pub fn start(prepared: Prepared) -> (Link, mpsc::Receiver<LinkEvent>) {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ev_tx, ev_rx) = mpsc::channel(256);
        let inner = Arc::new(Inner {
            client: Mutex::new(None),
            connected: AtomicBool::new(false),
            protocol: AtomicU8::new(0),
            last_error: Mutex::new(None),
        });
        twc_core::plugin::spawn(event_loop::run(prepared, inner.clone(), ev_tx, stop_rx));
        (
            Link {
                inner,
                stop: Arc::new(stop_tx),
            },
            ev_rx,
        )
    }

    /// Queue a QoS 1 message. Never waits: fails when the request queue is full or no client
    /// exists yet. While disconnected, queued messages go out after the reconnect.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), String> {
        let client = self
            .inner
            .client
            .lock()
            .map_err(|_| "mqtt client lock poisoned".to_string())?
            .clone();
        let payload: Vec<u8> = payload.into();
        match client {
            Some(AnyClient::V4(c)) => c
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
                .map_err(|e| e.to_string()),
            Some(AnyClient::V5(c)) => c
                .try_publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    retain,
                    payload,
                )
                .map_err(|e| e.to_string()),
            None => Err("not connected yet".into()),
        }
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Why the last connection attempt (or the connection) failed, while not connected; `None`
    /// once connected. For error messages ("broker unreachable: connection refused").
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().ok()?.clone()
    }

    /// The protocol of the current or last connection.
    pub fn protocol(&self) -> Option<Protocol> {
        match self.inner.protocol.load(Ordering::Relaxed) {
            5 => Some(Protocol::V5),
            4 => Some(Protocol::V311),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = prepare("t", "s", LinkSettings::new("mqtt://h:1884", "c")).unwrap();
        assert_eq!(p.address(), ("h", 1884));
        assert!(!p.is_tls());
        let p = prepare("t", "s", LinkSettings::new("broker", "c")).unwrap();
        assert_eq!(p.address(), ("broker", 1883));
        assert!(prepare("t", "s", LinkSettings::new("http://h", "c")).is_err());
        assert!(prepare("t", "s", LinkSettings::new("mqtt://:1", "c")).is_err());
        assert!(prepare("t", "s", LinkSettings::new("mqtt://h:x", "c")).is_err());
        assert!(prepare("t", "s", LinkSettings::new("mqtt://h", "")).is_err());
    }

    #[test]
    fn tls_needs_readable_ca() {
        let mut s = LinkSettings::new("mqtts://h", "c");
        s.ca_file = Some("/nonexistent/ca.pem".into());
        let e = prepare("t", "s", s).unwrap_err();
        assert!(e.message.contains("ca_file"), "{e}");
        let mut s = LinkSettings::new("mqtt://h", "c");
        s.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(prepare("t", "s", s).is_err());
    }

    #[test]
    fn protocols() {
        assert_eq!(Protocol::parse("s", "auto").unwrap(), Protocol::Auto);
        assert_eq!(Protocol::parse("s", "5").unwrap(), Protocol::V5);
        assert_eq!(Protocol::parse("s", "3.1.1").unwrap(), Protocol::V311);
        assert!(Protocol::parse("s", "3").is_err());
    }
}
