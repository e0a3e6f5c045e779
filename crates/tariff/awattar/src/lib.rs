#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use twc_core::plugin::{
    BuildError, PluginConfig, PluginError, PriceSlot, Prices, TariffPlugin, TariffSource,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::tariff::{Adjust, finish, now_unix};
use twc_plugin_kit::{ParseError, num};

/// The registry name: `[tariff.awattar]`, feature `tariff-awattar`.
pub const NAME: &str = "awattar";
/// How far ahead to ask, s.
pub const HORIZON_SECS: i64 = 48 * 3600;

/// `[tariff.awattar]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwattarConfig {
    /// `de` or `at`.
    #[serde(default = "de")]
    pub country: String,
    /// Override of the endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// Added per kWh before VAT.
    #[serde(default)]
    pub markup_per_kwh: f64,
    /// VAT, %.
    #[serde(default)]
    pub vat_pct: f64,
    /// Feed-in price per kWh.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn de() -> String {
    "de".into()
}

/// The endpoint for a country.
pub fn default_url(country: &str) -> Option<&'static str> {
    match country {
        "de" => Some("https://api.awattar.de/v1/marketdata"),
        "at" => Some("https://api.awattar.at/v1/marketdata"),
        _ => None,
    }
}

/// Parse a marketdata answer into slots (bill prices per kWh).
pub fn parse(body: &[u8], adjust: &Adjust) -> Result<Vec<PriceSlot>, ParseError> {
    let v = num::json(body)?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::protocol("no data list in the answer"))?;
    let mut slots = Vec::with_capacity(data.len());
    for (i, e) in data.iter().enumerate() {
        let int = |k: &str| {
            e.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| ParseError::protocol(format!("data[{i}].{k} is not a timestamp")))
        };
        let unit = e.get("unit").and_then(Value::as_str).unwrap_or("");
        if !unit.eq_ignore_ascii_case("eur/mwh") {
            return Err(ParseError::protocol(format!(
                "data[{i}].unit is {unit:?}, expected \"Eur/MWh\""
            )));
        }
        let price = e
            .get("marketprice")
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite())
            .ok_or_else(|| {
                ParseError::protocol(format!("data[{i}].marketprice is not a number"))
            })?;
        slots.push(PriceSlot {
            start_unix: int("start_timestamp")?.div_euclid(1000),
            end_unix: int("end_timestamp")?.div_euclid(1000),
            price_per_kwh: adjust.per_mwh(price),
            co2_g_per_kwh: None,
        });
    }
    Ok(slots)
}

/// The aWATTar tariff.
pub struct Awattar {
    client: HttpClient,
    url: String,
    adjust: Adjust,
    feed_in: Option<f64>,
}

impl Awattar {
    /// The prices from the current hour of `now_unix` for 48 h.
    pub async fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let start = now_unix - now_unix.rem_euclid(3600);
        let req = Request::get(format!(
            "{}?start={}&end={}",
            self.url,
            start * 1000,
            (start + HORIZON_SECS) * 1000
        ));
        let adjust = self.adjust;
        let slots = self.client.fetch(&req, |b| parse(b, &adjust)).await?;
        finish(NAME, NAME, "EUR", slots, self.feed_in, now_unix)
    }
}

#[async_trait]
impl TariffSource for Awattar {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix()).await
    }
}

/// Build from `[tariff.awattar]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_awattar(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_awattar(cfg: &PluginConfig) -> Result<Awattar, BuildError> {
    let c: AwattarConfig = cfg.parse()?;
    let s = &cfg.section;
    let url = match (&c.url, default_url(&c.country)) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => u.to_string(),
        (None, None) => {
            return Err(BuildError::new(
                s,
                format!("country = {:?}: expected \"de\" or \"at\"", c.country),
            ));
        }
    };
    check_url(s, "url", &url)?;
    let adjust = Adjust {
        markup_per_kwh: c.markup_per_kwh,
        vat_pct: c.vat_pct,
    };
    adjust.check(s)?;
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    Ok(Awattar {
        client: HttpClient::new(NAME, s, &c.http)?,
        url,
        adjust,
        feed_in: c.feed_in_per_kwh,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "aWATTar day-ahead market prices (Germany, Austria), with markup and VAT",
        example: include_str!("../example.toml"),
        build,
    }
}
