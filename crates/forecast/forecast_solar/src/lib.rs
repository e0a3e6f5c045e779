#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, TimeZone};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::plugin::{
    BuildError, ErrorKind, Forecast, ForecastPlugin, ForecastSlot, PluginConfig, PluginError,
    Secret, SolarForecast,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::num::check_range;
use twc_plugin_kit::{ParseError, num};

/// The registry name: `[forecast.forecast_solar]`, feature `forecast-forecast_solar`.
pub const NAME: &str = "forecast_solar";
/// The public API.
pub const URL: &str = "https://api.forecast.solar";
/// The wait after a 429 when no period is known, s.
pub const DEFAULT_PERIOD_SECS: u64 = 3600;

/// `[forecast.forecast_solar]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSolarConfig {
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Tilt, degrees.
    pub declination: f64,
    /// Azimuth, degrees (0 = south).
    pub azimuth: f64,
    /// Peak power, kWp.
    pub kwp: f64,
    /// A paid plan's key.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Endpoint base.
    #[serde(default = "url")]
    pub url: String,
    /// Minutes between calls.
    #[serde(default = "refresh")]
    pub refresh_minutes: u64,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn url() -> String {
    URL.into()
}
fn refresh() -> u64 {
    60
}

/// What an answer holds: the forecast and the rate limit left.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The slots.
    pub forecast: Forecast,
    /// `message.ratelimit.remaining`, when given.
    pub remaining: Option<i64>,
    /// `message.ratelimit.period`, s, when given.
    pub period_secs: Option<u64>,
}

/// Unix time of a `result.watts` key: ISO 8601 with its offset (`time=iso8601`, what the
/// plugin asks for, e.g. `2024-04-26T07:00:00+02:00`) or the default local
/// `YYYY-MM-DD HH:MM:SS` in the answer's `message.info.timezone`.
fn key_time(k: &str, zone: chrono_tz::Tz) -> Result<i64, ParseError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(k) {
        return Ok(t.timestamp());
    }
    let naive = NaiveDateTime::parse_from_str(k, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| ParseError::protocol(format!("result.watts key {k:?} is no time")))?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
        .ok_or_else(|| ParseError::protocol(format!("{k} does not exist in {zone}")))
}

/// Parse an estimate answer.
pub fn parse(body: &[u8]) -> Result<Estimate, ParseError> {
    let v = num::json(body)?;
    let code = v
        .pointer("/message/code")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if code != 0 {
        let text = v
            .pointer("/message/text")
            .and_then(Value::as_str)
            .unwrap_or("error");
        return Err(ParseError::protocol(format!(
            "forecast.solar: {text} (code {code})"
        )));
    }
    let zone: chrono_tz::Tz = v
        .pointer("/message/info/timezone")
        .and_then(Value::as_str)
        .ok_or_else(|| ParseError::protocol("no message.info.timezone in the answer"))?
        .parse()
        .map_err(|_| ParseError::protocol("message.info.timezone is no IANA time zone"))?;
    let watts = v
        .pointer("/result/watts")
        .and_then(Value::as_object)
        .ok_or_else(|| ParseError::protocol("no result.watts in the answer"))?;
    let mut points = Vec::with_capacity(watts.len());
    for (k, w) in watts {
        let at = key_time(k, zone)?;
        let w = w
            .as_f64()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| {
                ParseError::protocol(format!("result.watts[{k:?}] is not a power ≥ 0"))
            })?;
        points.push((at, w));
    }
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    if points.len() < 2 {
        return Err(ParseError::protocol(
            "the answer has fewer than two forecast points",
        ));
    }
    let slots = points
        .windows(2)
        .map(|p| ForecastSlot {
            start_unix: p[0].0,
            end_unix: p[1].0,
            watts: (p[0].1 + p[1].1) / 2.0,
        })
        .collect();
    Ok(Estimate {
        forecast: Forecast {
            source: NAME.into(),
            slots,
        },
        remaining: v
            .pointer("/message/ratelimit/remaining")
            .and_then(Value::as_i64),
        period_secs: v
            .pointer("/message/ratelimit/period")
            .and_then(Value::as_u64),
    })
}

/// The forecast.solar plugin.
pub struct ForecastSolar {
    client: HttpClient,
    request: Request,
    refresh: Duration,
    key: Option<Secret>,
    /// No call before this instant (rate limit), and the last known period.
    hold: Mutex<(Option<Instant>, u64)>,
}

impl ForecastSolar {
    fn held_until(&self) -> Option<Instant> {
        let h = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        h.0.filter(|t| *t > Instant::now())
    }
    fn hold_for(&self, secs: Option<u64>) {
        let mut h = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        let period = secs.unwrap_or(h.1);
        h.1 = period;
        h.0 = Some(Instant::now() + Duration::from_secs(period));
    }
}

#[async_trait]
impl SolarForecast for ForecastSolar {
    async fn forecast(&self) -> Result<Forecast, PluginError> {
        if let Some(until) = self.held_until() {
            return Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!(
                    "rate limit reached; no call for another {} s",
                    (until - Instant::now()).as_secs()
                ),
            ));
        }
        let result = self.client.fetch(&self.request, parse).await;
        match result {
            Ok(e) => {
                tracing::debug!(remaining = ?e.remaining, "forecast.solar rate limit");
                if e.remaining.is_some_and(|r| r <= 0) {
                    self.hold_for(e.period_secs);
                }
                Ok(e.forecast)
            }
            Err(e) => {
                if e.chain().contains("HTTP 429") {
                    self.hold_for(None);
                }
                // A paid plan's key is part of the path: never let it into a message.
                match &self.key {
                    Some(k) => Err(PluginError::new(
                        e.kind(),
                        NAME,
                        e.chain().replace(k.expose(), "<api_key>"),
                    )),
                    None => Err(e),
                }
            }
        }
    }
    fn refresh_interval(&self) -> Duration {
        self.refresh
    }
}

/// Build from `[forecast.forecast_solar]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn SolarForecast>, BuildError> {
    Ok(Box::new(build_forecast_solar(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_forecast_solar(cfg: &PluginConfig) -> Result<ForecastSolar, BuildError> {
    let c: ForecastSolarConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    check_range(s, "latitude", c.latitude, -90.0, 90.0)?;
    check_range(s, "longitude", c.longitude, -180.0, 180.0)?;
    check_range(s, "declination", c.declination, 0.0, 90.0)?;
    check_range(s, "azimuth", c.azimuth, -180.0, 180.0)?;
    check_range(s, "kwp", c.kwp, 0.001, 10_000.0)?;
    if c.refresh_minutes < 5 {
        return Err(BuildError::new(
            s,
            format!(
                "refresh_minutes must be at least 5 (the free plan allows 12 calls an hour), got {}",
                c.refresh_minutes
            ),
        ));
    }
    let base = c.url.trim_end_matches('/');
    let key = match &c.api_key {
        Some(k) if !k.expose().is_empty() => format!("/{}", k.expose()),
        _ => String::new(),
    };
    let url = format!(
        "{base}{key}/estimate/{}/{}/{}/{}/{}?time=iso8601",
        c.latitude, c.longitude, c.declination, c.azimuth, c.kwp
    );
    Ok(ForecastSolar {
        client: HttpClient::new(NAME, s, &c.http)?,
        request: Request::get(url),
        refresh: Duration::from_secs(c.refresh_minutes * 60),
        hold: Mutex::new((None, DEFAULT_PERIOD_SECS)),
        key: c.api_key.filter(|k| !k.expose().is_empty()),
    })
}

inventory::submit! {
    ForecastPlugin {
        name: NAME,
        summary: "forecast.solar: PV power estimate for a plane (today and tomorrow)",
        example: include_str!("../example.toml"),
        build,
    }
}
