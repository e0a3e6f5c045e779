#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use twc_core::plugin::{
    BuildError, ErrorKind, PluginConfig, PluginError, PriceSlot, Prices, Secret, TariffPlugin,
    TariffSource,
};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::tariff::{finish, now_unix};
use twc_plugin_kit::{ParseError, num};

/// The registry name: `[tariff.tibber]`, feature `tariff-tibber`.
pub const NAME: &str = "tibber";
/// Tibber's GraphQL endpoint.
pub const URL: &str = "https://api.tibber.com/v1-beta/gql";

/// `[tariff.tibber]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TibberConfig {
    /// Personal access token.
    pub token: Secret,
    /// Home id (default the first home).
    #[serde(default)]
    pub home_id: Option<String>,
    /// `HOURLY` or `QUARTER_HOURLY`.
    #[serde(default = "hourly")]
    pub resolution: String,
    /// Endpoint.
    #[serde(default = "url")]
    pub url: String,
    /// Feed-in price per kWh.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn hourly() -> String {
    "HOURLY".into()
}
fn url() -> String {
    URL.into()
}

/// The GraphQL query for a resolution.
pub fn query(resolution: &str) -> String {
    let fields = "total energy tax startsAt currency";
    format!(
        "{{ viewer {{ homes {{ id currentSubscription {{ priceInfo(resolution: {resolution}) {{ today {{ {fields} }} tomorrow {{ {fields} }} }} }} }} }} }}"
    )
}

/// Parse an answer: the prices of `home_id` (or the first home), slot length `step` s for the
/// last slot. Returns the currency and the slots.
pub fn parse(
    body: &[u8],
    home_id: Option<&str>,
    step: i64,
) -> Result<(String, Vec<PriceSlot>), ParseError> {
    let v = num::json(body)?;
    if let Some(errs) = v.get("errors").and_then(Value::as_array) {
        let msg = errs
            .first()
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        let mut e = ParseError::protocol(format!("Tibber answered an error: {msg}"));
        if msg.to_ascii_lowercase().contains("token") || msg.contains("authoriz") {
            e.kind = ErrorKind::Auth;
        }
        return Err(e);
    }
    let homes = v
        .pointer("/data/viewer/homes")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::protocol("no data.viewer.homes in the answer"))?;
    let home = match home_id {
        Some(id) => homes
            .iter()
            .find(|h| h.get("id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| ParseError::config(format!("no home with id {id:?} in this account")))?,
        None => homes
            .first()
            .ok_or_else(|| ParseError::config("the account has no home"))?,
    };
    let info = home
        .pointer("/currentSubscription/priceInfo")
        .ok_or_else(|| ParseError::config("the home has no current subscription with prices"))?;
    let mut starts: Vec<(i64, f64)> = Vec::new();
    let mut currency = None;
    for day in ["today", "tomorrow"] {
        for (i, e) in info
            .get(day)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = e
                .get("startsAt")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .ok_or_else(|| ParseError::protocol(format!("{day}[{i}].startsAt is no time")))?;
            let total = e
                .get("total")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite())
                .ok_or_else(|| ParseError::protocol(format!("{day}[{i}].total is not a number")))?;
            if let Some(c) = e.get("currency").and_then(Value::as_str) {
                currency.get_or_insert_with(|| c.to_string());
            }
            starts.push((at.timestamp(), total));
        }
    }
    starts.sort_by_key(|s| s.0);
    let slots = starts
        .iter()
        .enumerate()
        .map(|(i, &(start, total))| {
            let end = starts
                .get(i + 1)
                .map(|n| n.0)
                .filter(|&n| n - start <= step)
                .unwrap_or(start + step);
            PriceSlot {
                start_unix: start,
                end_unix: end,
                price_per_kwh: total,
                co2_g_per_kwh: None,
            }
        })
        .collect();
    Ok((currency.unwrap_or_else(|| "EUR".into()), slots))
}

/// The Tibber tariff.
pub struct Tibber {
    client: HttpClient,
    url: String,
    token: Secret,
    home_id: Option<String>,
    resolution: String,
    feed_in: Option<f64>,
}

impl Tibber {
    /// The prices as seen at `now_unix`.
    pub async fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let req = Request::post_json(
            self.url.clone(),
            &serde_json::json!({ "query": query(&self.resolution) }),
        )
        .bearer(self.token.expose());
        let step = if self.resolution == "QUARTER_HOURLY" {
            900
        } else {
            3600
        };
        let home = self.home_id.clone();
        let (currency, slots) = self
            .client
            .fetch(&req, |b| parse(b, home.as_deref(), step))
            .await?;
        finish(NAME, NAME, &currency, slots, self.feed_in, now_unix)
    }
}

#[async_trait]
impl TariffSource for Tibber {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix()).await
    }
}

/// Build from `[tariff.tibber]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_tibber(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_tibber(cfg: &PluginConfig) -> Result<Tibber, BuildError> {
    let c: TibberConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    if c.token.expose().trim().is_empty() {
        return Err(BuildError::new(
            s,
            "token is empty: create a personal access token at developer.tibber.com",
        ));
    }
    if !matches!(c.resolution.as_str(), "HOURLY" | "QUARTER_HOURLY") {
        return Err(BuildError::new(
            s,
            format!(
                "resolution = {:?}: expected \"HOURLY\" or \"QUARTER_HOURLY\"",
                c.resolution
            ),
        ));
    }
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    Ok(Tibber {
        client: HttpClient::new(NAME, s, &c.http)?,
        url: c.url,
        token: c.token,
        home_id: c.home_id,
        resolution: c.resolution,
        feed_in: c.feed_in_per_kwh,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "Tibber: the home's prices for today and tomorrow through the GraphQL API",
        example: include_str!("../example.toml"),
        build,
    }
}
