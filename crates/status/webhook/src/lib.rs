#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use std::sync::Mutex;
use std::time::Duration;
use tracing::{info, warn};
use twc_core::model::Status;
use twc_core::plugin::{BuildError, PluginConfig, PluginError, StatusPlugin, StatusPublisher};
use twc_core::policy::{RulesConfig, Webhook, webhooks_for_change};

const PLUGIN: &str = "webhook";

/// `[status.webhook]`, or `[policy] webhooks` and `webhook_timeout_secs` (see [`from_policy`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The hooks, as `[[policy.webhooks]]`.
    pub webhooks: Vec<Webhook>,
    /// Timeout of one call, seconds.
    pub timeout_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            webhooks: Vec::new(),
            timeout_secs: 10,
        }
    }
}

/// The plugin's config from the `[policy]` keys (`webhooks`, `webhook_timeout_secs`).
pub fn from_policy(rules: &RulesConfig) -> WebhookConfig {
    WebhookConfig {
        webhooks: rules.webhooks.clone(),
        timeout_secs: rules.webhook_timeout_secs,
    }
}

/// Calls the webhooks when the policy in the status snapshots changes.
pub struct WebhookPublisher {
    hooks: Vec<Webhook>,
    timeout: Duration,
    client: Mutex<Option<reqwest::Client>>,
    /// The policy of the last snapshot seen (`None` before the first).
    last: Mutex<Option<String>>,
}

impl WebhookPublisher {
    /// A publisher for `cfg`.
    pub fn new(cfg: WebhookConfig) -> Self {
        WebhookPublisher {
            hooks: cfg.webhooks,
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            client: Mutex::new(None),
            last: Mutex::new(None),
        }
    }

    fn client(&self) -> Option<reqwest::Client> {
        let mut g = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            match reqwest::Client::builder().timeout(self.timeout).build() {
                Ok(c) => *g = Some(c),
                Err(e) => warn!(error = %e, "Cannot create the HTTP client for webhooks"),
            }
        }
        g.clone()
    }
}

#[async_trait::async_trait]
impl StatusPublisher for WebhookPublisher {
    async fn publish(&self, status: &Status) -> Result<(), PluginError> {
        let name = status.policy.name.as_str();
        if name.is_empty() {
            return Ok(());
        }
        let prev = {
            let mut g = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if g.as_deref() == Some(name) {
                return Ok(());
            }
            g.replace(name.to_string())
        };
        let due = webhooks_for_change(&self.hooks, prev.as_deref(), name);
        if due.is_empty() {
            return Ok(());
        }
        let Some(client) = self.client() else {
            return Ok(());
        };
        let body = serde_json::to_value(status).unwrap_or_default();
        for (hook, event) in due {
            let client = client.clone();
            let body = body.clone();
            let policy = name.to_string();
            twc_core::plugin::spawn(async move {
                let req = if hook.method.eq_ignore_ascii_case("GET") {
                    client.get(&hook.url)
                } else {
                    client.post(&hook.url).json(&body)
                };
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        info!(url = %hook.url, event = %event, policy = %policy, "Webhook called")
                    }
                    Ok(r) => {
                        warn!(url = %hook.url, event = %event, status = r.status().as_u16(), "Webhook answered with an error")
                    }
                    Err(e) => warn!(url = %hook.url, event = %event, error = %e, "Webhook failed"),
                }
            });
        }
        Ok(())
    }

    fn min_interval(&self) -> Option<Duration> {
        // Every policy change counts, not only the latest one per second.
        Some(Duration::ZERO)
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn StatusPublisher>, BuildError> {
    let c: WebhookConfig = cfg.parse()?;
    for (i, w) in c.webhooks.iter().enumerate() {
        if !matches!(w.event.as_str(), "enter" | "exit") {
            return Err(BuildError::new(
                &cfg.section,
                format!(
                    "webhooks[{i}].event = {:?}: expected \"enter\" or \"exit\"",
                    w.event
                ),
            ));
        }
        if !(w.method.eq_ignore_ascii_case("GET") || w.method.eq_ignore_ascii_case("POST")) {
            return Err(BuildError::new(
                &cfg.section,
                format!(
                    "webhooks[{i}].method = {:?}: expected \"GET\" or \"POST\"",
                    w.method
                ),
            ));
        }
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            return Err(BuildError::new(
                &cfg.section,
                format!(
                    "webhooks[{i}].url = {:?}: expected an http:// or https:// URL",
                    w.url
                ),
            ));
        }
    }
    Ok(Box::new(WebhookPublisher::new(c)))
}

/// The plugin's config as a [`PluginConfig`] for `section` (the bin builds it from `[policy]`).
pub fn plugin_config(section: &str, cfg: &WebhookConfig) -> PluginConfig {
    let mut values = serde_json::Map::new();
    values.insert(
        "webhooks".into(),
        serde_json::to_value(&cfg.webhooks).unwrap_or_default(),
    );
    values.insert("timeout_secs".into(), cfg.timeout_secs.into());
    PluginConfig::new(section, values)
}

inventory::submit! {
    StatusPlugin {
        name: PLUGIN,
        summary: "HTTP calls when a policy becomes active or stops being active ([policy] webhooks)",
        example: include_str!("../example.toml"),
        build,
    }
}
