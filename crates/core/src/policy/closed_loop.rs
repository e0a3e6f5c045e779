//! Closing the green loop on the grid meter.
//!
//! The surplus for the chargers is measured: `available = charger draw − grid` (what the chargers
//! draw plus what is exported). Offered exactly that, a car draws a little less than its offer
//! (≈ 0.8 A for a Tesla) and the difference is exported for good: feed-forward never corrects it.
//! [`ClosedLoop`] adds a correction learned from the meter: on each **new** reading while cars
//! draw, it moves by the measured export (or import), so it settles at the cars' shortfall and
//! the export goes down to less than one offer step.
//!
//! Bounds that keep it safe and calm:
//! - it only learns from small errors (|export| ≤ [`LEARN_BELOW_A`] per car): a large one is a
//!   ramp or a cloud edge, which the measured surplus itself follows on the same reading;
//! - an export smaller than one offer step (`[wiring] offer_step_amps`, see
//!   [`ClosedLoop::set_dead_band`]) is left alone: rounding down to the step always leaves some,
//!   and chasing it would make the offer alternate between two steps, which cars dislike. Any
//!   import is corrected ([`IMPORT_TOLERANCE_A`]);
//! - after a change it learns again only from a reading *measured* at least [`SETTLE_SECS`]
//!   later (the time stamp says so), so a late meter, which still shows the error from before
//!   the change, cannot make it overshoot and swing; a cached meter re-delivering the same
//!   reading teaches nothing twice;
//! - it stays within ±[`MAX_CORRECTION_A`] per drawing car, so a frozen meter cannot wind it up
//!   (no runaway);
//! - no car drawing, no fresh reading, or no grid meter (feed-forward from generation and
//!   consumption): the correction is 0.

use std::time::Duration;
use tokio::time::Instant;

/// Most correction per drawing car, A.
pub const MAX_CORRECTION_A: f64 = 1.5;
/// Errors larger than this per car are transients, not a car's shortfall, A.
pub const LEARN_BELOW_A: f64 = 2.5;
/// Imports up to this are left alone, A: none (a few watts imported for hours add up, and
/// dropping one step below leaves an export the dead band keeps, so this does not dither).
pub const IMPORT_TOLERANCE_A: f64 = 0.0;
/// Share of the error taken per learning step.
pub const GAIN: f64 = 1.0;
/// A change shows on readings measured this long after it (a heartbeat to every slave and the
/// car's ramp over the corrected amps), s.
pub const SETTLE_SECS: f64 = 5.0;

/// The learned correction and the reading it last learned from.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedLoop {
    last: Option<Instant>,
    /// The surplus the last new reading showed, site amps.
    last_surplus: Option<f64>,
    changed: Option<Instant>,
    correction_a: f64,
    dead_band_a: f64,
}

impl Default for ClosedLoop {
    fn default() -> Self {
        ClosedLoop {
            last: None,
            last_surplus: None,
            changed: None,
            correction_a: 0.0,
            dead_band_a: 1.0,
        }
    }
}

impl ClosedLoop {
    /// Exports up to one offer step are left alone (`amps` ≤ 0 counts as 1 A).
    pub fn set_dead_band(&mut self, amps: f64) {
        self.dead_band_a = if amps > 0.0 && amps.is_finite() {
            amps
        } else {
            1.0
        };
    }

    /// The correction now, site amps.
    pub fn correction(&self) -> f64 {
        self.correction_a
    }

    /// Forget the correction (no fresh reading, no grid meter, or green tracking left).
    pub fn forget(&mut self) {
        self.last = None;
        self.last_surplus = None;
        self.changed = None;
        self.correction_a = 0.0;
    }

    /// One evaluation at `now`. `measured_at`: when the reading was measured (a reading already
    /// seen teaches nothing); `export_a`: measured export in site amps (negative = import);
    /// `surplus_a`: the surplus the same reading shows (the budget follows it); `drawing`: cars
    /// drawing current. Returns the correction in site amps.
    ///
    /// Only the part of the export the surplus did not bring is learned: when the sun comes out
    /// between two readings, the new export is new surplus, which the budget already follows on
    /// this reading; learning it too would raise the offer twice (and import until the next
    /// reading). A fall of the surplus likewise is followed, not learned.
    pub fn update(
        &mut self,
        now: Instant,
        measured_at: Instant,
        export_a: f64,
        surplus_a: f64,
        drawing: usize,
    ) -> f64 {
        if drawing == 0 || !export_a.is_finite() {
            self.forget();
            return 0.0;
        }
        if self.last.is_some_and(|l| measured_at <= l) {
            return self.correction_a;
        }
        self.last = Some(measured_at);
        let change = match self.last_surplus.replace(surplus_a) {
            Some(before) if surplus_a.is_finite() && before.is_finite() => surplus_a - before,
            _ => 0.0,
        };
        let export_a = export_a - change;
        if self
            .changed
            .is_some_and(|c| measured_at < c + Duration::from_secs_f64(SETTLE_SECS))
        {
            return self.correction_a;
        }
        let cars = drawing as f64;
        let learn = if export_a >= 0.0 {
            export_a >= self.dead_band_a
        } else {
            export_a < -IMPORT_TOLERANCE_A
        };
        if learn && export_a.abs() <= LEARN_BELOW_A * cars {
            let limit = MAX_CORRECTION_A * cars;
            let c = (self.correction_a + GAIN * export_a).clamp(-limit, limit);
            if c != self.correction_a {
                self.correction_a = c;
                self.changed = Some(now);
            }
        }
        self.correction_a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A car drawing `shortfall` under its offer, the offer = surplus + correction in 0.5 A
    /// steps; the meter measures every 5 s and its reading arrives `delay` readings late.
    /// Returns the export measured at each 5 s.
    fn settle(shortfall: f64, delay: usize, readings: usize) -> Vec<f64> {
        let t0 = Instant::now();
        let at = |k: usize| t0 + Duration::from_secs(5 * k as u64);
        let surplus = 12.0;
        let mut cl = ClosedLoop::default();
        cl.set_dead_band(0.5);
        let mut exports = Vec::new();
        for k in 0..readings {
            // Measured at 5k s: the offer decided at the previous evaluation is in force.
            let offer = ((surplus + cl.correction()) * 2.0).floor() / 2.0;
            exports.push(surplus - (offer - shortfall));
            if k >= delay {
                cl.update(at(k), at(k - delay), exports[k - delay], surplus, 1);
            }
        }
        exports
    }

    #[test]
    fn learns_a_cars_shortfall_and_the_export_goes_to_the_last_step() {
        let e = settle(0.8, 0, 20);
        assert!((e[0] - 0.8).abs() < 1e-9, "{e:?}");
        // Settled: the export left is under one 0.5 A step, never an import.
        for x in &e[4..] {
            assert!((0.0..0.5).contains(x), "{e:?}");
        }
    }

    #[test]
    fn a_late_meter_neither_oscillates_nor_runs_away() {
        for delay in 1..=3 {
            let e = settle(0.8, delay, 60);
            // Bounded by the correction limit: never imports more than it could correct.
            for x in &e {
                assert!(*x > -MAX_CORRECTION_A && *x < 1.0, "delay {delay}: {e:?}");
            }
            // The last 20 readings settle (no sustained swing).
            let tail = &e[40..];
            let (lo, hi) = tail
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            assert!(hi - lo <= 0.5 + 1e-9, "delay {delay}: {tail:?}");
        }
    }

    #[test]
    fn a_frozen_meter_cannot_wind_it_up() {
        // The same export reported forever (a cached meter): the correction stops at its limit.
        let t0 = Instant::now();
        let mut cl = ClosedLoop::default();
        cl.set_dead_band(0.5);
        for k in 0..1000 {
            cl.update(
                t0 + Duration::from_secs(k),
                t0 + Duration::from_secs(k),
                2.0,
                10.0,
                1,
            );
        }
        assert_eq!(cl.correction(), MAX_CORRECTION_A);
        // A reading seen before teaches nothing.
        let mut cl = ClosedLoop::default();
        cl.set_dead_band(0.5);
        for k in 0..10 {
            cl.update(t0 + Duration::from_secs(k), t0, 1.0, 10.0, 1);
        }
        assert_eq!(cl.correction(), 1.0);
    }

    #[test]
    fn transients_and_idle_cars_teach_nothing() {
        let t0 = Instant::now();
        let mut cl = ClosedLoop::default();
        cl.set_dead_band(0.5);
        let s = |k: u64| t0 + Duration::from_secs(k);
        // A ramp (8 A exported) and a cloud edge (10 A imported) are not a shortfall.
        cl.update(s(0), s(0), 8.0, 10.0, 1);
        cl.update(s(5), s(5), -10.0, 10.0, 1);
        assert_eq!(cl.correction(), 0.0);
        cl.update(s(10), s(10), 1.0, 10.0, 1);
        assert_eq!(cl.correction(), 1.0);
        // A reading measured before the change had time to show teaches nothing.
        cl.update(s(12), s(12), 1.0, 10.0, 1);
        assert_eq!(cl.correction(), 1.0);
        // A later one does, up to the limit.
        cl.update(s(15), s(15), 0.6, 10.0, 1);
        assert_eq!(cl.correction(), MAX_CORRECTION_A);
        // No car drawing: forgotten.
        assert_eq!(cl.update(s(20), s(20), 1.0, 10.0, 0), 0.0);
        assert_eq!(cl.correction(), 0.0);
        // An export under one step is left alone; an import is not.
        let mut cl = ClosedLoop::default();
        cl.set_dead_band(0.5);
        cl.update(s(30), s(30), 0.4, 10.0, 1);
        assert_eq!(cl.correction(), 0.0);
        cl.update(s(35), s(35), -0.2, 10.0, 1);
        assert_eq!(cl.correction(), -0.2);
        // NaN: forgotten, never a number.
        cl.update(s(45), s(45), 1.0, 10.0, 1);
        assert_eq!(cl.update(s(50), s(50), f64::NAN, 10.0, 1), 0.0);
    }

    #[test]
    fn new_surplus_between_readings_is_followed_not_learned_as_well() {
        let t0 = Instant::now();
        let s = |k: u64| t0 + Duration::from_secs(k);
        let mut cl = ClosedLoop::default();
        cl.set_dead_band(0.5);
        // Settled at a 0.3 A export with 20 A of surplus.
        assert_eq!(cl.update(s(0), s(0), 0.3, 20.0, 1), 0.0);
        // The sun comes out: 0.7 A more surplus, all of it exported on this reading. The budget
        // follows the surplus; the correction must not take the 0.7 A a second time.
        assert_eq!(cl.update(s(10), s(10), 1.0, 20.7, 1), 0.0);
        // A cloud: the import is the surplus's fall, followed by the budget, not learned.
        assert_eq!(cl.update(s(20), s(20), -0.6, 19.8, 1), 0.0);
        // A shortfall at a steady surplus is still learned.
        assert_eq!(cl.update(s(30), s(30), 0.8, 19.8, 1), 0.8);
    }
}
