//! What the site can expect: grid prices from a tariff plugin and solar generation from a
//! forecast plugin.
//!
//! A tariff plugin ([`TariffSource`]) returns [`Prices`]: the import price per kWh over time
//! slots (fixed, time-of-use or a dynamic day-ahead market), the feed-in price and, where the
//! source gives it, the grid's CO₂ intensity. A forecast plugin ([`SolarForecast`]) returns a
//! [`Forecast`]: the expected PV power over time slots. The runtime polls them and hands the
//! results to the engine ([`Command::SetPrices`](crate::engine::Command::SetPrices),
//! [`Command::SetForecast`](crate::engine::Command::SetForecast)); the engine shows them in
//! [`Status::outlook`](crate::model::Status::outlook) and the planner and the policy's price
//! condition use them. Unknown is `None`, never 0: a missing price never reads as free power.

use super::PluginError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One price slot: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceSlot {
    /// Start, Unix seconds (inclusive).
    pub start_unix: i64,
    /// End, Unix seconds (exclusive).
    pub end_unix: i64,
    /// What a kWh imported from the grid costs in this slot, in [`Prices::currency`], taxes and
    /// fees included as the plugin is configured.
    pub price_per_kwh: f64,
    /// The grid's CO₂ intensity, g/kWh, where the source gives it.
    #[serde(default)]
    pub co2_g_per_kwh: Option<f64>,
}

/// Grid prices over time, as a tariff plugin knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Prices {
    /// The tariff plugin's registry name.
    pub source: String,
    /// ISO 4217 code (`EUR`, `GBP`, `SEK`, …).
    pub currency: String,
    /// Slots sorted by start, not overlapping; gaps mean unknown.
    pub slots: Vec<PriceSlot>,
    /// What a kWh exported to the grid earns, where configured.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
}

impl Prices {
    /// The slot that holds `unix`, if any.
    pub fn at(&self, unix: i64) -> Option<&PriceSlot> {
        self.slots
            .iter()
            .find(|s| s.start_unix <= unix && unix < s.end_unix)
    }

    /// Checks the invariants the consumers rely on: finite prices, `start < end`, sorted and
    /// not overlapping. Plugins call it before returning.
    pub fn validate(&self) -> Result<(), String> {
        let mut last_end = i64::MIN;
        for s in &self.slots {
            if s.start_unix >= s.end_unix {
                return Err(format!(
                    "price slot starting at {} does not end after it starts",
                    s.start_unix
                ));
            }
            if s.start_unix < last_end {
                return Err(format!(
                    "price slot starting at {} overlaps the one before or is out of order",
                    s.start_unix
                ));
            }
            if !s.price_per_kwh.is_finite() {
                return Err(format!(
                    "price slot starting at {} has no finite price",
                    s.start_unix
                ));
            }
            if s.co2_g_per_kwh.is_some_and(|c| !c.is_finite() || c < 0.0) {
                return Err(format!(
                    "price slot starting at {} has an invalid CO₂ intensity",
                    s.start_unix
                ));
            }
            last_end = s.end_unix;
        }
        if self.feed_in_per_kwh.is_some_and(|f| !f.is_finite()) {
            return Err("feed-in price is not a finite number".into());
        }
        Ok(())
    }
}

/// One forecast slot: `[start, end)` in Unix seconds and the mean PV power expected in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSlot {
    /// Start, Unix seconds (inclusive).
    pub start_unix: i64,
    /// End, Unix seconds (exclusive).
    pub end_unix: i64,
    /// Mean PV generation expected over the slot, W (≥ 0).
    pub watts: f64,
}

/// Expected solar generation over time, as a forecast plugin knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Forecast {
    /// The forecast plugin's registry name.
    pub source: String,
    /// Slots sorted by start, not overlapping; gaps mean unknown.
    pub slots: Vec<ForecastSlot>,
}

impl Forecast {
    /// Expected energy between `from` and `to` (Unix seconds), kWh, counting only the known
    /// part; `None` when no slot overlaps the window.
    pub fn energy_kwh(&self, from: i64, to: i64) -> Option<f64> {
        let mut wh = 0.0;
        let mut any = false;
        for s in &self.slots {
            let a = s.start_unix.max(from);
            let b = s.end_unix.min(to);
            if a < b {
                any = true;
                wh += s.watts * (b - a) as f64 / 3600.0;
            }
        }
        any.then_some(wh / 1000.0)
    }

    /// Same invariants as [`Prices::validate`], with watts finite and ≥ 0.
    pub fn validate(&self) -> Result<(), String> {
        let mut last_end = i64::MIN;
        for s in &self.slots {
            if s.start_unix >= s.end_unix || s.start_unix < last_end {
                return Err(format!(
                    "forecast slot starting at {} is empty, overlapping or out of order",
                    s.start_unix
                ));
            }
            if !(s.watts.is_finite() && s.watts >= 0.0) {
                return Err(format!(
                    "forecast slot starting at {} has watts {} (expected a number ≥ 0)",
                    s.start_unix, s.watts
                ));
            }
            last_end = s.end_unix;
        }
        Ok(())
    }
}

/// What the engine knows of prices and the solar forecast, shown in `Status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Outlook {
    /// The latest prices (`None` without a tariff plugin or before its first answer).
    #[serde(default)]
    pub prices: Option<Prices>,
    /// The latest solar forecast (`None` without a forecast plugin or before its first answer).
    #[serde(default)]
    pub forecast: Option<Forecast>,
}

/// A tariff: fixed, time-of-use or dynamic prices (Tibber, aWATTar, ENTSO-E, Octopus Agile,
/// Nord Pool, …).
#[async_trait]
pub trait TariffSource: Send + Sync {
    /// The prices known now, from now on (a dynamic tariff: today and, once published,
    /// tomorrow). Validated with [`Prices::validate`].
    async fn prices(&self) -> Result<Prices, PluginError>;
    /// How often to ask again. Default: 15 minutes.
    fn refresh_interval(&self) -> Duration {
        Duration::from_secs(15 * 60)
    }
}

/// A solar forecast (forecast.solar, Open-Meteo, …).
#[async_trait]
pub trait SolarForecast: Send + Sync {
    /// The forecast from now on. Validated with [`Forecast::validate`].
    async fn forecast(&self) -> Result<Forecast, PluginError>;
    /// How often to ask again. Default: 1 hour (free forecast APIs limit requests).
    fn refresh_interval(&self) -> Duration {
        Duration::from_secs(60 * 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(start: i64, end: i64, p: f64) -> PriceSlot {
        PriceSlot {
            start_unix: start,
            end_unix: end,
            price_per_kwh: p,
            co2_g_per_kwh: None,
        }
    }

    #[test]
    fn prices_find_the_slot_and_refuse_overlaps_and_nan() {
        let p = Prices {
            source: "t".into(),
            currency: "EUR".into(),
            slots: vec![slot(0, 3600, 0.2), slot(3600, 7200, 0.3)],
            feed_in_per_kwh: None,
        };
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.at(3600).map(|s| s.price_per_kwh), Some(0.3));
        assert!(p.at(7200).is_none());
        let mut bad = p.clone();
        bad.slots[1].start_unix = 1800;
        assert!(bad.validate().unwrap_err().contains("overlaps"));
        let mut nan = p;
        nan.slots[0].price_per_kwh = f64::NAN;
        assert!(nan.validate().unwrap_err().contains("finite"));
    }

    #[test]
    fn forecast_energy_counts_only_the_known_overlap() {
        let f = Forecast {
            source: "f".into(),
            slots: vec![
                ForecastSlot {
                    start_unix: 0,
                    end_unix: 3600,
                    watts: 1000.0,
                },
                ForecastSlot {
                    start_unix: 3600,
                    end_unix: 7200,
                    watts: 3000.0,
                },
            ],
        };
        assert_eq!(f.validate(), Ok(()));
        assert_eq!(f.energy_kwh(1800, 5400), Some(2.0));
        assert_eq!(f.energy_kwh(7200, 9000), None);
        let mut neg = f;
        neg.slots[0].watts = -1.0;
        assert!(neg.validate().is_err());
    }
}
