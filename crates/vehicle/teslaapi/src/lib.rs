#![doc = include_str!("../README.md")]

mod api;
pub mod auth;
pub mod parse;
pub mod teslamate_db;

pub use api::TeslaApi;
pub use api::vehicle::distance_m;

use serde::Deserialize;
use twc_core::plugin::{BuildError, PluginConfig, Secret, VehicleApi, VehiclePlugin};

/// The `[vehicle.teslaapi]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeslaApiConfig {
    /// Fleet API region: `na`, `eu` or `cn` (the account's region).
    #[serde(default = "default_region")]
    pub region: String,
    /// The Fleet API base URL, instead of the region's (tests, a relay).
    #[serde(default)]
    pub url: Option<String>,
    /// The Vehicle Command proxy you run (`tesla-http-proxy`): every command goes through it,
    /// signed with your key. Without it, cars are read but not commanded.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// The proxy's certificate is self-signed (as `tesla-http-proxy` makes one): accept it.
    #[serde(default)]
    pub proxy_accept_invalid_certs: bool,
    /// The client id of your application at developer.tesla.com (for the login).
    #[serde(default)]
    pub client_id: String,
    /// The client secret, for applications without PKCE (optional).
    #[serde(default)]
    pub client_secret: Secret,
    /// Where the browser logs in.
    #[serde(default = "default_authorize_url")]
    pub authorize_url: String,
    /// Where codes and refresh tokens are exchanged.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// OAuth scopes.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The encrypted token file.
    #[serde(default = "default_token_file")]
    pub token_file: String,
    /// The key file that decrypts it (32 bytes, created with mode 0600).
    #[serde(default = "default_key_file")]
    pub key_file: String,
    /// Home, for the geofence; without it the first car seen plugged in sets it.
    #[serde(default)]
    pub home: Option<Home>,
    /// Wait this long before waking an asleep car for a command (it may start by itself).
    #[serde(default = "default_wake_delay")]
    pub wake_delay_secs: u64,
    /// Least time between two `vehicle_data` reads of one car (the Fleet API bills calls).
    #[serde(default = "default_min_data_interval")]
    pub min_data_interval_secs: u64,
    /// Most calls a day; past it, calls fail until the day is over.
    #[serde(default = "default_calls_per_day")]
    pub calls_per_day: u32,
    /// Request timeout, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Use the Tesla tokens TeslaMate keeps in its PostgreSQL database (read only; refreshed
    /// here as usual, never written back) instead of logging in here.
    #[serde(default)]
    pub teslamate: Option<TeslaMateTokens>,
}

/// `teslamate = { url = "postgres://…", encryption_key = "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeslaMateTokens {
    /// TeslaMate's database, `postgres://user:password@host:5432/teslamate`.
    pub url: Secret,
    /// The `ENCRYPTION_KEY` TeslaMate runs with.
    pub encryption_key: Secret,
}

/// The home geofence.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Home {
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Radius, metres (TWCManager: 10560 ft, about 3.2 km).
    #[serde(default = "default_radius")]
    pub radius_m: f64,
}

fn default_region() -> String {
    "na".into()
}
fn default_authorize_url() -> String {
    "https://auth.tesla.com/oauth2/v3/authorize".into()
}
fn default_token_url() -> String {
    "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token".into()
}
fn default_scope() -> String {
    "openid offline_access vehicle_device_data vehicle_location vehicle_charging_cmds".into()
}
fn default_token_file() -> String {
    "tesla-tokens.bin".into()
}
fn default_key_file() -> String {
    "tesla-tokens.key".into()
}
fn default_wake_delay() -> u64 {
    180
}
fn default_min_data_interval() -> u64 {
    60
}
fn default_calls_per_day() -> u32 {
    2000
}
fn default_timeout() -> f64 {
    10.0
}
fn default_radius() -> f64 {
    3218.0
}

/// The Fleet API base URL of a region.
pub fn region_url(region: &str) -> Option<&'static str> {
    match region {
        "na" => Some("https://fleet-api.prd.na.vn.cloud.tesla.com"),
        "eu" => Some("https://fleet-api.prd.eu.vn.cloud.tesla.com"),
        "cn" => Some("https://fleet-api.prd.cn.vn.cloud.tesla.cn"),
        _ => None,
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Build from `[vehicle.teslaapi]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn VehicleApi>, BuildError> {
    Ok(Box::new(build_api(cfg)?))
}

/// Build the concrete type (tests drive it directly).
pub fn build_api(cfg: &PluginConfig) -> Result<TeslaApi, BuildError> {
    let c: TeslaApiConfig = cfg.parse()?;
    let err = |m: String| BuildError::new(&cfg.section, m);
    let base = match &c.url {
        Some(u) if is_url(u) => u.trim_end_matches('/').to_string(),
        Some(u) => {
            return Err(err(format!(
                "url must start with http:// or https://, got {u:?}"
            )));
        }
        None => region_url(&c.region)
            .ok_or_else(|| err(format!("region must be na, eu or cn, got {:?}", c.region)))?
            .to_string(),
    };
    if let Some(p) = &c.proxy_url
        && !is_url(p)
    {
        return Err(err(format!(
            "proxy_url must start with https:// (the Vehicle Command proxy), got {p:?}"
        )));
    }
    for (k, v) in [
        ("authorize_url", &c.authorize_url),
        ("token_url", &c.token_url),
    ] {
        if !is_url(v) {
            return Err(err(format!("{k} must start with https://, got {v:?}")));
        }
    }
    if let Some(h) = c.home
        && (!(-90.0..=90.0).contains(&h.latitude)
            || !(-180.0..=180.0).contains(&h.longitude)
            || h.radius_m.is_nan()
            || h.radius_m <= 0.0)
    {
        return Err(err(
            "home needs latitude −90…90, longitude −180…180 and radius_m > 0".into(),
        ));
    }
    if !(c.timeout_secs > 0.0 && c.timeout_secs <= 120.0) {
        return Err(err(format!(
            "timeout_secs must be between 0 and 120, got {}",
            c.timeout_secs
        )));
    }
    if c.calls_per_day == 0 {
        return Err(err("calls_per_day must be at least 1".into()));
    }
    if let Some(tm) = &c.teslamate {
        let u = tm.url.expose();
        if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
            return Err(err(
                "teslamate.url must be TeslaMate's database, postgres://user:password@host:5432/teslamate".into(),
            ));
        }
        if tm.encryption_key.is_empty() {
            return Err(err(
                "teslamate.encryption_key must be the ENCRYPTION_KEY TeslaMate runs with".into(),
            ));
        }
    }
    TeslaApi::new(c, base).map_err(err)
}

inventory::submit! {
    VehiclePlugin {
        name: "teslaapi",
        summary: "Tesla Fleet API: cars, charge start/stop, limits (signed commands through your Vehicle Command proxy)",
        example: include_str!("../example.toml"),
        build,
    }
}
