//! Closing the green loop: the cars' shortfall under their offer.
//!
//! With a grid meter the surplus for the chargers is measured: `available = charger draw − grid`
//! (what the chargers draw plus what is exported; see `site.rs`). Offered exactly that, a car
//! draws a little less than its offer (≈ 0.8 A for a Tesla) and the difference is exported for
//! good. [`ClosedLoop`] adds a correction: the cars' **shortfall**, offer − draw, seen on a
//! reading the engine could pair with the slaves' reports and measured while the cars had
//! followed an unchanged offer for [`SETTLE_SECS`]. The offer is then the measured surplus plus
//! the shortfall, rounded down to its step, and the cars draw the surplus less at most one step.
//!
//! Why the shortfall and not the export it causes: the export is the shortfall *plus* what the
//! rounding down to the offer step left, and changes with every step of the surplus. Learning
//! the export (as this module did) took the rounding for a shortfall after each step down of
//! the surplus, raised the offer one step too far, imported until the next reading, and stepped
//! back: a dither that cost most of the import on 1-minute days. Offer and draw are both the
//! slaves' own numbers, so a meter that reads a little differently from the TWCs cancels out
//! (the surplus is the slaves' draw plus the metered export).
//!
//! Bounds that keep it safe and calm:
//! - only a shortfall the engine vouches for counts (`None`: the reading was not paired with the
//!   slaves' reports, the offer changed too recently, a load point draws): the correction holds;
//! - a shortfall larger than [`LEARN_BELOW_A`] per car is a car ramping or one limited by itself
//!   (charge limit, cold battery), not a steady shortfall: it is not learned;
//! - one reading teaches once (a cached meter re-delivering it teaches nothing twice), and after
//!   a change only a reading *measured* [`SETTLE_SECS`] later teaches again;
//! - within ±[`MAX_CORRECTION_A`] per drawing car, so nothing can wind it up (no runaway);
//! - no car drawing, no fresh reading, or no grid meter (feed-forward from generation and
//!   consumption): the correction is 0.

use std::time::Duration;
use tokio::time::Instant;

/// Most correction per drawing car, A.
pub const MAX_CORRECTION_A: f64 = 1.5;
/// A shortfall larger than this per car is a ramp or a car limiting itself, A.
pub const LEARN_BELOW_A: f64 = 2.5;
/// A shortfall that differs from the correction by less than this is left alone, A (a change
/// this small moves no offer step; the correction does not chase the slaves' rounding).
pub const SHORTFALL_TOLERANCE_A: f64 = 0.1;
/// A change shows on readings measured this long after it (a heartbeat to every slave and the
/// car's ramp over the changed offer), s.
pub const SETTLE_SECS: f64 = 5.0;

/// The learned correction and the reading it last learned from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClosedLoop {
    last: Option<Instant>,
    changed: Option<Instant>,
    correction_a: f64,
}

impl ClosedLoop {
    /// The correction now, site amps.
    pub fn correction(&self) -> f64 {
        self.correction_a
    }

    /// Forget the correction (no fresh reading, no grid meter, or green tracking left).
    pub fn forget(&mut self) {
        *self = ClosedLoop::default();
    }

    /// One evaluation at `now`: `measured_at` is when the reading was measured; `shortfall_a`
    /// what the drawing cars drew under their offer then (site amps, summed; `None` when the
    /// engine cannot vouch for it); `drawing` the cars drawing current. Returns the correction
    /// in site amps.
    pub fn update(
        &mut self,
        now: Instant,
        measured_at: Instant,
        shortfall_a: Option<f64>,
        drawing: usize,
    ) -> f64 {
        if drawing == 0 {
            self.forget();
            return 0.0;
        }
        let Some(shortfall) = shortfall_a.filter(|s| s.is_finite()) else {
            return self.correction_a;
        };
        if self.last.is_some_and(|l| measured_at <= l) {
            return self.correction_a;
        }
        self.last = Some(measured_at);
        if self
            .changed
            .is_some_and(|c| measured_at < c + Duration::from_secs_f64(SETTLE_SECS))
        {
            return self.correction_a;
        }
        let cars = drawing as f64;
        let error = shortfall - self.correction_a;
        if error.abs() >= SHORTFALL_TOLERANCE_A && shortfall.abs() <= LEARN_BELOW_A * cars {
            let limit = MAX_CORRECTION_A * cars;
            let c = shortfall.clamp(-limit, limit);
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

    const STEP: f64 = 0.5;

    /// A car drawing `shortfall` under its offer; the offer is the surplus plus the correction,
    /// rounded down to 0.5 A. The surplus follows `surplus(k)`; the meter measures every 5 s
    /// and its reading arrives `delay` readings late, paired with the offer and draw of its
    /// measuring time. Returns the export measured at each reading (negative = import).
    fn run(shortfall: f64, delay: usize, surplus: impl Fn(usize) -> f64, n: usize) -> Vec<f64> {
        let t0 = Instant::now();
        let at = |k: usize| t0 + Duration::from_secs(5 * k as u64);
        let mut cl = ClosedLoop::default();
        let (mut exports, mut seen) = (Vec::new(), Vec::new());
        for k in 0..n {
            // Measured at 5k s: the offer decided at the previous evaluation is in force.
            let offer = ((surplus(k) + cl.correction()) / STEP).floor() * STEP;
            let draw = offer - shortfall;
            exports.push(surplus(k) - draw);
            seen.push(offer - draw);
            if k >= delay {
                cl.update(at(k), at(k - delay), Some(seen[k - delay]), 1);
            }
        }
        exports
    }

    #[test]
    fn learns_a_cars_shortfall_and_the_export_goes_under_one_step() {
        let e = run(0.8, 0, |_| 12.0, 20);
        assert!((e[0] - 0.8).abs() < 1e-9, "{e:?}");
        for x in &e[1..] {
            assert!((0.0..STEP).contains(x), "{e:?}");
        }
    }

    #[test]
    fn a_surplus_stepping_down_and_up_never_imports_once_learned() {
        // The dither the export-learning loop had: the surplus moves by odd amounts on each
        // reading, so the rounding left by the offer step changes every time.
        let surplus = |k: usize| 12.0 + ((k * 7) % 11) as f64 * 0.37 - ((k * 3) % 5) as f64 * 0.61;
        for delay in 0..=3 {
            let e = run(0.8, delay, surplus, 200);
            for (k, x) in e.iter().enumerate().skip(delay + 1) {
                assert!(
                    (0.0..STEP + 1e-9).contains(x),
                    "delay {delay}, reading {k}: export {x}"
                );
            }
        }
    }

    #[test]
    fn the_same_reading_teaches_once_and_nothing_winds_it_up() {
        let t0 = Instant::now();
        let mut cl = ClosedLoop::default();
        // A cached meter: the same measuring time forever, the shortfall seen changing.
        cl.update(t0, t0, Some(1.0), 1);
        for k in 1..100 {
            cl.update(t0 + Duration::from_secs(k), t0, Some(2.0), 1);
        }
        assert_eq!(cl.correction(), 1.0);
        // New readings with an ever larger (but learnable) shortfall: held at the limit.
        let mut cl = ClosedLoop::default();
        for k in 0..1000 {
            let t = t0 + Duration::from_secs(10 * k);
            cl.update(t, t, Some(2.4), 1);
        }
        assert_eq!(cl.correction(), MAX_CORRECTION_A);
    }

    #[test]
    fn ramps_unvouched_readings_and_idle_cars_teach_nothing() {
        let t0 = Instant::now();
        let s = |k: u64| t0 + Duration::from_secs(k);
        let mut cl = ClosedLoop::default();
        // A car ramping up to a raised offer (8 A under it) is not a shortfall.
        cl.update(s(0), s(0), Some(8.0), 1);
        assert_eq!(cl.correction(), 0.0);
        cl.update(s(10), s(10), Some(0.8), 1);
        assert_eq!(cl.correction(), 0.8);
        // No shortfall the engine can vouch for: held, and that reading can still teach once
        // it is vouched for.
        cl.update(s(20), s(20), None, 1);
        assert_eq!(cl.correction(), 0.8);
        cl.update(s(21), s(20), Some(0.6), 1);
        assert_eq!(cl.correction(), 0.6);
        // A reading measured before the change had time to show teaches nothing.
        cl.update(s(23), s(23), Some(1.0), 1);
        assert_eq!(cl.correction(), 0.6);
        // Less than the tolerance away: left alone (no chasing of the slaves' rounding).
        cl.update(s(30), s(30), Some(0.65), 1);
        assert_eq!(cl.correction(), 0.6);
        // A car drawing more than offered: a negative correction (the safe side).
        cl.update(s(40), s(40), Some(-0.4), 1);
        assert_eq!(cl.correction(), -0.4);
        // NaN: held, never a number.
        assert_eq!(cl.update(s(50), s(50), Some(f64::NAN), 1), -0.4);
        // No car drawing: forgotten.
        assert_eq!(cl.update(s(60), s(60), Some(0.8), 0), 0.0);
        assert_eq!(cl.correction(), 0.0);
    }
}
