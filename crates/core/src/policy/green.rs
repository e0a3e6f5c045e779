//! Green tracking's start/stop hysteresis.
//!
//! - **Off → charging**: the surplus must cover the minimum (plus flex amps when
//!   `flex_to_start`) for `start_delay` without a break; any short moment restarts the count.
//! - **Charging**: the budget follows the surplus. While the surplus is short of the minimum (even
//!   with flex amps), the minimum is held and a stop counter runs. Time short by only part of the
//!   minimum counts in proportion to the missing amps (at least 20 %), and time with enough surplus
//!   counts the stop counter back down, so a passing cloud does not stop the car while a real lack
//!   of sun does, within `stop_delay`.
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
            if surplus >= need {
                self.ok_secs += dt;
                if self.ok_secs >= delay {
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
                state = format!(
                    "off: surplus {surplus:.1} A is below the minimum {:.1} A",
                    s.min_a
                );
            }
            return GreenOutput { amps: 0.0, state };
        }
        let hold = self.cars as f64 * s.min_a;
        if surplus >= hold {
            self.short_secs = (self.short_secs - dt).max(0.0);
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
        if self.short_secs >= s.stop_delay {
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
                state: if self.cars == 0 {
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
            })
        };
        for s in 0..1000 {
            assert_eq!(flex(&mut t, s as f64, Some(4.5)).amps, 6.0);
        }
        assert_eq!(flex(&mut t, 1000.0, None).amps, 0.0);
        assert!(!t.is_charging());
    }
}
