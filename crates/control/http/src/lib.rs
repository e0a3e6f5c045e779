#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Handlers return `Result<_, Response>` so a refusal is a ready 4xx response; that is axum's idiom.
#![allow(clippy::result_large_err)]

mod auth;
mod compat;
mod metrics;
mod ops;
mod recorder;
mod ui;
mod util;
mod v2;
mod vehicle_login;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hyper::body::Incoming;
use serde::Deserialize;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use twc_core::engine::EngineHandle;
use twc_core::history::HistoryQuery;
use twc_core::plugin::{
    BuildError, ControlPlugin, ControlSurface, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_core::vehicles::VehicleHandle;

pub use recorder::Recorder;
pub use util::scrub_secrets;

const PLUGIN: &str = "http";

/// Who must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Loopback clients are trusted; every other client must log in (default).
    #[default]
    Remote,
    /// Every client must log in, loopback included.
    Always,
    /// Nobody has to log in (TWCManager's behaviour; only on a trusted network).
    Off,
}

/// `[control.http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to bind: `"::"` (every address, IPv6 and IPv4), `"0.0.0.0"`, `"127.0.0.1"`, `"::1"`, ….
    pub listen: IpAddr,
    /// Port to bind.
    pub port: u16,
    /// How many ports after `port` to try (`port + 1`, `port + 2`, …) when it is taken, as
    /// TWCManager did; 0 (the default) = none, so a taken port is a start-up error.
    pub fallback_ports: u16,
    /// Who must authenticate.
    pub auth: AuthMode,
    /// Password for the web UI login (and accepted as a bearer token).
    pub password: Secret,
    /// Bearer tokens for scripts (`Authorization: Bearer <token>`).
    pub tokens: Vec<Secret>,
    /// Largest accepted request body, bytes (web UI and `/api/v2`).
    pub max_body_bytes: usize,
    /// Largest accepted request body on TWCManager's `/api/...` routes, bytes: its clients send
    /// debug commands of ~100 KB, and TWCManager itself has no limit.
    pub compat_max_body_bytes: usize,
    /// A client that leaves a request's headers, or its body, unfinished for this long is
    /// disconnected (so idle or half-sent connections cannot pile up); also the idle time
    /// before a kept-alive connection is closed.
    pub read_timeout_secs: u64,
    /// How long a UI login lasts, hours.
    pub session_hours: u64,
    /// Ignored: every surface turns amps into watts with the engine's own volts per phase and
    /// phases (`Status.site`, from the slaves or `[site] voltage`). Still accepted, with a
    /// warning at start, so existing configuration files keep working; set `[site] voltage`.
    pub voltage: f64,
    /// Seconds between samples of the live chart (kept for `chart_hours`).
    pub chart_interval_secs: u64,
    /// Hours of live-chart samples kept in memory.
    pub chart_hours: u64,
    /// The daemon's effective configuration for `getConfig` (from
    /// [`PluginConfig::effective_config`], not from users); secrets are scrubbed before it is
    /// served.
    #[serde(rename = "__effective_config")]
    pub effective_config: Option<serde_json::Value>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: 8080,
            fallback_ports: 0,
            auth: AuthMode::Remote,
            password: Secret::default(),
            tokens: Vec::new(),
            max_body_bytes: 64 * 1024,
            compat_max_body_bytes: 1024 * 1024,
            read_timeout_secs: 30,
            session_hours: 24 * 30,
            voltage: 230.0,
            chart_interval_secs: 10,
            chart_hours: 6,
            effective_config: None,
        }
    }
}

impl HttpConfig {
    /// Parse and check a `[control.http]` section.
    pub fn from_plugin_config(cfg: &PluginConfig) -> Result<Self, BuildError> {
        if cfg.values.contains_key("port_attempts") {
            // Its default (10) moved a second instance to the next port without being asked.
            return Err(BuildError::new(
                &cfg.section,
                "port_attempts was replaced by fallback_ports: how many ports after port to try \
                 when it is taken (0 = none, the default; port_attempts = N is fallback_ports = N - 1)",
            ));
        }
        let mut c: HttpConfig = cfg.parse()?;
        if c.effective_config.is_none() {
            c.effective_config = cfg.effective_config.as_deref().cloned();
        }
        let err = |m: &str| Err(BuildError::new(&cfg.section, m));
        if c.max_body_bytes < 1024 || c.compat_max_body_bytes < 1024 {
            return err("max_body_bytes and compat_max_body_bytes must be at least 1024");
        }
        if !(1..=3600).contains(&c.read_timeout_secs) {
            return err("read_timeout_secs must be between 1 and 3600");
        }
        if cfg.values.contains_key("voltage") {
            tracing::warn!(
                section = %cfg.section,
                "voltage is ignored here; watts and amps use [site] voltage"
            );
        }
        if c.chart_interval_secs == 0 || c.chart_hours == 0 {
            return err("chart_interval_secs and chart_hours must be at least 1");
        }
        if c.session_hours == 0 {
            return err("session_hours must be at least 1");
        }
        if c.tokens.iter().any(|t| t.expose().len() < 16) {
            return err("every entry of tokens must be at least 16 characters long");
        }
        Ok(c)
    }
}

/// The HTTP control surface.
pub struct HttpControl {
    cfg: HttpConfig,
    history: Option<Arc<dyn HistoryQuery>>,
    vehicles: Option<VehicleHandle>,
    /// The port, once taken by [`ControlSurface::prepare`].
    listener: Option<tokio::net::TcpListener>,
}

impl HttpControl {
    /// A surface with this configuration.
    pub fn new(cfg: HttpConfig) -> Self {
        HttpControl {
            cfg,
            history: None,
            vehicles: None,
            listener: None,
        }
    }
}

/// Shared state of every handler: one pointer, because axum clones it for every request and
/// every middleware (cloning the fields one by one — the engine handle's channels, several
/// `Arc`s — cost a quarter of the server's CPU under load).
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What [`AppState`] points to.
pub(crate) struct AppStateInner {
    pub(crate) engine: EngineHandle,
    pub(crate) cfg: Arc<HttpConfig>,
    pub(crate) auth: Arc<auth::Sessions>,
    pub(crate) recorder: Recorder,
    pub(crate) compat: Arc<compat::CompatState>,
    /// Free slots for `/api/v2/events` streams.
    pub(crate) sse_slots: Arc<tokio::sync::Semaphore>,
    /// A database logger's history, when the bin handed one over.
    pub(crate) history: Option<Arc<dyn HistoryQuery>>,
    /// The vehicles task, when a vehicle plugin is enabled.
    pub(crate) vehicles: Option<VehicleHandle>,
}

/// Build the whole application (UI, `/api`, `/api/v2`, `/metrics`) for an engine. Starts the
/// recorder task that keeps history for the charts; call inside a tokio runtime.
pub fn router(cfg: HttpConfig, engine: EngineHandle) -> Router {
    router_with_history(cfg, engine, None)
}

/// As [`router`], with a history source (a database logger) for the graphs.
pub fn router_with_history(
    cfg: HttpConfig,
    engine: EngineHandle,
    history: Option<Arc<dyn HistoryQuery>>,
) -> Router {
    router_with_vehicles(cfg, engine, history, None)
}

/// As [`router_with_history`], with the vehicles task (cars, commands, "Log in with Tesla").
pub fn router_with_vehicles(
    cfg: HttpConfig,
    engine: EngineHandle,
    history: Option<Arc<dyn HistoryQuery>>,
    vehicles: Option<VehicleHandle>,
) -> Router {
    let recorder = Recorder::spawn(&engine, &cfg);
    let state = AppState(Arc::new(AppStateInner {
        engine,
        auth: Arc::new(auth::Sessions::new(&cfg)),
        cfg: Arc::new(cfg),
        recorder,
        compat: Arc::new(compat::CompatState::new()),
        sse_slots: Arc::new(tokio::sync::Semaphore::new(v2::MAX_EVENT_STREAMS)),
        history,
        vehicles,
    }));
    let limit = state.cfg.max_body_bytes;
    let compat_limit = state.cfg.compat_max_body_bytes;
    Router::new()
        .nest("/api/v2", v2::router())
        .nest(
            "/api",
            // The innermost limit wins: TWCManager's routes take larger bodies.
            compat::router().layer(DefaultBodyLimit::max(compat_limit)),
        )
        .merge(ui::router())
        .merge(vehicle_login::router())
        .merge(auth::router())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            util::refuse_oversized,
        ))
        .layer(axum::middleware::map_response(util::json_refusals))
        .with_state(state)
}

/// Bind `port` on `listen` or, when it is taken and `fallback_ports` allows, the first free port
/// of the next `fallback_ports` (with a warning); log the address.
pub async fn bind(cfg: &HttpConfig) -> Result<tokio::net::TcpListener, PluginError> {
    let mut last = None;
    let last_port = cfg.port.saturating_add(cfg.fallback_ports);
    for port in cfg.port..=last_port {
        let addr = SocketAddr::new(cfg.listen, port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let got = l.local_addr().unwrap_or(addr);
                if port != cfg.port {
                    tracing::warn!(
                        kind = "control",
                        plugin = PLUGIN,
                        wanted = cfg.port,
                        port = got.port(),
                        "Port {} was taken; serving on the next free port (fallback_ports = {})",
                        cfg.port,
                        cfg.fallback_ports
                    );
                }
                tracing::info!(kind = "control", plugin = PLUGIN, address = %got,
                    "Web UI and API listening on http://{}", display_addr(got));
                return Ok(l);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::debug!(kind = "control", plugin = PLUGIN, port, "Port in use");
                last = Some(e);
            }
            Err(e) => {
                return Err(PluginError::new(
                    ErrorKind::Config,
                    PLUGIN,
                    format!(
                        "[control.http] cannot bind listen = {} port = {port}",
                        cfg.listen
                    ),
                )
                .with_source(e));
            }
        }
    }
    let ctx = if cfg.fallback_ports == 0 {
        format!(
            "[control.http] port = {} is in use on {} (another twcmanager?); choose another port, \
             or set fallback_ports = N to try the next N ports too",
            cfg.port, cfg.listen
        )
    } else {
        format!(
            "[control.http] port = {} and the next {} ports (fallback_ports) are all in use on {}; \
             choose another port or raise fallback_ports",
            cfg.port,
            last_port - cfg.port,
            cfg.listen
        )
    };
    let mut e = PluginError::new(ErrorKind::Config, PLUGIN, ctx);
    if let Some(src) = last {
        e = e.with_source(src);
    }
    Err(e)
}

fn display_addr(a: SocketAddr) -> String {
    match a.ip() {
        ip if ip.is_unspecified() => format!("localhost:{}", a.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
    }
}

/// Serve the application on an already bound listener until the process ends.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    cfg: HttpConfig,
    engine: EngineHandle,
) -> Result<(), PluginError> {
    serve_on_with_history(listener, cfg, engine, None).await
}

/// As [`serve_on`], with a history source for the graphs.
pub async fn serve_on_with_history(
    listener: tokio::net::TcpListener,
    cfg: HttpConfig,
    engine: EngineHandle,
    history: Option<Arc<dyn HistoryQuery>>,
) -> Result<(), PluginError> {
    serve_on_with_vehicles(listener, cfg, engine, history, None).await
}

/// As [`serve_on_with_history`], with the vehicles task.
pub async fn serve_on_with_vehicles(
    listener: tokio::net::TcpListener,
    cfg: HttpConfig,
    engine: EngineHandle,
    history: Option<Arc<dyn HistoryQuery>>,
    vehicles: Option<VehicleHandle>,
) -> Result<(), PluginError> {
    let read_timeout = Duration::from_secs(cfg.read_timeout_secs);
    let app = router_with_vehicles(cfg, engine, history, vehicles);
    serve_app(listener, app, read_timeout).await
}

/// Serve `app` on `listener`: HTTP/1.1 with a header read timeout (hyper's, which also closes
/// idle kept-alive connections) and a body read timeout (tower-http's `TimeoutBody`: the body
/// must make progress at least every `read_timeout`). `axum::serve` has neither, so a client
/// that sends half a request would hold its socket for ever.
async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    read_timeout: Duration,
) -> Result<(), PluginError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning (as axum does).
                tracing::warn!(kind = "control", plugin = PLUGIN, error = %e, "Cannot accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let app = app.clone();
        twc_core::plugin::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(|b| {
                    axum::body::Body::new(tower_http::timeout::TimeoutBody::new(read_timeout, b))
                });
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(remote));
                let mut app = app.clone();
                tower_service::Service::call(&mut app, req)
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new()).header_read_timeout(read_timeout);
            let conn = b
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(kind = "control", plugin = PLUGIN, client = %remote, error = %e, "Connection ended with an error");
            }
        });
    }
}

impl HttpControl {
    /// Bind the port now, before serving: the daemon calls this at start-up, before the engine
    /// transmits, so a taken port stops it instead of leaving a bus master without its UI.
    pub async fn bind(mut self) -> Result<BoundHttpControl, PluginError> {
        self.take_port().await?;
        let listener = self.listener.take().expect("taken above");
        Ok(BoundHttpControl {
            listener,
            control: self,
        })
    }

    async fn take_port(&mut self) -> Result<(), PluginError> {
        if self.listener.is_some() {
            return Ok(());
        }
        let listener = bind(&self.cfg).await?;
        if self.cfg.auth != AuthMode::Off
            && self.cfg.password.is_empty()
            && self.cfg.tokens.is_empty()
            && !self.cfg.listen.is_loopback()
        {
            tracing::warn!(
                kind = "control",
                plugin = PLUGIN,
                "No password or token is set: only clients on this machine can use the web UI and API; set [control.http] password, or auth = \"off\" on a trusted network"
            );
        }
        self.listener = Some(listener);
        Ok(())
    }
}

/// The HTTP control surface with its port bound ([`HttpControl::bind`]); serving starts with
/// [`ControlSurface::serve`].
pub struct BoundHttpControl {
    listener: tokio::net::TcpListener,
    control: HttpControl,
}

impl BoundHttpControl {
    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[twc_core::async_trait]
impl ControlSurface for HttpControl {
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        Box::new(self.bind().await?).serve(engine).await
    }

    fn set_history(&mut self, history: Arc<dyn HistoryQuery>) {
        self.history = Some(history);
    }

    fn set_vehicles(&mut self, vehicles: VehicleHandle) {
        self.vehicles = Some(vehicles);
    }

    async fn prepare(&mut self) -> Result<(), PluginError> {
        self.take_port().await
    }
}

#[twc_core::async_trait]
impl ControlSurface for BoundHttpControl {
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        let BoundHttpControl { listener, control } = *self;
        serve_on_with_vehicles(
            listener,
            control.cfg,
            engine,
            control.history,
            control.vehicles,
        )
        .await
    }

    fn set_history(&mut self, history: Arc<dyn HistoryQuery>) {
        self.control.history = Some(history);
    }

    fn set_vehicles(&mut self, vehicles: VehicleHandle) {
        self.control.vehicles = Some(vehicles);
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn ControlSurface>, BuildError> {
    Ok(Box::new(HttpControl::new(HttpConfig::from_plugin_config(
        cfg,
    )?)))
}

inventory::submit! {
    ControlPlugin {
        name: "http",
        summary: "Web UI, TWCManager-compatible /api, typed /api/v2 with OpenAPI and live events, /metrics",
        example: include_str!("../example.toml"),
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(values: serde_json::Value) -> PluginConfig {
        let serde_json::Value::Object(values) = values else {
            panic!("an object")
        };
        PluginConfig::new("control.http", values)
    }

    /// Issue 13 item 4: the fallback is opt-in, and the old key is refused with its successor
    /// named rather than silently meaning "try ten ports".
    #[test]
    fn r13_fallback_is_opt_in_and_port_attempts_names_its_successor() {
        let c = HttpConfig::from_plugin_config(&section(serde_json::json!({}))).unwrap();
        assert_eq!(c.fallback_ports, 0);
        let c =
            HttpConfig::from_plugin_config(&section(serde_json::json!({ "fallback_ports": 3 })))
                .unwrap();
        assert_eq!(c.fallback_ports, 3);
        let e =
            HttpConfig::from_plugin_config(&section(serde_json::json!({ "port_attempts": 10 })))
                .expect_err("port_attempts is refused");
        let m = e.to_string();
        assert!(
            m.starts_with("[control.http] port_attempts was replaced by fallback_ports"),
            "{m}"
        );
    }

    /// Issue 14: `voltage` is no longer read (watts use `[site] voltage`); old files that set
    /// it, whatever its value, still load.
    #[test]
    fn r14_an_old_voltage_key_is_accepted_and_ignored() {
        for v in [230.0, 0.0] {
            HttpConfig::from_plugin_config(&section(serde_json::json!({ "voltage": v })))
                .expect("voltage is still accepted");
        }
    }
}
