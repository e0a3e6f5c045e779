//! Energy readings: each source's state, combining them, and pairing a reading with the chargers'
//! draw at the time it was measured.

use super::*;

pub(super) struct SourceState {
    pub(super) name: String,
    pub(super) poll: PollSettings,
    pub(super) last: Option<EnergyReading>,
    pub(super) last_error: Option<String>,
    pub(super) errors: u64,
    pub(super) was_stale: bool,
    /// Fields of its readings dropped as unusable (non-finite or implausible), warned once per
    /// change.
    pub(super) dropped: Vec<String>,
}

impl Core {
    pub(super) fn on_reading(
        &mut self,
        i: usize,
        r: Result<EnergyReading, PluginError>,
        now: Instant,
    ) {
        let at = self.wall(now);
        let mut stale_fault = None;
        let Some(st) = self.sources.get_mut(i) else {
            return;
        };
        match r {
            Ok(mut reading) => {
                let dropped = sanitize(&mut reading);
                if reading.battery_w.is_some() {
                    self.battery_expected = true;
                }
                let st = &mut self.sources[i];
                if dropped != st.dropped {
                    if !dropped.is_empty() {
                        warn!(source = %st.name, fields = %dropped.join(", "),
                            "Unusable values in a reading (not finite, or outside plausible ranges): treated as missing");
                    }
                    st.dropped = dropped.clone();
                }
                // A reading whose missing or unusable values leave it unable to tell the grid
                // import does not replace a fresh one that can: it is skipped, and the good one
                // ages out as usual (a meter sending garbage, or no battery value, in every other
                // reading made the grid limit flip between known and unknown). One that still
                // tells the import is used as it is. (The battery counts when this source has
                // been giving one.)
                let stale_after = st.poll.stale_after.as_secs_f64();
                if st.last.as_ref().is_some_and(|prev| {
                    let battery = prev.battery_w.is_some();
                    prev.age_secs(now) <= stale_after
                        && tells_import(prev, battery)
                        && !tells_import(&reading, battery)
                }) {
                    debug!(source = %st.name, fields = %dropped.join(", "), "Reading skipped: the last good one is still fresh");
                    return;
                }
                // A reading measured longer ago than the staleness bound is stale on arrival (a
                // sensor whose integration died): it does not end a stale period.
                let age = reading.age_secs(now);
                let fresh = age <= st.poll.stale_after.as_secs_f64();
                let had_error = st.last_error.take().is_some();
                if fresh && (had_error || st.was_stale) {
                    info!(source = %st.name, "Source is delivering readings again");
                } else if !fresh && !st.was_stale {
                    warn!(source = %st.name, age_secs = age.round(), stale_after_secs = st.poll.stale_after.as_secs(),
                        "Source delivers readings measured too long ago; they do not count until a fresh one arrives");
                    stale_fault = Some(stale_event(&st.name, st.poll.stale_after, at));
                }
                st.was_stale = !fresh;
                debug!(source = %st.name, generation_w = ?reading.generation_w, consumption_w = ?reading.consumption_w, grid_w = ?reading.grid_w, "Reading");
                let name = st.name.clone();
                st.last = Some(reading.clone());
                self.emit(Event::Reading {
                    at,
                    source: name,
                    reading,
                });
            }
            Err(e) => {
                st.errors += 1;
                let msg = e.chain();
                if st.last_error.is_none() {
                    warn!(source = %st.name, error = %msg, "Source read failed; its last reading ages and will go stale");
                } else {
                    debug!(source = %st.name, error = %msg, count = st.errors, "Source read failed again");
                }
                st.last_error = Some(msg);
            }
        }
        if let Some(e) = stale_fault {
            self.emit(e);
        }
        self.recompute(now);
    }

    pub(super) fn combine(&mut self, now: Instant) -> Option<EnergyReading> {
        let wall = self.wall(now);
        let mut went_stale = Vec::new();
        let mut fresh: Vec<(&str, &EnergyReading)> = Vec::new();
        for st in &mut self.sources {
            let is_fresh = st
                .last
                .as_ref()
                .is_some_and(|r| r.age_secs(now) <= st.poll.stale_after.as_secs_f64());
            if !is_fresh && st.last.is_some() && !st.was_stale {
                st.was_stale = true;
                warn!(source = %st.name, "Source reading is stale; it no longer counts");
                went_stale.push(stale_event(&st.name, st.poll.stale_after, wall));
            }
        }
        for e in went_stale {
            self.emit(e);
        }
        for st in &self.sources {
            if let Some(r) = st
                .last
                .as_ref()
                .filter(|r| r.age_secs(now) <= st.poll.stale_after.as_secs_f64())
            {
                fresh.push((st.name.as_str(), r));
            }
        }
        // Each quantity from its configured source(s), never double counted (crate::combine).
        let (reading, problems) = crate::combine::combine_reading(&self.cfg.sources, &fresh);
        if problems != self.combine_problems {
            for p in &problems {
                warn!(problem = %p, "Combining energy sources");
            }
            self.combine_problems = problems;
        }
        reading
    }

    pub(super) fn voltage(&self) -> f64 {
        // Summed in the same order as a collected list would be, without collecting it.
        let v = || {
            self.master
                .slaves()
                .flat_map(|s| s.volts.iter().copied())
                .map(f64::from)
                .filter(|v| PLAUSIBLE_VOLTS.contains(v))
        };
        let n = v().count();
        if n == 0 {
            self.cfg.voltage
        } else {
            v().sum::<f64>() / n as f64
        }
    }

    /// Record what slave `id` reports its car draws (on every heartbeat reply).
    pub(super) fn note_draw(&mut self, id: TwcId, now: Instant) {
        let Some(actual) = self.master.slave(id).map(|s| s.actual.amps()) else {
            return;
        };
        let keep = self
            .sources
            .iter()
            .map(|s| s.poll.stale_after)
            .max()
            .unwrap_or_default()
            + Duration::from_secs(10);
        let h = self.draw_history.entry(id).or_default();
        h.push_back((now, actual));
        // Keep what the oldest usable reading may need (and the entry in force before it).
        while h.len() > 1 && (h.len() > 4096 || h.get(1).is_some_and(|(t, _)| now - *t > keep)) {
            h.pop_front();
        }
    }

    /// The chargers' draw to pair with a reading measured at `measured`, and whether it is
    /// complete (every linked slave has reported since then). A reading's grid and consumption
    /// include what the chargers drew *when it was measured*; taking out more than that makes
    /// the house look smaller and the budget larger, and a re-delivered old value then lets a
    /// car ramp up on its own draw (runaway). Per slave this is the least it reported from its
    /// last report before the measuring time to its first one after it (within [`DRAW_MARGIN`]
    /// of it): the safe side for every use, as house load and grid import are never
    /// underestimated and surplus never overestimated. Without a report before, or (incomplete)
    /// after, the least possible draw, 0 A, bounds that end.
    ///
    /// That least draw is [`Draw::least`], for the grid limit. [`Draw::best`], for the green
    /// surplus and the cars' shortfall, leaves out the reports after the slave's offer was
    /// *lowered* (after the measuring time and its margin): they show our own lowering, which
    /// the reading cannot have seen. Taking them made every step down of the surplus lower the
    /// offer twice: once for the new reading, once more for the car's reply to that lowering.
    /// (The grid limit keeps them: a car already ramping down when the reading was measured
    /// may draw less than its report before, and only its later reports bound that.) A
    /// lowering after the reading *arrived* (`arrived`) is never one it saw, even within the
    /// margin: without that, a lowering sent on the reading itself a moment after it was
    /// measured counted as seen, and the step down was taken twice.
    pub(super) fn charger_for(&self, measured: Instant, arrived: Instant) -> (Draw, bool) {
        let from = measured.checked_sub(DRAW_MARGIN).unwrap_or(measured);
        let to = measured + DRAW_MARGIN;
        let unseen_after = to.min(arrived.max(measured));
        let (mut total, mut complete) = (Draw::default(), true);
        for (h, lowered) in self.master.slaves().filter_map(|s| {
            // The first lowering after the measuring time (and its margin: a lowering the
            // meter may have seen keeps the least draw, the safe side).
            let lowered = self
                .offer_lowered
                .get(&s.id)
                .and_then(|l| l.iter().find(|l| **l > unseen_after));
            self.draw_history.get(&s.id).map(|h| (h, lowered))
        }) {
            let before = h
                .iter()
                .rev()
                .find(|(t, _)| *t <= from)
                .map_or(0.0, |(_, a)| *a);
            let (mut least, mut best) = (before, before);
            let mut bracketed = false;
            for (t, a) in h.iter().filter(|(t, _)| *t > from) {
                least = least.min(*a);
                if lowered.is_none_or(|l| t < l) {
                    best = best.min(*a);
                }
                if *t >= to {
                    bracketed = true;
                    break;
                }
            }
            if !bracketed {
                (least, best) = (0.0, 0.0);
                complete = false;
            }
            total.least += least;
            total.best += best;
        }
        (total, complete)
    }

    /// The reading the policy uses, with the chargers' draw at its time: the newest combined
    /// reading for which every slave has reported after it was measured (a meter polled more
    /// often than the heartbeats always has a newer one waiting); while none is, and the last
    /// paired one is no longer fresh, the newest with the least draw known for it. The flag
    /// says whether the draw is the paired one (not a bound on it).
    pub(super) fn paired_reading(
        &mut self,
        reading: Option<EnergyReading>,
        now: Instant,
    ) -> (Option<EnergyReading>, Draw, bool) {
        self.pair_pending = false;
        let Some(r) = reading else {
            self.paired = None;
            self.unpaired.clear();
            return (None, Draw::default(), false);
        };
        // The most the chargers can have drawn when `r` was measured: the most seen since it
        // arrived. Never the offer of *now* alone: lowering the offer on this very reading
        // would make the reading show less room on each heartbeat, and the budget would follow
        // the cars' own fall down until the pairing (positive feedback, then an export the
        // closed loop mistakes for a shortfall and overshoots into import).
        let most_now = self.charger_most();
        let (c_most, arrived) = match self.unpaired.back_mut() {
            // The reading already paired, again (every evaluation gets the newest reading): it
            // keeps its pairing. Waiting for a new one would pair it with reports after the
            // lowering it caused, as if the meter had seen them.
            _ if self
                .paired
                .as_ref()
                .is_some_and(|(p, _)| p.measured_at == r.measured_at) =>
            {
                if let Some((p, _)) = &mut self.paired {
                    *p = r.clone();
                }
                (most_now, now)
            }
            // The same measuring time (a quantity from a newer reading of another source).
            Some((b, m, a)) if b.measured_at == r.measured_at => {
                *b = r.clone();
                *m = m.max(most_now);
                (*m, *a)
            }
            _ => {
                self.unpaired.push_back((r.clone(), most_now, now));
                (most_now, now)
            }
        };
        while self.unpaired.len() > 64 {
            self.unpaired.pop_front();
        }
        // The newest waiting reading that can now be paired; older ones are dropped with it.
        for i in (0..self.unpaired.len()).rev() {
            let (c, complete) =
                self.charger_for(self.unpaired[i].0.measured_at, self.unpaired[i].2);
            if complete {
                let p = self.unpaired[i].0.clone();
                self.unpaired.drain(..=i);
                self.paired = Some((p, c));
                break;
            }
        }
        self.pair_pending = !self.unpaired.is_empty();
        let fresh_for = self
            .sources
            .iter()
            .map(|s| s.poll.stale_after)
            .min()
            .unwrap_or_default()
            .as_secs_f64();
        match &self.paired {
            Some((p, c)) if p.age_secs(now) <= fresh_for && p.measured_at <= r.measured_at => {
                // A newer reading that cannot be paired yet still counts at once when it shows
                // *less* room than the paired one even with the most the chargers can be
                // drawing (a cloud, a kettle): waiting for every slave's next report (about a
                // second per slave) would import meanwhile. It can only lower the budget, so
                // it needs no pairing to be safe; raising waits for the pairing as before.
                if p.measured_at < r.measured_at
                    && let (Some(new), Some(old)) =
                        (self.room_w(&r, c_most), self.room_w(p, c.best))
                    && new < old
                {
                    // The grid limit still takes the least draw known for it (the most the
                    // chargers can draw would make the house look smaller).
                    let least = self.charger_for(r.measured_at, arrived).0.least;
                    (
                        Some(r),
                        Draw {
                            least,
                            best: c_most,
                            upper_bound: true,
                        },
                        false,
                    )
                } else {
                    (Some(p.clone()), *c, true)
                }
            }
            _ => {
                let (c, _) = self.charger_for(r.measured_at, arrived);
                (Some(r), c, false)
            }
        }
    }

    /// What the drawing slaves' cars were offered when `r` was measured, A (summed), for the
    /// closed loop: `None` unless that offer (and which slaves draw) had not changed for the
    /// closed loop's settle time before the measuring time, so the reading shows the cars
    /// following it; also `None` while a load point draws (its offer is not a slave's). A car
    /// told less through its own API counts at what it accepted, when that is less. `None` as
    /// well when the reading's draw is not the paired one (`paired` false): offer − draw is
    /// then no shortfall.
    pub(super) fn offered_in_force(
        &mut self,
        r: Option<&EnergyReading>,
        paired: bool,
        now: Instant,
    ) -> Option<f64> {
        let (mut sum, mut n) = (0u32, 0usize);
        for sl in self.master.slaves().filter(|s| s.actual.0 >= 100) {
            let told = self
                .vehicles
                .iter()
                .find(|v| v.slave == Some(sl.id))
                .and_then(|v| v.told_amps)
                .map_or(u16::MAX, |a| CentiAmps::from_amps(u16::from(a)).0);
            sum += u32::from(sl.offered.0.min(told));
            n += 1;
        }
        let since = match self.offer_in_force {
            Some((k, since)) if k == (sum, n) => since,
            _ => {
                self.offer_in_force = Some(((sum, n), now));
                now
            }
        };
        let settle = Duration::from_secs_f64(crate::policy::closed_loop::SETTLE_SECS);
        (paired
            && n > 0
            && r?.measured_at >= since + settle
            && self.load_point_draw(now) == CentiAmps::ZERO)
            .then(|| f64::from(sum) / 100.0)
    }

    /// The most the slaves' cars can be drawing now: per slave the larger of its last report
    /// and its offer (a car ramping to a raised offer has not reported it yet).
    fn charger_most(&self) -> f64 {
        self.master
            .slaves()
            .map(|s| {
                let reported = self
                    .draw_history
                    .get(&s.id)
                    .and_then(|h| h.back())
                    .map_or(0.0, |(_, a)| *a);
                reported.max(s.actual.amps()).max(s.offered.amps())
            })
            .sum()
    }

    /// What the grid meter says the chargers may take with `charger_amps` drawn when `r` was
    /// measured, W (`None` without a grid value): their draw plus the export, less a battery's
    /// discharge. Only compared between readings, so the site's offsets and reserve cancel.
    fn room_w(&self, r: &EnergyReading, charger_amps: f64) -> Option<f64> {
        let volts_total = self.voltage() * f64::from(self.cfg.phases.max(1));
        Some(charger_amps * volts_total - r.grid_w? - r.battery_w.unwrap_or(0.0))
    }
}

/// Volts a slave may plausibly report per phase; others are ignored (a garbled 2300 V would
/// make every watt look like fewer amps).
pub(super) const PLAUSIBLE_VOLTS: std::ops::RangeInclusive<f64> = 80.0..=300.0;
/// How far a reading's measuring time may be off (timestamps in whole seconds, clocks): it is
/// paired with each slave's least reported draw over this margin around it.
pub(super) const DRAW_MARGIN: Duration = Duration::from_millis(500);

/// Make a reading safe to use: every value that is not finite or outside plausible ranges
/// becomes missing (never 0, never ∞). Returns the names of the fields dropped.
pub fn sanitize(r: &mut EnergyReading) -> Vec<String> {
    const MAX_W: f64 = 2_000_000.0;
    let mut dropped = Vec::new();
    let mut check = |name: &str, v: &mut Option<f64>, ok: &dyn Fn(f64) -> bool| {
        if let Some(x) = *v
            && !(x.is_finite() && ok(x))
        {
            *v = None;
            dropped.push(name.to_string());
        }
    };
    check("generation_w", &mut r.generation_w, &|x| {
        (-5_000.0..=MAX_W).contains(&x)
    });
    check("consumption_w", &mut r.consumption_w, &|x| {
        (-5_000.0..=MAX_W).contains(&x)
    });
    check("grid_w", &mut r.grid_w, &|x| x.abs() <= MAX_W);
    check("battery_w", &mut r.battery_w, &|x| x.abs() <= MAX_W);
    check("battery_soc_pct", &mut r.battery_soc_pct, &|x| {
        (0.0..=100.0).contains(&x)
    });
    if let Some(v) = &r.phase_voltages
        && !v.iter().all(|x| x.is_finite() && (0.0..=300.0).contains(x))
    {
        r.phase_voltages = None;
        dropped.push("phase_voltages".into());
    }
    if let Some(v) = &r.phase_currents_a
        && !v.iter().all(|x| x.is_finite() && x.abs() <= 2_000.0)
    {
        r.phase_currents_a = None;
        dropped.push("phase_currents_a".into());
    }
    dropped
}

/// Whether `r` gives the grid import: the grid value, or house and PV to derive it; and the
/// battery value on a site with a battery.
fn tells_import(r: &EnergyReading, battery: bool) -> bool {
    (r.grid_w.is_some() || (r.consumption_w.is_some() && r.generation_w.is_some()))
        && (!battery || r.battery_w.is_some())
}

/// The fault a source going stale emits (once per stale period): notifications tell the user.
fn stale_event(name: &str, stale_after: Duration, at: chrono::DateTime<chrono::Utc>) -> Event {
    Event::Fault {
        at,
        component: format!("ems.{name}"),
        message: format!(
            "no fresh reading for more than {} s; the source no longer counts (fail-safe)",
            stale_after.as_secs()
        ),
    }
}

/// The chargers' draw paired with a reading, A (sum over slaves; see [`Core::charger_for`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Draw {
    /// The least they may have drawn: for the grid limit (never a smaller house).
    pub least: f64,
    /// What they drew, leaving out our own lowering after the measuring time: for the green
    /// surplus and the cars' shortfall.
    pub best: f64,
    /// `best` is the most the chargers can draw (their offers), not a reported draw: a newer
    /// reading used before its pairing. The cars' shortfall under their offers is then already
    /// in it and must not be added again.
    pub upper_bound: bool,
}
