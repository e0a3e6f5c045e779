//! Shared pieces of the tariff plugins: the price adjustment every market price needs (a
//! wholesale price per MWh plus grid fees, taxes and VAT becomes what a kWh costs), and the last
//! step before a plugin returns its prices (sort, drop what has ended, validate).

use twc_core::plugin::{ErrorKind, PluginError, PriceSlot, Prices};

/// What a market price becomes on the bill: `(market + markup_per_kwh) × (1 + vat_pct / 100)`.
/// Plugins read `markup_per_kwh` and `vat_pct` from their section (default 0: the market
/// price is the price).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Adjust {
    /// Added to every market price per kWh before VAT (grid fees, levies, the supplier's margin),
    /// in the tariff's currency per kWh.
    pub markup_per_kwh: f64,
    /// VAT in percent, applied to market price plus markup (0 = none).
    pub vat_pct: f64,
}

impl Adjust {
    /// Check the keys; `section` names the config section in the error.
    pub fn check(&self, section: &str) -> Result<(), twc_core::plugin::BuildError> {
        if !self.markup_per_kwh.is_finite() {
            return Err(twc_core::plugin::BuildError::new(
                section,
                "markup_per_kwh must be a number (currency per kWh)",
            ));
        }
        if !(self.vat_pct.is_finite() && (0.0..=100.0).contains(&self.vat_pct)) {
            return Err(twc_core::plugin::BuildError::new(
                section,
                format!("vat_pct must be between 0 and 100, got {}", self.vat_pct),
            ));
        }
        Ok(())
    }

    /// The bill price of a market price per kWh.
    pub fn per_kwh(&self, market_per_kwh: f64) -> f64 {
        (market_per_kwh + self.markup_per_kwh) * (1.0 + self.vat_pct / 100.0)
    }

    /// The bill price of a market price per MWh (aWATTar, ENTSO-E, Nord Pool quote per MWh).
    pub fn per_mwh(&self, market_per_mwh: f64) -> f64 {
        self.per_kwh(market_per_mwh / 1000.0)
    }
}

/// Check a tariff's `feed_in_per_kwh` (absent, or a finite number).
pub fn check_feed_in(
    section: &str,
    feed_in_per_kwh: Option<f64>,
) -> Result<(), twc_core::plugin::BuildError> {
    if feed_in_per_kwh.is_some_and(|f| !f.is_finite()) {
        return Err(twc_core::plugin::BuildError::new(
            section,
            "feed_in_per_kwh must be a number",
        ));
    }
    Ok(())
}

/// The last step of every tariff plugin: sort the slots, drop those that ended before
/// `now_unix`, validate, and refuse an answer with nothing from now on (an empty price list is
/// an error, so the runtime retries and keeps the prices it has rather than a list of nothing).
pub fn finish(
    plugin: &str,
    source: &str,
    currency: &str,
    mut slots: Vec<PriceSlot>,
    feed_in_per_kwh: Option<f64>,
    now_unix: i64,
) -> Result<Prices, PluginError> {
    slots.sort_by_key(|s| s.start_unix);
    slots.retain(|s| s.end_unix > now_unix);
    if slots.is_empty() {
        return Err(PluginError::new(
            ErrorKind::Protocol,
            plugin,
            "the answer holds no price from now on",
        ));
    }
    let p = Prices {
        source: source.to_string(),
        currency: currency.to_string(),
        slots,
        feed_in_per_kwh,
    };
    p.validate()
        .map_err(|e| PluginError::new(ErrorKind::Protocol, plugin, e))?;
    Ok(p)
}

/// Unix seconds now, from the system clock.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
