//! External load points in the engine: their reports, what they count for in the budgets and
//! the current the policy gives them (see [`crate::model::LoadPointReport`]).

use super::*;
use crate::model::{LoadPointMeasurement, LoadPointReport, LoadPointState, LoadPointStatus};

/// One load point as the engine keeps it.
#[derive(Debug, Clone)]
pub(super) struct LoadPointEntry {
    pub(super) report: LoadPointReport,
    /// The latest measurement and when it arrived (engine clock).
    pub(super) last: Option<(LoadPointMeasurement, Instant)>,
    /// The current the engine gives it (what its plugin makes it follow).
    pub(super) allocated: CentiAmps,
    /// When its last periodic status event went out.
    pub(super) last_event: Option<Instant>,
    /// Controlled through its car: what the car last accepted, once its draw confirms it
    /// follows (see [`Core::confirm_car_load_points`]).
    pub(super) car_confirmed: Option<CentiAmps>,
}

/// A sharing key: a slave on the bus or a load point (by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ShareKey {
    Slave(TwcId),
    LoadPoint(usize),
}

impl LoadPointEntry {
    /// The fresh measurement, if any.
    pub(super) fn fresh(&self, now: Instant) -> Option<&LoadPointMeasurement> {
        let stale_after = Duration::from_secs_f64(self.report.stale_after_secs);
        match (&self.report.measured, &self.last) {
            (Some(_), Some((m, at))) if now.saturating_duration_since(*at) <= stale_after => {
                Some(m)
            }
            _ => None,
        }
    }

    /// What it counts for in the wiring and grid budgets: its maximum when its draw is unknown
    /// or stale, or when only monitored (nothing holds it below its maximum); otherwise the
    /// higher of its draw and what it was given (it may rise to that before we see it).
    pub(super) fn reserved(&self, now: Instant) -> CentiAmps {
        match (
            self.fresh(now),
            self.report.via_car.is_some(),
            self.car_confirmed,
        ) {
            (Some(m), false, _) if self.report.controllable => m.draw.max(self.allocated),
            // Through the car: only once the car's draw confirms it follows what it was told.
            (Some(m), true, Some(told)) if self.report.controllable => {
                m.draw.max(self.allocated).max(told)
            }
            _ => self.report.max,
        }
    }

    /// The most it is ever given: min(its own max, the wiring max per charger).
    pub(super) fn cap(&self, wiring_max_per_twc: CentiAmps) -> CentiAmps {
        self.report.max.min(wiring_max_per_twc)
    }

    pub(super) fn demand(&self, now: Instant) -> Demand {
        match self.fresh(now).map(|m| m.state) {
            Some(LoadPointState::Charging) => Demand::Charging,
            Some(LoadPointState::Connected) => Demand::Connected,
            Some(LoadPointState::Idle | LoadPointState::Error) => Demand::Idle,
            // Unknown: as if a car might be there, so it can start once seen.
            Some(LoadPointState::Unknown) | None => Demand::Connected,
        }
    }
}

/// Checks a report; the error names the field and the fix.
pub(super) fn validate_report(r: &LoadPointReport) -> Result<(), CommandError> {
    let bad = |m: String| Err(CommandError::Invalid(m));
    if r.name.trim().is_empty() {
        return bad("load point name must not be empty".into());
    }
    if r.max == CentiAmps::ZERO {
        return bad(format!("load point {}: max must be > 0 A", r.name));
    }
    if r.min > r.max {
        return bad(format!(
            "load point {}: min ({}) must not exceed max ({})",
            r.name, r.min, r.max
        ));
    }
    if !(r.stale_after_secs.is_finite() && r.stale_after_secs > 0.0) {
        return bad(format!(
            "load point {}: stale_after_secs must be a number > 0, got {}",
            r.name, r.stale_after_secs
        ));
    }
    Ok(())
}

impl Core {
    /// A plugin's report: kept, and the budget re-evaluated.
    pub(super) fn report_load_point(
        &mut self,
        r: LoadPointReport,
        now: Instant,
    ) -> Result<(), CommandError> {
        validate_report(&r)?;
        let e = self.load_points.entry(r.name.clone()).or_insert_with(|| {
            info!(load_point = %r.name, kind = %r.kind, "External load point registered");
            LoadPointEntry {
                report: r.clone(),
                last: None,
                allocated: CentiAmps::ZERO,
                last_event: None,
                car_confirmed: None,
            }
        });
        if let Some(m) = &r.measured {
            e.last = Some((m.clone(), now));
        }
        if !r.controllable {
            e.allocated = CentiAmps::ZERO;
        }
        e.report = r;
        self.recompute(now);
        Ok(())
    }

    /// Σ of the fresh draws of the load points (for the policy's charger current; a stale one
    /// adds nothing there, which makes the house look bigger: the conservative side).
    pub(super) fn load_point_draw(&self, now: Instant) -> CentiAmps {
        self.load_points
            .values()
            .filter_map(|e| e.fresh(now).map(|m| m.draw))
            .sum()
    }

    /// The sharing inputs of the load points, keyed by their index in name order.
    pub(super) fn load_point_inputs(&self, now: Instant) -> Vec<ShareInput<ShareKey>> {
        let per = self.cfg.master.wiring_max_per_twc;
        self.load_points
            .values()
            .enumerate()
            .map(|(i, e)| ShareInput {
                id: ShareKey::LoadPoint(i),
                cap: if e.report.controllable {
                    e.cap(per).min(self.external_limit(None))
                } else {
                    CentiAmps::ZERO
                },
                min: e.report.min,
                demand: e.demand(now),
                priority: 0,
            })
            .collect()
    }

    /// Gives the load points their share of the budget, lowering before raising: a raise goes
    /// no higher than what min(wiring max, budget) leaves after every slave's committed current
    /// and every other load point's reservation. Then tells the master what the load points
    /// may draw, so that no slave is raised into it.
    pub(super) fn apply_load_points(
        &mut self,
        targets: &BTreeMap<ShareKey, CentiAmps>,
        budget: CentiAmps,
        now: Instant,
    ) {
        let limit = budget.min(self.cfg.master.wiring_max_all);
        let per = self.cfg.master.wiring_max_per_twc;
        let names: Vec<String> = self.load_points.keys().cloned().collect();
        let target = |i: usize, e: &LoadPointEntry| {
            let t = targets
                .get(&ShareKey::LoadPoint(i))
                .copied()
                .unwrap_or_default()
                .min(e.cap(per));
            if e.report.controllable {
                t
            } else {
                CentiAmps::ZERO
            }
        };
        // Lowerings first.
        for (i, n) in names.iter().enumerate() {
            let e = self.load_points.get_mut(n).expect("listed");
            let t = target(i, e);
            if t < e.allocated {
                e.allocated = t;
            }
        }
        // Then raises, each within the room the others leave.
        let gen2 = self.master.committed_except(None);
        for (i, n) in names.iter().enumerate() {
            let others: CentiAmps = self
                .load_points
                .iter()
                .filter(|(k, _)| *k != n)
                .map(|(_, e)| e.reserved(now))
                .sum();
            let e = self.load_points.get_mut(n).expect("listed");
            let t = target(i, e);
            if t <= e.allocated {
                continue;
            }
            let room = limit.saturating_sub(gen2 + others);
            let give = t.min(room);
            e.allocated = if give >= e.report.min {
                give.max(e.allocated)
            } else {
                e.allocated
            };
        }
        let reserved: CentiAmps = self.load_points.values().map(|e| e.reserved(now)).sum();
        self.master.set_external_reserved(reserved);
    }

    /// The load points as `Status` shows them, sorted by name.
    pub(super) fn load_point_statuses(&self, now: Instant) -> Vec<LoadPointStatus> {
        self.load_points
            .values()
            .map(|e| {
                let fresh = e.fresh(now);
                let last = e.last.as_ref().map(|(m, _)| m);
                LoadPointStatus {
                    name: e.report.name.clone(),
                    kind: e.report.kind.clone(),
                    max: e.report.max,
                    min: e.report.min,
                    controllable: e.report.controllable,
                    draw: fresh.map(|m| m.draw),
                    state: fresh.map(|m| m.state).unwrap_or_default(),
                    stale: fresh.is_none(),
                    measured_at: e.last.as_ref().map(|(_, at)| {
                        self.wall(now)
                            - chrono::Duration::from_std(now.saturating_duration_since(*at))
                                .unwrap_or_default()
                    }),
                    allocated: e.allocated,
                    reserved: e.reserved(now),
                    problem: e.report.problem.clone(),
                    via_car: e.report.via_car.clone(),
                    details: last.map(|m| m.details.clone()).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// A status event for each load point whose last one is older than the slaves' status
    /// interval (the loggers' rows).
    pub(super) fn periodic_load_point_events(&mut self, now: Instant) {
        let every = self.cfg.slave_status_interval;
        let due: Vec<String> = self
            .load_points
            .iter()
            .filter(|(_, e)| e.last_event.is_none_or(|t| now - t >= every))
            .map(|(n, _)| n.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let statuses = self.load_point_statuses(now);
        for n in due {
            if let Some(e) = self.load_points.get_mut(&n) {
                e.last_event = Some(now);
            }
            if let Some(l) = statuses.iter().find(|l| l.name == n) {
                self.emit(Event::LoadPointStatus {
                    at: self.wall(now),
                    load_point: Box::new(l.clone()),
                });
            }
        }
    }

    /// What the load points may draw beyond what they were given (stale, monitored only, or
    /// not following): it comes off the budget the others share.
    pub(super) fn load_point_excess(&self, now: Instant) -> CentiAmps {
        // Those controlled through their car are counted after the share (`car_current`).
        self.load_points
            .values()
            .filter(|e| e.report.via_car.is_none())
            .map(|e| e.reserved(now).saturating_sub(e.allocated))
            .sum()
    }

    /// At shutdown every load point is given 0 A (its plugin stops it).
    pub(super) fn stop_load_points(&mut self) {
        for e in self.load_points.values_mut() {
            e.allocated = CentiAmps::ZERO;
        }
    }
}
