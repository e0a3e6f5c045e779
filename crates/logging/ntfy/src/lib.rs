#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use twc_core::plugin::{BuildError, Logger, LoggingPlugin, PluginConfig, Secret};
use twc_plugin_kit::notify::{Channel, Message, Notifier, NotifyOptions, Priority, check_url};

/// The registry name: the section is `[logging.ntfy]`, the bin's feature `logging-ntfy`.
pub const NAME: &str = "ntfy";

/// The keys of `[logging.ntfy]` besides the common ones ([`NotifyOptions`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyConfig {
    /// The ntfy server.
    #[serde(default = "default_server")]
    pub server: String,
    /// The topic to publish to.
    #[serde(default)]
    pub topic: String,
    /// An access token (`tk_…`) for a protected topic; empty = none.
    #[serde(default)]
    pub token: Option<Secret>,
}

fn default_server() -> String {
    "https://ntfy.sh".into()
}

/// Publishes to `<server>/<topic>`.
#[derive(Debug)]
pub struct Ntfy {
    url: String,
    token: Option<Secret>,
}

impl Channel for Ntfy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, http: &reqwest::Client, m: &Message) -> reqwest::RequestBuilder {
        let priority = match m.priority {
            Priority::Low => "2",
            Priority::Default => "3",
            Priority::High => "4",
        };
        let mut req = http
            .post(&self.url)
            .header("Title", ascii(&m.title))
            .header("Priority", priority)
            .header("Tags", m.tags.join(","))
            .body(m.body.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        req
    }

    fn credentials_key(&self) -> &'static str {
        "[logging.ntfy] token (and that it may publish to the topic)"
    }
}

/// A header value: ntfy reads headers as ASCII.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Check `[logging.ntfy]`; the error names the key.
pub fn config(cfg: &PluginConfig) -> Result<(NotifyOptions, NtfyConfig), BuildError> {
    let (opts, own) = NotifyOptions::split(cfg)?;
    let c: NtfyConfig = own.parse()?;
    check_url(&cfg.section, "server", &c.server)?;
    if c.topic.is_empty()
        || !c
            .topic
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        || c.topic.len() > 64
    {
        return Err(BuildError::new(
            &cfg.section,
            format!(
                "topic = {:?}: expected 1 to 64 letters, digits, '-' or '_'",
                c.topic
            ),
        ));
    }
    Ok((opts, c))
}

/// The notifier for `[logging.ntfy]`.
pub fn notifier(cfg: &PluginConfig) -> Result<Notifier<Ntfy>, BuildError> {
    let (opts, c) = config(cfg)?;
    let channel = Ntfy {
        url: format!("{}/{}", c.server.trim_end_matches('/'), c.topic),
        token: c.token.filter(|t| !t.is_empty()),
    };
    Ok(Notifier::new(channel, opts))
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    Ok(Box::new(notifier(cfg)?))
}

inventory::submit! {
    LoggingPlugin {
        name: NAME,
        summary: "Notifications through ntfy: session start/end, plan missed, faults",
        example: include_str!("../example.toml"),
        build,
    }
}
