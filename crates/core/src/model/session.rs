//! What a charge session cost and how much of it came from the sun, integrated interval by
//! interval as the engine adds the car's energy.
//!
//! Per interval (between two heartbeat replies of the slave) the car took `e` Wh at `P` W while
//! all cars together drew `ΣP`. The PV surplus `S` is PV generation − house consumption without
//! the cars (≥ 0), from the reading the policy last used, when that reading is fresh and
//! measured (not an estimate). The cars share `S` in proportion to their draw, so this car's
//! solar part is `e × min(1, S / ΣP)`; the rest came from the grid (or the home battery).
//!
//! - No fresh measured reading: the interval's energy is **unmetered**; the solar share of the
//!   session is then unknown (`None`), never assumed. For the cost the whole interval counts as
//!   grid energy, so the cost is an upper bound ([`SessionMetrics::cost_is_upper_bound`]).
//! - The grid part costs the tariff's import price of the slot holding the interval; no price
//!   known (no tariff, a gap in a dynamic tariff) makes that energy **unpriced** and the cost
//!   unknown.
//! - The solar part costs no money, but its value is the feed-in payment forgone: kept apart
//!   as `solar_value` (when the tariff has a feed-in price), never added to the cost.

use serde::{Deserialize, Serialize};

/// A session's car, energy split, cost and state of charge, as integrated so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionMetrics {
    /// The car's name from a vehicle plugin, when known.
    pub car_name: Option<String>,
    /// The car's state of charge at the start, %, from fresh vehicle data.
    pub soc_start_pct: Option<f64>,
    /// The car's state of charge at the end (the last fresh value during the session), %.
    pub soc_end_pct: Option<f64>,
    /// Energy integrated from the reported draw, kWh (the denominator of the solar share).
    pub integrated_kwh: f64,
    /// The part of it that came from PV surplus, kWh (a lower bound when `unmetered_kwh` > 0).
    pub solar_kwh: f64,
    /// Energy charged while no fresh measured reading showed the surplus, kWh.
    pub unmetered_kwh: f64,
    /// What the grid part cost at the import prices, in `currency` (priced energy only).
    pub grid_cost: f64,
    /// Grid energy charged while no import price was known, kWh.
    pub unpriced_kwh: f64,
    /// The feed-in payment forgone for the solar part, in `currency`, when a feed-in price
    /// was known for all of it.
    pub solar_value: Option<f64>,
    /// ISO 4217 code of the tariff's prices, once one was used.
    pub currency: Option<String>,
}

/// The tariff at one moment, as an interval is priced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PriceNow {
    /// Import price per kWh, when known.
    pub import: Option<f64>,
    /// Feed-in price per kWh, when known.
    pub feed_in: Option<f64>,
}

impl SessionMetrics {
    /// Adds one interval: `wh` charged by this car at `car_w`, while all cars drew `cars_w`,
    /// with PV surplus `surplus_w` (`None` = no fresh measured reading) and `price` (currency
    /// `currency`).
    pub fn add_interval(
        &mut self,
        wh: f64,
        car_w: f64,
        cars_w: f64,
        surplus_w: Option<f64>,
        price: PriceNow,
        currency: Option<&str>,
    ) {
        if !(wh.is_finite() && wh > 0.0) {
            return;
        }
        let kwh = wh / 1000.0;
        self.integrated_kwh += kwh;
        let solar = match surplus_w {
            Some(s) if s.is_finite() => {
                let total = cars_w.max(car_w);
                let frac = if total > 0.0 {
                    (s.max(0.0) / total).min(1.0)
                } else {
                    0.0
                };
                kwh * frac
            }
            _ => {
                self.unmetered_kwh += kwh;
                0.0
            }
        };
        self.solar_kwh += solar;
        let grid = kwh - solar;
        if currency.is_some() && self.currency.is_none() {
            self.currency = currency.map(str::to_owned);
        }
        match price.import.filter(|p| p.is_finite()) {
            Some(p) => self.grid_cost += grid * p,
            None => self.unpriced_kwh += grid,
        }
        if solar > 0.0 {
            match (price.feed_in.filter(|f| f.is_finite()), self.solar_value) {
                (Some(f), Some(v)) => self.solar_value = Some(v + solar * f),
                // The first solar energy with a feed-in price starts the sum, unless solar
                // energy without one came before (then the value stays unknown).
                (Some(f), None) if self.solar_kwh - solar <= 0.0 => {
                    self.solar_value = Some(solar * f)
                }
                _ => self.solar_value = None,
            }
        }
    }

    /// The fraction of the energy that came from PV surplus (0 … 1); `None` when part of the
    /// session had no fresh measured reading, or nothing was charged.
    pub fn solar_share(&self) -> Option<f64> {
        solar_share(self.integrated_kwh, self.solar_kwh, self.unmetered_kwh)
    }

    /// What the session cost; `None` without a tariff or when part of the grid energy had no
    /// price.
    pub fn cost(&self) -> Option<f64> {
        cost(
            self.grid_cost,
            self.unpriced_kwh,
            self.currency.as_deref(),
            self.integrated_kwh,
        )
    }

    /// True when unmetered energy was priced as grid energy: the real cost is at most
    /// [`Self::cost`].
    pub fn cost_is_upper_bound(&self) -> bool {
        self.unmetered_kwh > 0.0
    }
}

/// The solar share from stored totals (see [`SessionMetrics::solar_share`]).
pub fn solar_share(integrated_kwh: f64, solar_kwh: f64, unmetered_kwh: f64) -> Option<f64> {
    (integrated_kwh > 0.0 && unmetered_kwh <= 0.0)
        .then(|| (solar_kwh / integrated_kwh).clamp(0.0, 1.0))
}

/// The cost from stored totals (see [`SessionMetrics::cost`]).
pub fn cost(
    grid_cost: f64,
    unpriced_kwh: f64,
    currency: Option<&str>,
    integrated_kwh: f64,
) -> Option<f64> {
    (unpriced_kwh <= 1e-9 && (currency.is_some() || integrated_kwh <= 0.0)).then_some(grid_cost)
}

/// PV surplus for the cars, W: PV generation − house consumption without the cars, ≥ 0, from a
/// reading with both; else from the grid meter (export plus what the cars draw, minus battery
/// discharge). `None` when the reading cannot tell (or is an estimate).
///
/// `cars_w` is what the chargers drew when the reading was measured; `battery_expected` makes a
/// missing battery value unknown rather than 0 W.
pub fn pv_surplus_w(
    r: &super::EnergyReading,
    cars_w: f64,
    consumption_includes_cars: bool,
    battery_expected: bool,
) -> Option<f64> {
    if r.estimated {
        return None;
    }
    let battery = match r.battery_w {
        Some(b) => b,
        None if battery_expected => return surplus_from_gen(r, cars_w, consumption_includes_cars),
        None => 0.0,
    };
    surplus_from_gen(r, cars_w, consumption_includes_cars)
        .or_else(|| r.grid_w.map(|g| (cars_w - g - battery).max(0.0)))
}

fn surplus_from_gen(
    r: &super::EnergyReading,
    cars_w: f64,
    consumption_includes_cars: bool,
) -> Option<f64> {
    let (g, c) = (r.generation_w?, r.consumption_w?);
    let house = if consumption_includes_cars {
        (c - cars_w).max(0.0)
    } else {
        c.max(0.0)
    };
    Some((g.max(0.0) - house).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EnergyReading;

    const EUR: Option<&str> = Some("EUR");
    fn price(p: f64) -> PriceNow {
        PriceNow {
            import: Some(p),
            feed_in: Some(0.08),
        }
    }

    #[test]
    fn half_the_draw_from_pv_costs_half() {
        let mut m = SessionMetrics::default();
        // 7.2 kW for an hour, 3.6 kW surplus: half solar.
        m.add_interval(7200.0, 7200.0, 7200.0, Some(3600.0), price(0.30), EUR);
        assert!((m.solar_share().unwrap() - 0.5).abs() < 1e-9);
        assert!((m.cost().unwrap() - 3.6 * 0.30).abs() < 1e-9);
        assert!((m.solar_value.unwrap() - 3.6 * 0.08).abs() < 1e-9);
        assert!(!m.cost_is_upper_bound());
    }

    #[test]
    fn surplus_above_the_draw_is_all_solar_and_shared_between_cars() {
        let mut m = SessionMetrics::default();
        m.add_interval(1000.0, 5000.0, 5000.0, Some(9000.0), price(0.3), EUR);
        assert_eq!(m.solar_share(), Some(1.0));
        assert_eq!(m.cost(), Some(0.0));
        // Two cars of 5 kW each and 5 kW surplus: each gets half.
        let mut m = SessionMetrics::default();
        m.add_interval(1000.0, 5000.0, 10000.0, Some(5000.0), price(0.3), EUR);
        assert!((m.solar_share().unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn stale_meter_makes_the_share_unknown_and_the_cost_an_upper_bound() {
        let mut m = SessionMetrics::default();
        m.add_interval(1000.0, 7000.0, 7000.0, Some(7000.0), price(0.3), EUR);
        m.add_interval(1000.0, 7000.0, 7000.0, None, price(0.3), EUR);
        assert_eq!(m.solar_share(), None);
        assert!((m.cost().unwrap() - 0.3).abs() < 1e-9);
        assert!(m.cost_is_upper_bound());
        assert!((m.solar_kwh - 1.0).abs() < 1e-9);
    }

    #[test]
    fn no_price_makes_the_cost_unknown_not_free() {
        let mut m = SessionMetrics::default();
        m.add_interval(1000.0, 7000.0, 7000.0, Some(0.0), PriceNow::default(), None);
        assert_eq!(m.cost(), None);
        assert_eq!(m.solar_share(), Some(0.0));
        // A gap in a dynamic tariff: unknown as well.
        let mut m = SessionMetrics::default();
        m.add_interval(1000.0, 7000.0, 7000.0, Some(0.0), price(0.3), EUR);
        m.add_interval(1000.0, 7000.0, 7000.0, Some(0.0), PriceNow::default(), EUR);
        assert_eq!(m.cost(), None);
        assert!((m.unpriced_kwh - 1.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_charged_has_no_share() {
        let m = SessionMetrics::default();
        assert_eq!(m.solar_share(), None);
    }

    #[test]
    fn surplus_from_generation_and_consumption_or_the_grid_meter() {
        let r = EnergyReading {
            generation_w: Some(5000.0),
            consumption_w: Some(8000.0),
            ..EnergyReading::now()
        };
        // Consumption includes 4 kW of cars: the house takes 4 kW, 1 kW is surplus.
        assert_eq!(pv_surplus_w(&r, 4000.0, true, false), Some(1000.0));
        // Consumption without the cars: 8 kW house, no surplus (clamped, never negative).
        assert_eq!(pv_surplus_w(&r, 4000.0, false, false), Some(0.0));
        let g = EnergyReading {
            grid_w: Some(-1500.0),
            ..EnergyReading::now()
        };
        assert_eq!(pv_surplus_w(&g, 3000.0, true, false), Some(4500.0));
        // A battery the site has but whose value is missing: unknown.
        assert_eq!(pv_surplus_w(&g, 3000.0, true, true), None);
        let est = EnergyReading {
            estimated: true,
            ..r.clone()
        };
        assert_eq!(pv_surplus_w(&est, 0.0, true, false), None);
        assert_eq!(pv_surplus_w(&EnergyReading::now(), 0.0, true, false), None);
    }
}
