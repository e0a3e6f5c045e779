#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{
    BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Method, Request, check_url, join};
use twc_plugin_kit::{ParseError, num};

/// The registry name: the section is `[ems.growatt]`, the bin's feature `ems-growatt`.
pub const NAME: &str = "growatt";
/// Growatt's server (Europe and most of the world; `https://server-us.growatt.com` in America).
pub const SERVER_URL: &str = "https://server.growatt.com";
/// The web portal's login.
pub const LOGIN: &str = "/login";
/// The MIX (hybrid inverter) status of the web portal's dashboard.
pub const MIX_STATUS: &str = "/panel/mix/getMIXStatusData";
/// A session is renewed after this long even when it still works.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(3600);

const FORM: &str = "application/x-www-form-urlencoded; charset=UTF-8";

/// `[ems.growatt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowattConfig {
    /// ShinePhone / server.growatt.com account name.
    pub username: String,
    /// Its password (sent as an MD5 hash, as the web portal does).
    pub password: Secret,
    /// Plant id (the number in the portal's address bar, `plantId=`).
    pub plant_id: String,
    /// Serial number of the MIX inverter (the portal's device list).
    pub mix_sn: String,
    /// Server.
    #[serde(default = "server_url")]
    pub url: String,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn server_url() -> String {
    SERVER_URL.to_string()
}

/// Lowercase hex MD5 of `text`, as the portal's login form sends the password.
pub fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form_post(url: String, fields: &[(&str, &str)]) -> Request {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    Request {
        method: Method::Post,
        url,
        headers: Vec::new(),
        body: Some((Bytes::from(body), FORM)),
    }
}

/// The login answer: `{"result": 1, …}` is success; anything else names why.
pub fn parse_login(body: &[u8]) -> Result<(), ParseError> {
    let v = num::json(body)?;
    let result = v
        .get("result")
        .and_then(|r| num::value_f64(r).ok().flatten());
    match result {
        Some(1.0) => Ok(()),
        Some(r) => {
            let msg = v.get("msg").and_then(Value::as_str).unwrap_or("no message");
            Err(ParseError {
                kind: ErrorKind::Auth,
                message: format!(
                    "login refused (result {r}, {msg:?}); check username and password"
                ),
            })
        }
        None => Err(ParseError::protocol("login answer has no result")),
    }
}

fn kw(obj: &Value, key: &str) -> Result<f64, ParseError> {
    let v = obj
        .get(key)
        .ok_or_else(|| ParseError::protocol(format!("missing {key}")))?;
    let x = num::value_f64(v)
        .map_err(|e| e.context(key))?
        .ok_or_else(|| ParseError::protocol(format!("{key} is null")))?;
    if x < 0.0 {
        return Err(ParseError::protocol(format!(
            "{key} is negative ({x}); Growatt reports magnitudes"
        )));
    }
    Ok(x * 1000.0)
}

/// Parse the MIX status object (the `obj` of [`MIX_STATUS`]'s answer). Powers are kW numbers or
/// numeric strings: `ppv` PV, `pLocalLoad` house, `pactouser` import, `pactogrid` export,
/// `pdisCharge1` battery discharge, `chargePower` battery charge; `SOC` %, `vAc1` V.
/// (`pPv1`/`pPv2` are **W** strings; they are not used.) A datalogger the portal marks as lost is
/// a Transient error: the portal keeps serving its last values.
pub fn parse_mix_status(obj: &Value) -> Result<EnergyReading, ParseError> {
    if !obj.is_object() {
        return Err(ParseError::protocol("the MIX status is not an object"));
    }
    if let Some(lost) = obj.get("lost").and_then(Value::as_str)
        && !lost.ends_with("normal")
    {
        return Err(ParseError::transient(format!(
            "the portal marks the inverter as not reporting ({lost}); its values are old"
        )));
    }
    let soc = num::value_f64(obj.get("SOC").unwrap_or(&Value::Null))
        .map_err(|e| e.context("SOC"))?
        .filter(|s| (0.0..=100.0).contains(s));
    let volts = num::value_f64(obj.get("vAc1").unwrap_or(&Value::Null))
        .map_err(|e| e.context("vAc1"))?
        .filter(|v| *v > 50.0);
    Ok(EnergyReading {
        generation_w: Some(kw(obj, "ppv")?),
        consumption_w: Some(kw(obj, "pLocalLoad")?),
        grid_w: Some(kw(obj, "pactouser")? - kw(obj, "pactogrid")?),
        battery_w: Some(kw(obj, "pdisCharge1")? - kw(obj, "chargePower")?),
        battery_soc_pct: soc,
        phase_voltages: volts.map(|v| vec![v]),
        ..EnergyReading::default()
    })
}

/// What the status request got.
#[derive(Debug)]
pub enum StatusAnswer {
    /// The reading.
    Reading(EnergyReading),
    /// Not JSON: the portal's login page, so the session has expired.
    LoggedOut,
}

/// Parse the answer of [`MIX_STATUS`]: `{"result": 1, "obj": {…}}`.
pub fn parse_status_answer(body: &[u8]) -> Result<StatusAnswer, ParseError> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        if text.contains("<html") || text.contains("login") {
            return Ok(StatusAnswer::LoggedOut);
        }
        return Err(ParseError::protocol("the MIX status is not JSON"));
    };
    match v.get("obj") {
        Some(obj) if obj.is_object() => parse_mix_status(obj).map(StatusAnswer::Reading),
        _ => Err(ParseError::config(
            "no MIX status in the answer (check plant_id and mix_sn; only MIX/SPH hybrid \
             inverters have one)",
        )),
    }
}

struct Session {
    cookie: Option<String>,
    since: Instant,
}

/// The `Cookie` header from `Set-Cookie` headers.
fn cookie_header(set_cookies: &[String]) -> Option<String> {
    let pairs: Vec<&str> = set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .map(str::trim)
        .filter(|p| p.contains('=') && !p.ends_with('='))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

/// The running source.
pub struct Growatt {
    client: HttpClient,
    cfg: GrowattConfig,
    session: Mutex<Option<Session>>,
}

impl Growatt {
    async fn login(&self) -> Result<Session, PluginError> {
        let hash = md5_hex(self.cfg.password.expose());
        let req = form_post(
            join(&self.cfg.url, LOGIN),
            &[
                ("account", &self.cfg.username),
                ("password", ""),
                ("validateCode", ""),
                ("isReadPact", "0"),
                ("passwordCrc", &hash),
            ],
        );
        let resp = self.client.send(&req).await?;
        parse_login(&resp.body).map_err(|e| e.into_plugin(NAME, &req.describe()))?;
        Ok(Session {
            cookie: cookie_header(&resp.set_cookies),
            since: Instant::now(),
        })
    }

    fn status_request(&self, cookie: Option<&str>) -> Request {
        let url = format!(
            "{}?plantId={}",
            join(&self.cfg.url, MIX_STATUS),
            form_encode(&self.cfg.plant_id)
        );
        let req = form_post(url, &[("mixSn", &self.cfg.mix_sn)]);
        match cookie {
            Some(c) => req.header("Cookie", c),
            None => req,
        }
    }
}

#[async_trait]
impl EmsSource for Growatt {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let mut guard = self.session.lock().await;
        for attempt in 0..2 {
            let fresh = match guard.as_ref() {
                Some(s) if s.since.elapsed() < SESSION_MAX_AGE => false,
                _ => {
                    *guard = Some(self.login().await?);
                    true
                }
            };
            let cookie = guard.as_ref().and_then(|s| s.cookie.clone());
            let req = self.status_request(cookie.as_deref());
            let answer = match self.client.send(&req).await {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::Auth && !fresh && attempt == 0 => {
                    *guard = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let arrived = Instant::now();
            match parse_status_answer(&answer.body)
                .map_err(|e| e.into_plugin(NAME, &req.describe()))?
            {
                StatusAnswer::Reading(mut r) => {
                    r.measured_at = arrived;
                    return Ok(r);
                }
                StatusAnswer::LoggedOut if !fresh && attempt == 0 => *guard = None,
                StatusAnswer::LoggedOut => break,
            }
        }
        *guard = None;
        Err(PluginError::new(
            ErrorKind::Auth,
            NAME,
            format!(
                "{}: the portal asks to log in right after a fresh login (check username and password)",
                self.status_request(None).describe()
            ),
        ))
    }
}

/// Build from `[ems.growatt]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: GrowattConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    if c.username.trim().is_empty() {
        return Err(BuildError::new(s, "username must not be empty"));
    }
    if c.password.expose().is_empty() {
        return Err(BuildError::new(s, "password must not be empty"));
    }
    if c.plant_id.is_empty() || !c.plant_id.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(BuildError::new(
            s,
            format!(
                "plant_id must be the plant's number (plantId= in the portal's address), got {:?}",
                c.plant_id
            ),
        ));
    }
    if c.mix_sn.is_empty() || !c.mix_sn.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(BuildError::new(
            s,
            format!(
                "mix_sn must be the inverter's serial number (letters and digits), got {:?}",
                c.mix_sn
            ),
        ));
    }
    Ok(Box::new(Growatt {
        client: HttpClient::new(NAME, s, &c.http)?,
        cfg: c,
        session: Mutex::new(None),
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "Growatt cloud (server.growatt.com): MIX/SPH hybrid inverter PV, house, grid and battery",
        example: include_str!("../example.toml"),
        build,
    }
}
