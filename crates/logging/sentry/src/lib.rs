#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Mutex;
use twc_core::logging::{Mute, RecordType, describe, event_time};
use twc_core::model::Event;
use twc_core::plugin::{
    BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError, Secret,
};

const NAME: &str = "sentry";
const CLIENT: &str = concat!("twcmanager/", env!("CARGO_PKG_VERSION"));

/// `[logging.sentry]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentryConfig {
    /// The DSN; `SENTRY_DSN` when absent.
    #[serde(default)]
    pub dsn: Option<Secret>,
    /// Environment tag.
    #[serde(default = "default_env")]
    pub environment: String,
    /// Installation name.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Breadcrumbs kept.
    #[serde(default = "default_crumbs")]
    pub max_breadcrumbs: usize,
    /// Request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Per-type mute switches.
    #[serde(default = "default_mute")]
    pub mute: Mute,
}

fn default_env() -> String {
    "production".into()
}
fn default_crumbs() -> usize {
    100
}
fn default_timeout() -> u64 {
    10
}
fn default_mute() -> Mute {
    Mute {
        green_energy: true,
        slave_status: true,
        ..Mute::default()
    }
}

/// A parsed DSN: where to post envelopes and the key to sign them with.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    /// `…/api/<project>/envelope/`.
    pub envelope_url: String,
    /// The public key.
    pub key: Secret,
    raw: Secret,
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dsn({})", self.envelope_url)
    }
}

impl Dsn {
    /// Parse `scheme://key[:secret]@host[:port][/path]/project`.
    pub fn parse(s: &str) -> Result<Dsn, String> {
        let bad = |why: &str| {
            format!("dsn is not a Sentry DSN ({why}); expected https://<key>@<host>/<project>")
        };
        let (scheme, rest) = s.trim().split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let (auth, hostpath) = rest.rsplit_once('@').ok_or_else(|| bad("no key"))?;
        let key = auth.split(':').next().unwrap_or_default();
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        let hostpath = hostpath.trim_end_matches('/');
        let (base, project) = hostpath
            .rsplit_once('/')
            .ok_or_else(|| bad("no project id"))?;
        if project.is_empty()
            || !project.chars().all(|c| c.is_ascii_alphanumeric())
            || base.is_empty()
        {
            return Err(bad("bad project id"));
        }
        Ok(Dsn {
            envelope_url: format!("{scheme}://{base}/api/{project}/envelope/"),
            key: Secret::new(key),
            raw: Secret::new(s.trim()),
        })
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How an event goes to Sentry.
fn level(e: &Event) -> Option<&'static str> {
    match e {
        Event::Fault { .. } => Some("error"),
        Event::SlaveTimedOut { .. } => Some("warning"),
        _ => None,
    }
}

/// The Sentry event sink.
pub struct SentrySink {
    cfg: SentryConfig,
    dsn: Dsn,
    http: reqwest::Client,
    crumbs: Mutex<VecDeque<Value>>,
}

impl SentrySink {
    /// A sink posting to `dsn`.
    pub fn new(cfg: SentryConfig, dsn: Dsn) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .user_agent(CLIENT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(SentrySink {
            cfg,
            dsn,
            http,
            crumbs: Mutex::new(VecDeque::new()),
        })
    }

    /// The envelope for one Sentry event.
    pub fn envelope(&self, e: &Event, level: &str, crumbs: &VecDeque<Value>) -> (String, String) {
        let id = format!("{:032x}", rand::random::<u128>());
        let mut tags = serde_json::Map::new();
        tags.insert("record".into(), json!(RecordType::of(e).as_str()));
        match e {
            Event::Fault { component, .. } => {
                tags.insert("component".into(), json!(component));
            }
            Event::SlaveTimedOut { slave, .. } => {
                tags.insert("slave".into(), json!(slave.to_string()));
            }
            _ => {}
        }
        let mut payload = json!({
            "event_id": id,
            "timestamp": ts(event_time(e)),
            "platform": "other",
            "level": level,
            "logger": "twcmanager",
            "release": CLIENT.replace('/', "@"),
            "environment": self.cfg.environment,
            "message": { "formatted": describe(e) },
            "tags": tags,
            "extra": { "event": e },
            "breadcrumbs": { "values": crumbs.iter().collect::<Vec<_>>() },
        });
        if let Some(s) = &self.cfg.server_name {
            payload["server_name"] = json!(s);
        }
        let body = payload.to_string();
        let header =
            json!({ "event_id": id, "dsn": self.dsn.raw.expose(), "sent_at": ts(Utc::now()) });
        let item =
            json!({ "type": "event", "length": body.len(), "content_type": "application/json" });
        (id, format!("{header}\n{item}\n{body}\n"))
    }

    fn breadcrumb(e: &Event) -> Value {
        json!({
            "timestamp": ts(event_time(e)),
            "type": "default",
            "category": RecordType::of(e).as_str(),
            "level": "info",
            "message": describe(e),
        })
    }
}

#[async_trait]
impl Logger for SentrySink {
    async fn record(&self, e: &Event) -> Result<(), PluginError> {
        if !self.cfg.mute.allows(e) {
            return Ok(());
        }
        let mut crumbs = self.crumbs.lock().await;
        let Some(level) = level(e) else {
            crumbs.push_back(Self::breadcrumb(e));
            while crumbs.len() > self.cfg.max_breadcrumbs {
                crumbs.pop_front();
            }
            return Ok(());
        };
        let (id, body) = self.envelope(e, level, &crumbs);
        let auth = format!(
            "Sentry sentry_version=7, sentry_client={CLIENT}, sentry_key={}",
            self.dsn.key.expose()
        );
        let resp = self
            .http
            .post(&self.dsn.envelope_url)
            .header("X-Sentry-Auth", auth)
            .header("Content-Type", "application/x-sentry-envelope")
            .body(body)
            .send()
            .await
            .map_err(|err| {
                PluginError::new(ErrorKind::Transient, NAME, "posting an event").with_source(err)
            })?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => {
                // Like the SDKs, the breadcrumbs stay for the next event too.
                tracing::debug!(kind = "logging", plugin = NAME, event_id = %id, "Event sent to Sentry");
                Ok(())
            }
            401 | 403 => Err(PluginError::new(
                ErrorKind::Auth,
                NAME,
                format!("Sentry refused the DSN's key: HTTP {status}"),
            )),
            400 | 413 => {
                // A permanent rejection of this one event: retrying cannot help.
                tracing::warn!(kind = "logging", plugin = NAME, status = %status, "Sentry rejected an event; skipping it");
                Ok(())
            }
            _ => Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!("posting an event: HTTP {status}"),
            )),
        }
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    let c: SentryConfig = cfg.parse()?;
    let raw = match &c.dsn {
        Some(d) if !d.is_empty() => d.expose().to_string(),
        _ => std::env::var("SENTRY_DSN").map_err(|_| {
            BuildError::new(
                &cfg.section,
                "dsn: set dsn = \"https://<key>@<host>/<project>\" or SENTRY_DSN",
            )
        })?,
    };
    let dsn = Dsn::parse(&raw).map_err(|m| BuildError::new(&cfg.section, m))?;
    let sink = SentrySink::new(c, dsn).map_err(|m| BuildError::new(&cfg.section, m))?;
    Ok(Box::new(sink))
}

inventory::submit! {
    LoggingPlugin { name: NAME, summary: "Sentry: faults as events, other records as breadcrumbs (DSN from config or SENTRY_DSN)",
        example: include_str!("../example.toml"), build }
}
