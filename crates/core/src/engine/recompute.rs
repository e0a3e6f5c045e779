//! One evaluation: policy, VIN lists, priorities and the share of the budget per slave.

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
        vin.filter(|v| !v.is_empty())
            .and_then(|v| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(v)))
            .or_else(|| {
                let hex = id.to_string();
                p.iter().find(|(k, _)| k.eq_ignore_ascii_case(&hex))
            })
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    pub(super) fn recompute(&mut self, now: Instant) {
        let combined = self.combine(now);
        let (reading, charger_amps) = self.paired_reading(combined, now);
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
        let mut vins = Vec::new();
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
                vins.push(v.clone());
            }
            let m = self.cfg.min_amps_per_twc.max(sl.version.min_amps());
            min_amps = Some(min_amps.map_or(m, |x: CentiAmps| x.min(m)));
        }
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
        let ctx = Context {
            settings: &self.settings,
            now: wall,
            mono_secs: (now - self.start_instant).as_secs_f64(),
            reading: reading.as_ref(),
            charger_amps,
            voltage,
            phases: self.cfg.phases,
            consumption_includes_chargers: self.cfg.consumption_includes_chargers,
            wiring_max_all: wiring.amps(),
            min_amps,
            cars_connected: connected,
            cars_charging: charging,
            vins: &vins,
            battery_expected: self.battery_expected,
        };
        let out = self.policy_engine.evaluate(&ctx);
        let phases = self.cfg.phases.max(1);
        self.site = SitePower {
            voltage,
            phases,
            charger_w: 0.0,
            grid_w: crate::policy::grid_now_w(&ctx),
        };
        let budget = CentiAmps::from_f64(out.amps).min(wiring);
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
        let green_cars = out.green_cars;
        self.policy = PolicyStatus {
            name: out.name,
            reason: out.reason,
            is_green: out.is_green,
            budget,
            policy_amps: Some(out.policy_amps),
            limited_by: out.limited_by,
            surplus_w: out.surplus_w,
            grid_headroom_amps: out.grid_headroom_amps,
            green_state: out.green_state,
            rules: out.rules,
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
        let share_budget = budget.saturating_sub(uncontrolled);
        let inputs: Vec<ShareInput> = self
            .master
            .slaves()
            .map(|s| ShareInput {
                id: s.id,
                cap: if denied.contains_key(&s.id) || rogue.contains_key(&s.id) {
                    CentiAmps::ZERO
                } else {
                    self.master.cap(s.id)
                },
                min: self.cfg.min_amps_per_twc.max(s.version.min_amps()),
                demand: if s.actual.0 >= 100 {
                    Demand::Charging
                } else if s.state.car_connected() {
                    Demand::Connected
                } else {
                    Demand::Idle
                },
                priority: self.priority(s.id, self.car_vin.get(&s.id).map(String::as_str)),
            })
            .collect();
        let targets = share::distribute_stepped(
            share_budget,
            wiring,
            &inputs,
            green_cars,
            self.cfg.master.offer_step,
        );
        self.master.set_total_cap(budget);
        self.master.set_targets(&targets);
    }
}
