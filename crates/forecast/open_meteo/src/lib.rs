#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use twc_core::plugin::{
    BuildError, Forecast, ForecastPlugin, ForecastSlot, PluginConfig, PluginError, SolarForecast,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::num::check_range;
use twc_plugin_kit::{ParseError, num};

/// The registry name: `[forecast.open_meteo]`, feature `forecast-open_meteo`.
pub const NAME: &str = "open_meteo";
/// The forecast endpoint.
pub const URL: &str = "https://api.open-meteo.com/v1/forecast";
/// Power temperature coefficient of crystalline silicon, 1/K.
pub const TEMP_COEFF: f64 = -0.004;
/// Cell temperature rise per W/m² of irradiance (NOCT 45 °C at 800 W/m², 20 °C air).
pub const CELL_RISE_PER_WM2: f64 = (45.0 - 20.0) / 800.0;

/// `[forecast.open_meteo]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenMeteoConfig {
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Tilt, degrees.
    pub tilt: f64,
    /// Azimuth, degrees (0 = south).
    pub azimuth: f64,
    /// Peak power, kWp.
    pub kwp: f64,
    /// Performance ratio.
    #[serde(default = "pr")]
    pub performance_ratio: f64,
    /// Inverter AC limit, kW.
    #[serde(default)]
    pub inverter_kw: Option<f64>,
    /// Days to ask for.
    #[serde(default = "days")]
    pub forecast_days: u32,
    /// Endpoint.
    #[serde(default = "url")]
    pub url: String,
    /// Minutes between calls.
    #[serde(default = "refresh")]
    pub refresh_minutes: u64,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn pr() -> f64 {
    0.85
}
fn days() -> u32 {
    2
}
fn url() -> String {
    URL.into()
}
fn refresh() -> u64 {
    60
}

/// The panels, as the model uses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Panels {
    /// kWp.
    pub kwp: f64,
    /// Performance ratio.
    pub performance_ratio: f64,
    /// AC limit, kW.
    pub inverter_kw: Option<f64>,
}

/// PV power, W, from the plane's irradiance (W/m²) and the air temperature (°C).
pub fn pv_watts(p: &Panels, gti: f64, air_c: Option<f64>) -> f64 {
    let gti = gti.max(0.0);
    let f_temp = air_c.map_or(1.0, |t| {
        let cell = t + gti * CELL_RISE_PER_WM2;
        1.0 + TEMP_COEFF * (cell - 25.0)
    });
    let w = p.kwp * gti * p.performance_ratio * f_temp;
    let w = p.inverter_kw.map_or(w, |max| w.min(max * 1000.0));
    w.max(0.0)
}

/// Parse an answer (asked with `timeformat=unixtime`).
pub fn parse(body: &[u8], panels: &Panels) -> Result<Forecast, ParseError> {
    let v = num::json(body)?;
    if v.get("error").and_then(Value::as_bool) == Some(true) {
        let reason = v.get("reason").and_then(Value::as_str).unwrap_or("error");
        return Err(ParseError::protocol(format!("Open-Meteo: {reason}")));
    }
    let unit = v
        .pointer("/hourly_units/global_tilted_irradiance")
        .and_then(Value::as_str)
        .unwrap_or("");
    if unit != "W/m²" {
        return Err(ParseError::protocol(format!(
            "hourly_units.global_tilted_irradiance is {unit:?}, expected \"W/m²\""
        )));
    }
    let arr = |k: &str| {
        v.pointer(&format!("/hourly/{k}"))
            .and_then(Value::as_array)
            .ok_or_else(|| ParseError::protocol(format!("no hourly.{k} in the answer")))
    };
    let times = arr("time")?;
    let gti = arr("global_tilted_irradiance")?;
    let temp = arr("temperature_2m").ok();
    if gti.len() != times.len() || temp.is_some_and(|t| t.len() != times.len()) {
        return Err(ParseError::protocol(
            "hourly lists differ in length (a truncated answer?)",
        ));
    }
    let mut slots = Vec::with_capacity(times.len());
    for (i, t) in times.iter().enumerate() {
        let end = t.as_i64().ok_or_else(|| {
            ParseError::protocol(format!(
                "hourly.time[{i}] is no Unix time (asked with timeformat=unixtime)"
            ))
        })?;
        let Some(g) = gti[i].as_f64() else {
            if gti[i].is_null() {
                continue; // unknown: a gap, never 0 W
            }
            return Err(ParseError::protocol(format!(
                "hourly.global_tilted_irradiance[{i}] is not a number"
            )));
        };
        if !g.is_finite() {
            return Err(ParseError::protocol(format!(
                "hourly.global_tilted_irradiance[{i}] is not finite"
            )));
        }
        let air = temp.and_then(|t| t[i].as_f64());
        slots.push(ForecastSlot {
            start_unix: end - 3600,
            end_unix: end,
            watts: pv_watts(panels, g, air),
        });
    }
    if slots.is_empty() {
        return Err(ParseError::protocol("the answer holds no irradiance"));
    }
    Ok(Forecast {
        source: NAME.into(),
        slots,
    })
}

/// The Open-Meteo plugin.
pub struct OpenMeteo {
    client: HttpClient,
    request: Request,
    panels: Panels,
    refresh: Duration,
}

#[async_trait]
impl SolarForecast for OpenMeteo {
    async fn forecast(&self) -> Result<Forecast, PluginError> {
        let panels = self.panels;
        self.client
            .fetch(&self.request, |b| parse(b, &panels))
            .await
    }
    fn refresh_interval(&self) -> Duration {
        self.refresh
    }
}

/// Build from `[forecast.open_meteo]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn SolarForecast>, BuildError> {
    Ok(Box::new(build_open_meteo(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_open_meteo(cfg: &PluginConfig) -> Result<OpenMeteo, BuildError> {
    let c: OpenMeteoConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    check_range(s, "latitude", c.latitude, -90.0, 90.0)?;
    check_range(s, "longitude", c.longitude, -180.0, 180.0)?;
    check_range(s, "tilt", c.tilt, 0.0, 90.0)?;
    check_range(s, "azimuth", c.azimuth, -180.0, 180.0)?;
    check_range(s, "kwp", c.kwp, 0.001, 10_000.0)?;
    check_range(s, "performance_ratio", c.performance_ratio, 0.1, 1.0)?;
    if let Some(k) = c.inverter_kw {
        check_range(s, "inverter_kw", k, 0.001, 10_000.0)?;
    }
    if !(1..=7).contains(&c.forecast_days) {
        return Err(BuildError::new(
            s,
            format!(
                "forecast_days must be between 1 and 7, got {}",
                c.forecast_days
            ),
        ));
    }
    if c.refresh_minutes < 5 {
        return Err(BuildError::new(
            s,
            format!(
                "refresh_minutes must be at least 5, got {}",
                c.refresh_minutes
            ),
        ));
    }
    let url = format!(
        "{}?latitude={}&longitude={}&hourly=global_tilted_irradiance,temperature_2m&tilt={}&azimuth={}&timezone=UTC&timeformat=unixtime&forecast_days={}",
        c.url, c.latitude, c.longitude, c.tilt, c.azimuth, c.forecast_days
    );
    Ok(OpenMeteo {
        client: HttpClient::new(NAME, s, &c.http)?,
        request: Request::get(url),
        panels: Panels {
            kwp: c.kwp,
            performance_ratio: c.performance_ratio,
            inverter_kw: c.inverter_kw,
        },
        refresh: Duration::from_secs(c.refresh_minutes * 60),
    })
}

inventory::submit! {
    ForecastPlugin {
        name: NAME,
        summary: "Open-Meteo: tilted-plane irradiance turned into PV watts for the configured panels",
        example: include_str!("../example.toml"),
        build,
    }
}
