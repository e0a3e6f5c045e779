//! The Fleet API client: tokens and refresh, back-off, call budget, wake policy, geofence.

use crate::auth::{TokenStore, Tokens, form};
use crate::parse;
use crate::{Home, TeslaApiConfig};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};
use twc_core::plugin::{ChargeState, ErrorKind, PluginError};

const NAME: &str = "teslaapi";
/// Refresh the access token when less than this is left (TWCManager: 1 h).
const REFRESH_BEFORE: i64 = 3600;
/// After a failed wake, wait this long before the next (TWCManager: 30 min).
const WAKE_RETRY: Duration = Duration::from_secs(1800);
/// Back-off grows by this per consecutive error (TWCManager: 1 min) …
const BACKOFF_STEP: Duration = Duration::from_secs(60);
/// … up to this, where a 429 without `Retry-After` goes at once (TWCManager: 10 min).
const BACKOFF_MAX: Duration = Duration::from_secs(600);
pub(crate) mod vehicle;

const DATA_ENDPOINTS: &str = "charge_state;drive_state;location_data;vehicle_state";

#[derive(Default)]
struct Car {
    asleep: bool,
    data: Option<(ChargeState, Instant)>,
    wake_wanted: Option<Instant>,
    no_wake_until: Option<Instant>,
}

struct Login {
    verifier: String,
    state: String,
    redirect_uri: String,
}

#[derive(Default)]
struct State {
    tokens: Option<Tokens>,
    loaded: bool,
    login: Option<Login>,
    last_error: Option<String>,
    cars: HashMap<String, Car>,
    blocked_until: Option<Instant>,
    blocked_why: String,
    errors_in_row: u32,
    day: Option<Instant>,
    calls_today: u32,
    home: Option<Home>,
}

/// The Tesla Fleet API plugin.
pub struct TeslaApi {
    cfg: TeslaApiConfig,
    base: String,
    http: reqwest::Client,
    proxy: reqwest::Client,
    store: TokenStore,
    state: Mutex<State>,
}

enum Target {
    Fleet,
    Proxy,
}

impl TeslaApi {
    pub(crate) fn new(cfg: TeslaApiConfig, base: String) -> Result<Self, String> {
        let t = Duration::from_secs_f64(cfg.timeout_secs);
        let mk = |invalid: bool| {
            reqwest::Client::builder()
                .timeout(t)
                .connect_timeout(t)
                .tls_danger_accept_invalid_certs(invalid)
                .user_agent(concat!("twcmanager/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot create HTTP client: {e}"))
        };
        let store = TokenStore::new(&cfg.token_file, &cfg.key_file);
        let home = cfg.home;
        Ok(TeslaApi {
            http: mk(false)?,
            proxy: mk(cfg.proxy_accept_invalid_certs)?,
            base,
            store,
            state: Mutex::new(State {
                home,
                ..State::default()
            }),
            cfg,
        })
    }

    /// The same plugin with another proxy URL (tests of an unreachable proxy).
    pub fn with_proxy_for_tests(mut self, url: &str) -> Self {
        self.cfg.proxy_url = Some(url.to_string());
        self
    }

    fn err(kind: ErrorKind, what: impl Into<String>) -> PluginError {
        PluginError::new(kind, NAME, what)
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load_once(&self) {
        let mut st = self.st();
        if st.loaded {
            return;
        }
        st.loaded = true;
        match self.store.load() {
            Ok(t) => st.tokens = t,
            Err(e) => {
                warn!(error = %e, "Cannot read the stored Tesla tokens");
                st.last_error = Some(e.to_string());
            }
        }
    }

    /// With `teslamate`: TeslaMate's tokens when ours are missing or due (TeslaMate may have
    /// refreshed them already). `Ok(true)` when they replaced ours.
    async fn load_teslamate_tokens(&self, due: bool) -> Result<bool, PluginError> {
        let Some(tm) = &self.cfg.teslamate else {
            return Ok(false);
        };
        let ours = self.st().tokens.clone();
        if ours.is_some() && !due {
            return Ok(false);
        }
        use crate::teslamate_db::{TeslaMateError, read_tokens};
        match read_tokens(tm.url.expose(), tm.encryption_key.expose()).await {
            Ok(t)
                if ours
                    .as_ref()
                    .is_none_or(|o| o.access_token != t.access_token) =>
            {
                info!(
                    expires_unix = t.expires_unix,
                    "Tesla tokens read from TeslaMate's database"
                );
                let mut st = self.st();
                st.tokens = Some(t);
                st.last_error = None;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if ours.is_some() => {
                warn!(error = %e, "Cannot read TeslaMate's tokens; keeping ours");
                Ok(false)
            }
            Err(e) => {
                let kind = match e {
                    TeslaMateError::WrongKey => ErrorKind::Config,
                    TeslaMateError::NoTokens => ErrorKind::Auth,
                    TeslaMateError::Format(..) => ErrorKind::Protocol,
                    TeslaMateError::Database(_) => ErrorKind::Transient,
                };
                self.st().last_error = Some(e.to_string());
                Err(Self::err(kind, e.to_string()))
            }
        }
    }

    /// The access token, refreshed first when it expires within the hour.
    async fn access_token(&self, force_refresh: bool) -> Result<String, PluginError> {
        self.load_once();
        let now = chrono::Utc::now().timestamp();
        let due = force_refresh
            || self
                .st()
                .tokens
                .as_ref()
                .is_none_or(|t| t.expires_unix - now <= REFRESH_BEFORE);
        if self.load_teslamate_tokens(due).await?
            && let Some(t) = self.st().tokens.clone()
            && t.expires_unix - now > REFRESH_BEFORE
        {
            return Ok(t.access_token);
        }
        let Some(t) = self.st().tokens.clone() else {
            return Err(Self::err(
                ErrorKind::Auth,
                "not logged in: use \"Log in with Tesla\" on the web UI's Vehicles page",
            ));
        };
        let now = chrono::Utc::now().timestamp();
        if !force_refresh && t.expires_unix - now > REFRESH_BEFORE {
            return Ok(t.access_token);
        }
        match self.refresh(&t).await {
            Ok(n) => Ok(n.access_token),
            // A refresh that fails for now: the old token while it lasts.
            Err(e)
                if e.kind() == ErrorKind::Transient && t.expires_unix > now && !force_refresh =>
            {
                warn!(error = %e.chain(), "Token refresh failed; using the current token while it lasts");
                Ok(t.access_token)
            }
            Err(e) => Err(e),
        }
    }

    async fn refresh(&self, t: &Tokens) -> Result<Tokens, PluginError> {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.cfg.client_id),
            ("refresh_token", &t.refresh_token),
        ]);
        let n = self.token_request(body, Some(&t.refresh_token)).await?;
        info!(
            expires_unix = n.expires_unix,
            "Tesla access token refreshed"
        );
        Ok(n)
    }

    async fn token_request(
        &self,
        body: String,
        old_refresh: Option<&str>,
    ) -> Result<Tokens, PluginError> {
        let what = "POST token";
        let r = self
            .http
            .post(&self.cfg.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Self::err(ErrorKind::Transient, format!("{what}: {}", why(&e))))?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap_or_default();
        if matches!(status, 400 | 401 | 403) {
            let text = parse::parse_token(&bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let msg = format!("{what}: HTTP {status} {text}; log in again from the web UI");
            if old_refresh.is_some() {
                let mut st = self.st();
                st.tokens = None;
                st.last_error = Some(msg.clone());
                drop(st);
                let _ = self.store.clear();
                warn!(error = %msg, "Tesla refused the refresh token; tokens forgotten");
            }
            return Err(Self::err(ErrorKind::Auth, msg));
        }
        if !(200..300).contains(&status) {
            return Err(Self::err(
                ErrorKind::Transient,
                format!("{what}: HTTP {status}"),
            ));
        }
        let a = parse::parse_token(&bytes)
            .map_err(|e| Self::err(ErrorKind::Protocol, format!("{what}: {e}")))?;
        let t = Tokens {
            access_token: a.access_token,
            refresh_token: a
                .refresh_token
                .or_else(|| old_refresh.map(str::to_string))
                .unwrap_or_default(),
            expires_unix: chrono::Utc::now().timestamp() + a.expires_in as i64,
        };
        let saved = self.store.save(&t);
        let mut st = self.st();
        st.tokens = Some(t.clone());
        st.loaded = true;
        st.last_error = saved.err().map(|e| {
            warn!(error = %e, "Cannot store the Tesla tokens");
            e.to_string()
        });
        Ok(t)
    }

    /// One API call with everything around it. `vin` marks a car asleep on 408.
    async fn call(
        &self,
        target: Target,
        post: bool,
        path: &str,
        body: Option<serde_json::Value>,
        vin: Option<&str>,
    ) -> Result<bytes_of::Bytes, PluginError> {
        let what = format!(
            "{} {}",
            if post { "POST" } else { "GET" },
            path.split('?').next().unwrap_or(path)
        );
        let now = Instant::now();
        {
            let mut st = self.st();
            if let Some(until) = st.blocked_until.filter(|u| *u > now) {
                return Err(Self::err(
                    ErrorKind::Transient,
                    format!(
                        "{what}: backing off for {} s ({})",
                        (until - now).as_secs(),
                        st.blocked_why
                    ),
                ));
            }
            if st
                .day
                .is_none_or(|d| now - d >= Duration::from_secs(86_400))
            {
                st.day = Some(now);
                st.calls_today = 0;
            }
            if st.calls_today >= self.cfg.calls_per_day {
                return Err(Self::err(
                    ErrorKind::Transient,
                    format!(
                        "{what}: the daily budget of {} calls is used (calls_per_day)",
                        self.cfg.calls_per_day
                    ),
                ));
            }
        }
        let (client, base) = match target {
            Target::Fleet => (&self.http, self.base.as_str()),
            Target::Proxy => match &self.cfg.proxy_url {
                Some(p) => (&self.proxy, p.trim_end_matches('/')),
                None => {
                    return Err(Self::err(
                        ErrorKind::Config,
                        format!(
                            "{what}: commands need the Vehicle Command proxy: set proxy_url in [vehicle.teslaapi]"
                        ),
                    ));
                }
            },
        };
        let mut refreshed = false;
        loop {
            let token = self.access_token(refreshed).await?;
            self.st().calls_today += 1;
            let url = format!("{base}{path}");
            let mut rb = if post {
                client.post(&url)
            } else {
                client.get(&url)
            };
            rb = rb.bearer_auth(&token);
            if let Some(b) = &body {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let msg = match target {
                        Target::Proxy => format!(
                            "{what}: cannot reach the Vehicle Command proxy at {base} ({}); is it running?",
                            why(&e)
                        ),
                        Target::Fleet => format!("{what}: {}", why(&e)),
                    };
                    return Err(Self::err(ErrorKind::Transient, msg));
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| Self::err(ErrorKind::Transient, format!("{what}: {}", why(&e))))?;
            let text = parse::error_text(&bytes);
            let detail = text
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            if let Some(t) = &text
                && t.contains("Vehicle Command Protocol required")
            {
                return Err(Self::err(
                    ErrorKind::Config,
                    format!(
                        "{what}: the car needs signed commands: set proxy_url to your Vehicle Command proxy"
                    ),
                ));
            }
            if matches!(target, Target::Proxy) && status == 403 {
                return Err(Self::err(
                    ErrorKind::Config,
                    format!(
                        "{what}: HTTP 403 from the Vehicle Command proxy{detail} (is your key paired with the car?)"
                    ),
                ));
            }
            match status {
                200..=299 => {
                    self.st().errors_in_row = 0;
                    return Ok(bytes.to_vec());
                }
                401 if !refreshed => {
                    refreshed = true;
                    continue;
                }
                401 | 403 => {
                    let msg =
                        format!("{what}: HTTP {status}{detail}; log in again from the web UI");
                    self.st().last_error = Some(msg.clone());
                    return Err(Self::err(ErrorKind::Auth, msg));
                }
                404 => {
                    return Err(Self::err(
                        ErrorKind::Config,
                        format!(
                            "{what}: HTTP 404{detail} (is this car on the account, and the region right?)"
                        ),
                    ));
                }
                408 => {
                    if let Some(v) = vin {
                        self.st().cars.entry(v.to_string()).or_default().asleep = true;
                    }
                    return Err(Self::err(
                        ErrorKind::Transient,
                        format!("{what}: HTTP 408, the car is asleep or offline{detail}"),
                    ));
                }
                429 => {
                    let wait = retry_after.map(Duration::from_secs).unwrap_or(BACKOFF_MAX);
                    let mut st = self.st();
                    st.blocked_until = Some(Instant::now() + wait);
                    st.blocked_why = "HTTP 429, too many requests".into();
                    drop(st);
                    warn!(
                        wait_secs = wait.as_secs(),
                        "Tesla Fleet API rate limit: backing off"
                    );
                    return Err(Self::err(
                        ErrorKind::Transient,
                        format!(
                            "{what}: HTTP 429, rate limited; backing off {} s",
                            wait.as_secs()
                        ),
                    ));
                }
                _ => {}
            }
            if status >= 500 {
                let mut st = self.st();
                st.errors_in_row += 1;
                let wait = (BACKOFF_STEP * st.errors_in_row).min(BACKOFF_MAX);
                st.blocked_until = Some(Instant::now() + wait);
                st.blocked_why = format!("HTTP {status}{detail}");
                drop(st);
                let from = if matches!(target, Target::Proxy) {
                    " from the proxy"
                } else {
                    ""
                };
                return Err(Self::err(
                    ErrorKind::Transient,
                    format!(
                        "{what}: HTTP {status}{from}{detail}; backing off {} s",
                        wait.as_secs()
                    ),
                ));
            }
            let from = if matches!(target, Target::Proxy) {
                " (Vehicle Command proxy)"
            } else {
                ""
            };
            return Err(Self::err(
                ErrorKind::Protocol,
                format!("{what}: HTTP {status}{from}{detail}"),
            ));
        }
    }
}

fn why(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}

mod bytes_of {
    pub(crate) type Bytes = Vec<u8>;
}
