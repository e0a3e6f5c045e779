#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use twc_core::plugin::{
    BuildError, PluginConfig, PluginError, PriceSlot, Prices, TariffPlugin, TariffSource,
};
use twc_plugin_kit::tariff::{finish, now_unix};

/// The registry name: `[tariff.fixed]`, feature `tariff-fixed`.
pub const NAME: &str = "fixed";

/// `[tariff.fixed]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedConfig {
    /// Import price per kWh.
    pub price_per_kwh: f64,
    /// ISO 4217 currency code.
    #[serde(default = "eur")]
    pub currency: String,
    /// Feed-in price per kWh.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// CO₂ intensity, g/kWh.
    #[serde(default)]
    pub co2_g_per_kwh: Option<f64>,
    /// Hours of slots ahead.
    #[serde(default = "horizon")]
    pub horizon_hours: u32,
}

fn eur() -> String {
    "EUR".into()
}
fn horizon() -> u32 {
    48
}

/// Check an ISO 4217 code: three capital letters.
pub fn check_currency(section: &str, currency: &str) -> Result<(), BuildError> {
    if currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(BuildError::new(
            section,
            format!("currency = {currency:?}: expected an ISO 4217 code such as \"EUR\""),
        ))
    }
}

/// The fixed tariff.
#[derive(Debug, Clone)]
pub struct Fixed {
    cfg: FixedConfig,
}

impl Fixed {
    /// The prices as seen at `now_unix`: hourly slots from the start of that hour.
    pub fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let start = now_unix - now_unix.rem_euclid(3600);
        let slots = (0..i64::from(self.cfg.horizon_hours))
            .map(|h| PriceSlot {
                start_unix: start + h * 3600,
                end_unix: start + (h + 1) * 3600,
                price_per_kwh: self.cfg.price_per_kwh,
                co2_g_per_kwh: self.cfg.co2_g_per_kwh,
            })
            .collect();
        finish(
            NAME,
            NAME,
            &self.cfg.currency,
            slots,
            self.cfg.feed_in_per_kwh,
            now_unix,
        )
    }
}

#[async_trait]
impl TariffSource for Fixed {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix())
    }
}

/// Build from `[tariff.fixed]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_fixed(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_fixed(cfg: &PluginConfig) -> Result<Fixed, BuildError> {
    let c: FixedConfig = cfg.parse()?;
    let s = &cfg.section;
    if !c.price_per_kwh.is_finite() {
        return Err(BuildError::new(s, "price_per_kwh must be a number"));
    }
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    if c.co2_g_per_kwh
        .is_some_and(|f| !(f.is_finite() && f >= 0.0))
    {
        return Err(BuildError::new(s, "co2_g_per_kwh must be a number ≥ 0"));
    }
    if !(1..=24 * 14).contains(&c.horizon_hours) {
        return Err(BuildError::new(
            s,
            format!(
                "horizon_hours must be between 1 and 336, got {}",
                c.horizon_hours
            ),
        ));
    }
    check_currency(s, &c.currency)?;
    Ok(Fixed { cfg: c })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "One fixed price per kWh (and an optional feed-in price)",
        example: include_str!("../example.toml"),
        build,
    }
}
