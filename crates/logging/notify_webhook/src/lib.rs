#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use twc_core::plugin::{BuildError, Logger, LoggingPlugin, PluginConfig, Secret};
use twc_plugin_kit::notify::{Channel, Message, Notifier, NotifyOptions, check_url};

/// The registry name: the section is `[logging.notify_webhook]`, the bin's feature
/// `logging-notify_webhook`.
pub const NAME: &str = "notify_webhook";

/// The keys of `[logging.notify_webhook]` besides the common ones ([`NotifyOptions`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    #[serde(default)]
    pub url: String,
    /// Sent as `Authorization: Bearer <bearer_token>`; empty = no header.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
}

/// POSTs each notification as JSON.
pub struct Webhook {
    url: String,
    token: Option<Secret>,
}

impl Channel for Webhook {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `{"topic", "title", "body", "priority", "tags", "at", "event"}`.
    fn request(&self, http: &reqwest::Client, m: &Message) -> reqwest::RequestBuilder {
        let req = http.post(&self.url).json(m);
        match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    }

    fn credentials_key(&self) -> &'static str {
        "[logging.notify_webhook] bearer_token"
    }
}

/// Check `[logging.notify_webhook]`; the error names the key.
pub fn config(cfg: &PluginConfig) -> Result<(NotifyOptions, WebhookConfig), BuildError> {
    let (opts, own) = NotifyOptions::split(cfg)?;
    let c: WebhookConfig = own.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    Ok((opts, c))
}

/// The notifier for `[logging.notify_webhook]`.
pub fn notifier(cfg: &PluginConfig) -> Result<Notifier<Webhook>, BuildError> {
    let (opts, c) = config(cfg)?;
    Ok(Notifier::new(
        Webhook {
            url: c.url,
            token: c.bearer_token.filter(|t| !t.is_empty()),
        },
        opts,
    ))
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    Ok(Box::new(notifier(cfg)?))
}

inventory::submit! {
    LoggingPlugin {
        name: NAME,
        summary: "Notifications as JSON POSTs to any URL: session start/end, plan missed, faults",
        example: include_str!("../example.toml"),
        build,
    }
}
