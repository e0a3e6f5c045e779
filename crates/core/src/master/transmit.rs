//! What to send next: heartbeats (with the offer), bursts, commands and queries.

use super::*;

impl Master {
    /// When `poll_transmit` should next be called.
    pub fn next_wakeup(&self, now: Instant) -> Instant {
        if self.foreign.is_some() || self.shutdown_complete() {
            // Nothing will be sent: overdue heartbeats must not make the caller spin (and starve
            // the tick that ends the foreign-master hold).
            return now + Duration::from_millis(500);
        }
        let gap_end = self.last_tx.map(|t| t + self.cfg.frame_gap).unwrap_or(now);
        let mut due = now + Duration::from_millis(500);
        if !self.bursts.is_empty() || (!self.commands.is_empty() && self.command_allowed()) {
            due = now;
        }
        for s in self.slaves.values() {
            due = due.min(s.next_heartbeat).min(self.next_query_due(s));
        }
        due.max(gap_end)
    }

    fn next_query_due(&self, s: &Slave) -> Instant {
        let mut due = s.next_query;
        if matches!(s.vin_state, VinState::Querying { .. }) {
            due = due.min(s.next_vin_query);
        }
        due.max(
            s.last_heartbeat_tx
                .map(|t| t + QUERY_AFTER_HEARTBEAT)
                .unwrap_or(due),
        )
    }

    /// The next frame to send, if one is due. Returns at most one frame per call and respects the
    /// minimum gap between frames.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(Frame, Vec<MasterEvent>)> {
        if self.foreign.is_some() || self.shutdown_complete() {
            return None;
        }
        if let Some(t) = self.last_tx
            && now < t + self.cfg.frame_gap
        {
            return None;
        }
        let out = self.next_frame(now)?;
        self.last_tx = Some(now);
        self.counters.frames_tx += 1;
        Some(out)
    }

    /// Commands go at most one per heartbeat round, so that no number of them delays a
    /// heartbeat by more than one frame.
    fn command_allowed(&self) -> bool {
        self.heartbeats_since_command >= self.slaves.len().max(1)
    }

    fn next_frame(&mut self, now: Instant) -> Option<(Frame, Vec<MasterEvent>)> {
        // Heartbeats first (they carry the limits that keep the wiring safe), round robin among
        // due slaves starting after the last one served.
        let due: Vec<TwcId> = self
            .slaves
            .values()
            .filter(|s| s.next_heartbeat <= now)
            .map(|s| s.id)
            .collect();
        if !due.is_empty() {
            let pick = match self.rr_cursor {
                Some(c) => due.iter().copied().find(|id| *id > c).unwrap_or(due[0]),
                None => due[0],
            };
            self.rr_cursor = Some(pick);
            self.heartbeats_since_command = self.heartbeats_since_command.saturating_add(1);
            return Some(self.heartbeat(pick, now));
        }
        if let Some(f) = self.bursts.pop_front() {
            return Some((f, Vec::new()));
        }
        if self.command_allowed()
            && let Some(cmd) = self.commands.pop_front()
        {
            self.heartbeats_since_command = 0;
            let msg = match cmd {
                Pending::Start(slave) => Message::StartCharging {
                    master: self.id,
                    slave,
                },
                Pending::Stop(slave) => Message::StopCharging {
                    master: self.id,
                    slave,
                },
                Pending::Query(slave, code) => Message::Query {
                    code,
                    master: self.id,
                    slave,
                    len: self
                        .slaves
                        .get(&slave)
                        .map(|s| s.version.frame_len())
                        .unwrap_or(16),
                },
            };
            return msg.encode().ok().map(|f| (f, Vec::new()));
        }
        // Then queries.
        let query = self
            .slaves
            .values()
            .find(|s| self.next_query_due(s) <= now)
            .map(|s| s.id)?;
        self.query(query, now)
    }

    fn heartbeat(&mut self, id: TwcId, now: Instant) -> (Frame, Vec<MasterEvent>) {
        let own_excess = self
            .slaves
            .get(&id)
            .map(|s| offer::own_excess(s.actual, s.offered, s.excess_seen))
            .unwrap_or_default();
        let others = self.committed_except(Some(id)) + self.external_reserved;
        let cap = self.cap(id);
        let interval = self.cfg.heartbeat_interval;
        let in_shutdown = self.shutdown.is_some();
        let wiring_max_all = self.cfg.wiring_max_all;
        let total_cap = self.total_cap;
        let step = self.cfg.offer_step;
        let s = self.slaves.get_mut(&id).expect("due slave exists");
        let room = offer::room(wiring_max_all, total_cap, others, own_excess, s.units);
        let offer = offer::offer(s.target, cap, s.offered, room, s.version.min_amps(), step);
        let mut events = Vec::new();
        let command;
        let amps;
        if s.heartbeats == 0 && !in_shutdown {
            // Until its first reply we do not know what limit the slave holds (a car may be
            // charging at what our previous run offered): "no change", so a restart does not
            // stop a charging car for a second. It counts at its rated maximum meanwhile.
            command = MasterCommand::NONE;
            amps = CentiAmps::ZERO;
        } else {
            if offer != s.offered {
                events.push(MasterEvent::OfferSent {
                    slave: id,
                    from: s.offered,
                    to: offer,
                });
            }
            // Spec §4.4: send the set-limit command when the slave's limit differs, or when it
            // is 0 (re-sending 0 stops relay clicking); otherwise "no change". The limit we last
            // *sent* counts too: with a lost reply the reported limit can be stale and match the
            // offer while the slave holds something else.
            (command, amps) = if s.reported_limit != offer
                || offer == CentiAmps::ZERO
                || s.sent_limit != Some(offer)
            {
                s.sent_limit = Some(offer);
                (s.version.set_limit_command(), offer)
            } else {
                (MasterCommand::NONE, CentiAmps::ZERO)
            };
            s.offered = offer;
        }
        s.next_heartbeat = now + interval;
        s.last_heartbeat_tx = Some(now);
        if s.last_rx.is_none() {
            s.last_rx = Some(now);
        }
        let frame = Message::MasterHeartbeat {
            master: self.id,
            slave: id,
            command,
            amps,
            master_plugged_in: false,
            version: s.version,
        }
        .encode()
        .expect("heartbeat encodes");
        if in_shutdown
            && Some(id) == self.slaves.keys().next_back().copied()
            && let Some(r) = self.shutdown.as_mut()
        {
            *r += 1;
        }
        (frame, events)
    }

    fn query(&mut self, id: TwcId, now: Instant) -> Option<(Frame, Vec<MasterEvent>)> {
        let kwh_interval = self.cfg.kwh_interval;
        let master = self.id;
        let s = self.slaves.get_mut(&id)?;
        let len = s.version.frame_len();
        let vin_due = matches!(s.vin_state, VinState::Querying { .. }) && s.next_vin_query <= now;
        if vin_due && s.vin_unanswered {
            // The last VIN part was not answered: count an attempt and retry later from part 1,
            // or give up (old firmware and some cars never answer, spec §3.7).
            s.vin_unanswered = false;
            if let VinState::Querying {
                part,
                attempts,
                parts,
            } = &mut s.vin_state
            {
                if *attempts >= VIN_MAX_ATTEMPTS {
                    s.vin_state = VinState::Unavailable;
                } else {
                    *attempts += 1;
                    *part = 1;
                    parts.clear();
                    s.next_vin_query = now + VIN_RETRY;
                }
            }
            return None;
        }
        let code = match &s.vin_state {
            VinState::Querying { part, .. } if s.next_vin_query <= now => {
                s.next_vin_query = now + Duration::from_secs(2);
                s.vin_unanswered = true;
                match part {
                    1 => MessageCode::QUERY_VIN1,
                    2 => MessageCode::QUERY_VIN2,
                    _ => MessageCode::QUERY_VIN3,
                }
            }
            _ => {
                s.next_query = now + kwh_interval;
                if s.firmware.is_none()
                    && s.kwh_received_at.is_some()
                    && s.version == ProtocolVersion::V2
                    && !s.firmware_asked
                {
                    s.firmware_asked = true;
                    MessageCode::QUERY_FIRMWARE
                } else {
                    MessageCode::QUERY_KWH
                }
            }
        };
        Message::Query {
            code,
            master,
            slave: id,
            len,
        }
        .encode()
        .ok()
        .map(|f| (f, Vec::new()))
    }
}
