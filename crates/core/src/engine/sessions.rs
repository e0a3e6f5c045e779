//! Charge sessions: energy integrated from the reported draw, and their end.

use super::*;

impl Core {
    /// Add the draw since the last heartbeat to the session's energy: the integral of the
    /// reported draw, or the lifetime counter's difference when that is larger (whole kWh).
    pub(super) fn update_session_energy(&mut self, id: TwcId, now: Instant) {
        let volts = self.voltage() * f64::from(self.cfg.phases.max(1));
        let Some(s) = self.master.slave(id) else {
            return;
        };
        let (actual, lifetime) = (s.actual.amps(), s.lifetime_kwh);
        let (Some(sess), Some((wh, last))) =
            (self.sessions.get_mut(&id), self.session_wh.get_mut(&id))
        else {
            return;
        };
        *wh += actual * volts * (now - *last).as_secs_f64() / 3600.0;
        *last = now;
        let counted = match (sess.start_kwh, lifetime) {
            (Some(a), Some(b)) => f64::from(b.saturating_sub(a)),
            _ => 0.0,
        };
        sess.energy_kwh = (*wh / 1000.0).max(counted);
    }

    /// End the open session of slave `id`, if any, now.
    pub(super) fn end_session(&mut self, id: TwcId, now: Instant, why: &str) {
        self.update_session_energy(id, now);
        self.session_wh.remove(&id);
        if let Some(session) = self.sessions.remove(&id) {
            info!(slave = %id, kwh = format!("{:.2}", session.energy_kwh), reason = why, "Charge session ended");
            self.emit(Event::SessionEnded {
                at: self.wall(now),
                session,
            });
        }
    }
}
