#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use twc_core::model::Status;
use twc_core::plugin::{
    BuildError, ErrorKind, PluginConfig, PluginError, Secret, StatusPlugin, StatusPublisher,
};
use twc_plugin_kit::compat::{CompatValue, status_values};

const PLUGIN: &str = "hass";

/// `[status.hass]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HassStatusConfig {
    /// Home Assistant's base URL, e.g. `http://homeassistant.local:8123`.
    pub url: String,
    /// A long-lived access token (HA profile → Security).
    pub token: Secret,
    /// Send changed values in one batch every this many seconds (TWCManager's
    /// `msgRateInSeconds`).
    pub batch_secs: u64,
    /// Send every value again after this many seconds, so HA has it after its own restart
    /// (`resendRateInSeconds`).
    pub resend_secs: u64,
    /// After an error, try again after this many seconds (`retryRateInSeconds`).
    pub retry_secs: u64,
    /// Timeout of one request, seconds.
    pub timeout_secs: u64,
}

impl Default for HassStatusConfig {
    fn default() -> Self {
        HassStatusConfig {
            url: String::new(),
            token: Secret::default(),
            batch_secs: 60,
            resend_secs: 3600,
            retry_secs: 60,
            timeout_secs: 5,
        }
    }
}

/// One HA state to set: `POST /api/states/<entity>` with `body`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorState {
    /// `sensor.twcmanager_<ident>_<snake_key>`.
    pub entity: String,
    /// `{"state": …, "attributes": {…}}`.
    pub body: Value,
}

/// The entity id TWCManager uses: `sensor.twcmanager_<ident>_<snake_key>` (lower case).
pub fn entity_id(v: &CompatValue) -> String {
    format!(
        "sensor.twcmanager_{}_{}",
        v.ident.to_ascii_lowercase(),
        v.snake
    )
}

/// Every sensor state for one snapshot.
pub fn render(status: &Status) -> Vec<SensorState> {
    status_values(status)
        .iter()
        .map(|v| {
            let mut attributes = json!({ "friendly_name": format!("TWC {} {}", v.ident, v.key) });
            if let Some(u) = v.unit {
                attributes["unit_of_measurement"] = json!(u);
                if let Some(c) = v.device_class() {
                    attributes["device_class"] = json!(c);
                }
                if let Some(c) = v.state_class() {
                    attributes["state_class"] = json!(c);
                }
            }
            SensorState {
                entity: entity_id(v),
                body: json!({ "state": v.value, "attributes": attributes }),
            }
        })
        .collect()
}

struct Shared {
    latest: Mutex<BTreeMap<String, Value>>,
    notify: Notify,
}

/// The publisher: `publish` records the latest states; its own task sends them to HA in batches.
pub struct HassStatus {
    cfg: HassStatusConfig,
    base: String,
    client: reqwest::Client,
    shared: Arc<Shared>,
    started: OnceLock<()>,
}

impl HassStatus {
    /// Build from a parsed config (`section` names it in errors).
    pub fn new(section: &str, cfg: HassStatusConfig) -> Result<Self, BuildError> {
        let base = cfg.url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(BuildError::new(
                section,
                format!(
                    "url must be Home Assistant's base URL such as \"http://homeassistant.local:8123\", got {:?}",
                    cfg.url
                ),
            ));
        }
        if cfg.token.is_empty() {
            return Err(BuildError::new(
                section,
                "token must be a long-lived access token (HA: profile → Security)",
            ));
        }
        for (key, v) in [
            ("batch_secs", cfg.batch_secs),
            ("resend_secs", cfg.resend_secs),
            ("retry_secs", cfg.retry_secs),
            ("timeout_secs", cfg.timeout_secs),
        ] {
            if v == 0 {
                return Err(BuildError::new(
                    section,
                    format!("{key} must be at least 1"),
                ));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .build()
            .map_err(|e| BuildError::new(section, format!("http client: {e}")))?;
        Ok(HassStatus {
            cfg,
            base,
            client,
            shared: Arc::new(Shared {
                latest: Mutex::new(BTreeMap::new()),
                notify: Notify::new(),
            }),
            started: OnceLock::new(),
        })
    }

    fn ensure_started(&self) {
        self.started.get_or_init(|| {
            twc_core::plugin::spawn(sender(
                self.client.clone(),
                self.base.clone(),
                self.cfg.clone(),
                self.shared.clone(),
            ));
        });
    }
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    token: &Secret,
    entity: &str,
    body: &Value,
) -> Result<(), PluginError> {
    let url = format!("{base}/api/states/{entity}");
    let r = client
        .post(&url)
        .bearer_auth(token.expose())
        .json(body)
        .send()
        .await
        .map_err(|e| {
            PluginError::new(
                ErrorKind::Transient,
                PLUGIN,
                format!("POST /api/states/{entity}"),
            )
            .with_source(e)
        })?;
    let code = r.status();
    if code.is_success() {
        return Ok(());
    }
    let kind = if code.as_u16() == 401 || code.as_u16() == 403 {
        ErrorKind::Auth
    } else {
        ErrorKind::Transient
    };
    Err(PluginError::new(
        kind,
        PLUGIN,
        format!("POST /api/states/{entity}: HTTP {}", code.as_u16()),
    ))
}

async fn sender(client: reqwest::Client, base: String, cfg: HassStatusConfig, shared: Arc<Shared>) {
    let batch = Duration::from_secs(cfg.batch_secs);
    let resend = Duration::from_secs(cfg.resend_secs);
    let retry = Duration::from_secs(cfg.retry_secs);
    let mut sent: HashMap<String, (Value, Instant)> = HashMap::new();
    let mut failing = false;
    loop {
        let latest: Vec<(String, Value)> = match shared.latest.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return,
        };
        if latest.is_empty() {
            shared.notify.notified().await;
            continue;
        }
        let now = Instant::now();
        let mut error: Option<PluginError> = None;
        let mut count = 0usize;
        for (entity, body) in latest {
            let due = match sent.get(&entity) {
                Some((b, at)) => *b != body || now.duration_since(*at) >= resend,
                None => true,
            };
            if !due {
                continue;
            }
            match post(&client, &base, &cfg.token, &entity, &body).await {
                Ok(()) => {
                    count += 1;
                    sent.insert(entity, (body, Instant::now()));
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let wait = match error {
            Some(e) => {
                if !failing {
                    failing = true;
                    if e.kind() == ErrorKind::Auth {
                        warn!(plugin = PLUGIN, error = %e.chain(), "Home Assistant refused the token; retrying");
                    } else {
                        warn!(plugin = PLUGIN, error = %e.chain(), "Home Assistant did not take the states; retrying");
                    }
                } else {
                    debug!(plugin = PLUGIN, error = %e.chain(), "Home Assistant still failing");
                }
                retry
            }
            None => {
                if failing {
                    failing = false;
                    info!(plugin = PLUGIN, "Home Assistant takes states again");
                }
                if count > 0 {
                    debug!(plugin = PLUGIN, count, "Sent states to Home Assistant");
                }
                batch
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[twc_core::async_trait]
impl StatusPublisher for HassStatus {
    async fn publish(&self, status: &Status) -> Result<(), PluginError> {
        self.ensure_started();
        let states = render(status);
        {
            let mut latest = self.shared.latest.lock().map_err(|_| {
                PluginError::new(ErrorKind::Protocol, PLUGIN, "status state lock poisoned")
            })?;
            for s in states {
                latest.insert(s.entity, s.body);
            }
        }
        self.shared.notify.notify_one();
        Ok(())
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn StatusPublisher>, BuildError> {
    let c: HassStatusConfig = cfg.parse()?;
    Ok(Box::new(HassStatus::new(&cfg.section, c)?))
}

inventory::submit! {
    StatusPlugin {
        name: PLUGIN,
        summary: "Home Assistant REST states: TWCManager's sensor.twcmanager_<ident>_<key> sensors",
        example: include_str!("../example.toml"),
        build,
    }
}
