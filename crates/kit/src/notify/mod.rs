//! Notifications to a person (ntfy, Telegram, a generic webhook): the part every channel shares.
//!
//! A notification plugin is an event sink ([`Logger`]) whose [`Logger::record`] only turns an
//! event into a [`Message`] ([`message_for`]), filters it (enabled topics, dedupe window, hourly
//! cap) and puts it on a bounded queue with `try_send`: it never waits, so neither the sink's
//! queue nor the engine ever waits for a notification service. One worker task per plugin sends
//! the queue in order through the plugin's [`Channel`], retrying 5xx answers, timeouts and
//! connection errors with exponential backoff and honouring `429 Retry-After`. A refused
//! credential (401/403) or another 4xx is an error naming the key to check, never retried.
//! Nothing here logs a URL or a header: the Telegram bot token is part of its URL.

mod message;

pub use message::{Message, Priority, Topic, message_for, session_extras, session_summary};

use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use twc_core::model::Event;
use twc_core::plugin::{BuildError, Logger, PluginConfig, PluginError};

/// The keys every notification plugin has besides its own.
pub const COMMON_KEYS: [&str; 7] = [
    "events",
    "dedupe_secs",
    "max_per_hour",
    "queue_size",
    "retries",
    "timeout_secs",
    "max_retry_after_secs",
];

/// Longest wait between two attempts without a `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// First wait after a failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// How long `flush` (shutdown) waits for the queue to drain.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

/// The common keys of `[logging.<notifier>]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyOptions {
    /// Enabled topics by name (`session_started`, `session_ended`, `plan_missed`, `fault`).
    pub events: Vec<String>,
    /// A notification equal to one sent less than this long ago is not sent again, s (a
    /// flapping fault; 0 = off).
    pub dedupe_secs: u64,
    /// At most this many notifications per rolling hour; the rest are dropped and counted.
    pub max_per_hour: u32,
    /// Notifications waiting to be sent at most; when full, new ones are dropped and counted.
    pub queue_size: usize,
    /// Further attempts after a 5xx, a 429, a timeout or a connection error.
    pub retries: u32,
    /// Timeout of one attempt, s.
    pub timeout_secs: u64,
    /// A longer `Retry-After` than this gives the notification up, s.
    pub max_retry_after_secs: u64,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            events: Topic::ALL.iter().map(|t| t.as_str().to_string()).collect(),
            dedupe_secs: 900,
            max_per_hour: 30,
            queue_size: 32,
            retries: 5,
            timeout_secs: 10,
            max_retry_after_secs: 3600,
        }
    }
}

impl NotifyOptions {
    /// Split the common keys off a plugin's section: the checked options and the plugin's own
    /// keys (for its `#[serde(deny_unknown_fields)]` struct).
    pub fn split(cfg: &PluginConfig) -> Result<(NotifyOptions, PluginConfig), BuildError> {
        let mut own = cfg.clone();
        let mut common = serde_json::Map::new();
        for k in COMMON_KEYS {
            if let Some(v) = own.values.remove(k) {
                common.insert(k.to_string(), v);
            }
        }
        let o: NotifyOptions = PluginConfig::new(cfg.section.clone(), common).parse()?;
        o.validate(&cfg.section)?;
        Ok((o, own))
    }

    /// Check ranges and names; the error names the key and what it expects.
    pub fn validate(&self, section: &str) -> Result<(), BuildError> {
        let bad = |m: String| Err(BuildError::new(section, m));
        for (i, e) in self.events.iter().enumerate() {
            if Topic::parse(e).is_none() {
                let names: Vec<_> = Topic::ALL
                    .iter()
                    .map(|t| format!("{:?}", t.as_str()))
                    .collect();
                return bad(format!(
                    "events[{i}] = {e:?}: expected one of {}",
                    names.join(", ")
                ));
            }
        }
        if self.max_per_hour == 0 {
            return bad(
                "max_per_hour = 0: expected at least 1 (set enabled = false to send nothing)"
                    .into(),
            );
        }
        if !(1..=1000).contains(&self.queue_size) {
            return bad(format!(
                "queue_size = {}: expected 1 to 1000",
                self.queue_size
            ));
        }
        if self.retries > 20 {
            return bad(format!("retries = {}: expected 0 to 20", self.retries));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return bad(format!(
                "timeout_secs = {}: expected 1 to 300",
                self.timeout_secs
            ));
        }
        Ok(())
    }

    fn topics(&self) -> Vec<Topic> {
        self.events.iter().filter_map(|e| Topic::parse(e)).collect()
    }
}

/// Check that `url` is an http(s) URL; the error names `key`.
pub fn check_url(section: &str, key: &str, url: &str) -> Result<(), BuildError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(BuildError::new(
            section,
            format!("{key} = {url:?}: expected an http:// or https:// URL"),
        )),
    }
}

/// One notification service: how a [`Message`] becomes a request.
pub trait Channel: Send + Sync + 'static {
    /// The plugin's name, for logs.
    fn name(&self) -> &'static str;
    /// The request that delivers `m` (the client has the timeout).
    fn request(&self, http: &reqwest::Client, m: &Message) -> reqwest::RequestBuilder;
    /// The config key(s) to check when the service refuses the credentials (401/403).
    fn credentials_key(&self) -> &'static str;
    /// A wait the service asks for in the body of a 429 (Telegram's `parameters.retry_after`).
    fn retry_after_in_body(&self, _body: &str) -> Option<Duration> {
        None
    }
}

/// Counters of one notifier (for tests and logs).
#[derive(Debug, Default)]
pub struct Stats {
    /// Delivered.
    pub sent: AtomicU64,
    /// Given up (refused, or retries exhausted).
    pub failed: AtomicU64,
    /// Not sent: a repeat within the dedupe window.
    pub deduped: AtomicU64,
    /// Not sent: over `max_per_hour`, or the queue was full.
    pub dropped: AtomicU64,
    /// Attempts that are retried.
    pub retried: AtomicU64,
    /// Queued and not yet delivered or given up.
    pub pending: AtomicU64,
}

struct Limiter {
    last: HashMap<String, Instant>,
    window: VecDeque<Instant>,
}

/// Why a message is not queued.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Duplicate,
    RateLimited,
}

impl Limiter {
    fn admit(&mut self, key: &str, now: Instant, o: &NotifyOptions) -> Result<(), Refusal> {
        let dedupe = Duration::from_secs(o.dedupe_secs);
        self.last.retain(|_, t| now.duration_since(*t) < dedupe);
        if self.last.contains_key(key) {
            return Err(Refusal::Duplicate);
        }
        let hour = Duration::from_secs(3600);
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= hour)
        {
            self.window.pop_front();
        }
        if self.window.len() >= o.max_per_hour as usize {
            return Err(Refusal::RateLimited);
        }
        self.window.push_back(now);
        if !dedupe.is_zero() {
            self.last.insert(key.to_string(), now);
        }
        Ok(())
    }
}

struct Worker<C> {
    channel: Arc<C>,
    rx: mpsc::Receiver<Message>,
    opts: NotifyOptions,
    stats: Arc<Stats>,
}

/// A notification plugin: [`Logger`] over a [`Channel`].
pub struct Notifier<C: Channel> {
    channel: Arc<C>,
    opts: NotifyOptions,
    topics: Vec<Topic>,
    tx: mpsc::Sender<Message>,
    /// Taken and spawned at the first event (build runs outside the runtime).
    worker: Mutex<Option<Worker<C>>>,
    limiter: Mutex<Limiter>,
    stats: Arc<Stats>,
}

impl<C: Channel> Notifier<C> {
    /// A notifier sending through `channel` with the common options `opts`.
    pub fn new(channel: C, opts: NotifyOptions) -> Self {
        let (tx, rx) = mpsc::channel(opts.queue_size.max(1));
        let channel = Arc::new(channel);
        let stats = Arc::new(Stats::default());
        Notifier {
            topics: opts.topics(),
            worker: Mutex::new(Some(Worker {
                channel: channel.clone(),
                rx,
                opts: opts.clone(),
                stats: stats.clone(),
            })),
            channel,
            opts,
            tx,
            limiter: Mutex::new(Limiter {
                last: HashMap::new(),
                window: VecDeque::new(),
            }),
            stats,
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Queue `m` unless it is a repeat, over the hourly cap or the queue is full. Never waits.
    pub fn offer(&self, m: Message) {
        if !self.topics.contains(&m.topic) {
            return;
        }
        if let Some(w) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            twc_core::plugin::spawn(w.run());
        }
        let name = self.channel.name();
        let admitted = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(&m.key, Instant::now(), &self.opts);
        match admitted {
            Err(Refusal::Duplicate) => {
                self.stats.deduped.fetch_add(1, Ordering::Relaxed);
                debug!(plugin = name, title = %m.title, "Notification not sent: the same was sent within dedupe_secs");
                return;
            }
            Err(Refusal::RateLimited) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                warn!(plugin = name, title = %m.title, max_per_hour = self.opts.max_per_hour, "Notification dropped: max_per_hour reached");
                return;
            }
            Ok(()) => {}
        }
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.tx.try_send(m) {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            let title = match &e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => {
                    m.title.clone()
                }
            };
            warn!(plugin = name, title = %title, queue_size = self.opts.queue_size, "Notification dropped: the queue is full (the service is slow or down)");
        }
    }
}

#[twc_core::async_trait]
impl<C: Channel> Logger for Notifier<C> {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        if let Some(m) = message_for(event) {
            self.offer(m);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), PluginError> {
        let deadline = Instant::now() + FLUSH_WAIT;
        while self.stats.pending.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    /// Worth another attempt, after `after` when the service said so.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Not worth another attempt.
    Fatal(String),
}

impl<C: Channel> Worker<C> {
    async fn run(mut self) {
        let name = self.channel.name();
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(self.opts.timeout_secs.max(1)))
            .user_agent(concat!("twcmanager/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                error!(plugin = name, error = %e, "Cannot create the HTTP client; notifications are off");
                return;
            }
        };
        while let Some(m) = self.rx.recv().await {
            self.deliver(&http, &m).await;
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn deliver(&self, http: &reqwest::Client, m: &Message) {
        let name = self.channel.name();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            match self.attempt(http, m).await {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    info!(plugin = name, title = %m.title, "Notification sent");
                    return;
                }
                Err(Failure::Fatal(why)) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    error!(plugin = name, title = %m.title, "Notification not sent: {why}");
                    return;
                }
                Err(Failure::Retry { after, why }) => {
                    let max_after = Duration::from_secs(self.opts.max_retry_after_secs);
                    if attempt >= self.opts.retries || after.is_some_and(|a| a > max_after) {
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                        warn!(plugin = name, title = %m.title, attempts = attempt + 1, "Notification given up: {why}");
                        return;
                    }
                    let wait = after.unwrap_or(backoff);
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    warn!(plugin = name, title = %m.title, retry_in_secs = wait.as_secs_f64(), "Notification not sent yet: {why}");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, http: &reqwest::Client, m: &Message) -> Result<(), Failure> {
        let resp = match self.channel.request(http, m).send().await {
            Ok(r) => r,
            // `without_url`: the URL may hold a secret (Telegram's bot token).
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Err(Failure::Retry {
                    after: None,
                    why: format!("{what}: {}", e.without_url()),
                });
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let header_wait = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = resp.text().await.unwrap_or_default();
        let code = status.as_u16();
        let excerpt: String = body.chars().take(200).collect();
        match code {
            429 => Err(Failure::Retry {
                after: header_wait
                    .or_else(|| self.channel.retry_after_in_body(&body))
                    .or(Some(FIRST_BACKOFF)),
                why: "rate limited by the service (HTTP 429)".into(),
            }),
            500..=599 => Err(Failure::Retry {
                after: header_wait,
                why: format!("HTTP {code}: {excerpt}"),
            }),
            401 | 403 => Err(Failure::Fatal(format!(
                "the service refused the credentials (HTTP {code}); check {}",
                self.channel.credentials_key()
            ))),
            _ => Err(Failure::Fatal(format!("HTTP {code}: {excerpt}"))),
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let t = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_dedupes_within_the_window_and_caps_the_hour() {
        let o = NotifyOptions {
            dedupe_secs: 60,
            max_per_hour: 3,
            ..NotifyOptions::default()
        };
        let mut l = Limiter {
            last: HashMap::new(),
            window: VecDeque::new(),
        };
        let t0 = Instant::now();
        assert_eq!(l.admit("a", t0, &o), Ok(()));
        assert_eq!(
            l.admit("a", t0 + Duration::from_secs(59), &o),
            Err(Refusal::Duplicate)
        );
        assert_eq!(l.admit("a", t0 + Duration::from_secs(60), &o), Ok(()));
        assert_eq!(l.admit("b", t0 + Duration::from_secs(61), &o), Ok(()));
        assert_eq!(
            l.admit("c", t0 + Duration::from_secs(62), &o),
            Err(Refusal::RateLimited)
        );
        assert_eq!(l.admit("c", t0 + Duration::from_secs(3601), &o), Ok(()));
    }

    #[test]
    fn bad_options_name_their_key() {
        let cfg = PluginConfig::from_toml(
            "logging.ntfy",
            "events = [\"session_started\", \"sesion_ended\"]\ntopic = \"x\"",
        )
        .unwrap();
        let e = NotifyOptions::split(&cfg).unwrap_err().to_string();
        assert!(e.contains("events[1]") && e.contains("sesion_ended"), "{e}");
        let cfg = PluginConfig::from_toml("logging.ntfy", "queue_size = 0").unwrap();
        let e = NotifyOptions::split(&cfg).unwrap_err().to_string();
        assert!(e.contains("queue_size = 0"), "{e}");
        let cfg = PluginConfig::from_toml("logging.ntfy", "dedupe_secs = \"ten\"").unwrap();
        let e = NotifyOptions::split(&cfg).unwrap_err().to_string();
        assert!(e.contains("dedupe_secs"), "{e}");
        let (o, own) = NotifyOptions::split(
            &PluginConfig::from_toml("logging.ntfy", "retries = 2\ntopic = \"x\"").unwrap(),
        )
        .unwrap();
        assert_eq!(o.retries, 2);
        assert_eq!(own.values.keys().collect::<Vec<_>>(), vec!["topic"]);
    }
}
