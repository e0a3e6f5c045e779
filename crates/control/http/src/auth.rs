//! Access control (loopback trusted by default, password/token for others), UI sessions and
//! CSRF protection of every state-changing request.

use crate::{AppState, AuthMode};
use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const COOKIE: &str = "twc_session";
/// Header the UI sends with its CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

struct Session {
    csrf: String,
    expires: Instant,
}

/// Live UI sessions.
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

/// Who made the request; handlers can read it from the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Access control is off, or the client is on loopback and `auth = "remote"`.
    Trusted(&'static str),
    /// A logged-in UI session, with its CSRF token.
    Session(String),
    /// A valid bearer token.
    Bearer,
    /// Nobody.
    Anonymous,
}

fn random_hex() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compare without an early exit, so timing does not tell how much of a secret matched.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl Sessions {
    pub(crate) fn new(cfg: &crate::HttpConfig) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl: Duration::from_secs(cfg.session_hours.saturating_mul(3600)),
        }
    }

    fn create(&self) -> (String, String) {
        let (id, csrf) = (random_hex(), random_hex());
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, s| s.expires > now);
        if m.len() >= 1000 {
            // Bounded: drop the oldest when someone logs in a thousand times.
            if let Some(k) = m
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                m.remove(&k);
            }
        }
        m.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + self.ttl,
            },
        );
        (id, csrf)
    }

    fn csrf_for(&self, id: &str) -> Option<String> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.csrf.clone())
    }

    fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn credentials_configured(st: &AppState) -> bool {
    !st.cfg.password.is_empty() || !st.cfg.tokens.is_empty()
}

fn check_secret(st: &AppState, given: &str) -> bool {
    let mut ok = false;
    if !st.cfg.password.is_empty() {
        ok |= ct_eq(given, st.cfg.password.expose());
    }
    for t in &st.cfg.tokens {
        ok |= ct_eq(given, t.expose());
    }
    ok
}

fn identify(st: &AppState, req: &Request) -> Result<Identity, Response> {
    let headers = req.headers();
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let given = v
            .to_str()
            .ok()
            .and_then(|s| {
                s.strip_prefix("Bearer ")
                    .or_else(|| s.strip_prefix("bearer "))
            })
            .map(str::trim);
        return match given {
            Some(t) if !t.is_empty() && check_secret(st, t) => Ok(Identity::Bearer),
            _ => Err(unauthorized("the bearer token is not valid")),
        };
    }
    if let Some(id) = cookie_value(headers)
        && let Some(csrf) = st.auth.csrf_for(&id)
    {
        return Ok(Identity::Session(csrf));
    }
    if st.cfg.auth == AuthMode::Off {
        return Ok(Identity::Trusted("off"));
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if st.cfg.auth == AuthMode::Remote && peer.is_some_and(is_loopback) {
        return Ok(Identity::Trusted("loopback"));
    }
    Ok(Identity::Anonymous)
}

fn unauthorized(msg: &str) -> Response {
    let mut r = crate::util::error(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn is_public(path: &str) -> bool {
    // The Tesla login's return: a cross-site navigation, so the SameSite=Strict session cookie
    // is not sent. It is safe without a session: it only completes a login started here, whose
    // random `state` (and PKCE verifier) only the vehicles task and the user's browser know.
    path == "/login"
        || path.starts_with("/static/")
        || path == "/favicon.svg"
        || path == "/vehicles/callback"
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api") || path == "/metrics" || path == "/logout"
}

/// Reject cross-site state changes: a browser always says where a request comes from.
fn csrf_origin_ok(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err("cross-site request refused (Sec-Fetch-Site)");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin = origin.to_str().unwrap_or("null");
        let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or("");
        if host.is_empty() || !authority.eq_ignore_ascii_case(host) {
            return Err("cross-origin request refused (Origin does not match Host)");
        }
    }
    Ok(())
}

/// The middleware in front of every route.
pub(crate) async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let id = match identify(&st, &req) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method {
        if let Err(m) = csrf_origin_ok(req.headers()) {
            return crate::util::error(StatusCode::FORBIDDEN, m);
        }
        if let Identity::Session(csrf) = &id {
            let given = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if path != "/login" && !ct_eq(given, csrf) {
                return crate::util::error(
                    StatusCode::FORBIDDEN,
                    "missing or wrong X-CSRF-Token header for this session",
                );
            }
        }
    }
    if id == Identity::Anonymous && !is_public(&path) {
        if !credentials_configured(&st) {
            return crate::util::error(
                StatusCode::FORBIDDEN,
                "only clients on this machine may connect: no password or token is configured in [control.http]",
            );
        }
        if is_api(&path) || unsafe_method {
            return unauthorized(
                "authentication required: log in at /login or send Authorization: Bearer <token>",
            );
        }
        return Redirect::to("/login").into_response();
    }
    req.extensions_mut().insert(id);
    next.run(req).await
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
}

async fn login_page() -> Response {
    crate::ui::page(crate::ui::LOGIN_HTML)
}

async fn login(State(st): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    if !credentials_configured(&st) || !check_secret(&st, &f.password) {
        tracing::warn!(kind = "control", plugin = "http", "Failed web UI login");
        tokio::time::sleep(Duration::from_millis(300)).await;
        return (
            StatusCode::UNAUTHORIZED,
            axum::response::Html(crate::ui::LOGIN_FAILED_HTML),
        )
            .into_response();
    }
    let (id, _) = st.auth.create();
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        st.auth.ttl.as_secs()
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers) {
        st.auth.remove(&id);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("twc_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// What the UI needs to know about its own access.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SessionInfo {
    /// How this client is allowed in: `loopback`, `off`, `session`, `bearer`.
    via: String,
    /// True when a login is possible (a password or token is configured).
    login_available: bool,
    /// Send this in `X-CSRF-Token` with every state-changing request (sessions only).
    csrf_token: Option<String>,
}

/// Who am I, and the CSRF token for the UI.
#[utoipa::path(get, path = "/session", tag = "access",
    responses((status = 200, body = SessionInfo)))]
pub(crate) async fn session_info(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<Identity>,
) -> Json<SessionInfo> {
    let (via, csrf) = match id {
        Identity::Trusted(w) => (w.to_string(), None),
        Identity::Session(c) => ("session".into(), Some(c)),
        Identity::Bearer => ("bearer".into(), None),
        Identity::Anonymous => ("anonymous".into(), None),
    };
    Json(SessionInfo {
        via,
        login_available: credentials_configured(&st),
        csrf_token: csrf,
    })
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
        assert!(!ct_eq("", "a"));
    }

    #[test]
    fn mapped_loopback_counts_as_loopback() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("192.168.1.5".parse().unwrap()));
    }
}
