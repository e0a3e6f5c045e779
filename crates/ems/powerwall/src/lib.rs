#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{
    BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{ParseError, num, timestamp};

/// Registry name.
pub const NAME: &str = "powerwall";
/// Login endpoint.
pub const LOGIN: &str = "/api/login/Basic";
/// Meter aggregates.
pub const AGGREGATES: &str = "/api/meters/aggregates";
/// State of energy.
pub const SOE: &str = "/api/system_status/soe";
/// Grid status.
pub const GRID_STATUS: &str = "/api/system_status/grid_status";
/// Sessions are renewed after this long even without a refusal.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(3600);

/// `[ems.powerwall]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerwallConfig {
    /// Gateway URL, e.g. `https://192.168.1.20` (self-signed: set `http.accept_invalid_certs`).
    pub url: String,
    /// The gateway's customer password (often the last 5 characters of its serial number).
    pub password: Secret,
    /// E-mail sent with the login (any value works on most firmware).
    #[serde(default)]
    pub email: String,
    /// Report the state of charge as the Tesla app shows it, `(raw − 5) / 0.95`.
    #[serde(default = "yes")]
    pub app_soc: bool,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn yes() -> bool {
    true
}

/// Parse `/api/meters/aggregates`: generation = `solar` (≥ 0), consumption = `load`, grid = `site`
/// (+ import), battery = `battery` (+ discharge), voltage = `site.instant_average_voltage`.
/// The reading is dated by the oldest `last_communication_time` of the four meters (the gateway
/// keeps serving a meter's last values after it stops talking; `0001-01-01T00:00:00Z`, "never",
/// is clearly stale).
pub fn parse_aggregates(body: &[u8]) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let mut at = None;
    for m in ["site", "load", "solar", "battery"] {
        let t = match v.pointer(&format!("/{m}/last_communication_time")) {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(timestamp::instant_of(
                timestamp::parse_rfc3339(t)
                    .map_err(|e| e.context(&format!("{m}.last_communication_time")))?,
            )),
            Some(_) => {
                return Err(ParseError::protocol(format!(
                    "{m}.last_communication_time is not text"
                )));
            }
        };
        at = timestamp::oldest(at, t);
    }
    let p = |m: &str| num::require_power_w(&v, &format!("/{m}/instant_power"));
    let voltage = v
        .pointer("/site/instant_average_voltage")
        .and_then(Value::as_f64)
        .filter(|x| *x > 50.0);
    let mut r = EnergyReading {
        generation_w: Some(p("solar")?.max(0.0)),
        consumption_w: Some(p("load")?),
        grid_w: Some(p("site")?),
        battery_w: Some(p("battery")?),
        phase_voltages: voltage.map(|x| vec![x]),
        ..EnergyReading::default()
    };
    if let Some(t) = at {
        r.measured_at = r.measured_at.min(t);
    }
    Ok(r)
}

/// Parse `/api/system_status/soe`: the raw percentage, or the app's `(p − 5) / 0.95` when
/// `app_scale`, clamped to 0…100.
pub fn parse_soe(body: &[u8], app_scale: bool) -> Result<f64, ParseError> {
    let v = num::json(body)?;
    let p = num::pointer_f64(&v, "/percentage")?
        .ok_or_else(|| ParseError::protocol("percentage is null"))?;
    let p = if app_scale { (p - 5.0) / 0.95 } else { p };
    Ok(p.clamp(0.0, 100.0))
}

/// Parse `/api/system_status/grid_status`: `true` when connected to the grid
/// (`SystemGridConnected`), `false` when islanded (`SystemIslandedActive`, `SystemTransitionToIsland`…).
pub fn parse_grid_status(body: &[u8]) -> Result<bool, ParseError> {
    let v = num::json(body)?;
    let s = num::pointer(&v, "/grid_status")?
        .as_str()
        .ok_or_else(|| ParseError::protocol("grid_status is not text"))?;
    Ok(s == "SystemGridConnected")
}

/// Parse `/api/operation`: (mode, backup reserve %).
pub fn parse_operation(body: &[u8]) -> Result<(String, f64), ParseError> {
    let v = num::json(body)?;
    let mode = num::pointer(&v, "/real_mode")?
        .as_str()
        .ok_or_else(|| ParseError::protocol("real_mode is not text"))?
        .to_string();
    let reserve = num::pointer_f64(&v, "/backup_reserve_percent")?
        .ok_or_else(|| ParseError::protocol("backup_reserve_percent is null"))?;
    Ok((mode, reserve))
}

/// The `Cookie` header from a login's `Set-Cookie` headers (`AuthCookie`, `UserRecord`).
pub fn cookie_header(set_cookies: &[String]) -> Option<String> {
    let pairs: Vec<&str> = set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .map(str::trim)
        .filter(|p| p.contains('=') && !p.ends_with('='))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

struct Session {
    /// (header name, value): `Cookie` or `Authorization`.
    header: (String, String),
    since: Instant,
}

/// The running source.
pub struct Powerwall {
    client: HttpClient,
    cfg: PowerwallConfig,
    session: Mutex<Option<Session>>,
    /// 0 unknown, 1 connected, 2 islanded.
    grid: AtomicU8,
}

impl Powerwall {
    async fn login(&self) -> Result<Session, PluginError> {
        let body = json!({
            "username": "customer",
            "password": self.cfg.password.expose(),
            "email": self.cfg.email,
            "force_sm_off": false,
        });
        let req = Request::post_json(join(&self.cfg.url, LOGIN), &body);
        let resp = self.client.send(&req).await?;
        if let Some(c) = cookie_header(&resp.set_cookies) {
            return Ok(Session {
                header: ("Cookie".into(), c),
                since: Instant::now(),
            });
        }
        let token = num::json(&resp.body)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
            .filter(|t| !t.is_empty());
        match token {
            Some(t) => Ok(Session {
                header: ("Authorization".into(), format!("Bearer {t}")),
                since: Instant::now(),
            }),
            None => Err(PluginError::new(
                ErrorKind::Protocol,
                NAME,
                format!("POST {LOGIN}: no session cookie or token in the answer"),
            )),
        }
    }

    async fn get(&self, path: &str) -> Result<bytes::Bytes, PluginError> {
        for attempt in 0..2 {
            let header = {
                let mut s = self.session.lock().await;
                let expired = s
                    .as_ref()
                    .is_none_or(|s| s.since.elapsed() >= SESSION_MAX_AGE);
                if expired {
                    *s = Some(self.login().await?);
                }
                match s.as_ref() {
                    Some(s) => s.header.clone(),
                    None => return Err(PluginError::new(ErrorKind::Transient, NAME, "no session")),
                }
            };
            let req = Request::get(join(&self.cfg.url, path)).header(header.0, header.1);
            match self.client.send(&req).await {
                Ok(r) => return Ok(r.body),
                Err(e) if e.kind() == ErrorKind::Auth && attempt == 0 => {
                    // The session expired: log in again once.
                    *self.session.lock().await = None;
                }
                Err(e) if e.context.contains("HTTP 502") => {
                    return Err(PluginError::new(
                        ErrorKind::Transient,
                        NAME,
                        format!("{} (the gateway's sitemaster is stopped?)", e.context),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Err(PluginError::new(
            ErrorKind::Auth,
            NAME,
            format!("GET {path}: refused right after a fresh login (check the password)"),
        ))
    }
}

fn parse_err(e: ParseError, path: &str) -> PluginError {
    e.into_plugin(NAME, &format!("GET {path}"))
}

#[async_trait]
impl EmsSource for Powerwall {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let body = self.get(AGGREGATES).await?;
        let at = Instant::now();
        let mut r = parse_aggregates(&body).map_err(|e| parse_err(e, AGGREGATES))?;
        r.measured_at = r.measured_at.min(at);
        let soe = self.get(SOE).await?;
        r.battery_soc_pct = Some(parse_soe(&soe, self.cfg.app_soc).map_err(|e| parse_err(e, SOE))?);
        let gs = self.get(GRID_STATUS).await?;
        let connected = parse_grid_status(&gs).map_err(|e| parse_err(e, GRID_STATUS))?;
        r.grid_connected = Some(connected);
        let now = if connected { 1 } else { 2 };
        if self.grid.swap(now, Ordering::Relaxed) != now {
            if connected {
                tracing::info!(
                    kind = "ems",
                    plugin = NAME,
                    "Powerwall reports the grid connected"
                );
            } else {
                tracing::warn!(
                    kind = "ems",
                    plugin = NAME,
                    "Powerwall reports the grid down (islanded); charging runs from the battery"
                );
            }
        }
        Ok(r)
    }
}

/// Build from `[ems.powerwall]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: PowerwallConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    if c.password.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "password is empty: use the gateway's customer password",
        ));
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    Ok(Box::new(Powerwall {
        client,
        cfg: c,
        session: Mutex::new(None),
        grid: AtomicU8::new(0),
    }))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "Tesla Powerwall 2 gateway: meters, battery and SOC (local API)",
        example: include_str!("../example.toml"), build }
}
