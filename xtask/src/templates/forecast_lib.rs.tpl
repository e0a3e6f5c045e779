#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use twc_core::plugin::{
    BuildError, ErrorKind, Forecast, ForecastPlugin, ForecastSlot, PluginConfig, PluginError,
    SolarForecast,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::{ParseError, num};

/// The registry name: the section is `[forecast.__NAME__]`, the bin's feature
/// `forecast-__NAME__`.
pub const NAME: &str = "__NAME__";

/// The path of the forecast (the service's own; tests/fixtures/sample.json is its reply).
pub const PATH: &str = "/forecast";

/// `[forecast.__NAME__]`: every key named, typos rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct __CAMEL__Config {
    /// The forecast's URL.
    pub url: String,
    /// Minutes between calls (free forecast services limit requests).
    #[serde(default = "refresh")]
    pub refresh_minutes: u64,
    /// Timeout, retries, TLS.
    #[serde(default)]
    pub http: HttpOptions,
}

fn refresh() -> u64 {
    60
}

/// Decode a reply into slots (mean W over each). Garbage, a missing or negative value is an
/// error, never a forecast of 0 W; replace the fields with the service's.
pub fn parse(body: &[u8]) -> Result<Vec<ForecastSlot>, ParseError> {
    let v = num::json(body)?;
    let list = v
        .get("forecast")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::protocol("no forecast list in the answer"))?;
    let mut slots = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let time = |k: &str| {
            e.get(k).and_then(Value::as_i64).ok_or_else(|| {
                ParseError::protocol(format!("forecast[{i}].{k} is not a Unix time"))
            })
        };
        let watts = e
            .get("watts")
            .and_then(Value::as_f64)
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| {
                ParseError::protocol(format!("forecast[{i}].watts is not a number ≥ 0"))
            })?;
        slots.push(ForecastSlot {
            start_unix: time("start")?,
            end_unix: time("end")?,
            watts,
        });
    }
    Ok(slots)
}

/// The forecast.
pub struct __CAMEL__ {
    client: HttpClient,
    url: String,
    refresh: Duration,
}

impl __CAMEL__ {
    /// The forecast from `now_unix` on (slots that ended are dropped; none is an error).
    pub async fn forecast_at(&self, now_unix: i64) -> Result<Forecast, PluginError> {
        let mut slots = self
            .client
            .fetch(&Request::get(self.url.clone()), parse)
            .await?;
        slots.sort_by_key(|s| s.start_unix);
        slots.retain(|s| s.end_unix > now_unix);
        if slots.is_empty() {
            return Err(PluginError::new(
                ErrorKind::Protocol,
                NAME,
                "the answer holds no forecast from now on",
            ));
        }
        let f = Forecast {
            source: NAME.into(),
            slots,
        };
        f.validate()
            .map_err(|e| PluginError::new(ErrorKind::Protocol, NAME, e))?;
        Ok(f)
    }
}

#[twc_core::async_trait]
impl SolarForecast for __CAMEL__ {
    async fn forecast(&self) -> Result<Forecast, PluginError> {
        self.forecast_at(twc_plugin_kit::tariff::now_unix()).await
    }

    fn refresh_interval(&self) -> Duration {
        self.refresh
    }
}

/// Build from the section: synchronous and cheap.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn SolarForecast>, BuildError> {
    Ok(Box::new(build_forecast(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_forecast(cfg: &PluginConfig) -> Result<__CAMEL__, BuildError> {
    let c: __CAMEL__Config = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    if !(5..=24 * 60).contains(&c.refresh_minutes) {
        return Err(BuildError::new(
            s,
            format!(
                "refresh_minutes = {}: expected 5 to 1440",
                c.refresh_minutes
            ),
        ));
    }
    Ok(__CAMEL__ {
        client: HttpClient::new(NAME, s, &c.http)?,
        url: c.url,
        refresh: Duration::from_secs(c.refresh_minutes * 60),
    })
}

inventory::submit! {
    ForecastPlugin {
        name: NAME,
        summary: "__SUMMARY__",
        example: include_str!("../example.toml"),
        build,
    }
}
