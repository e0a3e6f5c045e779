//! The WebSocket to the central system: `ws://` or `wss://` (rustls), subprotocol `ocpp1.6`,
//! HTTP basic auth (OCPP 1.6 security profiles 1 and 2).

use base64::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use twc_core::plugin::BuildError;

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The open WebSocket.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// Where and how to connect, checked at build time.
#[derive(Clone)]
pub struct Target {
    /// `ws://host:port/path/<charge point id>`.
    pub url: String,
    host: String,
    port: u16,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    auth: Option<HeaderValue>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Target({}, tls: {}, auth: {})",
            self.url,
            self.tls.is_some(),
            self.auth.is_some()
        )
    }
}

const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn roots(section: &str, path: &Path) -> Result<rustls::RootCertStore, BuildError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let err = |m: String| BuildError::new(section, format!("ca_file {:?} {m}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(path).map_err(|e| err(format!("cannot be read: {e}")))?
    {
        let cert = cert.map_err(|e| err(format!("is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("holds a bad certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(err("holds no certificate".into()));
    }
    Ok(roots)
}

impl Target {
    /// Check the URL and credentials. `url` is the central system's endpoint; the charge point
    /// id is appended as the last path segment (as OCPP-J §3.1.1 says).
    pub fn new(
        section: &str,
        url: &str,
        charge_point_id: &str,
        username: &str,
        password: &str,
        ca_file: &str,
    ) -> Result<Target, BuildError> {
        let bad = |m: String| BuildError::new(section, m);
        if charge_point_id.is_empty()
            || charge_point_id.len() > 48
            || !charge_point_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(bad(format!(
                "charge_point_id must be 1 to 48 characters of letters, digits, - _ . :, got {charge_point_id:?}"
            )));
        }
        let (tls, rest) = if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else {
            return Err(bad(format!(
                "url must start with ws:// or wss://, such as \"ws://homeassistant.local:9000\", got {url:?}"
            )));
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| bad(format!("url {url:?}: bad port {p:?}")))?;
                (h, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(bad(format!("url {url:?} has no host")));
        }
        let full = format!("{}/{charge_point_id}", url.trim_end_matches('/'));
        let tls = if tls {
            let path = if ca_file.is_empty() {
                SYSTEM_CA_BUNDLES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.exists())
                    .ok_or_else(|| {
                        bad(
                            "wss:// needs CA certificates: no system bundle was found; set ca_file"
                                .into(),
                        )
                    })?
            } else {
                PathBuf::from(ca_file)
            };
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| bad(format!("tls: {e}")))?
                .with_root_certificates(roots(section, &path)?)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| bad(format!("url {url:?}: {e}")))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        let auth = if password.is_empty() {
            None
        } else {
            let user = if username.is_empty() {
                charge_point_id
            } else {
                username
            };
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Some(
                HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|e| bad(format!("username: {e}")))?,
            )
        };
        Ok(Target {
            url: full,
            host,
            port,
            tls,
            auth,
        })
    }

    /// Open the WebSocket.
    pub async fn connect(&self) -> Result<Ws, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((cfg, name)) => Box::new(
                tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("tls with {}: {e}", self.host))?,
            ),
        };
        let mut req = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{}: {e}", self.url))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("ocpp1.6"),
        );
        if let Some(a) = &self.auth {
            req.headers_mut().insert("Authorization", a.clone());
        }
        let (ws, resp) = tokio_tungstenite::client_async(req, io)
            .await
            .map_err(|e| format!("websocket handshake with {}: {e}", self.url))?;
        let proto = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if proto != Some("ocpp1.6") {
            return Err(format!(
                "{} did not accept the subprotocol ocpp1.6 (answered {proto:?})",
                self.url
            ));
        }
        Ok(ws)
    }
}
