//! Green tracking's start/stop hysteresis.
//!
//! - **Off → charging**: the surplus must cover the minimum (plus flex amps when
//!   `flex_to_start`) for `start_delay` without a break; any short moment restarts the count.
//! - **Charging**: the budget follows the surplus. While the surplus is short of the minimum (even
//!   with flex amps), the minimum is held and a stop counter runs. Time short by only part of the
//!   minimum counts in proportion to the missing amps (at least 20 %), and time with enough surplus
//!   counts the stop counter back down, so a passing cloud does not stop the car while a real lack
//!   of sun does, within `stop_delay`.
//! - **Forecast start** (`forecast_secs` > 0): the tracker keeps a causal short-window forecast
//!   of the surplus (Holt's double exponential smoothing over the past readings: a level with a
//!   time constant of a third of the window and a trend over the whole window). A car starts once
//!   the surplus covers the minimum now, the energy expected over the next window (level + trend ×
//!   window ÷ 2, times the window) covers the minimum's energy, and the surplus has held for a
//!   quarter of the start delay. A strong or rising surplus starts sooner than a marginal or
//!   falling one; a short sunny spell after a long shadow does not start at all.
//! - **Cost stop** (`restart_cost` set): while short, the import the hold has cost in this dip
//!   (measured on the grid meter where there is one, else the missing amps; at most the held
//!   minimum, since the house's own import stays when the cars stop) plus the import
//!   expected until the forecast reaches the minimum again (the whole window when it is not
//!   rising) is compared with the expected cost of a restart; the car stops as soon as holding
//!   is expected to cost more. A shallow dip that is recovering is held, a deep or lasting one
//!   stops at once. The weighted stop count stays as the upper bound.
//! - **Low sun** (`low_sun`: the sun is down or within `[green] low_sun_minutes` of sunrise or
//!   sunset, with a home location): no car starts, and a shortfall is not held at all; the car
//!   stops at once, as the sun will not bring the surplus back within a stop delay.
//! - **No fresh data**: 0 A at once and back to off (safety invariant 3).

/// Start/stop state of green tracking: how many cars the surplus carries. Time is monotonic
/// seconds from any origin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GreenTracker {
    cars: usize,
    ok_secs: f64,
    short_secs: f64,
    last: Option<f64>,
    /// A car was stopped for lack of surplus and none has started since.
    stopped: bool,
    /// The forecast's level (A) and trend (A/s); `None` until the first fresh reading.
    level: Option<(f64, f64)>,
    /// Import paid for holding the minimum in the current dip, A·s.
    dip_import: f64,
    /// The "off: surplus … below the minimum" text, by (surplus, minimum) bits.
    off_text: super::memo::TextMemo<[u64; 2]>,
}

/// What the tracker decided.
#[derive(Debug, Clone, PartialEq)]
pub struct GreenOutput {
    /// Site amps for the chargers.
    pub amps: f64,
    /// State in words for the status.
    pub state: String,
}

/// Inputs of one tracker step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GreenStep {
    /// Surplus for the chargers in site amps; `None` without fresh data.
    pub surplus_a: Option<f64>,
    /// The least one car can charge with, A.
    pub min_a: f64,
    /// Cars that could charge (connected and allowed); at least one slot is always tracked so
    /// that a car plugging in can start at once.
    pub max_cars: usize,
    /// Flex amps.
    pub flex_a: f64,
    /// Flex amps also to start.
    pub flex_to_start: bool,
    /// Start delay, s.
    pub start_delay: f64,
    /// Start delay after a car was stopped for lack of surplus (anti-cycling), s.
    pub restart_delay: f64,
    /// Stop delay, s.
    pub stop_delay: f64,
    /// Monotonic now, s.
    pub now: f64,
    /// Window of the forecast start, s; 0 = start after the start delay without a break.
    pub forecast_secs: f64,
    /// Expected cost of stopping and starting again, in A·s of import at the site voltage;
    /// `None` = stop after the weighted stop count only.
    pub restart_cost: Option<f64>,
    /// Import measured on the grid meter now, site A (≥ 0), when there is one.
    pub import_a: Option<f64>,
    /// The sun is down or within `[green] low_sun_minutes` of sunrise or sunset: no start, and
    /// a shortfall is not held (it does not pass within a stop delay).
    pub low_sun: bool,
}

impl GreenTracker {
    /// Mean surplus expected over the next `window` seconds from the past readings, A.
    pub fn forecast(&self, window: f64) -> Option<f64> {
        self.level.map(|(l, b)| (l + b * window / 2.0).max(0.0))
    }

    fn observe(&mut self, surplus: f64, dt: f64, window: f64) {
        let window = window.max(1.0);
        self.level = Some(match self.level {
            None => (surplus, 0.0),
            Some((l, b)) => {
                let a = 1.0 - (-dt / (window / 3.0)).exp();
                let g = 1.0 - (-dt / window).exp();
                let nl = l + b * dt + a * (surplus - l - b * dt);
                let nb = if dt > 0.0 {
                    b + g * ((nl - l) / dt - b)
                } else {
                    b
                };
                (nl, nb)
            }
        });
    }
}

impl GreenTracker {
    /// A tracker that starts with the cars that already charge (entering green tracking from a
    /// fixed-amps policy should not stop them before the stop delay).
    pub fn entering(cars_charging: usize) -> Self {
        GreenTracker {
            cars: cars_charging,
            ..GreenTracker::default()
        }
    }

    /// True while green tracking lets at least one car charge.
    pub fn is_charging(&self) -> bool {
        self.cars > 0
    }

    /// How many cars the surplus carries now.
    pub fn cars(&self) -> usize {
        self.cars
    }

    /// One step. Each car's minimum counts: the n-th car starts once the surplus has covered n
    /// minimums for the start delay, and stops once it has been short of them for the stop
    /// delay, so two cars on a surplus near two minimums do not take turns.
    pub fn update(&mut self, s: GreenStep) -> GreenOutput {
        let dt = self
            .last
            .map(|l| (s.now - l).clamp(0.0, 60.0))
            .unwrap_or(0.0);
        self.last = Some(s.now);
        let Some(surplus) = s.surplus_a else {
            let was = self.cars > 0;
            *self = GreenTracker {
                last: self.last,
                ..GreenTracker::default()
            };
            return GreenOutput {
                amps: 0.0,
                state: if was {
                    "off: no fresh reading, stopped at once".into()
                } else {
                    "off: no fresh reading".into()
                },
            };
        };
        let surplus = surplus.max(0.0);
        if s.forecast_secs > 0.0 || s.restart_cost.is_some() {
            let w = if s.forecast_secs > 0.0 {
                s.forecast_secs
            } else {
                s.stop_delay.max(60.0)
            };
            self.observe(surplus, dt, w);
        }
        let slots = s.max_cars.max(1);
        self.cars = self.cars.min(slots);
        if s.min_a <= 0.0 {
            self.cars = 0;
            return GreenOutput {
                amps: 0.0,
                state: "off: no minimum current configured".into(),
            };
        }
        let mut state = String::new();
        // One more car?
        if self.cars < slots {
            let flex = if s.flex_to_start { s.flex_a } else { 0.0 };
            let need = (self.cars + 1) as f64 * s.min_a - flex;
            let delay = if self.stopped {
                s.restart_delay.max(s.start_delay)
            } else {
                s.start_delay
            };
            // Forecast start: the energy expected over the window must cover the minimum's.
            let (delay, forecast_ok) = if s.forecast_secs > 0.0 {
                let f = self.forecast(s.forecast_secs).unwrap_or(0.0);
                (delay / 4.0, f >= need)
            } else {
                (delay, true)
            };
            if surplus >= need && !s.low_sun {
                self.ok_secs += dt;
                if self.ok_secs >= delay && forecast_ok {
                    self.cars += 1;
                    self.ok_secs = 0.0;
                    self.short_secs = 0.0;
                    self.stopped = false;
                } else {
                    state = format!(
                        "{}starting {} in {:.0} s",
                        if self.cars > 0 { "charging, " } else { "off: " },
                        if self.cars > 0 {
                            "another car"
                        } else {
                            "charging"
                        },
                        delay - self.ok_secs
                    );
                }
            } else {
                self.ok_secs = 0.0;
            }
        } else {
            self.ok_secs = 0.0;
        }
        if self.cars == 0 {
            if state.is_empty() {
                let min_a = s.min_a;
                state = self
                    .off_text
                    .text([surplus.to_bits(), min_a.to_bits()], |_| {
                        format!("off: surplus {surplus:.1} A is below the minimum {min_a:.1} A")
                    });
            }
            return GreenOutput { amps: 0.0, state };
        }
        let hold = self.cars as f64 * s.min_a;
        if surplus >= hold {
            self.short_secs = (self.short_secs - dt).max(0.0);
            self.dip_import = 0.0;
            return GreenOutput {
                amps: surplus,
                state: if state.is_empty() {
                    "charging".into()
                } else {
                    state
                },
            };
        }
        let missing = hold - surplus;
        if missing <= s.flex_a {
            self.short_secs = (self.short_secs - dt).max(0.0);
            return GreenOutput {
                amps: hold,
                state: format!("charging: {missing:.1} A from the grid within flex amps"),
            };
        }
        let weight = (missing / s.min_a).clamp(0.2, 1.0);
        self.short_secs += dt * weight;
        // Cost stop: the import paid in this dip plus what holding is expected to cost until the
        // forecast is back at the minimum, against the cost of a restart.
        let mut too_costly = false;
        if let Some(cost) = s.restart_cost {
            // What stopping saves: the cars' own draw at most (the house's own import, a
            // kettle under a cloud or the evening load, stays when the cars stop).
            let rate = s.import_a.unwrap_or(missing).min(hold).max(0.0);
            self.dip_import += rate * dt;
            let window = if s.forecast_secs > 0.0 {
                s.forecast_secs
            } else {
                s.stop_delay.max(60.0)
            };
            let remaining = match self.level {
                Some((l, b)) if b > 0.0 && l < hold => ((hold - l) / b).min(window),
                Some((l, _)) if l >= hold => 0.0,
                _ => window,
            };
            too_costly = self.dip_import + rate * remaining > cost;
        }
        if self.short_secs >= s.stop_delay || too_costly || s.low_sun {
            self.dip_import = 0.0;
            self.cars -= 1;
            self.stopped = true;
            self.ok_secs = 0.0;
            self.short_secs = 0.0;
            let amps = if self.cars == 0 {
                0.0
            } else {
                surplus.max(self.cars as f64 * s.min_a)
            };
            return GreenOutput {
                amps,
                state: if self.cars == 0 && s.low_sun {
                    "off: stopped, the surplus is short and the sun is low".into()
                } else if self.cars == 0 {
                    "off: stopped, the surplus stayed short".into()
                } else {
                    format!("charging: one car stopped, {} still charging", self.cars)
                },
            };
        }
        GreenOutput {
            amps: hold,
            state: format!(
                "charging: short by {missing:.1} A, holding the minimum, stopping in {:.0} s",
                (s.stop_delay - self.short_secs) / weight
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(t: &mut GreenTracker, now: f64, surplus: Option<f64>) -> GreenOutput {
        t.update(GreenStep {
            surplus_a: surplus,
            min_a: 6.0,
            max_cars: 1,
            flex_a: 0.0,
            flex_to_start: false,
            start_delay: 60.0,
            restart_delay: 0.0,
            stop_delay: 120.0,
            now,
            forecast_secs: 0.0,
            restart_cost: None,
            import_a: None,
            low_sun: false,
        })
    }

    #[test]
    fn starts_only_after_the_surplus_held_for_the_start_delay() {
        let mut t = GreenTracker::default();
        for s in 0..60 {
            assert_eq!(step(&mut t, s as f64, Some(8.0)).amps, 0.0, "at {s} s");
        }
        assert_eq!(step(&mut t, 60.0, Some(8.0)).amps, 8.0);
        // A break restarts the count.
        let mut t = GreenTracker::default();
        for s in 0..50 {
            step(&mut t, s as f64, Some(8.0));
        }
        step(&mut t, 50.0, Some(3.0));
        for s in 51..110 {
            assert_eq!(step(&mut t, s as f64, Some(8.0)).amps, 0.0, "at {s} s");
        }
        assert_eq!(step(&mut t, 111.0, Some(8.0)).amps, 8.0);
    }

    #[test]
    fn holds_the_minimum_then_stops_after_the_stop_delay() {
        let mut t = GreenTracker::entering(1);
        step(&mut t, 0.0, Some(10.0));
        // Fully short (0 A surplus): weight 1, stops after 120 s, holding 6 A meanwhile.
        for s in 1..120 {
            assert_eq!(step(&mut t, s as f64, Some(0.0)).amps, 6.0, "at {s} s");
        }
        assert_eq!(step(&mut t, 120.0, Some(0.0)).amps, 0.0);
        assert!(!t.is_charging());
    }

    #[test]
    fn a_passing_cloud_does_not_stop_and_shallow_shortfalls_count_less() {
        let mut t = GreenTracker::entering(1);
        let mut now = 0.0;
        // 60 s fully short, 60 s sunny, repeated: the counter never reaches 120 s.
        for _ in 0..20 {
            for _ in 0..60 {
                now += 1.0;
                assert!(step(&mut t, now, Some(0.0)).amps >= 6.0);
            }
            for _ in 0..60 {
                now += 1.0;
                assert_eq!(step(&mut t, now, Some(9.0)).amps, 9.0);
            }
        }
        // Short by 1.2 A of 6 (weight 0.2): takes 600 s to stop.
        let mut t = GreenTracker::entering(1);
        step(&mut t, 0.0, Some(4.8));
        for s in 1..600 {
            assert_eq!(step(&mut t, s as f64, Some(4.8)).amps, 6.0, "at {s} s");
        }
        assert_eq!(step(&mut t, 600.0, Some(4.8)).amps, 0.0);
    }

    #[test]
    fn two_cars_near_two_minimums_do_not_take_turns() {
        let two = |t: &mut GreenTracker, now: f64, s: f64| {
            t.update(GreenStep {
                surplus_a: Some(s),
                min_a: 6.0,
                max_cars: 2,
                flex_a: 0.0,
                flex_to_start: false,
                start_delay: 60.0,
                restart_delay: 0.0,
                stop_delay: 120.0,
                now,
                forecast_secs: 0.0,
                restart_cost: None,
                import_a: None,
                low_sun: false,
            })
        };
        let mut t = GreenTracker::entering(1);
        // 13 A carries two minimums: the second car starts after the start delay.
        for k in 0..60 {
            two(&mut t, k as f64, 13.0);
            assert_eq!(t.cars(), 1, "at {k} s");
        }
        two(&mut t, 60.0, 13.0);
        assert_eq!(t.cars(), 2);
        // The surplus wobbles 10–14 A every 30 s: both keep charging (held at 12 A when short).
        let mut now = 60.0;
        for _ in 0..40 {
            for s in [10.0, 14.0] {
                for _ in 0..30 {
                    now += 1.0;
                    let o = two(&mut t, now, s);
                    assert!(o.amps >= 12.0);
                }
            }
        }
        assert_eq!(t.cars(), 2);
        // 8 A for good: one car stops after the stop delay (weight 4/6), the other goes on.
        for _ in 0..179 {
            now += 1.0;
            two(&mut t, now, 8.0);
        }
        assert_eq!(t.cars(), 2);
        now += 2.0;
        assert_eq!(two(&mut t, now, 8.0).amps, 8.0);
        assert_eq!(t.cars(), 1);
    }

    #[test]
    fn flex_keeps_charging_and_no_data_stops_at_once() {
        let mut t = GreenTracker::entering(1);
        let flex = |t: &mut GreenTracker, now: f64, s: Option<f64>| {
            t.update(GreenStep {
                surplus_a: s,
                min_a: 6.0,
                max_cars: 1,
                flex_a: 2.0,
                flex_to_start: false,
                start_delay: 60.0,
                restart_delay: 0.0,
                stop_delay: 120.0,
                now,
                forecast_secs: 0.0,
                restart_cost: None,
                import_a: None,
                low_sun: false,
            })
        };
        for s in 0..1000 {
            assert_eq!(flex(&mut t, s as f64, Some(4.5)).amps, 6.0);
        }
        assert_eq!(flex(&mut t, 1000.0, None).amps, 0.0);
        assert!(!t.is_charging());
    }

    fn smart(t: &mut GreenTracker, now: f64, surplus: f64, import_a: Option<f64>) -> GreenOutput {
        t.update(GreenStep {
            surplus_a: Some(surplus),
            min_a: 6.0,
            max_cars: 1,
            flex_a: 0.0,
            flex_to_start: false,
            start_delay: 60.0,
            restart_delay: 0.0,
            stop_delay: 300.0,
            now,
            forecast_secs: 300.0,
            // 20 Wh at 230 V.
            restart_cost: Some(20.0 * 3600.0 / 230.0),
            import_a,
            low_sun: false,
        })
    }

    #[test]
    fn forecast_start_waits_for_the_energy_and_starts_a_strong_surplus_sooner() {
        // After a long shadow, a strong surplus (20 A): starts once the smoothed level covers
        // the minimum and a quarter of the start delay has passed, well before 60 s.
        let mut t = GreenTracker::default();
        for s in 0..600 {
            smart(&mut t, s as f64, 0.0, None);
        }
        let mut started = None;
        for s in 600..700 {
            if smart(&mut t, s as f64, 20.0, None).amps > 0.0 {
                started = Some(s - 600);
                break;
            }
        }
        let strong = started.expect("a strong surplus starts");
        assert!((15..60).contains(&strong), "started after {strong} s");
        // A marginal one (6.5 A) takes longer than the strong one.
        let mut t = GreenTracker::default();
        for s in 0..600 {
            smart(&mut t, s as f64, 0.0, None);
        }
        let mut marginal = None;
        for s in 600..1200 {
            if smart(&mut t, s as f64, 6.5, None).amps > 0.0 {
                marginal = Some(s - 600);
                break;
            }
        }
        let marginal = marginal.expect("a lasting marginal surplus starts");
        assert!(marginal > strong + 60, "{marginal} s against {strong} s");
        // A 40 s sunny spell after a long shadow does not start at all.
        let mut t = GreenTracker::default();
        for s in 0..600 {
            smart(&mut t, s as f64, 0.0, None);
        }
        for s in 600..640 {
            assert_eq!(smart(&mut t, s as f64, 7.0, None).amps, 0.0, "at {s} s");
        }
        for s in 640..900 {
            assert_eq!(smart(&mut t, s as f64, 0.0, None).amps, 0.0, "at {s} s");
        }
    }

    #[test]
    fn cost_stop_holds_a_cheap_dip_and_stops_an_expensive_one() {
        let charging = || {
            let mut t = GreenTracker::entering(1);
            for s in 0..600 {
                smart(&mut t, s as f64, 12.0, Some(0.0));
            }
            t
        };
        // Short by 0.5 A, but the meter shows no import (the car draws under its offer):
        // holding costs nothing, so it holds until the weighted count (300 s at weight 0.2).
        let mut t = charging();
        for s in 600..1000 {
            assert_eq!(
                smart(&mut t, s as f64, 5.5, Some(0.0)).amps,
                6.0,
                "at {s} s"
            );
        }
        // Deep and lasting (no sun, 6 A imported): 20 Wh = 313 A·s is spent within ~52 s,
        // and the expected import stops it sooner.
        let mut t = charging();
        let mut stopped = None;
        for s in 600..900 {
            if smart(&mut t, s as f64, 0.0, Some(6.0)).amps == 0.0 {
                stopped = Some(s - 600);
                break;
            }
        }
        let stopped = stopped.expect("a deep dip stops");
        assert!(stopped < 60, "stopped after {stopped} s");
        // A kettle under the same dip: the grid shows 15 A of import, but stopping saves only
        // the car's 6 A, so it is held exactly as long as the dip without the kettle.
        let mut t = charging();
        let mut with_kettle = None;
        for s in 600..900 {
            if smart(&mut t, s as f64, -9.0, Some(15.0)).amps == 0.0 {
                with_kettle = Some(s - 600);
                break;
            }
        }
        assert_eq!(
            with_kettle,
            Some(stopped),
            "the house's own import is no cost of holding"
        );
        // The same dip without a cost stop runs the whole 300 s count.
        let mut t = GreenTracker::entering(1);
        for s in 0..600 {
            step(&mut t, s as f64, Some(12.0));
        }
        for s in 600..719 {
            assert_eq!(step(&mut t, s as f64, Some(0.0)).amps, 6.0, "at {s} s");
        }
    }

    #[test]
    fn low_sun_neither_starts_nor_holds_a_shortfall() {
        let low = |t: &mut GreenTracker, now: f64, surplus: f64, low_sun: bool| {
            t.update(GreenStep {
                surplus_a: Some(surplus),
                min_a: 6.0,
                max_cars: 1,
                flex_a: 0.0,
                flex_to_start: false,
                start_delay: 60.0,
                restart_delay: 0.0,
                stop_delay: 300.0,
                now,
                forecast_secs: 0.0,
                restart_cost: None,
                import_a: None,
                low_sun,
            })
        };
        // Enough surplus for ten minutes, but the sun is low: no start.
        let mut t = GreenTracker::default();
        for s in 0..600 {
            assert_eq!(low(&mut t, f64::from(s), 10.0, true).amps, 0.0);
        }
        assert!(!t.is_charging());
        // Once it is not, the start delay counts from then.
        for s in 600..=660 {
            low(&mut t, f64::from(s), 10.0, false);
        }
        assert!(t.is_charging());
        // A shortfall in full sun is held for the stop delay…
        let mut held = t.clone();
        assert_eq!(low(&mut held, 661.0, 3.0, false).amps, 6.0);
        assert!(held.is_charging());
        // …with a low sun it stops at once, and says why.
        let out = low(&mut t, 661.0, 3.0, true);
        assert_eq!(out.amps, 0.0);
        assert!(!t.is_charging());
        assert!(out.state.contains("sun is low"), "{}", out.state);
        // A surplus above the minimum keeps charging with a low sun (it only stops a shortfall).
        let mut t = held;
        assert_eq!(low(&mut t, 662.0, 8.0, true).amps, 8.0);
    }
}
