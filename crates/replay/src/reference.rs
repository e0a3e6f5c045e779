//! The reference controller: a plain hysteresis surplus follower, scored on the same trace, with
//! the same meter cadence, car model and metrics as the real engine, so the two can be printed
//! side by side.
//!
//! What it does (the controller most surplus chargers start from):
//! - **off → on** once the metered surplus has reached one car's minimum power for
//!   [`ReferenceConfig::start_after`] without a break;
//! - **on → off** once it has been below the minimum for [`ReferenceConfig::stop_after`] without
//!   a break; meanwhile the minimum is held;
//! - otherwise it follows the surplus at once: on every meter reading the offer is the surplus in
//!   whole amps (rounded down, as TWCManager offers), between the minimum and the maximum.
//!
//! It runs without the engine: a loop over the trace in steps of the sample period, the car
//! modelled as twc-sim's ([`twc_sim::DRAW_SHORTFALL`] under the offer, rising at
//! [`CarConfig::tesla`](twc_sim::CarConfig::tesla)'s ramp, lowering at once, not charging below
//! its 5 A minimum).

use crate::metrics::{Accumulator, MetricParams, Metrics, Row};
use crate::run::SimOptions;
use crate::trace::Trace;
use std::time::Duration;

/// The reference controller's delays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceConfig {
    /// Surplus at or above the minimum this long before starting.
    pub start_after: Duration,
    /// Surplus below the minimum this long before stopping.
    pub stop_after: Duration,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            start_after: Duration::from_secs(120),
            stop_after: Duration::from_secs(300),
        }
    }
}

/// The car's own minimum: offered less, it does not charge (a Tesla's, as twc-sim models it).
const CAR_MIN_AMPS: f64 = 5.0;

/// What the reference controller decided at one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct State {
    on: bool,
    above_secs: f64,
    below_secs: f64,
}

impl State {
    /// One meter reading: the new site offer, A.
    fn reading(
        &mut self,
        surplus_a: f64,
        min_a: f64,
        max_a: f64,
        dt: f64,
        cfg: &ReferenceConfig,
    ) -> f64 {
        if surplus_a >= min_a {
            self.above_secs += dt;
            self.below_secs = 0.0;
        } else {
            self.below_secs += dt;
            self.above_secs = 0.0;
        }
        if !self.on && self.above_secs >= cfg.start_after.as_secs_f64() {
            self.on = true;
        }
        if self.on && self.below_secs >= cfg.stop_after.as_secs_f64() {
            self.on = false;
        }
        if self.on {
            surplus_a.clamp(min_a, max_a).floor()
        } else {
            0.0
        }
    }
}

/// Score the reference controller on `trace` with the replay's options (slaves, phases, voltage,
/// minimum, maxima, meter interval, sample period).
pub fn run_reference(trace: &Trace, opts: &SimOptions, cfg: &ReferenceConfig) -> Metrics {
    let volts_sum = opts.voltage * opts.phases as f64;
    let slaves = opts.slaves.max(1);
    let per_car_max = opts.max_amps_per_twc.min(opts.car_max_amps);
    let max_a = opts.max_amps_all.min(per_car_max * slaves as f64);
    let dt = opts.sample.as_secs_f64();
    let meter = opts.meter_interval.as_secs_f64().max(dt);
    let params = MetricParams {
        dt_secs: dt,
        min_w: opts.min_amps * volts_sum,
        max_w: max_a * volts_sum,
        grid_limit_w: opts.grid_limit_w,
        reaction_allowance_secs: meter,
    };
    let mut acc = Accumulator::new(params);
    let mut state = State::default();
    let mut site_offer = 0.0;
    let mut draw = vec![0.0f64; slaves];
    let mut offers = vec![0.0f64; slaves];
    let ramp = twc_sim::CarConfig::tesla().ramp_amps_per_sec;
    let n = (trace.duration_secs() as f64 / dt).floor() as u64;
    let mut next_reading = 0.0;
    let mut hint = 0;
    for k in 0..n {
        let t = k as f64 * dt;
        let step = trace.at_offset_near(t, &mut hint);
        let surplus_w = step.pv_w - step.load_w + step.battery_w.unwrap_or(0.0);
        if t >= next_reading {
            next_reading += meter;
            site_offer = state.reading(surplus_w / volts_sum, opts.min_amps, max_a, meter, cfg);
            // As many cars as the offer carries at their minimum, sharing it evenly.
            let cars = ((site_offer / opts.min_amps).floor() as usize).min(slaves);
            for (i, o) in offers.iter_mut().enumerate() {
                *o = if i < cars {
                    (site_offer / cars as f64).floor().min(per_car_max)
                } else {
                    0.0
                };
            }
        }
        let charger_w: f64 = draw.iter().sum::<f64>() * volts_sum;
        acc.push(&Row {
            at: trace.start() + chrono::Duration::milliseconds((t * 1000.0) as i64),
            pv_w: step.pv_w,
            load_w: step.load_w,
            battery_w: step.battery_w,
            battery_soc_pct: step.battery_soc_pct,
            budget_a: site_offer,
            offered_a: offers.clone(),
            actual_a: draw.clone(),
            charger_w,
            grid_w: step.load_w + charger_w - step.pv_w - step.battery_w.unwrap_or(0.0),
            green: true,
        });
        // The car moves over the next sample period.
        for (d, o) in draw.iter_mut().zip(&offers) {
            let target = if *o >= CAR_MIN_AMPS {
                (o - twc_sim::DRAW_SHORTFALL).min(opts.car_max_amps)
            } else {
                0.0
            };
            *d = if target > *d {
                (*d + ramp * dt).min(target)
            } else {
                target
            };
        }
    }
    acc.finish(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_after_two_minutes_and_stops_after_five() {
        let cfg = ReferenceConfig::default();
        let mut s = State::default();
        // 5 s readings: 23 readings above the minimum are 115 s, the 24th makes 120 s.
        for k in 0..23 {
            assert_eq!(s.reading(10.0, 6.0, 32.0, 5.0, &cfg), 0.0, "reading {k}");
        }
        assert_eq!(s.reading(10.7, 6.0, 32.0, 5.0, &cfg), 10.0);
        // A dip below the minimum holds the minimum, and the sun back resets the stop count.
        for _ in 0..59 {
            assert_eq!(s.reading(2.0, 6.0, 32.0, 5.0, &cfg), 6.0);
        }
        assert_eq!(s.reading(7.0, 6.0, 32.0, 5.0, &cfg), 7.0);
        for _ in 0..59 {
            assert_eq!(s.reading(2.0, 6.0, 32.0, 5.0, &cfg), 6.0);
        }
        assert_eq!(s.reading(2.0, 6.0, 32.0, 5.0, &cfg), 0.0);
        // Above the maximum it offers the maximum.
        let mut s = State {
            on: true,
            ..State::default()
        };
        assert_eq!(s.reading(40.0, 6.0, 32.0, 5.0, &cfg), 32.0);
    }
}
