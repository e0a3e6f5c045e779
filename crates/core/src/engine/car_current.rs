//! Charging below a TWC's minimum through the car (`[vehicles] low_current`).
//!
//! When a slave's share is below its minimum (6 A) but at or above what its car may be told
//! ([`crate::vehicles::LowCurrentCar`]), the slave is offered its minimum and the car is told
//! (by the vehicles task, through [`Status::car_currents`](crate::model::Status)) to draw the
//! share; the TWC gets its minimum once the car has accepted. The master counts the offer, as for every slave, against the wiring and the site
//! cap, and the site cap never goes above what the wiring and the grid-import limit allow.
//! Against the policy's budget the slave counts at its offer too, until the car's measured
//! draw confirms that it follows (then at that draw); the other chargers share what is left.
//! A car that draws more than it was told for its grace time is refused this until it leaves
//! its TWC: its share is then 0 below the minimum, and the problem is shown and logged.

use super::load_points::ShareKey;
use super::*;
use crate::vehicles::CarCurrent;

/// How much more than it was told a car may draw and still count as following (the TWC's
/// measuring tolerance and the car's own regulation).
const TOLERANCE: CentiAmps = CentiAmps(100);
/// Below this a car counts as not drawing.
const DRAWING: CentiAmps = CentiAmps(100);
/// How long a car's draw must stay within what it was told before it counts as confirmed (a
/// car ramping up to its offer passes through the band on its way).
const CONFIRM_AFTER: Duration = Duration::from_secs(10);

/// A slave whose car has been told to draw below the slave's minimum.
#[derive(Debug, Clone)]
pub(super) struct LowState {
    vin: String,
    /// Since when the car draws more than it was told.
    over_since: Option<Instant>,
    /// Since when the car draws what it was told (at least 1 A, at most told + 1 A).
    ok_since: Option<Instant>,
    /// Set once the car drew more than told for its grace time: why it is not done again.
    refused: Option<String>,
    /// Since when the car, charging at its TWC's minimum, waits to accept amps below it.
    pending_since: Option<Instant>,
}

/// What a slave's car was told and draws, for the decisions.
struct LowCar {
    id: TwcId,
    vin: String,
    twc_min: CentiAmps,
    share: CentiAmps,
    counted: CentiAmps,
    confirmed: bool,
    /// The car has accepted amps below the TWC's minimum: the TWC may be offered its minimum.
    ready: bool,
    /// Not ready, but charging at the TWC's minimum already: the minimum is held while the car
    /// is told (as the green policy holds it for its stop delay), instead of a stop and a
    /// restart.
    holding: bool,
}

impl Core {
    /// The least amps the car at slave `id` may be told to draw, when it may be (the vehicles
    /// task says so, and it has not been refused for ignoring what it was told).
    pub(super) fn low_car_min(&self, id: TwcId) -> Option<CentiAmps> {
        let v = self.vehicles.iter().find(|v| v.slave == Some(id))?;
        let lc = v.low_current?;
        let refused = self
            .low_current
            .get(&id)
            .is_some_and(|s| s.vin == v.vin && s.refused.is_some());
        (!refused).then(|| CentiAmps::from_f64(lc.min_amps))
    }

    /// The most the chargers may draw under the wiring, the grid-import limit (its safe
    /// current without a fresh reading) and an outside controller's site limit.
    pub(super) fn hard_limit(&self, headroom: crate::policy::GridHeadroom) -> CentiAmps {
        use crate::policy::GridHeadroom;
        let wiring = self.cfg.master.wiring_max_all;
        match headroom {
            GridHeadroom::NoLimit => wiring,
            GridHeadroom::Amps(h) => CentiAmps::from_f64(h.max(0.0)).min(wiring),
            GridHeadroom::Unknown => {
                CentiAmps::from_f64(self.cfg.policy.grid.safe_amps).min(wiring)
            }
        }
        .min(self.external_limit(None))
    }

    /// Watches the cars told to draw below their TWC's minimum (falls back for a car that
    /// draws more than told), turns shares below the minimum into the minimum's offer plus a
    /// request to the car, and re-shares what is left among the others. Returns the site cap
    /// for the master's raises: the budget, plus what the offers above the shares need, never
    /// above `hard`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn car_current(
        &mut self,
        shared: &mut BTreeMap<ShareKey, CentiAmps>,
        inputs: &[ShareInput<ShareKey>],
        share_budget: CentiAmps,
        budget: CentiAmps,
        hard: CentiAmps,
        green_cars: Option<usize>,
        now: Instant,
    ) -> CentiAmps {
        self.watch_told(now);
        let mut low: Vec<LowCar> = Vec::new();
        let mut requests: Vec<CarCurrent> = Vec::new();
        for sl in self.master.slaves() {
            let Some(car_min) = self.low_car_min(sl.id) else {
                continue;
            };
            let Some(v) = self.vehicles.iter().find(|v| v.slave == Some(sl.id)) else {
                continue;
            };
            let twc_min = self.cfg.min_amps_per_twc.max(sl.version.min_amps());
            let share = shared
                .get(&ShareKey::Slave(sl.id))
                .copied()
                .unwrap_or_default();
            let told = v.told_amps.map(|a| CentiAmps::from_amps(u16::from(a)));
            if share >= car_min && share < twc_min {
                let steady = self.low_current.get(&sl.id).is_some_and(|s| {
                    s.over_since.is_none() && s.ok_since.is_some_and(|t| now - t >= CONFIRM_AFTER)
                });
                let confirmed = steady
                    && told.is_some_and(|t| {
                        t < twc_min && sl.actual >= DRAWING && sl.actual <= t + TOLERANCE
                    });
                let ready = told.is_some_and(|t| t < twc_min);
                // A car charging at the TWC's minimum keeps it while it is told to draw less,
                // for at most the green stop delay (a car that cannot be reached then stops).
                let charging = sl.offered >= twc_min && sl.actual >= DRAWING;
                let since = self
                    .low_current
                    .get(&sl.id)
                    .and_then(|s| s.pending_since)
                    .unwrap_or(now);
                let holding = !ready
                    && charging
                    && now - since
                        < Duration::from_secs_f64(self.cfg.policy.green.stop_delay_secs.max(0.0));
                let counted = if confirmed {
                    sl.actual.max(told.unwrap_or_default()).max(share)
                } else {
                    twc_min
                };
                low.push(LowCar {
                    id: sl.id,
                    vin: v.vin.clone(),
                    twc_min,
                    share,
                    counted,
                    confirmed,
                    ready,
                    holding,
                });
            } else if share == CentiAmps::ZERO && told.is_some_and(|t| t < twc_min) {
                // Offered nothing for now (a cloud): the car keeps what it was told, so that
                // it is not commanded back and forth.
                requests.push(CarCurrent {
                    vin: v.vin.clone(),
                    at: sl.id.to_string(),
                    amps: v.told_amps,
                    charge: None,
                    counted: sl.committed(),
                    confirmed: false,
                    problem: None,
                });
            }
        }
        for (id, s) in self.low_current.iter_mut() {
            if !low.iter().any(|l| l.id == *id && !l.ready) {
                s.pending_since = None;
            }
        }
        for l in &low {
            let s = self.low_current.entry(l.id).or_insert_with(|| {
                info!(slave = %l.id, vin = %l.vin, amps = %l.share, "Charging below the TWC's minimum through the car");
                LowState {
                    vin: l.vin.clone(),
                    over_since: None,
                    ok_since: None,
                    refused: None,
                    pending_since: None,
                }
            });
            if !l.ready {
                s.pending_since.get_or_insert(now);
            }
            requests.push(CarCurrent {
                vin: l.vin.clone(),
                at: l.id.to_string(),
                amps: Some((l.share.0 / 100) as u8),
                charge: None,
                counted: l.counted,
                confirmed: l.confirmed,
                problem: None,
            });
        }
        for (id, s) in &self.low_current {
            if let Some(why) = &s.refused {
                requests.push(CarCurrent {
                    vin: s.vin.clone(),
                    at: id.to_string(),
                    amps: None,
                    charge: None,
                    counted: self
                        .master
                        .slave(*id)
                        .map(|s| s.committed())
                        .unwrap_or_default(),
                    confirmed: false,
                    problem: Some(why.clone()),
                });
            }
        }
        self.car_currents = requests;
        // Load points controlled through their car keep their share; they count at their
        // maximum until the car's draw confirms it follows.
        let via_car: Vec<(ShareKey, CentiAmps)> = self
            .load_points
            .values()
            .enumerate()
            .filter(|(_, e)| e.report.via_car.is_some())
            .map(|(i, e)| {
                let k = ShareKey::LoadPoint(i);
                let a = shared.get(&k).copied().unwrap_or_default();
                let counted = match (e.fresh(now), e.car_confirmed) {
                    (Some(m), Some(told)) => m.draw.max(a).max(told),
                    _ => e.report.max,
                };
                (k, counted)
            })
            .collect();
        if low.is_empty() && via_car.is_empty() {
            return budget;
        }
        // The others share what these leave of the budget, each counted at its offer (or
        // maximum) until its car's draw confirms it follows.
        let counted: CentiAmps = low.iter().map(|l| l.counted).sum::<CentiAmps>()
            + via_car.iter().map(|(_, c)| *c).sum::<CentiAmps>();
        let others: Vec<ShareInput<ShareKey>> = inputs
            .iter()
            .filter(|i| !low.iter().any(|l| i.id == ShareKey::Slave(l.id)))
            .filter(|i| !via_car.iter().any(|(k, _)| i.id == *k))
            .copied()
            .collect();
        let rest = share::distribute_stepped(
            share_budget.saturating_sub(counted),
            self.cfg.master.wiring_max_all,
            &others,
            green_cars.map(|n| n.saturating_sub(low.len() + via_car.len())),
            self.cfg.master.offer_step,
        );
        shared.extend(rest);
        // The TWC is offered its minimum once the car has accepted the lower amps (until then
        // nothing, so that a car that cannot be reached never draws the minimum unasked; one
        // that already draws it keeps it for the stop delay at most).
        let mut above = CentiAmps::ZERO;
        for l in &low {
            if l.ready || l.holding {
                shared.insert(ShareKey::Slave(l.id), l.twc_min);
                above = above + l.twc_min.saturating_sub(l.share);
            } else {
                shared.insert(ShareKey::Slave(l.id), CentiAmps::ZERO);
            }
        }
        budget.max(hard.min(budget + above))
    }

    /// Follows each car told to draw below its TWC's minimum: forgets it when it leaves the
    /// TWC, and refuses it when it draws more than told for its grace time.
    fn watch_told(&mut self, now: Instant) {
        let vehicles = &self.vehicles;
        let master = &self.master;
        self.low_current.retain(|id, s| {
            vehicles
                .iter()
                .any(|v| v.slave == Some(*id) && v.vin == s.vin)
                && master.slave(*id).is_some()
        });
        for (id, s) in self.low_current.iter_mut() {
            if s.refused.is_some() {
                continue;
            }
            let (Some(v), Some(sl)) = (vehicles.iter().find(|v| v.vin == s.vin), master.slave(*id))
            else {
                continue;
            };
            let twc_min = self.cfg.min_amps_per_twc.max(sl.version.min_amps());
            let told = v
                .told_amps
                .map(|a| CentiAmps::from_amps(u16::from(a)))
                .filter(|t| *t < twc_min);
            let within = told.is_some_and(|t| sl.actual >= DRAWING && sl.actual <= t + TOLERANCE);
            if within {
                s.ok_since.get_or_insert(now);
            } else {
                s.ok_since = None;
            }
            let over = told.filter(|t| sl.actual > *t + TOLERANCE);
            match over {
                None => s.over_since = None,
                Some(t) => {
                    let since = *s.over_since.get_or_insert(now);
                    let grace = v.low_current.map_or(60, |l| l.grace_secs);
                    if now - since >= Duration::from_secs(grace) {
                        let why = format!(
                            "the car draws {} though told {} for {} s: charging below the TWC's \
                             minimum through the car is off for it until it leaves the TWC",
                            sl.actual, t, grace
                        );
                        warn!(slave = %id, vin = %s.vin, problem = %why, "Car does not follow its charging amps");
                        s.refused = Some(why);
                    }
                }
            }
        }
    }

    /// A load point controlled through its car counts at its maximum until the car's fresh
    /// draw shows it follows the amps it accepted (drawing, and no more than told + 1 A).
    pub(super) fn confirm_car_load_points(&mut self, now: Instant) {
        let vehicles = &self.vehicles;
        for e in self.load_points.values_mut() {
            let Some(vin) = &e.report.via_car else {
                e.car_confirmed = None;
                continue;
            };
            let told = vehicles
                .iter()
                .find(|v| v.vin.eq_ignore_ascii_case(vin))
                .and_then(|v| v.told_amps)
                .map(|a| CentiAmps::from_amps(u16::from(a)));
            let draw = e.fresh(now).map(|m| m.draw);
            e.car_confirmed = match (told, draw) {
                (Some(t), Some(d)) if d >= DRAWING && d <= t + TOLERANCE => Some(t),
                _ => None,
            };
        }
    }

    /// What the cars of load points controlled through them are to do: draw the allocation
    /// (charging), or stop and keep what they were told when there is none.
    pub(super) fn load_point_car_requests(&self, now: Instant) -> Vec<CarCurrent> {
        self.load_points
            .values()
            .filter_map(|e| {
                let vin = e.report.via_car.clone()?;
                let charge = e.allocated > CentiAmps::ZERO && e.allocated >= e.report.min;
                let told = self
                    .vehicles
                    .iter()
                    .find(|v| v.vin.eq_ignore_ascii_case(&vin))
                    .and_then(|v| v.told_amps);
                Some(CarCurrent {
                    vin,
                    at: e.report.name.clone(),
                    amps: if charge {
                        Some((e.allocated.0 / 100).min(u16::from(u8::MAX)) as u8)
                    } else {
                        told
                    },
                    charge: Some(charge),
                    counted: e.reserved(now),
                    confirmed: e.car_confirmed.is_some(),
                    problem: e.report.problem.clone(),
                })
            })
            .collect()
    }
}
