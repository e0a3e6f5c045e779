//! The tariff and solar-forecast part of `GET /status`: the price now and the forecast energy
//! of today and tomorrow (local days), from `Status.outlook`.

use chrono::{DateTime, Datelike, Local, TimeZone, Utc};
use serde::Serialize;
use twc_core::model::Status;
use utoipa::ToSchema;

/// Prices and solar forecast as the dashboard shows them. Every value is absent when unknown
/// (no tariff or forecast plugin, no answer yet, or nothing for now), never 0.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub(crate) struct OutlookView {
    /// The tariff plugin's name.
    tariff: Option<String>,
    /// ISO 4217 currency of the prices.
    currency: Option<String>,
    /// The grid price per kWh now.
    price_per_kwh: Option<f64>,
    /// The grid's CO₂ intensity now, g/kWh, where the tariff gives it.
    co2_g_per_kwh: Option<f64>,
    /// What an exported kWh earns.
    feed_in_per_kwh: Option<f64>,
    /// When the current price slot ends (RFC 3339).
    price_until: Option<String>,
    /// The forecast plugin's name.
    forecast: Option<String>,
    /// Expected PV energy today (local day), kWh, counting only the forecast's known part.
    forecast_today_kwh: Option<f64>,
    /// Expected PV energy tomorrow (local day), kWh.
    forecast_tomorrow_kwh: Option<f64>,
}

/// Local midnight of the day holding `t`, and of the next two days, Unix s.
fn local_days(t: DateTime<Utc>) -> [i64; 3] {
    let d = t.with_timezone(&Local).date_naive();
    let midnight = |n: u64| {
        let day = d + chrono::Days::new(n);
        Local
            .with_ymd_and_hms(day.year(), day.month(), day.day(), 0, 0, 0)
            .earliest()
            .map_or(t.timestamp() + 86_400 * n as i64, |x| x.timestamp())
    };
    [midnight(0), midnight(1), midnight(2)]
}

pub(crate) fn outlook_view(s: &Status, now: DateTime<Utc>) -> OutlookView {
    let o = &s.outlook;
    let slot = o.prices.as_ref().and_then(|p| p.at(now.timestamp()));
    let [d0, d1, d2] = local_days(now);
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    OutlookView {
        tariff: o.prices.as_ref().map(|p| p.source.clone()),
        currency: o.prices.as_ref().map(|p| p.currency.clone()),
        price_per_kwh: slot.map(|s| s.price_per_kwh),
        co2_g_per_kwh: slot.and_then(|s| s.co2_g_per_kwh),
        feed_in_per_kwh: o.prices.as_ref().and_then(|p| p.feed_in_per_kwh),
        price_until: slot
            .and_then(|s| Utc.timestamp_opt(s.end_unix, 0).single())
            .map(|t| t.to_rfc3339()),
        forecast: o.forecast.as_ref().map(|f| f.source.clone()),
        forecast_today_kwh: o
            .forecast
            .as_ref()
            .and_then(|f| f.energy_kwh(d0, d1))
            .map(r3),
        forecast_tomorrow_kwh: o
            .forecast
            .as_ref()
            .and_then(|f| f.energy_kwh(d1, d2))
            .map(r3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twc_core::plugin::{Forecast, ForecastSlot, Outlook, PriceSlot, Prices};

    #[test]
    fn unknown_is_absent_and_known_values_show() {
        let now = Utc::now();
        let mut s = Status::default();
        let v = outlook_view(&s, now);
        assert_eq!(v.price_per_kwh, None);
        assert_eq!(v.forecast_today_kwh, None);
        let t = now.timestamp();
        let [d0, d1, _] = local_days(now);
        s.outlook = Outlook {
            prices: Some(Prices {
                source: "tibber".into(),
                currency: "EUR".into(),
                slots: vec![PriceSlot {
                    start_unix: t - 60,
                    end_unix: t + 60,
                    price_per_kwh: 0.21,
                    co2_g_per_kwh: Some(312.0),
                }],
                feed_in_per_kwh: Some(0.08),
            }),
            forecast: Some(Forecast {
                source: "open_meteo".into(),
                slots: vec![
                    ForecastSlot {
                        start_unix: d0,
                        end_unix: d0 + 3600,
                        watts: 2000.0,
                    },
                    ForecastSlot {
                        start_unix: d1 + 3600,
                        end_unix: d1 + 5400,
                        watts: 1000.0,
                    },
                ],
            }),
        };
        let v = outlook_view(&s, now);
        assert_eq!(v.price_per_kwh, Some(0.21));
        assert_eq!(v.co2_g_per_kwh, Some(312.0));
        assert_eq!(v.currency.as_deref(), Some("EUR"));
        assert_eq!(v.forecast_today_kwh, Some(2.0));
        assert_eq!(v.forecast_tomorrow_kwh, Some(0.5));
        // A price that has ended is no price for now.
        let later = now + chrono::Duration::seconds(120);
        assert_eq!(outlook_view(&s, later).price_per_kwh, None);
    }
}
