//! One evaluation: policy, VIN lists, priorities and the share of the budget per slave.

use super::load_points::ShareKey;
use super::*;

impl Core {
    /// Why a slave's car may not charge (VIN allow/deny lists), or `None` when it may. `None`
    /// VIN = not read yet: the car may start, since slaves give the VIN only once a car draws
    /// current (as in TWCManager, a car that turns out not to be allowed is then stopped).
    /// `Some("")` = the car gives no VIN (non-Tesla): refused only when an allow list is set.
    pub(super) fn vin_denial(&self, vin: Option<&str>) -> Option<String> {
        let s = &self.settings;
        let v = vin?;
        if v.is_empty() {
            return (!s.vin_allow.is_empty())
                .then(|| "an allow list is set and the car gives no VIN".to_string());
        }
        if s.vin_deny.iter().any(|d| d.eq_ignore_ascii_case(v)) {
            return Some(format!("VIN {v} is in the deny list"));
        }
        if !s.vin_allow.is_empty() && !s.vin_allow.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return Some(format!("VIN {v} is not in the allow list"));
        }
        None
    }

    pub(super) fn priority(&self, id: TwcId, vin: Option<&str>) -> i32 {
        let p = &self.settings.priorities;
        if p.is_empty() {
            // Nothing to look up (and no TWCID to format, several times a second).
            return 0;
        }
        vin.filter(|v| !v.is_empty())
            .and_then(|v| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(v)))
            .or_else(|| {
                let hex = id.to_string();
                p.iter().find(|(k, _)| k.eq_ignore_ascii_case(&hex))
            })
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    /// The lowest limit outside controllers set for a slave (`Some`) or the site (`None`);
    /// unlimited when none is set.
    pub(super) fn external_limit(&self, slave: Option<TwcId>) -> CentiAmps {
        self.external_limits
            .iter()
            .filter(|((_, s), _)| *s == slave)
            .map(|(_, a)| *a)
            .min()
            .unwrap_or(CentiAmps(u16::MAX))
    }

    pub(super) fn recompute(&mut self, now: Instant) {
        self.confirm_car_load_points(now);
        let combined = self.combine(now);
        let (reading, draw, paired) = self.paired_reading(combined, now);
        // Load points draw from the same circuit: their fresh draw is charger current too.
        let lp = self.load_point_draw(now).amps();
        let (charger_amps, drawn_amps) = (draw.least + lp, draw.best + lp);
        let offered_amps = self.offered_in_force(reading.as_ref(), paired, now);
        let wall = self.wall(now);
        if let Some(cn) = self.settings.charge_now
            && cn.until_unix <= wall.timestamp()
        {
            info!("Charge Now has ended");
            self.settings.charge_now = None;
            self.save_settings();
        }
        // VIN allow/deny: a car that is not allowed gets 0 A, with a log line saying why.
        let mut denied: BTreeMap<TwcId, String> = BTreeMap::new();
        // The VINs go into the strings of the last evaluation (no new allocation per turn).
        let mut vins = std::mem::take(&mut self.vins_scratch);
        let mut n_vins = 0;
        let (mut connected, mut charging) = (0usize, 0usize);
        let mut min_amps: Option<CentiAmps> = None;
        // The master forgets a VIN when the session ends (the car stops drawing); the car that
        // gave it is still plugged in until the slave says no car is connected.
        for sl in self.master.slaves() {
            let car = sl.state.car_connected() || sl.actual.0 >= 100;
            match &sl.vin {
                Some(v) => {
                    self.car_vin.insert(sl.id, v.clone());
                }
                None if !car => {
                    self.car_vin.remove(&sl.id);
                }
                None => {}
            }
        }
        for sl in self.master.slaves() {
            let car = sl.state.car_connected() || sl.actual.0 >= 100;
            if !car {
                continue;
            }
            if let Some(why) = self.vin_denial(self.car_vin.get(&sl.id).map(String::as_str)) {
                denied.insert(sl.id, why);
                continue;
            }
            connected += 1;
            if sl.actual.0 >= 100 {
                charging += 1;
            }
            if let Some(v) = self.car_vin.get(&sl.id).filter(|v| !v.is_empty()) {
                match vins.get_mut(n_vins) {
                    Some(x) => x.clone_from(v),
                    None => vins.push(v.clone()),
                }
                n_vins += 1;
            }
            let m = self.cfg.min_amps_per_twc.max(sl.version.min_amps());
            // A car that may be told to draw less starts green tracking at its own minimum.
            let m = self.low_car_min(sl.id).map_or(m, |c| c.min(m));
            min_amps = Some(min_amps.map_or(m, |x: CentiAmps| x.min(m)));
        }
        vins.truncate(n_vins);
        for (id, why) in &denied {
            if self.denied_logged.get(id) != Some(why) {
                warn!(slave = %id, reason = %why, "Car not allowed to charge: offering 0 A");
            }
        }
        self.denied_logged = denied.clone();
        let min_amps = min_amps
            .unwrap_or(self.cfg.min_amps_per_twc.max(CentiAmps::from_amps(6)))
            .amps();
        let wiring = self.cfg.master.wiring_max_all;
        let voltage = self.voltage();
        let price_now = self
            .outlook
            .prices
            .as_ref()
            .and_then(|p| p.at(wall.timestamp()));
        let ctx = Context {
            settings: &self.settings,
            now: wall,
            mono_secs: (now - self.start_instant).as_secs_f64(),
            reading: reading.as_ref(),
            charger_amps,
            drawn_amps,
            drawn_is_bound: draw.upper_bound,
            offered_amps,
            voltage,
            phases: self.cfg.phases,
            consumption_includes_chargers: self.cfg.consumption_includes_chargers,
            wiring_max_all: wiring.amps(),
            min_amps,
            cars_connected: connected,
            cars_charging: charging,
            vins: &vins,
            battery_expected: self.battery_expected,
            price_per_kwh: price_now.map(|s| s.price_per_kwh),
            co2_g_per_kwh: price_now.and_then(|s| s.co2_g_per_kwh),
        };
        // The names of the policies go into the list of the last evaluation, in place.
        let out = self
            .policy_engine
            .evaluate_into(&ctx, &mut self.policy.rules);
        let phases = self.cfg.phases.max(1);
        self.site = SitePower {
            voltage,
            phases,
            charger_w: 0.0,
            grid_w: crate::policy::grid_now_w(&ctx),
        };
        let policy_budget = CentiAmps::from_f64(out.amps).min(wiring);
        let headroom = crate::policy::grid_headroom(&ctx, &self.cfg.policy.grid);
        self.vins_scratch = vins;
        self.note_surplus(reading.as_ref(), charger_amps);
        let (unlimited, boosted) = self.min_soc_boost(policy_budget, &out.name, headroom);
        self.replan(now);
        let planned = self.planned_amps(now);
        let unlimited = self.plan_boost(unlimited, out.explicit_stop, headroom, &planned);
        // An outside controller's site limit caps everything, the minimum-SoC boost included.
        let budget = unlimited.min(self.external_limit(None));
        // An outside controller's site limit that binds is named as what limits the budget.
        let external_by = (budget < unlimited)
            .then(|| {
                self.external_limits
                    .iter()
                    .filter(|((_, s), a)| s.is_none() && **a == budget)
                    .map(|((src, _), _)| src.clone())
                    .next()
            })
            .flatten();
        if out.name != self.policy.name {
            info!(from = %self.policy.name, to = %out.name, reason = %out.reason, "Policy changed");
            self.emit(Event::PolicyChanged {
                at: wall,
                from: self.policy.name.clone(),
                to: out.name.clone(),
                reason: out.reason.clone(),
            });
        }
        if budget != self.policy.budget {
            debug!(budget = %budget, reason = %out.reason, "Site budget changed");
            self.emit(Event::BudgetChanged {
                at: wall,
                budget,
                reading: reading.clone(),
            });
        }
        // Cars below their minimum state of charge count among the cars green tracking carries.
        // So do cars in a planned grid slot.
        let green_cars = out
            .green_cars
            .map(|n| n.max(boosted.len()).max(planned.len()));
        self.policy = PolicyStatus {
            name: out.name,
            reason: out.reason,
            is_green: out.is_green,
            budget,
            policy_amps: Some(out.policy_amps),
            limited_by: external_by.or(out.limited_by),
            surplus_w: out.surplus_w,
            grid_headroom_amps: out.grid_headroom_amps,
            green_state: out.green_state,
            rules: std::mem::take(&mut self.policy.rules),
        };
        self.combined = reading;
        // A car that does not follow its offer draws what it likes: that draw comes out of the
        // budget for the others, and it is offered 0 A (the master escalates to a stop command).
        let grace = self.cfg.master.follow_grace;
        let rogue: BTreeMap<TwcId, CentiAmps> = self
            .master
            .slaves()
            .filter(|s| s.not_following(now, grace))
            .map(|s| (s.id, s.committed()))
            .collect();
        let uncontrolled: CentiAmps = rogue.values().copied().sum();
        let share_budget = budget
            .saturating_sub(uncontrolled)
            .saturating_sub(self.load_point_excess(now));
        let mut inputs: Vec<ShareInput<ShareKey>> = self
            .master
            .slaves()
            .map(|s| ShareInput {
                id: ShareKey::Slave(s.id),
                cap: if denied.contains_key(&s.id) || rogue.contains_key(&s.id) {
                    CentiAmps::ZERO
                } else {
                    self.master.cap(s.id).min(self.external_limit(Some(s.id)))
                },
                min: {
                    let m = self.cfg.min_amps_per_twc.max(s.version.min_amps());
                    self.low_car_min(s.id).map_or(m, |c| c.min(m))
                },
                demand: if s.actual.0 >= 100 {
                    Demand::Charging
                } else if s.state.car_connected() {
                    Demand::Connected
                } else {
                    Demand::Idle
                },
                priority: self
                    .priority(s.id, self.car_vin.get(&s.id).map(String::as_str))
                    .saturating_add(if boosted.contains(&s.id) {
                        MIN_SOC_PRIORITY
                    } else {
                        0
                    })
                    .saturating_add(if planned.contains_key(&s.id) {
                        PLAN_PRIORITY
                    } else {
                        0
                    }),
            })
            .collect();
        inputs.extend(self.load_point_inputs(now));
        let mut shared = share::distribute_stepped(
            share_budget,
            wiring,
            &inputs,
            green_cars,
            self.cfg.master.offer_step,
        );
        // Shares below a TWC's minimum for cars that may be told to draw less.
        let hard = self.hard_limit(headroom);
        let total_cap = self.car_current(
            &mut shared,
            &inputs,
            share_budget,
            budget,
            hard,
            green_cars,
            now,
        );
        let targets: BTreeMap<TwcId, CentiAmps> = shared
            .iter()
            .filter_map(|(k, a)| match k {
                ShareKey::Slave(id) => Some((*id, *a)),
                ShareKey::LoadPoint(_) => None,
            })
            .collect();
        self.apply_load_points(&shared, budget, now);
        let lp_cars = self.load_point_car_requests(now);
        self.car_currents.extend(lp_cars);
        self.master.set_total_cap(total_cap);
        self.master.set_targets(&targets);
    }
}

/// Added to the sharing priority of a car below its minimum state of charge, so that the
/// current raised for it goes to it first.
const MIN_SOC_PRIORITY: i32 = 1_000_000;

/// Added to the sharing priority of a car in a planned grid slot, so that the current raised
/// for its plan goes to it first.
const PLAN_PRIORITY: i32 = 100_000;

impl Core {
    /// During a planned grid slot the planned current raises the site budget (a policy input
    /// that only raises): up to the wiring limit and the grid-import limit's headroom (its safe
    /// current without a fresh reading); the slave's caps apply in the share. It wins over the
    /// policies that only lack a reason to charge (non-scheduled `stop`, green without surplus),
    /// never over an explicit stop (`explicit_stop`: a custom 0 A policy or one named `Stop`).
    fn plan_boost(
        &self,
        budget: CentiAmps,
        explicit_stop: bool,
        headroom: crate::policy::GridHeadroom,
        planned: &BTreeMap<TwcId, CentiAmps>,
    ) -> CentiAmps {
        use crate::policy::GridHeadroom;
        if planned.is_empty() || explicit_stop {
            return budget;
        }
        let wiring = self.cfg.master.wiring_max_all;
        let full = match headroom {
            GridHeadroom::NoLimit => wiring,
            GridHeadroom::Amps(h) => CentiAmps::from_f64(h.max(0.0)).min(wiring),
            GridHeadroom::Unknown => {
                CentiAmps::from_f64(self.cfg.policy.grid.safe_amps).min(wiring)
            }
        };
        let want: CentiAmps = planned.values().copied().sum();
        budget.max(want.min(full))
    }

    /// A car below `[vehicles] min_soc_pct` at a TWC (the vehicles task says which, from fresh
    /// data only) charges at the full allowed current whatever the sun: the budget becomes the
    /// wiring limit, or what the grid-import limit leaves when one is set. Denied cars and
    /// Stop policies are not overridden. Returns the budget and the boosted slaves.
    fn min_soc_boost(
        &self,
        budget: CentiAmps,
        policy: &str,
        headroom: crate::policy::GridHeadroom,
    ) -> (CentiAmps, Vec<TwcId>) {
        use crate::policy::GridHeadroom;
        let boosted: Vec<TwcId> = self
            .vehicles
            .iter()
            .filter(|v| v.below_min_soc && !v.stale)
            .filter_map(|v| v.slave)
            .filter(|id| self.master.slave(*id).is_some())
            .filter(|id| !self.denied_logged.contains_key(id))
            .collect();
        if boosted.is_empty() || policy.eq_ignore_ascii_case("stop") {
            return (budget, boosted);
        }
        let wiring = self.cfg.master.wiring_max_all;
        // The grid limit holds (safety 4), and without a fresh reading its safe current.
        let full = match headroom {
            GridHeadroom::NoLimit => wiring,
            GridHeadroom::Amps(h) => CentiAmps::from_f64(h.max(0.0)).min(wiring),
            GridHeadroom::Unknown => {
                CentiAmps::from_f64(self.cfg.policy.grid.safe_amps).min(wiring)
            }
        };
        if full > budget {
            debug!(budget = %full, cars = boosted.len(), "Car below its minimum state of charge: full allowed current");
        }
        (budget.max(full), boosted)
    }
}
