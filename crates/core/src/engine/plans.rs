//! Charge plans in the engine: re-planning when an input changes, and the planned current.

use super::*;
use crate::planner::{self, ChargePlan, PlanInput, PlanStatus, PlanTarget, SlotKind};
use std::fmt::Write as _;

/// Re-plan at least this often (the slots move on, delivered energy adds up).
const REPLAN_EVERY_SECS: i64 = 60;
/// House load assumed when no fresh reading shows it, W.
const DEFAULT_HOUSE_LOAD_W: f64 = 500.0;

/// What the engine keeps of its plans.
#[derive(Debug, Default)]
pub(super) struct PlansState {
    /// The plans as last made, in the order of `Settings::plans`.
    pub(super) status: Vec<PlanStatus>,
    /// Inputs of the last planning: a change re-plans at once.
    key: String,
    /// The buffer the next key is written into (no allocation on every evaluation).
    spare_key: String,
    /// Set when `key` was made without plans: the outlook part of it (price and forecast
    /// present, outlook generation), all the key then depends on.
    empty_key: Option<(u8, u64)>,
    /// Wall time of the last planning, Unix seconds.
    planned_at: i64,
    /// Bumped by every price or forecast update.
    pub(super) outlook_gen: u64,
    /// Energy into the car of each plan (by id) since it was plugged in for this departure,
    /// kWh, integrated from the slave's reported draw (sessions end when a car pauses between
    /// planned slots, so a session's energy is not enough).
    delivered: BTreeMap<String, Delivered>,
}

#[derive(Debug)]
struct Delivered {
    slave: TwcId,
    departure: Option<i64>,
    kwh: f64,
    last: Instant,
}

impl Core {
    /// The slave a plan runs at now: its car's TWC (by VIN) or its own TWC, when linked and a
    /// car is plugged in.
    fn plan_slave(&self, p: &ChargePlan) -> Option<TwcId> {
        let id = match (&p.vin, &p.twc) {
            (Some(vin), _) => self
                .vehicles
                .iter()
                .find(|v| v.vin.eq_ignore_ascii_case(vin))
                .and_then(|v| v.slave)
                .or_else(|| {
                    self.car_vin
                        .iter()
                        .find(|(_, v)| v.eq_ignore_ascii_case(vin))
                        .map(|(id, _)| *id)
                }),
            (None, Some(t)) => t.parse::<TwcId>().ok(),
            (None, None) => None,
        }?;
        let s = self.master.slave(id)?;
        (s.state.car_connected() || s.actual.0 >= 100).then_some(id)
    }

    /// Re-plan every plan when its inputs changed or a minute has passed.
    pub(super) fn replan(&mut self, now: Instant) {
        let wall = self.wall(now);
        let now_unix = wall.timestamp();
        let outlook = (
            self.outlook.prices.is_some() as u8 + 2 * self.outlook.forecast.is_some() as u8,
            self.plans.outlook_gen,
        );
        // Without plans (and nothing delivered to forget) the key is known without writing it:
        // the same early return as below, without formatting on every evaluation.
        if self.settings.plans.is_empty()
            && self.plans.delivered.is_empty()
            && self.plans.empty_key == Some(outlook)
            && now_unix - self.plans.planned_at < REPLAN_EVERY_SECS
        {
            return;
        }
        let slaves: Vec<Option<TwcId>> = self
            .settings
            .plans
            .iter()
            .map(|p| self.plan_slave(p))
            .collect();
        let socs: Vec<Option<f64>> = self
            .settings
            .plans
            .iter()
            .map(|p| {
                p.vin.as_ref().and_then(|vin| {
                    self.vehicles
                        .iter()
                        .find(|v| v.vin.eq_ignore_ascii_case(vin))
                        .and_then(|v| v.soc_pct)
                })
            })
            .collect();
        let offset = *crate::policy::local_time(&self.cfg.policy.rules.utc_offset, wall).offset();
        let volts_total = self.voltage() * f64::from(self.cfg.phases.max(1));
        let mut delivered: Vec<Option<f64>> = Vec::new();
        let mut keep = BTreeMap::new();
        for (i, p) in self.settings.plans.iter().enumerate() {
            let Some(id) = slaves[i] else {
                delivered.push(None);
                continue;
            };
            let dep = p.next_departure(wall, offset);
            let actual = self.master.slave(id).map_or(0.0, |s| s.actual.amps());
            let d = match self.plans.delivered.remove(&p.id) {
                Some(mut d) if d.slave == id && d.departure == dep => {
                    d.kwh += actual * volts_total * (now - d.last).as_secs_f64() / 3.6e6;
                    d.last = now;
                    d
                }
                _ => Delivered {
                    slave: id,
                    departure: dep,
                    kwh: 0.0,
                    last: now,
                },
            };
            delivered.push(Some(d.kwh));
            keep.insert(p.id.clone(), d);
        }
        self.plans.delivered = keep;
        // Written into the spare buffer (this runs on every evaluation, several times a second).
        let mut key = std::mem::take(&mut self.plans.spare_key);
        key.clear();
        let _ = write!(
            key,
            "{:?}|{slaves:?}|{socs:?}|{:?}|{}|{}",
            self.settings.plans,
            delivered
                .iter()
                .map(|d| d.map(|k| (k * 10.0).round() as i64))
                .collect::<Vec<_>>(),
            outlook.0,
            outlook.1,
        );
        if key == self.plans.key && now_unix - self.plans.planned_at < REPLAN_EVERY_SECS {
            self.plans.spare_key = key;
            return;
        }
        self.plans.spare_key = std::mem::replace(&mut self.plans.key, key);
        self.plans.empty_key = self.settings.plans.is_empty().then_some(outlook);
        self.plans.planned_at = now_unix;
        let house_load_w = self.house_load_estimate_w();
        let volts = self.voltage();
        let grid_limit_amps = self.plan_grid_limit_amps();
        let currency = self.outlook.prices.as_ref().map(|p| p.currency.clone());
        let mut out = Vec::new();
        let mut missed = Vec::new();
        for (i, p) in self.settings.plans.iter().enumerate() {
            let slave = slaves[i];
            let departure = p.next_departure(wall, offset);
            let (needed, state_soc) = match p.target {
                PlanTarget::Soc { pct } => {
                    let soc = socs[i];
                    let b = p.battery_kwh.unwrap_or(0.0);
                    // Without a known SoC plan for the whole way: never late.
                    ((pct - soc.unwrap_or(0.0)).max(0.0) / 100.0 * b, soc)
                }
                PlanTarget::Energy { kwh } => ((kwh - delivered[i].unwrap_or(0.0)).max(0.0), None),
            };
            let (max_amps, min_amps) = match slave.and_then(|id| self.master.slave(id)) {
                Some(s) => (
                    self.master
                        .cap(s.id)
                        .min(self.cfg.master.wiring_max_all)
                        .min(self.external_limit(Some(s.id)))
                        .amps(),
                    self.cfg.min_amps_per_twc.max(s.version.min_amps()).amps(),
                ),
                None => (
                    self.cfg
                        .master
                        .wiring_max_per_twc
                        .min(self.cfg.master.wiring_max_all)
                        .amps(),
                    self.cfg
                        .min_amps_per_twc
                        .max(CentiAmps::from_amps(6))
                        .amps(),
                ),
            };
            let outcome = match departure {
                Some(dep) if p.enabled => planner::plan(&PlanInput {
                    now_unix,
                    departure_unix: dep,
                    needed_kwh: needed,
                    max_amps,
                    min_amps,
                    voltage: volts,
                    phases: self.cfg.phases,
                    grid_limit_amps,
                    house_load_w,
                    prices: self.outlook.prices.as_ref(),
                    forecast: self.outlook.forecast.as_ref(),
                    solar_confidence: self.cfg.plans.solar_confidence,
                }),
                _ => Default::default(),
            };
            let state = if !p.enabled {
                "disabled".to_string()
            } else if departure.is_none() {
                "departure has passed".to_string()
            } else if needed <= 0.0 {
                "target reached".to_string()
            } else if slave.is_none() {
                "waiting for the car to be plugged in".to_string()
            } else if !outcome.feasible {
                "target cannot be met by departure: charging at the maximum".to_string()
            } else if matches!(p.target, PlanTarget::Soc { .. }) && state_soc.is_none() {
                "state of charge unknown: planning for a full charge".to_string()
            } else {
                "planned".to_string()
            };
            let old = self.plans.status.iter().find(|s| s.id == p.id);
            // A passed departure whose target was not met is logged once, when it passes.
            if let Some(old) = old
                && let Some(was) = old.departure_unix
                && departure != Some(was)
                && was <= now_unix
                && old.outcome.needed_kwh > 0.0
                && old.twc.is_some()
            {
                warn!(plan = %p.id, "Charge plan missed: the target was not reached by departure");
                missed.push((p.id.clone(), was, old.outcome.needed_kwh, true));
            }
            // The planner finding a plan infeasible is told once per departure.
            if let Some(dep) = departure
                && p.enabled
                && slave.is_some()
                && needed > 0.0
                && !outcome.feasible
                && old.is_none_or(|o| {
                    o.departure_unix != departure || o.outcome.feasible || o.twc.is_none()
                })
            {
                missed.push((
                    p.id.clone(),
                    dep,
                    needed - outcome.planned_kwh.min(needed),
                    false,
                ));
            }
            out.push(PlanStatus {
                id: p.id.clone(),
                twc: slave.map(|s| s.to_string()),
                departure_unix: departure,
                soc_pct: state_soc,
                delivered_kwh: slave.and(delivered[i]),
                outcome,
                active_amps: None,
                currency: currency.clone(),
                state,
            });
        }
        self.plans.status = out;
        for (plan, dep, missing_kwh, passed) in missed {
            self.emit(Event::PlanMissed {
                at: wall,
                plan,
                departure: chrono::DateTime::from_timestamp(dep, 0).unwrap_or(wall),
                missing_kwh,
                passed,
            });
        }
    }

    /// The current each slave's plan asks for now (grid slots only; solar slots are left to
    /// the policy). Only slaves whose car is plugged in and allowed to charge.
    pub(super) fn planned_amps(&mut self, now: Instant) -> BTreeMap<TwcId, CentiAmps> {
        let now_unix = self.wall(now).timestamp();
        let mut m: BTreeMap<TwcId, CentiAmps> = BTreeMap::new();
        for st in &mut self.plans.status {
            st.active_amps = None;
            let Some(id) = st.twc.as_deref().and_then(|t| t.parse::<TwcId>().ok()) else {
                continue;
            };
            if self.denied_logged.contains_key(&id) {
                continue;
            }
            if let Some(s) = st.outcome.slots.iter().find(|s| {
                s.kind == SlotKind::Grid && s.start_unix <= now_unix && now_unix < s.end_unix
            }) {
                st.active_amps = Some(s.amps);
                let a = CentiAmps::from_f64(s.amps).min(self.master.cap(id));
                let e = m.entry(id).or_insert(CentiAmps::ZERO);
                *e = (*e).max(a);
            }
        }
        m
    }

    /// The site's load without the chargers, from the last fresh reading; a default otherwise.
    fn house_load_estimate_w(&self) -> f64 {
        let Some(r) = self.combined.as_ref() else {
            return DEFAULT_HOUSE_LOAD_W;
        };
        let Some(c) = r.consumption_w else {
            return DEFAULT_HOUSE_LOAD_W;
        };
        let chargers: f64 = if self.cfg.consumption_includes_chargers {
            self.master.slaves().map(|s| s.actual.amps()).sum::<f64>()
                * self.voltage()
                * f64::from(self.cfg.phases.max(1))
        } else {
            0.0
        };
        (c - chargers).max(0.0)
    }

    /// The grid-import limit as amps for the chargers, from the config and the runtime setting
    /// (the planner's ceiling; the policy's live headroom still rules at run time).
    fn plan_grid_limit_amps(&self) -> Option<f64> {
        let g = &self.cfg.policy.grid;
        let volts = self.voltage() * f64::from(self.cfg.phases.max(1));
        let mut lim: Option<f64> = g.max_import_amps;
        let w_as_a = |w: f64| w / volts;
        if let Some(w) = g.max_import_w {
            lim = Some(lim.map_or(w_as_a(w), |a| a.min(w_as_a(w))));
        }
        if let Some(l) = self.settings.max_grid_import {
            let a = match l.unit {
                crate::model::OffsetUnit::A => l.value,
                crate::model::OffsetUnit::W => w_as_a(l.value),
            };
            lim = Some(lim.map_or(a, |x| x.min(a)));
        }
        lim
    }
}
