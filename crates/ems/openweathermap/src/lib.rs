#![doc = include_str!("../README.md")]

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::Value;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::{HttpSource, MinInterval, ParseError, min_interval_for, num, timestamp};

/// The registry name: the section is `[ems.openweathermap]`, the bin's feature
/// `ems-openweathermap`.
pub const NAME: &str = "openweathermap";
/// One Call API 3.0 (TWCManager's 2.5 endpoint has been retired by OpenWeatherMap).
pub const ONECALL_URL: &str = "https://api.openweathermap.org/data/3.0/onecall";
/// Calls a day included free with a One Call 3.0 subscription.
pub const FREE_CALLS_PER_DAY: u32 = 1000;
/// Above this temperature (°C) panels lose 1 % per degree.
pub const HOT_C: f64 = 31.0;
/// The heat loss never takes away more than half.
pub const MIN_HEAT_FACTOR: f64 = 0.5;
/// A forecast entry further than this from now is no estimate for now.
pub const MAX_ENTRY_DISTANCE_SECS: i64 = 2 * 3600;

/// `[ems.openweathermap]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenweathermapConfig {
    /// API key with a One Call 3.0 subscription.
    pub api_key: Secret,
    /// Site latitude, degrees (north positive).
    pub latitude: f64,
    /// Site longitude, degrees (east positive).
    pub longitude: f64,
    /// Peak PV output per month, kW, January first: what the array gives at midday on a clear,
    /// cool day of that month.
    pub peak_kw: Vec<f64>,
    /// One Call endpoint.
    #[serde(default = "onecall_url")]
    pub url: String,
    /// Calls a day this source may make; the poll interval is stretched to fit.
    #[serde(default = "free_calls")]
    pub calls_per_day: u32,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn onecall_url() -> String {
    ONECALL_URL.to_string()
}
fn free_calls() -> u32 {
    FREE_CALLS_PER_DAY
}

/// The weather that an estimate is made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weather {
    /// Sunrise today, Unix s.
    pub sunrise: i64,
    /// Sunset today, Unix s.
    pub sunset: i64,
    /// Cloud cover, %.
    pub clouds_pct: f64,
    /// Air temperature, °C.
    pub temp_c: f64,
}

/// The share of the peak that the sun's position gives: 0 at night; by day rising linearly from
/// sunrise to 1 at midday and falling to sunset, at least 0.2, and 1 from 0.9 up
/// (TWCManager's day curve).
pub fn day_factor(now: i64, sunrise: i64, sunset: i64) -> f64 {
    if now < sunrise || now > sunset || sunset <= sunrise {
        return 0.0;
    }
    let half = (sunset - sunrise) as f64 / 2.0;
    let from_midday = (now as f64 - (sunrise as f64 + half)).abs();
    let f = 1.0 - from_midday / half;
    if f > 0.9 { 1.0 } else { f.max(0.2) }
}

/// The share left by clouds: a third of the cover is lost (TWCManager's tuning).
pub fn cloud_factor(clouds_pct: f64) -> f64 {
    1.0 - clouds_pct.clamp(0.0, 100.0) / 300.0
}

/// The share left by heat: 1 % less per degree above 31 °C, never below 0.5. (TWCManager caps
/// this factor *at* 0.5, which halves the estimate on any day above 31 °C.)
pub fn heat_factor(temp_c: f64) -> f64 {
    if temp_c > HOT_C {
        (1.0 - (temp_c - HOT_C) / 100.0).max(MIN_HEAT_FACTOR)
    } else {
        1.0
    }
}

/// Estimated PV power, W, from the month's peak (kW) and the weather at `now` (Unix s).
pub fn estimate_w(peak_kw: f64, now: i64, w: &Weather) -> f64 {
    peak_kw
        * 1000.0
        * day_factor(now, w.sunrise, w.sunset)
        * cloud_factor(w.clouds_pct)
        * heat_factor(w.temp_c)
}

fn int_at(v: &Value, ptr: &str) -> Result<i64, ParseError> {
    num::pointer_f64(v, ptr)?
        .map(|x| x as i64)
        .ok_or_else(|| ParseError::protocol(format!("{ptr} is null")))
}

/// The entry of `current` and `hourly` whose `dt` is closest to `now` (current on a tie).
/// `daily` entries are not used: their `temp` is an object and their clouds a day's average.
pub fn best_entry(v: &Value, now: i64) -> Result<&Value, ParseError> {
    let mut best = num::pointer(v, "/current")?;
    let mut dist = (int_at(best, "/dt")? - now).abs();
    if let Some(hourly) = v.get("hourly").and_then(Value::as_array) {
        for e in hourly {
            let d = (int_at(e, "/dt")? - now).abs();
            if d < dist {
                best = e;
                dist = d;
            }
        }
    }
    if dist > MAX_ENTRY_DISTANCE_SECS {
        return Err(ParseError::protocol(format!(
            "the forecast has no entry within {} h of now (closest is {} min away)",
            MAX_ENTRY_DISTANCE_SECS / 3600,
            dist / 60
        )));
    }
    Ok(best)
}

/// Parse a One Call reply (requested with `units=metric`) into an **estimated** generation for
/// `now`, with `peak_kw[month − 1]` for the site's local month (from `timezone_offset`). The
/// reading is marked `estimated` and counts from `current.dt`, when the weather was observed.
pub fn parse_onecall(
    body: &[u8],
    peak_kw: &[f64; 12],
    now: DateTime<Utc>,
) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    if let Some(msg) = v.get("message").and_then(Value::as_str) {
        return Err(ParseError::protocol(format!("OpenWeatherMap: {msg}")));
    }
    let t = now.timestamp();
    let entry = best_entry(&v, t)?;
    let temp_c =
        num::pointer_f64(entry, "/temp")?.ok_or_else(|| ParseError::protocol("temp is null"))?;
    if !(-90.0..=70.0).contains(&temp_c) {
        return Err(ParseError::protocol(format!(
            "temp {temp_c} is no air temperature in °C (Kelvin? the request asks for units=metric)"
        )));
    }
    let clouds_pct = num::pointer_f64(entry, "/clouds")?
        .filter(|c| (0.0..=100.0).contains(c))
        .ok_or_else(|| ParseError::protocol("clouds is not a percentage"))?;
    let w = Weather {
        sunrise: int_at(&v, "/current/sunrise")?,
        sunset: int_at(&v, "/current/sunset")?,
        clouds_pct,
        temp_c,
    };
    let offset = int_at(&v, "/timezone_offset").unwrap_or(0);
    let local = now + chrono::Duration::seconds(offset);
    let peak = peak_kw[local.month0() as usize];
    let observed = timestamp::pointer_instant(&v, "/current/dt")?;
    let mut r = EnergyReading {
        generation_w: Some(estimate_w(peak, t, &w)),
        estimated: true,
        ..EnergyReading::default()
    };
    if let Some(at) = observed {
        r.measured_at = r.measured_at.min(at);
    }
    Ok(r)
}

/// Build from `[ems.openweathermap]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: OpenweathermapConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    let key = c.api_key.expose();
    if key.is_empty() || !key.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(BuildError::new(
            s,
            "api_key must be the key from openweathermap.org (letters and digits)",
        ));
    }
    if !(-90.0..=90.0).contains(&c.latitude) {
        return Err(BuildError::new(
            s,
            format!(
                "latitude must be between -90 and 90 degrees, got {}",
                c.latitude
            ),
        ));
    }
    if !(-180.0..=180.0).contains(&c.longitude) {
        return Err(BuildError::new(
            s,
            format!(
                "longitude must be between -180 and 180 degrees, got {}",
                c.longitude
            ),
        ));
    }
    let peak: [f64; 12] = c.peak_kw.clone().try_into().map_err(|_| {
        BuildError::new(
            s,
            format!(
                "peak_kw must list 12 monthly peaks in kW (January first), got {}",
                c.peak_kw.len()
            ),
        )
    })?;
    if let Some((i, p)) = peak
        .iter()
        .enumerate()
        .find(|(_, p)| !(p.is_finite() && (0.0..=10_000.0).contains(*p)))
    {
        return Err(BuildError::new(
            s,
            format!("peak_kw[{i}] must be between 0 and 10000 kW, got {p}"),
        ));
    }
    if c.calls_per_day == 0 {
        return Err(BuildError::new(s, "calls_per_day must be at least 1"));
    }
    let client = HttpClient::new(NAME, s, &c.http)?;
    let url = format!(
        "{}?lat={}&lon={}&appid={key}&exclude=minutely,alerts&units=metric",
        c.url, c.latitude, c.longitude
    );
    let min = min_interval_for(c.calls_per_day, 1 + c.http.retries);
    Ok(Box::new(MinInterval::new(
        HttpSource::new(client, Request::get(url), move |b| {
            parse_onecall(b, &peak, Utc::now())
        }),
        min,
    )))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "OpenWeatherMap One Call: an estimate of PV generation from the forecast (marked estimated)",
        example: include_str!("../example.toml"),
        build,
    }
}
