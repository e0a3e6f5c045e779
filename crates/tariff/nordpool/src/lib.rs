#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, Days, Utc};
use serde::Deserialize;
use serde_json::Value;
use twc_core::plugin::{
    BuildError, PluginConfig, PluginError, PriceSlot, Prices, TariffPlugin, TariffSource,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::tariff::{Adjust, finish, now_unix};
use twc_plugin_kit::{ParseError, num};

/// The registry name: `[tariff.nordpool]`, feature `tariff-nordpool`.
pub const NAME: &str = "nordpool";
/// The data portal endpoint.
pub const URL: &str = "https://dataportal-api.nordpoolgroup.com/api/DayAheadPrices";

/// `[tariff.nordpool]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NordpoolConfig {
    /// Delivery area.
    pub area: String,
    /// Currency.
    #[serde(default = "eur")]
    pub currency: String,
    /// Added per kWh before VAT.
    #[serde(default)]
    pub markup_per_kwh: f64,
    /// VAT, %.
    #[serde(default)]
    pub vat_pct: f64,
    /// Feed-in price per kWh.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// Endpoint.
    #[serde(default = "url")]
    pub url: String,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn eur() -> String {
    "EUR".into()
}
fn url() -> String {
    URL.into()
}

fn at(e: &Value, k: &str, i: usize) -> Result<i64, ParseError> {
    e.get(k)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .ok_or_else(|| ParseError::protocol(format!("multiAreaEntries[{i}].{k} is no time")))
}

/// Parse one day's answer. An empty body (204: not published yet) is no slots.
pub fn parse(
    body: &[u8],
    area: &str,
    currency: &str,
    adjust: &Adjust,
) -> Result<Vec<PriceSlot>, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let v = num::json(body)?;
    if let Some(c) = v.get("currency").and_then(Value::as_str)
        && c != currency
    {
        return Err(ParseError::protocol(format!(
            "the answer is in {c}, {currency} was asked"
        )));
    }
    let entries = v
        .get("multiAreaEntries")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::protocol("no multiAreaEntries in the answer"))?;
    let mut slots = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let price = e
            .pointer(&format!("/entryPerArea/{area}"))
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite())
            .ok_or_else(|| {
                ParseError::protocol(format!(
                    "multiAreaEntries[{i}].entryPerArea.{area} is not a number (is the area right?)"
                ))
            })?;
        slots.push(PriceSlot {
            start_unix: at(e, "deliveryStart", i)?,
            end_unix: at(e, "deliveryEnd", i)?,
            price_per_kwh: adjust.per_mwh(price),
            co2_g_per_kwh: None,
        });
    }
    Ok(slots)
}

/// The Nord Pool tariff.
pub struct Nordpool {
    client: HttpClient,
    url: String,
    area: String,
    currency: String,
    adjust: Adjust,
    feed_in: Option<f64>,
}

impl Nordpool {
    /// Today's and tomorrow's prices (delivery days in CET) as seen at `now_unix`.
    pub async fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let now: DateTime<Utc> = DateTime::from_timestamp(now_unix, 0).unwrap_or_default();
        let today = now.with_timezone(&chrono_tz::Europe::Oslo).date_naive();
        let mut slots = Vec::new();
        for (n, day) in [today, today + Days::new(1)].into_iter().enumerate() {
            let req = Request::get(format!(
                "{}?date={}&market=DayAhead&deliveryArea={}&currency={}",
                self.url,
                day.format("%Y-%m-%d"),
                self.area,
                self.currency
            ));
            let (area, cur, adj) = (&self.area, &self.currency, self.adjust);
            match self.client.fetch(&req, |b| parse(b, area, cur, &adj)).await {
                Ok(s) => slots.extend(s),
                // Tomorrow may fail on its own (not published, a hiccup): today's prices stand.
                Err(e) if n == 1 => {
                    tracing::debug!(error = %e.chain(), "tomorrow's prices not available");
                }
                Err(e) => return Err(e),
            }
        }
        finish(NAME, NAME, &self.currency, slots, self.feed_in, now_unix)
    }
}

#[async_trait]
impl TariffSource for Nordpool {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix()).await
    }
}

/// Build from `[tariff.nordpool]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_nordpool(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_nordpool(cfg: &PluginConfig) -> Result<Nordpool, BuildError> {
    let c: NordpoolConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    if c.area.is_empty() || !c.area.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(BuildError::new(
            s,
            format!(
                "area = {:?}: expected a delivery area such as \"SE3\"",
                c.area
            ),
        ));
    }
    if c.currency.len() != 3 || !c.currency.chars().all(|ch| ch.is_ascii_uppercase()) {
        return Err(BuildError::new(
            s,
            format!(
                "currency = {:?}: expected an ISO 4217 code such as \"EUR\"",
                c.currency
            ),
        ));
    }
    let adjust = Adjust {
        markup_per_kwh: c.markup_per_kwh,
        vat_pct: c.vat_pct,
    };
    adjust.check(s)?;
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    Ok(Nordpool {
        client: HttpClient::new(NAME, s, &c.http)?,
        url: c.url,
        area: c.area,
        currency: c.currency,
        adjust,
        feed_in: c.feed_in_per_kwh,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "Nord Pool day-ahead prices for a delivery area and currency, with markup and VAT",
        example: include_str!("../example.toml"),
        build,
    }
}
