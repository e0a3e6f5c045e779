//! A long-lived MQTT connection that publishes and subscribes, for control surfaces and status
//! publishers (rumqttc).
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

use bytes::Bytes;
use rumqttc::tokio_rustls::rustls;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
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

const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn load_roots(section: &str, path: &Path) -> Result<rustls::RootCertStore, BuildError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
        BuildError::new(
            section,
            format!("ca_file {:?} cannot be read: {e}", path.display()),
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in iter {
        let cert = cert.map_err(|e| {
            BuildError::new(
                section,
                format!("ca_file {:?} is not valid PEM: {e}", path.display()),
            )
        })?;
        roots.add(cert).map_err(|e| {
            BuildError::new(
                section,
                format!("ca_file {:?} holds a bad certificate: {e}", path.display()),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(BuildError::new(
            section,
            format!("ca_file {:?} holds no certificate", path.display()),
        ));
    }
    Ok(roots)
}

fn tls_config(
    section: &str,
    ca_file: Option<&Path>,
) -> Result<rumqttc::TlsConfiguration, BuildError> {
    let path = match ca_file {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                BuildError::new(
                    section,
                    "mqtts:// needs CA certificates: no system bundle was found; set ca_file",
                )
            })?,
    };
    let roots = load_roots(section, &path)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::new(section, format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
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
        Some(tls_config(section, settings.ca_file.as_deref())?)
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
        });
        tokio::spawn(run(prepared, inner.clone(), ev_tx, stop_rx));
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

    /// The protocol of the current or last connection.
    pub fn protocol(&self) -> Option<Protocol> {
        match self.inner.protocol.load(Ordering::Relaxed) {
            5 => Some(Protocol::V5),
            4 => Some(Protocol::V311),
            _ => None,
        }
    }
}

enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

enum Polled {
    ConnAck {
        session_present: bool,
    },
    Publish {
        topic: String,
        payload: Bytes,
        retain: bool,
    },
    Other,
}

struct PollError {
    message: String,
    /// True when the TCP (and TLS) connection worked but the MQTT handshake failed in a way
    /// that may mean "this broker does not speak v5".
    version_suspect: bool,
}

fn io_is_network(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused
            | K::TimedOut
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::NotFound
            | K::AddrInUse
    )
}

impl Loop {
    fn make(p: &Prepared, v5: bool) -> (AnyClient, Loop) {
        let s = &p.settings;
        let transport = match &p.tls {
            Some(t) => rumqttc::Transport::tls_with_config(t.clone()),
            None => rumqttc::Transport::Tcp,
        };
        if v5 {
            use rumqttc::v5::mqttbytes::v5::LastWill;
            let mut o = rumqttc::v5::MqttOptions::new(s.client_id.clone(), p.host.clone(), p.port);
            o.set_keep_alive(s.keep_alive);
            o.set_transport(transport);
            o.set_max_packet_size(Some(1024 * 1024));
            match s.session_expiry {
                Some(d) => {
                    o.set_clean_start(false);
                    o.set_session_expiry_interval(Some(d.as_secs().min(u32::MAX as u64) as u32));
                }
                None => {
                    o.set_clean_start(true);
                }
            }
            if let Some(u) = &s.username {
                o.set_credentials(
                    u.clone(),
                    s.password
                        .as_ref()
                        .map(|p| p.expose().to_string())
                        .unwrap_or_default(),
                );
            }
            if let Some(w) = &s.will {
                o.set_last_will(LastWill::new(
                    w.topic.clone(),
                    w.payload.clone(),
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    w.retain,
                    None,
                ));
            }
            let (c, l) = rumqttc::v5::AsyncClient::new(o, 1024);
            (AnyClient::V5(c), Loop::V5(Box::new(l)))
        } else {
            let mut o = rumqttc::MqttOptions::new(s.client_id.clone(), p.host.clone(), p.port);
            o.set_keep_alive(s.keep_alive);
            o.set_transport(transport);
            o.set_max_packet_size(1024 * 1024, 1024 * 1024);
            o.set_clean_session(s.session_expiry.is_none());
            if let Some(u) = &s.username {
                o.set_credentials(
                    u.clone(),
                    s.password
                        .as_ref()
                        .map(|p| p.expose().to_string())
                        .unwrap_or_default(),
                );
            }
            if let Some(w) = &s.will {
                o.set_last_will(rumqttc::LastWill::new(
                    w.topic.clone(),
                    w.payload.clone(),
                    rumqttc::QoS::AtLeastOnce,
                    w.retain,
                ));
            }
            let (c, l) = rumqttc::AsyncClient::new(o, 1024);
            (AnyClient::V4(c), Loop::V4(Box::new(l)))
        }
    }

    async fn poll(&mut self) -> Result<Polled, PollError> {
        match self {
            Loop::V4(l) => {
                use rumqttc::{ConnectionError as E, Event, Packet};
                match l.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(a))) => Ok(Polled::ConnAck {
                        session_present: a.session_present,
                    }),
                    Ok(Event::Incoming(Packet::Publish(p))) => Ok(Polled::Publish {
                        topic: p.topic.clone(),
                        payload: p.payload.clone(),
                        retain: p.retain,
                    }),
                    Ok(_) => Ok(Polled::Other),
                    Err(e) => {
                        let message = match &e {
                            E::ConnectionRefused(code) => {
                                format!("the broker refused the connection: {code:?}")
                            }
                            other => other.to_string(),
                        };
                        Err(PollError {
                            message,
                            version_suspect: false,
                        })
                    }
                }
            }
            Loop::V5(l) => {
                use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode as C, Packet};
                use rumqttc::v5::{ConnectionError as E, Event};
                match l.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(a))) => Ok(Polled::ConnAck {
                        session_present: a.session_present,
                    }),
                    Ok(Event::Incoming(Packet::Publish(p))) => Ok(Polled::Publish {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.clone(),
                        retain: p.retain,
                    }),
                    Ok(_) => Ok(Polled::Other),
                    Err(e) => {
                        let version_suspect = match &e {
                            E::ConnectionRefused(
                                C::RefusedProtocolVersion | C::UnsupportedProtocolVersion,
                            ) => true,
                            E::ConnectionRefused(_) => false,
                            E::Io(io) => !io_is_network(io),
                            E::MqttState(rumqttc::v5::StateError::Io(io)) => !io_is_network(io),
                            E::MqttState(_) | E::NotConnAck(_) => true,
                            _ => false,
                        };
                        let message = match &e {
                            E::ConnectionRefused(code) => {
                                format!("the broker refused the connection: {code:?}")
                            }
                            other => other.to_string(),
                        };
                        Err(PollError {
                            message,
                            version_suspect,
                        })
                    }
                }
            }
        }
    }
}

fn subscribe(client: &AnyClient, filters: &[String]) -> Result<(), String> {
    if filters.is_empty() {
        return Ok(());
    }
    match client {
        AnyClient::V4(c) => c
            .try_subscribe_many(
                filters
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), rumqttc::QoS::AtLeastOnce)),
            )
            .map_err(|e| e.to_string()),
        AnyClient::V5(c) => c
            .try_subscribe_many(filters.iter().map(|f| {
                rumqttc::v5::mqttbytes::v5::Filter::new(
                    f.clone(),
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                )
            }))
            .map_err(|e| e.to_string()),
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

async fn run(
    p: Prepared,
    inner: Arc<Inner>,
    events: mpsc::Sender<LinkEvent>,
    mut stop: oneshot::Receiver<()>,
) {
    let plugin = p.plugin.clone();
    let mut v5 = p.settings.protocol != Protocol::V311;
    let mut ever_connected = false;
    let mut backoff = MIN_BACKOFF;
    let mut was_up = false;
    // Whether the current outage (or the failure to connect at start) has been reported at
    // warn: once per outage, the retries are at debug.
    let mut warned = false;
    let broker = format!("{}:{}", p.host, p.port);
    loop {
        let (client, mut lp) = Loop::make(&p, v5);
        if let Ok(mut c) = inner.client.lock() {
            *c = Some(client.clone());
        }
        'conn: loop {
            let polled = tokio::select! {
                _ = &mut stop => return,
                r = lp.poll() => r,
            };
            match polled {
                Ok(Polled::ConnAck { session_present }) => {
                    backoff = MIN_BACKOFF;
                    ever_connected = true;
                    was_up = true;
                    warned = false;
                    let protocol = if v5 { Protocol::V5 } else { Protocol::V311 };
                    inner
                        .protocol
                        .store(if v5 { 5 } else { 4 }, Ordering::Relaxed);
                    inner.connected.store(true, Ordering::Relaxed);
                    info!(plugin = %plugin, broker = %broker, protocol = protocol.as_str(), session_present, "Connected to MQTT broker");
                    if let Err(e) = subscribe(&client, &p.settings.subscriptions) {
                        warn!(plugin = %plugin, error = %e, "Cannot subscribe");
                    }
                    let _ = events
                        .send(LinkEvent::Connected {
                            protocol,
                            session_present,
                        })
                        .await;
                }
                Ok(Polled::Publish {
                    topic,
                    payload,
                    retain,
                }) => {
                    let _ = events
                        .send(LinkEvent::Message {
                            topic,
                            payload,
                            retain,
                        })
                        .await;
                }
                Ok(Polled::Other) => {}
                Err(e) => {
                    inner.connected.store(false, Ordering::Relaxed);
                    // A v5 handshake refused by a 3.1.1 broker: not an outage, we fall back.
                    let fall_back = v5
                        && !ever_connected
                        && e.version_suspect
                        && p.settings.protocol == Protocol::Auto;
                    if was_up {
                        was_up = false;
                        warned = true;
                        warn!(plugin = %plugin, broker = %broker, error = %e.message, "MQTT connection lost; reconnecting with backoff");
                        let _ = events
                            .send(LinkEvent::Disconnected {
                                error: e.message.clone(),
                            })
                            .await;
                    } else if !warned && !fall_back {
                        // The first failure to connect says where and why (an unreachable
                        // broker at start would otherwise be silent); the retries do not.
                        warned = true;
                        warn!(plugin = %plugin, broker = %broker, error = %e.message, "Cannot connect to the MQTT broker; retrying with backoff");
                    } else {
                        debug!(plugin = %plugin, broker = %broker, error = %e.message, "MQTT connect failed");
                    }
                    if fall_back {
                        info!(plugin = %plugin, error = %e.message, "The broker did not accept MQTT v5; falling back to 3.1.1");
                        v5 = false;
                        break 'conn;
                    }
                    let jitter: f64 = rand::random_range(0.8..1.2);
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
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
