#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use async_trait::async_trait;
use serde::Deserialize;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use twc_core::plugin::{
    BuildError, Comms, CommsPlugin, ErrorKind, PluginConfig, PluginError, Received,
};
use twc_core::protocol::Frame;
use twc_core::transport::StreamComms;

const PLUGIN: &str = "tcp";

/// `[comms.tcp]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// Client mode: the bridge's `host:port`.
    #[serde(default)]
    pub connect: Option<String>,
    /// Server mode: where to wait for a bridge that dials in, e.g. `0.0.0.0:8899`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Give up one connection attempt (or, listening, one wait for the bridge) after this long.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Idle time before TCP keepalive probes start, s (0 = keepalive off). Also bounds how long
    /// unacknowledged data may wait before the link counts as dead.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// Drop a partly received frame after this much silence, ms (bridges deliver in bursts).
    #[serde(default = "default_partial_timeout_ms")]
    pub partial_timeout_ms: u64,
}

fn default_connect_timeout_secs() -> u64 {
    5
}
fn default_keepalive_secs() -> u64 {
    10
}
fn default_partial_timeout_ms() -> u64 {
    500
}

/// Where the bridge is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// We connect to the bridge.
    Connect(String),
    /// The bridge connects to us.
    Listen(SocketAddr),
}

impl TcpConfig {
    /// Client mode to `addr` with the defaults.
    pub fn connect(addr: impl Into<String>) -> Self {
        TcpConfig {
            connect: Some(addr.into()),
            listen: None,
            connect_timeout_secs: default_connect_timeout_secs(),
            keepalive_secs: default_keepalive_secs(),
            partial_timeout_ms: default_partial_timeout_ms(),
        }
    }

    /// Server mode on `addr` with the defaults.
    pub fn listen(addr: impl Into<String>) -> Self {
        TcpConfig {
            connect: None,
            listen: Some(addr.into()),
            ..TcpConfig::connect("")
        }
    }

    /// Check the keys and say which mode they select.
    pub fn endpoint(&self, section: &str) -> Result<Endpoint, BuildError> {
        let err = |m: String| BuildError::new(section, m);
        // An empty string means "not set" (the defaults file lists both keys empty).
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let ep = match (set(&self.connect), set(&self.listen)) {
            (Some(c), None) => {
                let ok = c
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    return Err(err(format!(
                        "connect = {c:?}: expected host:port such as \"192.168.1.50:8899\""
                    )));
                }
                Endpoint::Connect(c.to_string())
            }
            (None, Some(l)) => Endpoint::Listen(l.parse().map_err(|_| {
                err(format!(
                    "listen = {l:?}: expected an address:port such as \"0.0.0.0:8899\""
                ))
            })?),
            (Some(_), Some(_)) => {
                return Err(err(
                    "connect and listen are both set: use connect for a bridge in TCP-server mode, listen for one that dials in".into(),
                ));
            }
            (None, None) => {
                return Err(err(
                    "set connect = \"host:port\" (the bridge listens) or listen = \"0.0.0.0:port\" (the bridge dials in)".into(),
                ));
            }
        };
        if !(1..=120).contains(&self.connect_timeout_secs) {
            return Err(err(format!(
                "connect_timeout_secs = {}: expected 1 to 120",
                self.connect_timeout_secs
            )));
        }
        if self.keepalive_secs > 3600 {
            return Err(err(format!(
                "keepalive_secs = {}: expected 0 (off) to 3600",
                self.keepalive_secs
            )));
        }
        if !(10..=10_000).contains(&self.partial_timeout_ms) {
            return Err(err(format!(
                "partial_timeout_ms = {}: expected 10 to 10000",
                self.partial_timeout_ms
            )));
        }
        Ok(ep)
    }
}

/// A TCP stream or nothing: every call on a closed link fails with `NotConnected`.
#[derive(Default)]
pub struct TcpLink(Option<TcpStream>);

impl TcpLink {
    fn is_open(&self) -> bool {
        self.0.is_some()
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "not connected to the bridge")
}

impl AsyncRead for TcpLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Err(not_connected())),
        }
    }
}

impl AsyncWrite for TcpLink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_write(cx, buf),
            None => Poll::Ready(Err(not_connected())),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Err(not_connected())),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Keepalive so a bridge that vanished (power cut, Wi-Fi gone) is noticed even when we are not
/// sending: probes after `secs` idle, every `secs / 2`, 3 tries; unacknowledged data fails the
/// link after `2 × secs`.
fn tune(stream: &TcpStream, keepalive_secs: u64) {
    let _ = stream.set_nodelay(true);
    if keepalive_secs == 0 {
        return;
    }
    let sock = socket2::SockRef::from(stream);
    let secs = Duration::from_secs(keepalive_secs);
    let ka = socket2::TcpKeepalive::new()
        .with_time(secs)
        .with_interval((secs / 2).max(Duration::from_secs(1)));
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
    let ka = ka.with_retries(3);
    if let Err(e) = sock.set_tcp_keepalive(&ka) {
        debug!(error = %e, "Cannot enable TCP keepalive");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = sock.set_tcp_user_timeout(Some(secs * 2)) {
        debug!(error = %e, "Cannot set TCP_USER_TIMEOUT");
    }
}

type Accepted = (TcpStream, SocketAddr);

/// An RS-485-to-Ethernet bridge as a [`Comms`]: raw bytes over TCP through the core codec.
/// Connects (or starts listening) on first use; [`Comms::reconnect`] connects again, or waits
/// for the bridge to dial in again. Each attempt is bounded by `connect_timeout_secs`, so the
/// engine's backoff keeps control.
pub struct Tcp {
    cfg: TcpConfig,
    endpoint: Endpoint,
    comms: StreamComms<TcpLink>,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    incoming: Option<mpsc::Receiver<Accepted>>,
    acceptor: Option<JoinHandle<()>>,
    connected_once: bool,
    failure_logged: bool,
}

impl Tcp {
    /// A transport for `cfg`, already checked by [`TcpConfig::endpoint`].
    pub fn new(cfg: TcpConfig, endpoint: Endpoint) -> Self {
        let timeout = Duration::from_millis(cfg.partial_timeout_ms);
        Tcp {
            cfg,
            endpoint,
            comms: StreamComms::new(TcpLink::default(), PLUGIN).with_partial_timeout(timeout),
            connecting: None,
            incoming: None,
            acceptor: None,
            connected_once: false,
            failure_logged: false,
        }
    }

    /// Decoder counters, kept across reconnects.
    pub fn stats(&self) -> twc_core::protocol::DecodeStats {
        self.comms.stats()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.connect_timeout_secs)
    }

    fn err(&self, context: String) -> PluginError {
        PluginError::new(ErrorKind::Transient, PLUGIN, context)
    }

    fn opened(&mut self, stream: TcpStream, peer: String) {
        tune(&stream, self.cfg.keepalive_secs);
        self.comms.replace_stream(TcpLink(Some(stream)));
        if self.connected_once {
            info!(bridge = %peer, "Bridge connection restored");
        } else {
            info!(bridge = %peer, "Connected to the RS-485 bridge");
        }
        self.connected_once = true;
        self.failure_logged = false;
    }

    fn failed(&mut self, e: PluginError) -> PluginError {
        if !self.failure_logged && !self.connected_once {
            warn!(error = %e.chain(), "Cannot reach the RS-485 bridge; retrying with backoff (see docs/hardware.md)");
        } else {
            debug!(error = %e.chain(), "Bridge still unreachable");
        }
        self.failure_logged = true;
        e
    }

    async fn start_listening(&mut self, addr: SocketAddr) -> Result<(), PluginError> {
        if self.incoming.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| self.err(format!("listen on {addr}")).with_source(e))?;
        info!(listen = %addr, "Waiting for the RS-485 bridge to connect");
        let (tx, rx) = mpsc::channel::<Accepted>(4);
        self.acceptor = Some(twc_core::plugin::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok(c) => {
                        if tx.send(c).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "Accept failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
        self.incoming = Some(rx);
        Ok(())
    }

    /// Connect (client) or take the next bridge connection (server). Cancel-safe.
    async fn ensure_open(&mut self) -> Result<(), PluginError> {
        if self.comms.stream_mut().is_open() {
            return Ok(());
        }
        match self.endpoint.clone() {
            Endpoint::Connect(addr) => {
                let timeout = self.timeout();
                let handle = self.connecting.get_or_insert_with(|| {
                    let addr = addr.clone();
                    twc_core::plugin::spawn(async move {
                        match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
                            Ok(r) => r,
                            Err(_) => Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("no answer within {} s", timeout.as_secs()),
                            )),
                        }
                    })
                });
                let r = handle.await;
                self.connecting = None;
                match r {
                    Ok(Ok(stream)) => {
                        self.opened(stream, addr);
                        Ok(())
                    }
                    Ok(Err(e)) => {
                        let e = self.err(format!("connect to {addr}")).with_source(e);
                        Err(self.failed(e))
                    }
                    Err(e) => Err(self.err(format!("connect to {addr}: {e}"))),
                }
            }
            Endpoint::Listen(addr) => {
                if let Err(e) = self.start_listening(addr).await {
                    return Err(self.failed(e));
                }
                let timeout = self.timeout();
                let Some(rx) = self.incoming.as_mut() else {
                    return Err(self.err(format!("listen on {addr}: not listening")));
                };
                match tokio::time::timeout(timeout, rx.recv()).await {
                    Ok(Some((stream, peer))) => {
                        self.opened(stream, peer.to_string());
                        Ok(())
                    }
                    Ok(None) => {
                        self.incoming = None;
                        Err(self.err(format!("listen on {addr}: the listener stopped")))
                    }
                    Err(_) => {
                        let e = self.err(format!(
                            "no bridge connected to {addr} within {} s",
                            timeout.as_secs()
                        ));
                        Err(self.failed(e))
                    }
                }
            }
        }
    }

    fn close(&mut self) {
        self.comms.replace_stream(TcpLink(None));
    }
}

impl Drop for Tcp {
    fn drop(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
    }
}

#[async_trait]
impl Comms for Tcp {
    async fn send(&mut self, frame: &Frame) -> Result<(), PluginError> {
        self.ensure_open().await?;
        let r = self.comms.send(frame).await;
        if r.is_err() {
            self.close();
        }
        r
    }

    async fn recv(&mut self) -> Result<Received, PluginError> {
        self.ensure_open().await?;
        loop {
            let r = match self.incoming.as_mut() {
                // Listening: a bridge that rebooted dials in again while its old connection may
                // still look open here; the newest connection wins.
                Some(rx) => tokio::select! {
                    r = self.comms.recv() => r,
                    c = rx.recv() => {
                        if let Some((stream, peer)) = c {
                            info!(bridge = %peer, "The bridge connected again; using the new connection");
                            tune(&stream, self.cfg.keepalive_secs);
                            self.comms.replace_stream(TcpLink(Some(stream)));
                        }
                        continue;
                    }
                },
                None => self.comms.recv().await,
            };
            if r.is_err() {
                self.close();
            }
            return r;
        }
    }

    async fn reconnect(&mut self) -> Result<(), PluginError> {
        self.close();
        self.ensure_open().await
    }

    fn decode_stats(&self) -> Option<twc_core::protocol::DecodeStats> {
        Some(self.comms.stats())
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Connect(a) => format!("tcp bridge at {a}"),
            Endpoint::Listen(a) => format!("tcp bridge dialling in to {a}"),
        }
    }
}

/// Build from `[comms.tcp]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn Comms>, BuildError> {
    let c: TcpConfig = cfg.parse()?;
    let ep = c.endpoint(&cfg.section)?;
    Ok(Box::new(Tcp::new(c, ep)))
}

inventory::submit! {
    CommsPlugin {
        name: "tcp",
        summary: "RS-485-to-Ethernet bridge (EW11, USR, Waveshare) over raw TCP, as client or server",
        example: include_str!("../example.toml"),
        build,
    }
}
