//! Silent slaves, reservations, the foreign-master hold and escalation.

use super::*;

impl Master {
    /// Time out silent slaves; drop expired reservations; end the foreign-master hold; report
    /// and escalate cars that do not follow their offer.
    pub fn check_timeouts(&mut self, now: Instant) -> Vec<MasterEvent> {
        let mut ev = Vec::new();
        let timeout = self.cfg.slave_timeout;
        let mut timed_out = Vec::new();
        for s in self.slaves.values() {
            if s.last_rx.is_some_and(|t| now - t >= timeout) {
                // Our heartbeats may have kept its car charging until the last one we sent: keep
                // what it may draw reserved until the car must have stopped, with a margin.
                let last_tx = s.last_heartbeat_tx.unwrap_or(now).max(now - timeout);
                let until = last_tx.max(now) + CAR_STOPS_WITHIN + RESERVATION_MARGIN;
                let mut committed = s.committed();
                if let Some((r, _)) = self.reserved.get(&s.id) {
                    committed = committed.max(*r);
                }
                timed_out.push((s.id, committed, until));
                ev.push(MasterEvent::SlaveTimedOut(s.id));
            }
        }
        for (id, committed, until) in timed_out {
            self.reserved.insert(id, (committed, until));
            self.slaves.remove(&id);
        }
        self.reserved.retain(|_, (_, until)| *until > now);
        let grace = self.cfg.follow_grace;
        let escalate = self.cfg.escalate_stop_after;
        let mut stops = Vec::new();
        for s in self.slaves.values_mut() {
            let since = match (s.over_offer_since, s.unconfirmed_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match since {
                Some(t) if now - t >= grace => {
                    let limit = s.offered.max(s.reported_limit);
                    if s.over_offer_since.is_some() {
                        s.excess_seen = s.excess_seen.max(s.actual.saturating_sub(limit));
                        if s.vin.is_some() {
                            s.excess_vin.clone_from(&s.vin);
                        }
                    }
                    if !s.alerted {
                        s.alerted = true;
                        ev.push(MasterEvent::NotFollowing {
                            slave: s.id,
                            actual: s.actual,
                            offered: s.offered,
                            reported: s.reported_limit,
                        });
                    }
                    if let Some(after) = escalate
                        && s.over_offer_since.is_some_and(|o| now - o >= after)
                        && !s.escalated
                        && s.version != ProtocolVersion::V1
                    {
                        s.escalated = true;
                        stops.push(s.id);
                    }
                }
                Some(_) => {}
                None => {
                    if s.alerted {
                        ev.push(MasterEvent::FollowingAgain(s.id));
                    }
                    s.alerted = false;
                    s.escalated = false;
                }
            }
        }
        for id in stops {
            // A safety stop goes ahead of anything a user queued.
            self.commands
                .retain(|q| !matches!(q, Pending::Start(x) | Pending::Stop(x) if *x == id));
            self.commands.push_front(Pending::Stop(id));
            ev.push(MasterEvent::EscalatedStop(id));
        }
        if let Some((_, last)) = self.foreign
            && now - last >= self.cfg.foreign_master_hold
        {
            self.foreign = None;
            ev.push(MasterEvent::ForeignMasterGone);
            if self.cfg.link_ready_bursts {
                self.queue_bursts();
            }
        }
        ev
    }
}
