#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;
use twc_core::plugin::{
    BuildError, PluginConfig, PluginError, PriceSlot, Prices, TariffPlugin, TariffSource,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::tariff::{finish, now_unix};
use twc_plugin_kit::{ParseError, num};

/// The registry name: `[tariff.octopus]`, feature `tariff-octopus`.
pub const NAME: &str = "octopus";
/// The API.
pub const URL: &str = "https://api.octopus.energy";
/// How far ahead to ask, s.
pub const HORIZON_SECS: i64 = 48 * 3600;

/// `[tariff.octopus]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OctopusConfig {
    /// Product code.
    pub product_code: String,
    /// Region letter.
    #[serde(default)]
    pub region: Option<String>,
    /// Tariff code override.
    #[serde(default)]
    pub tariff_code: Option<String>,
    /// With VAT.
    #[serde(default = "yes")]
    pub include_vat: bool,
    /// API base.
    #[serde(default = "url")]
    pub url: String,
    /// Feed-in price per kWh.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn yes() -> bool {
    true
}
fn url() -> String {
    URL.into()
}

fn time(e: &Value, k: &str, i: usize) -> Result<Option<i64>, ParseError> {
    match e.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| Some(t.timestamp()))
            .ok_or_else(|| ParseError::protocol(format!("results[{i}].{k} is no time"))),
    }
}

/// Parse a unit-rates answer; `open_end` ends a rate without `valid_to`.
pub fn parse(body: &[u8], include_vat: bool, open_end: i64) -> Result<Vec<PriceSlot>, ParseError> {
    let v = num::json(body)?;
    if let Some(d) = v.get("detail").and_then(Value::as_str) {
        return Err(ParseError::config(format!("Octopus: {d}")));
    }
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::protocol("no results list in the answer"))?;
    let key = if include_vat {
        "value_inc_vat"
    } else {
        "value_exc_vat"
    };
    let mut slots = Vec::with_capacity(results.len());
    for (i, e) in results.iter().enumerate() {
        let start = time(e, "valid_from", i)?
            .ok_or_else(|| ParseError::protocol(format!("results[{i}].valid_from is missing")))?;
        let end = time(e, "valid_to", i)?.unwrap_or(open_end.max(start + 1800));
        let pence = e
            .get(key)
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite())
            .ok_or_else(|| ParseError::protocol(format!("results[{i}].{key} is not a number")))?;
        slots.push(PriceSlot {
            start_unix: start,
            end_unix: end,
            price_per_kwh: pence / 100.0,
            co2_g_per_kwh: None,
        });
    }
    Ok(slots)
}

/// The Octopus tariff.
pub struct Octopus {
    client: HttpClient,
    base: String,
    include_vat: bool,
    feed_in: Option<f64>,
}

fn rfc3339(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Octopus {
    /// The prices from the current half hour for 48 h.
    pub async fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let from = now_unix - now_unix.rem_euclid(1800);
        let to = from + HORIZON_SECS;
        let req = Request::get(format!(
            "{}?period_from={}&period_to={}&page_size=1500",
            self.base,
            rfc3339(from),
            rfc3339(to)
        ));
        let vat = self.include_vat;
        let slots = self.client.fetch(&req, |b| parse(b, vat, to)).await?;
        finish(NAME, NAME, "GBP", slots, self.feed_in, now_unix)
    }
}

#[async_trait]
impl TariffSource for Octopus {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix()).await
    }
}

/// Build from `[tariff.octopus]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_octopus(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_octopus(cfg: &PluginConfig) -> Result<Octopus, BuildError> {
    let c: OctopusConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    let code_ok = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '-')
    };
    if !code_ok(&c.product_code) {
        return Err(BuildError::new(
            s,
            format!(
                "product_code = {:?}: expected a code such as \"AGILE-24-10-01\"",
                c.product_code
            ),
        ));
    }
    let tariff = match (&c.tariff_code, &c.region) {
        (Some(t), _) if code_ok(t) => t.clone(),
        (Some(t), _) => {
            return Err(BuildError::new(
                s,
                format!("tariff_code = {t:?}: expected a code such as \"E-1R-AGILE-24-10-01-C\""),
            ));
        }
        (None, Some(r))
            if r.len() == 1
                && r.chars()
                    .all(|ch| ch.is_ascii_uppercase() && ch <= 'P' && ch != 'I' && ch != 'O') =>
        {
            format!("E-1R-{}-{r}", c.product_code)
        }
        (None, r) => {
            return Err(BuildError::new(
                s,
                format!(
                    "region = {r:?}: expected your region letter A–P (not I or O), or set tariff_code"
                ),
            ));
        }
    };
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    Ok(Octopus {
        client: HttpClient::new(NAME, s, &c.http)?,
        base: format!(
            "{}/v1/products/{}/electricity-tariffs/{tariff}/standard-unit-rates/",
            c.url.trim_end_matches('/'),
            c.product_code
        ),
        include_vat: c.include_vat,
        feed_in: c.feed_in_per_kwh,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "Octopus Energy (Agile and others): half-hourly unit rates by product and region",
        example: include_str!("../example.toml"),
        build,
    }
}
