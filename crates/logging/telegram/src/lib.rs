#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use std::time::Duration;
use twc_core::plugin::{BuildError, Logger, LoggingPlugin, PluginConfig, Secret};
use twc_plugin_kit::notify::{Channel, Message, Notifier, NotifyOptions, Priority, check_url};

/// The registry name: the section is `[logging.telegram]`, the bin's feature `logging-telegram`.
pub const NAME: &str = "telegram";

/// A chat: its numeric id, or `@channelusername`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    /// A numeric id (negative for groups).
    Id(i64),
    /// `"@channelusername"` (or the id as text).
    Name(String),
}

/// The keys of `[logging.telegram]` besides the common ones ([`NotifyOptions`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot's token from @BotFather (`123456:ABC-…`).
    #[serde(default)]
    pub bot_token: Secret,
    /// The chat to write to.
    pub chat_id: Option<ChatId>,
    /// The Bot API server.
    #[serde(default = "default_api")]
    pub api_url: String,
}

fn default_api() -> String {
    "https://api.telegram.org".into()
}

/// Calls `sendMessage` of the Bot API.
pub struct Telegram {
    api_url: String,
    token: Secret,
    chat_id: serde_json::Value,
}

impl Channel for Telegram {
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self, http: &reqwest::Client, m: &Message) -> reqwest::RequestBuilder {
        // The token is part of the path: the worker never logs a URL.
        let url = format!("{}/bot{}/sendMessage", self.api_url, self.token.expose());
        http.post(url).json(&serde_json::json!({
            "chat_id": self.chat_id,
            "text": format!("{}\n{}", m.title, m.body),
            "disable_notification": m.priority == Priority::Low,
        }))
    }

    fn credentials_key(&self) -> &'static str {
        "[logging.telegram] bot_token"
    }

    /// `{"ok":false,"error_code":429,"parameters":{"retry_after":N}}`.
    fn retry_after_in_body(&self, body: &str) -> Option<Duration> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        v.pointer("/parameters/retry_after")?
            .as_u64()
            .map(Duration::from_secs)
    }
}

/// Check `[logging.telegram]`; the error names the key.
pub fn config(cfg: &PluginConfig) -> Result<(NotifyOptions, TelegramConfig), BuildError> {
    let (opts, own) = NotifyOptions::split(cfg)?;
    let c: TelegramConfig = own.parse()?;
    check_url(&cfg.section, "api_url", &c.api_url)?;
    let t = c.bot_token.expose();
    let ok = t.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty()
            && id.chars().all(|ch| ch.is_ascii_digit())
            && !rest.is_empty()
            && rest
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    });
    if !ok {
        // Never the value: it is a secret.
        return Err(BuildError::new(
            &cfg.section,
            "bot_token: expected the token @BotFather gave, \"<digits>:<letters, digits, - or _>\"",
        ));
    }
    match &c.chat_id {
        Some(ChatId::Id(_)) => {}
        Some(ChatId::Name(s))
            if (s.starts_with('@') && s.len() > 1)
                || (!s.is_empty()
                    && s.trim_start_matches('-')
                        .chars()
                        .all(|c| c.is_ascii_digit())) => {}
        other => {
            return Err(BuildError::new(
                &cfg.section,
                format!("chat_id = {other:?}: expected a numeric chat id or \"@channelusername\""),
            ));
        }
    }
    Ok((opts, c))
}

/// The notifier for `[logging.telegram]`.
pub fn notifier(cfg: &PluginConfig) -> Result<Notifier<Telegram>, BuildError> {
    let (opts, c) = config(cfg)?;
    let chat_id = match c.chat_id {
        Some(ChatId::Id(i)) => serde_json::json!(i),
        Some(ChatId::Name(s)) => serde_json::json!(s),
        None => serde_json::Value::Null,
    };
    Ok(Notifier::new(
        Telegram {
            api_url: c.api_url.trim_end_matches('/').to_string(),
            token: c.bot_token,
            chat_id,
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
        summary: "Notifications through a Telegram bot: session start/end, plan missed, faults",
        example: include_str!("../example.toml"),
        build,
    }
}
