#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use twc_core::plugin::{
    BuildError, PluginConfig, PluginError, PriceSlot, Prices, TariffPlugin, TariffSource,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::tariff::{Adjust, check_feed_in, finish, now_unix};
use twc_plugin_kit::{ParseError, num};

/// The registry name: the section is `[tariff.__NAME__]`, the bin's feature `tariff-__NAME__`.
pub const NAME: &str = "__NAME__";

/// The path of the price list (the service's own; tests/fixtures/sample.json is its reply).
pub const PATH: &str = "/prices";

/// `[tariff.__NAME__]`: every key named, typos rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct __CAMEL__Config {
    /// The price list's URL.
    pub url: String,
    /// The currency of the prices.
    #[serde(default = "eur")]
    pub currency: String,
    /// Added to every price per kWh before VAT (grid fees, levies, margin).
    #[serde(default)]
    pub markup_per_kwh: f64,
    /// VAT, % (0 = the prices include it).
    #[serde(default)]
    pub vat_pct: f64,
    /// What exported energy earns per kWh (absent = unknown).
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// Timeout, retries, TLS.
    #[serde(default)]
    pub http: HttpOptions,
}

fn eur() -> String {
    "EUR".into()
}

/// Decode a reply into slots (bill prices per kWh). Garbage or a missing value is an error,
/// never a price; replace the fields with the service's.
pub fn parse(body: &[u8], adjust: &Adjust) -> Result<Vec<PriceSlot>, ParseError> {
    let v = num::json(body)?;
    let list = v
        .get("prices")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::protocol("no prices list in the answer"))?;
    let mut slots = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let time = |k: &str| {
            e.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| ParseError::protocol(format!("prices[{i}].{k} is not a Unix time")))
        };
        let price = e
            .get("price_per_kwh")
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite())
            .ok_or_else(|| {
                ParseError::protocol(format!("prices[{i}].price_per_kwh is not a number"))
            })?;
        slots.push(PriceSlot {
            start_unix: time("start")?,
            end_unix: time("end")?,
            price_per_kwh: adjust.per_kwh(price),
            co2_g_per_kwh: None,
        });
    }
    Ok(slots)
}

/// The tariff.
pub struct __CAMEL__ {
    client: HttpClient,
    url: String,
    currency: String,
    adjust: Adjust,
    feed_in: Option<f64>,
}

impl __CAMEL__ {
    /// The prices from `now_unix` on (those that ended are dropped; none is an error).
    pub async fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let adjust = self.adjust;
        let slots = self
            .client
            .fetch(&Request::get(self.url.clone()), |b| parse(b, &adjust))
            .await?;
        finish(NAME, NAME, &self.currency, slots, self.feed_in, now_unix)
    }
}

#[twc_core::async_trait]
impl TariffSource for __CAMEL__ {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix()).await
    }
}

/// Build from the section: synchronous and cheap.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_tariff(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_tariff(cfg: &PluginConfig) -> Result<__CAMEL__, BuildError> {
    let c: __CAMEL__Config = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    let adjust = Adjust {
        markup_per_kwh: c.markup_per_kwh,
        vat_pct: c.vat_pct,
    };
    adjust.check(s)?;
    check_feed_in(s, c.feed_in_per_kwh)?;
    Ok(__CAMEL__ {
        client: HttpClient::new(NAME, s, &c.http)?,
        url: c.url,
        currency: c.currency,
        adjust,
        feed_in: c.feed_in_per_kwh,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "__SUMMARY__",
        example: include_str!("../example.toml"),
        build,
    }
}
