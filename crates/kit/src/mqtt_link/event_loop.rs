//! The connection task: one rumqttc event loop (v5 or 3.1.1) polled forever, with reconnects,
//! backoff, the v5 → 3.1.1 fallback and the log lines.

use super::{AnyClient, Inner, LinkEvent, Prepared, Protocol};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

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

pub(super) async fn run(
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
                    if let Ok(mut le) = inner.last_error.lock() {
                        *le = None;
                    }
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
                    if let Ok(mut le) = inner.last_error.lock() {
                        *le = Some(e.message.clone());
                    }
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
