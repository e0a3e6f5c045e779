//! An HTTP client for polled sources: timeout, retry with backoff and jitter, TLS options, and
//! status codes mapped to [`ErrorKind`]s with the request as context
//! (`"GET /solar_api/v1/GetPowerFlowRealtimeData.fcgi: HTTP 503"`).
//!
//! Query strings are never put into error messages: cloud APIs carry keys there.

use crate::ParseError;
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;
use twc_core::plugin::{BuildError, ErrorKind, PluginError};

/// Per-source HTTP options, the `http` table of a source's section:
/// `http = { timeout_secs = 5, retries = 1, accept_invalid_certs = false }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpOptions {
    /// Whole-request timeout, seconds.
    pub timeout_secs: f64,
    /// Extra attempts after a transient failure (timeout, connection error, 5xx).
    pub retries: u32,
    /// First backoff between attempts, milliseconds; doubles each attempt, with ±50 % jitter.
    pub backoff_ms: u64,
    /// Accept self-signed or otherwise invalid TLS certificates. Only for local gateways that
    /// ship one (Powerwall, Envoy); never on by default.
    pub accept_invalid_certs: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout_secs: 5.0,
            retries: 1,
            backoff_ms: 250,
            accept_invalid_certs: false,
        }
    }
}

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request, cheap to clone so that it can be retried.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body and its content type.
    pub body: Option<(Bytes, &'static str)>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    /// A POST of a JSON body to `url`.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        Request {
            method: Method::Post,
            url: url.into(),
            headers: Vec::new(),
            body: Some((Bytes::from(body.to_string()), "application/json")),
        }
    }
    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Add `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }
    /// Add `Authorization: Basic <base64(user:password)>` (RFC 7617; cloud meter APIs such as
    /// smart-me). Only ever send it over `https://`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let token = base64(format!("{user}:{password}").as_bytes());
        self.header("Authorization", format!("Basic {token}"))
    }
    /// `"GET /path"`, without the query string (which may hold an API key).
    pub fn describe(&self) -> String {
        format!("{} {}", self.method.as_str(), path_of(&self.url))
    }
}

/// A successful (2xx) response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Set-Cookie` header values, for gateways with session cookies.
    pub set_cookies: Vec<String>,
    /// The body.
    pub body: Bytes,
}

/// Standard base64 with padding (RFC 4648 §4), for the Basic scheme.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The path of a URL for messages: no scheme, host, credentials or query.
pub fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Join a base URL and a path with exactly one slash.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Check a configured base URL: `http://` or `https://` and a host.
pub fn check_url(section: &str, key: &str, url: &str) -> Result<(), BuildError> {
    if is_http_url(url) {
        Ok(())
    } else {
        Err(BuildError::new(
            section,
            format!("{key} must be an http:// or https:// URL with a host, got {url:?}"),
        ))
    }
}

/// True for an `http://` or `https://` URL with a host.
pub fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split_once("://")
            .is_some_and(|(_, r)| !r.is_empty() && !r.starts_with('/'))
}

/// An HTTP client bound to one plugin (its name goes into every error).
#[derive(Debug, Clone)]
pub struct HttpClient {
    plugin: String,
    client: reqwest::Client,
    opts: HttpOptions,
}

impl HttpClient {
    /// Build a client. Synchronous; fails on impossible options (named in the error).
    pub fn new(plugin: &str, section: &str, opts: &HttpOptions) -> Result<Self, BuildError> {
        if !(opts.timeout_secs > 0.0 && opts.timeout_secs <= 300.0) {
            return Err(BuildError::new(
                section,
                format!(
                    "http.timeout_secs must be between 0 and 300, got {}",
                    opts.timeout_secs
                ),
            ));
        }
        if opts.retries > 10 {
            return Err(BuildError::new(
                section,
                format!("http.retries must be at most 10, got {}", opts.retries),
            ));
        }
        let timeout = Duration::from_secs_f64(opts.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .tls_danger_accept_invalid_certs(opts.accept_invalid_certs)
            .user_agent(concat!("twcmanager/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError::new(section, format!("cannot create HTTP client: {e}")))?;
        Ok(HttpClient {
            plugin: plugin.to_string(),
            client,
            opts: opts.clone(),
        })
    }

    /// The plugin name used in errors.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Send with retries on transient failures. Non-2xx statuses become errors:
    /// 401/403 → `Auth`, 404 → `Config`, 408/429/5xx and timeouts → `Transient`, other 4xx → `Protocol`.
    pub async fn send(&self, req: &Request) -> Result<Response, PluginError> {
        let mut attempt = 0;
        loop {
            match self.send_once(req).await {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() == ErrorKind::Transient && attempt < self.opts.retries => {
                    let base = self.opts.backoff_ms.saturating_mul(1 << attempt.min(10));
                    let jitter: f64 = rand::random_range(0.5..1.5);
                    let wait = Duration::from_millis((base as f64 * jitter) as u64);
                    tracing::debug!(plugin = %self.plugin, error = %e, attempt, wait_ms = wait.as_millis() as u64, "Retrying request");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send_once(&self, req: &Request) -> Result<Response, PluginError> {
        let what = req.describe();
        let mut b = match req.method {
            Method::Get => self.client.get(&req.url),
            Method::Post => self.client.post(&req.url),
        };
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some((body, ct)) = &req.body {
            b = b.header("Content-Type", *ct).body(body.clone());
        }
        let resp = b.send().await.map_err(|e| self.transport_error(&what, e))?;
        let status = resp.status().as_u16();
        let set_cookies = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(&what, e))?;
        if (200..300).contains(&status) {
            return Ok(Response {
                status,
                set_cookies,
                body,
            });
        }
        let kind = status_kind(status);
        let hint = match kind {
            ErrorKind::Auth => " (check the credentials)",
            ErrorKind::Config => " (check the URL and names in the config)",
            _ => "",
        };
        Err(PluginError::new(
            kind,
            &self.plugin,
            format!("{what}: HTTP {status}{hint}"),
        ))
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> PluginError {
        if is_certificate_error(&e) {
            let hint = if self.opts.accept_invalid_certs {
                ""
            } else {
                "; if this device has a self-signed certificate, set http.accept_invalid_certs = true"
            };
            return PluginError::new(
                ErrorKind::Config,
                &self.plugin,
                format!("{what}: TLS certificate not trusted{hint}"),
            )
            .with_source(e.without_url());
        }
        let why = if e.is_timeout() {
            format!("timed out after {} s", self.opts.timeout_secs)
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else if e.is_body() || e.is_decode() {
            "response body broken off".to_string()
        } else {
            "request failed".to_string()
        };
        PluginError::new(ErrorKind::Transient, &self.plugin, format!("{what}: {why}"))
            .with_source(e.without_url())
    }

    /// GET `url` (with optional extra headers) and return the body.
    pub async fn get_bytes(&self, req: &Request) -> Result<Bytes, PluginError> {
        Ok(self.send(req).await?.body)
    }

    /// Send and parse the body with `parse`; a parse failure becomes an error with the request as
    /// context (usually `Protocol`).
    pub async fn fetch<T>(
        &self,
        req: &Request,
        parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
    ) -> Result<T, PluginError> {
        let body = self.send(req).await?.body;
        parse(&body).map_err(|e| e.into_plugin(&self.plugin, &req.describe()))
    }

    /// Send and parse the body as JSON.
    pub async fn json(&self, req: &Request) -> Result<serde_json::Value, PluginError> {
        self.fetch(req, crate::num::json).await
    }

    /// Send and return the body as UTF-8 text.
    pub async fn text(&self, req: &Request) -> Result<String, PluginError> {
        self.fetch(req, |b| {
            String::from_utf8(b.to_vec()).map_err(|_| ParseError::protocol("body is not UTF-8"))
        })
        .await
    }
}

/// True when the request failed because the server's TLS certificate was refused.
fn is_certificate_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("unknownissuer") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// What an HTTP error status means for the engine.
pub fn status_kind(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::Config,
        408 | 429 => ErrorKind::Transient,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_hide_hosts_and_queries() {
        assert_eq!(
            path_of("http://user:pw@10.0.0.1/solar_api/v1/x.fcgi?Scope=System"),
            "/solar_api/v1/x.fcgi"
        );
        assert_eq!(path_of("https://h"), "/");
        assert_eq!(
            path_of("https://h/site/1/currentPowerFlow?api_key=SECRET"),
            "/site/1/currentPowerFlow"
        );
        assert_eq!(join("http://h/", "/a"), "http://h/a");
        assert_eq!(join("http://h", "a"), "http://h/a");
    }

    #[test]
    fn basic_auth_is_rfc7617_base64() {
        // RFC 7617 §2's example, and the three padding cases of RFC 4648 §10.
        let r = Request::get("https://h/").basic_auth("Aladdin", "open sesame");
        assert_eq!(
            r.headers,
            vec![(
                "Authorization".to_string(),
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string()
            )]
        );
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn statuses() {
        assert_eq!(status_kind(401), ErrorKind::Auth);
        assert_eq!(status_kind(403), ErrorKind::Auth);
        assert_eq!(status_kind(404), ErrorKind::Config);
        assert_eq!(status_kind(503), ErrorKind::Transient);
        assert_eq!(status_kind(400), ErrorKind::Protocol);
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("ems.x", "url", "http://192.168.1.2").is_ok());
        assert!(check_url("ems.x", "url", "https://h:8443/base").is_ok());
        let e = check_url("ems.x", "url", "192.168.1.2").unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
        assert!(check_url("ems.x", "url", "http://").is_err());
    }

    #[test]
    fn bad_options_are_named() {
        let o = HttpOptions {
            timeout_secs: 0.0,
            ..HttpOptions::default()
        };
        let e = HttpClient::new("x", "ems.x", &o).unwrap_err();
        assert!(e.to_string().contains("http.timeout_secs"), "{e}");
    }
}
