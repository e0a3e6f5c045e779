//! Charge sessions: energy integrated from the reported draw, its solar share and cost
//! ([`crate::model::SessionMetrics`]), the car's state of charge, and their end.

use super::*;
use crate::model::{PriceNow, SessionMetrics};

impl Core {
    /// Add the draw since the last heartbeat to the session's energy: the integral of the
    /// reported draw, or the lifetime counter's difference when that is larger (whole kWh).
    /// The interval's energy is split into solar and grid by the PV surplus the policy last saw
    /// (when that reading is still fresh) and priced at the tariff's price now.
    pub(super) fn update_session_energy(&mut self, id: TwcId, now: Instant) {
        let volts = self.voltage() * f64::from(self.cfg.phases.max(1));
        let Some(s) = self.master.slave(id) else {
            return;
        };
        let (actual, lifetime) = (s.actual.amps(), s.lifetime_kwh);
        let cars_w = (self.master.slaves().map(|s| s.actual.amps()).sum::<f64>()
            + self.load_point_draw(now).amps())
            * volts;
        let surplus = self.fresh_surplus_w(now);
        let wall = self.wall(now);
        let prices = self.outlook.prices.as_ref();
        let price = PriceNow {
            import: prices
                .and_then(|p| p.at(wall.timestamp()))
                .map(|s| s.price_per_kwh),
            feed_in: prices.and_then(|p| p.feed_in_per_kwh),
        };
        let currency = prices.map(|p| p.currency.clone());
        let soc = self.fresh_soc(id);
        let (Some(sess), Some((wh, last))) =
            (self.sessions.get_mut(&id), self.session_wh.get_mut(&id))
        else {
            return;
        };
        let added = actual * volts * (now - *last).as_secs_f64() / 3600.0;
        *wh += added;
        *last = now;
        sess.metrics.add_interval(
            added,
            actual * volts,
            cars_w,
            surplus,
            price,
            currency.as_deref(),
        );
        note_soc(&mut sess.metrics, soc);
        let counted = match (sess.start_kwh, lifetime) {
            (Some(a), Some(b)) => f64::from(b.saturating_sub(a)),
            _ => 0.0,
        };
        sess.energy_kwh = (*wh / 1000.0).max(counted);
    }

    /// The PV surplus for the cars from the reading the policy last used, W, while that reading
    /// is fresh (no older than the slowest source's staleness bound); `None` otherwise.
    fn fresh_surplus_w(&self, now: Instant) -> Option<f64> {
        let (w, measured) = self.session_surplus?;
        let bound = self
            .sources
            .iter()
            .map(|s| s.poll.stale_after)
            .max()
            .unwrap_or_default();
        (now.saturating_duration_since(measured) <= bound).then_some(w?)
    }

    /// Remember the PV surplus of the reading the policy used (called on each evaluation).
    pub(super) fn note_surplus(&mut self, reading: Option<&EnergyReading>, charger_amps: f64) {
        let volts = self.voltage() * f64::from(self.cfg.phases.max(1));
        self.session_surplus = reading.map(|r| {
            (
                crate::model::pv_surplus_w(
                    r,
                    charger_amps * volts,
                    self.cfg.consumption_includes_chargers,
                    self.battery_expected,
                ),
                r.measured_at,
            )
        });
    }

    /// The car at slave `id` from the vehicle plugins (matched by the slave, else by VIN): its
    /// name and state of charge when its data is fresh.
    fn car_at(&self, id: TwcId) -> Option<&crate::vehicles::VehicleStatus> {
        let vin = self.master.slave(id).and_then(|s| s.vin.clone());
        self.vehicles
            .iter()
            .find(|v| v.slave == Some(id))
            .or_else(|| {
                vin.as_deref()
                    .and_then(|vin| self.vehicles.iter().find(|v| v.vin == vin))
            })
    }

    fn fresh_soc(&self, id: TwcId) -> Option<(Option<String>, f64)> {
        let car = self.car_at(id)?;
        let soc = car.soc_pct.filter(|s| s.is_finite() && !car.stale)?;
        Some((car.name.clone(), soc))
    }

    /// The metrics a new session at slave `id` starts with: the car's name and state of charge.
    pub(super) fn session_start_metrics(&self, id: TwcId) -> SessionMetrics {
        let mut m = SessionMetrics {
            car_name: self.car_at(id).and_then(|c| c.name.clone()),
            ..SessionMetrics::default()
        };
        note_soc(&mut m, self.fresh_soc(id));
        m
    }

    /// New vehicle data: the open sessions take their cars' state of charge.
    pub(super) fn note_vehicles(&mut self) {
        let ids: Vec<TwcId> = self.sessions.keys().copied().collect();
        for id in ids {
            let soc = self.fresh_soc(id);
            let name = self.car_at(id).and_then(|c| c.name.clone());
            if let Some(sess) = self.sessions.get_mut(&id) {
                if sess.metrics.car_name.is_none() {
                    sess.metrics.car_name = name;
                }
                note_soc(&mut sess.metrics, soc);
            }
        }
    }

    /// End the open session of slave `id`, if any, now.
    pub(super) fn end_session(&mut self, id: TwcId, now: Instant, why: &str) {
        self.update_session_energy(id, now);
        self.session_wh.remove(&id);
        if let Some(session) = self.sessions.remove(&id) {
            info!(slave = %id, kwh = format!("{:.2}", session.energy_kwh),
                solar_share = ?session.metrics.solar_share(), cost = ?session.metrics.cost(),
                reason = why, "Charge session ended");
            self.emit(Event::SessionEnded {
                at: self.wall(now),
                session,
            });
        }
    }
}

/// A fresh state of charge: the end always follows it; the start takes it while the session has
/// charged less than 0.1 kWh (vehicle data often arrives shortly after the car starts drawing).
fn note_soc(m: &mut SessionMetrics, soc: Option<(Option<String>, f64)>) {
    let Some((name, soc)) = soc else {
        return;
    };
    if m.car_name.is_none() {
        m.car_name = name;
    }
    if m.soc_start_pct.is_none() && m.integrated_kwh < 0.1 {
        m.soc_start_pct = Some(soc);
    }
    m.soc_end_pct = Some(soc);
}
