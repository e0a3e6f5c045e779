//! A margin against the surplus falling between two readings, only while it keeps falling.
//!
//! Following the surplus exactly costs grid import on every downward step of PV or house load:
//! the car draws the old offer until the next reading has reached it (a meter interval and a
//! heartbeat). A fixed margin (`[green] reserve_w`) stops that but gives up its watts all day,
//! also on a clear sky where the surplus never jumps down. [`DropReserve`] sizes the margin from
//! what the surplus actually did: the largest fall from one **new** reading to the next within
//! the last `window` seconds (capped). Under broken clouds that change every minute it keeps
//! about one typical fall in hand; a smooth day or a single edge leaves it at (or back to) 0.
//!
//! It only lowers what green tracking offers above the cars' minimum: it never starts or stops
//! a car and never raises anything, so it cannot break a limit. A cached meter re-delivering the
//! same reading teaches nothing; no fresh reading forgets everything (the surplus is unknown and
//! green tracking is at 0 A anyway).

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The falls of the surplus between consecutive new readings, kept for a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DropReserve {
    last: Option<(Instant, f64)>,
    falls: VecDeque<(Instant, f64)>,
}

impl DropReserve {
    /// Learn from a reading measured at `measured_at` showing `surplus_a` (site amps), and
    /// return the margin: the largest fall within `window` before it, at most `cap_a`. A window
    /// or cap of 0 (or a non-finite surplus) gives 0.
    pub fn update(
        &mut self,
        measured_at: Instant,
        surplus_a: f64,
        window: Duration,
        cap_a: f64,
    ) -> f64 {
        if window.is_zero() || cap_a <= 0.0 || !surplus_a.is_finite() {
            self.forget();
            return 0.0;
        }
        match self.last {
            Some((at, _)) if measured_at <= at => {}
            prev => {
                if let Some((_, before)) = prev
                    && before > surplus_a
                {
                    self.falls.push_back((measured_at, before - surplus_a));
                }
                self.last = Some((measured_at, surplus_a));
            }
        }
        while self
            .falls
            .front()
            .is_some_and(|(at, _)| *at + window < measured_at)
        {
            self.falls.pop_front();
        }
        self.falls
            .iter()
            .map(|(_, f)| *f)
            .fold(0.0, f64::max)
            .min(cap_a)
    }

    /// Forget everything (no fresh reading, green tracking left).
    pub fn forget(&mut self) {
        self.last = None;
        self.falls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(600);

    #[test]
    fn keeps_the_largest_recent_fall_and_lets_it_go_after_the_window() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut d = DropReserve::default();
        assert_eq!(d.update(at(0), 20.0, W, 3.0), 0.0);
        // A rise is no fall.
        assert_eq!(d.update(at(5), 22.0, W, 3.0), 0.0);
        assert!((d.update(at(10), 21.0, W, 3.0) - 1.0).abs() < 1e-9);
        // A larger fall, capped.
        assert_eq!(d.update(at(15), 10.0, W, 3.0), 3.0);
        // The same reading again (a cached meter) teaches nothing.
        assert_eq!(d.update(at(15), 2.0, W, 3.0), 3.0);
        // Smooth afterwards: the falls leave the window and the margin goes back to 0.
        let mut m = 0.0;
        for k in 4..200u64 {
            m = d.update(at(5 * k), 10.0, W, 3.0);
        }
        assert_eq!(m, 0.0);
    }

    #[test]
    fn off_or_unknown_gives_no_margin() {
        let t0 = Instant::now();
        let mut d = DropReserve::default();
        d.update(t0, 20.0, W, 3.0);
        assert_eq!(
            d.update(t0 + Duration::from_secs(5), 10.0, Duration::ZERO, 3.0),
            0.0
        );
        assert_eq!(
            d.update(t0 + Duration::from_secs(10), f64::NAN, W, 3.0),
            0.0
        );
        assert_eq!(d.update(t0 + Duration::from_secs(15), 5.0, W, 0.0), 0.0);
    }
}
