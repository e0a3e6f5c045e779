//! Received frames: link-ready, heartbeats, VIN parts and the rest.

use super::*;

impl Master {
    /// Handle one received frame.
    pub fn handle_frame(&mut self, frame: &Frame, now: Instant) -> Vec<MasterEvent> {
        let mut ev = Vec::new();
        // Keep the last slave reply that is not a heartbeat or link-ready (for diagnostics).
        if frame.as_bytes()[0] == 0xFD
            && !matches!(
                MessageCode(frame.code()),
                MessageCode::SLAVE_HEARTBEAT | MessageCode::SLAVE_LINKREADY
            )
        {
            self.last_reply = Some(frame.clone());
            self.replies += 1;
        }
        let msg = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                ev.push(MasterEvent::Malformed(e));
                return ev;
            }
        };
        match msg {
            Message::MasterLinkReady1 { master, .. }
            | Message::MasterLinkReady2 { master, .. }
            | Message::MasterHeartbeat { master, .. }
            | Message::Query { master, .. }
            | Message::StartCharging { master, .. }
            | Message::StopCharging { master, .. } => {
                if master == self.id {
                    self.counters.echoes += 1;
                } else if matches!(
                    msg.code(),
                    MessageCode::MASTER_LINKREADY1
                        | MessageCode::MASTER_LINKREADY2
                        | MessageCode::MASTER_HEARTBEAT
                ) {
                    if self.foreign.is_none() {
                        ev.push(MasterEvent::ForeignMaster(master));
                    }
                    self.foreign = Some((master, now));
                }
            }
            Message::SlaveLinkReady {
                slave,
                sign,
                max_amps,
                version,
            } => self.on_link_ready(slave, sign, max_amps, version, now, &mut ev),
            Message::SlaveHeartbeat {
                slave,
                state,
                max,
                actual,
                version,
                ..
            } => self.on_heartbeat(slave, state, max, actual, version, now, &mut ev),
            Message::LifetimeKwh {
                slave, kwh, volts, ..
            } => {
                if let Some(s) = self.slaves.get_mut(&slave) {
                    s.lifetime_kwh = Some(kwh);
                    s.volts = volts;
                    s.kwh_received_at = Some(now);
                    ev.push(MasterEvent::LifetimeKwh(slave));
                }
            }
            Message::Firmware { slave, version } => {
                if let Some(s) = self.slaves.get_mut(&slave) {
                    s.firmware = Some(format!(
                        "{}.{}.{}.{}",
                        version[0], version[1], version[2], version[3]
                    ));
                }
            }
            Message::Serial { slave, serial } => {
                if let Some(s) = self.slaves.get_mut(&slave) {
                    s.serial = Some(serial);
                }
            }
            Message::VinPart { slave, part, chars } => {
                self.on_vin_part(slave, part, chars, now, &mut ev)
            }
            Message::StartAck { slave } => ev.push(MasterEvent::Ack { slave, start: true }),
            Message::StopAck { slave } => ev.push(MasterEvent::Ack {
                slave,
                start: false,
            }),
            Message::Idle => {}
            Message::Unknown { code, .. } => {
                self.counters.unknown += 1;
                ev.push(MasterEvent::Unknown(code));
            }
        }
        ev
    }

    fn on_link_ready(
        &mut self,
        id: TwcId,
        sign: u8,
        max_amps: CentiAmps,
        version: ProtocolVersion,
        now: Instant,
        ev: &mut Vec<MasterEvent>,
    ) {
        if id == self.id {
            // A slave holds our TWCID: the bursts make it pick a new one (spec §5).
            ev.push(MasterEvent::IdClash(id));
            if self.shutdown.is_none() {
                self.queue_bursts();
            }
            return;
        }
        if let Some(s) = self.slaves.get_mut(&id) {
            if s.sign != sign && s.last_rx.is_some_and(|t| now - t < Duration::from_secs(5)) {
                // Two units answer with one TWCID: one entry at the lower maximum, but everything
                // it may draw counts twice (both units may follow each heartbeat) until the entry
                // times out.
                s.max_amps = s.max_amps.min(max_amps);
                s.units = 2;
                ev.push(MasterEvent::IdClash(id));
                self.queue_bursts();
                return;
            }
            // A linked slave announcing itself again (it lost us for a moment, or restarted).
            s.sign = sign;
            s.max_amps = max_amps;
            s.version = version;
            s.last_rx = Some(now);
            s.next_heartbeat = now;
            return;
        }
        if self.slaves.len() >= self.cfg.max_slaves {
            ev.push(MasterEvent::TooManySlaves(id));
            return;
        }
        let mut s = Slave::new(id, sign, max_amps, version, now);
        s.next_query = now + self.cfg.heartbeat_interval;
        // A reservation left by this TWCID timing out stays until it ends: `committed_except`
        // counts the slave at the larger of the two meanwhile.
        let relinked = self.reserved.contains_key(&id);
        self.slaves.insert(id, s);
        ev.push(if relinked {
            MasterEvent::SlaveRelinked(id)
        } else {
            MasterEvent::SlaveLinked(id)
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_heartbeat(
        &mut self,
        id: TwcId,
        state: SlaveState,
        max: CentiAmps,
        actual: CentiAmps,
        version: ProtocolVersion,
        now: Instant,
        ev: &mut Vec<MasterEvent>,
    ) {
        let query_vin = self.cfg.query_vin;
        let tolerance = FOLLOW_TOLERANCE;
        let Some(s) = self.slaves.get_mut(&id) else {
            self.counters.unlinked_heartbeats += 1;
            return;
        };
        s.version = version;
        if s.state != state && s.heartbeats > 0 {
            ev.push(MasterEvent::StateChanged {
                slave: id,
                from: s.state,
                to: state,
            });
        }
        s.state = state;
        s.reported_limit = max;
        s.actual = actual;
        s.last_rx = Some(now);
        s.heartbeats += 1;
        ev.push(MasterEvent::Heartbeat(id));
        let overdraw = actual > max + OVERDRAW_TOLERANCE;
        if overdraw && !s.overdraw {
            ev.push(MasterEvent::Overdraw {
                slave: id,
                actual,
                limit: max,
            });
        }
        s.overdraw = overdraw;
        // Does the car follow what we offer? (What it may draw counts in `committed` at once;
        // this is for reporting, taking its draw out of the others' budget and escalating.)
        if actual > s.offered + tolerance {
            s.over_offer_since.get_or_insert(now);
        } else {
            s.over_offer_since = None;
        }
        if s.reported_limit > s.offered && s.sent_limit == Some(s.offered) {
            s.unconfirmed_since.get_or_insert(now);
        } else {
            s.unconfirmed_since = None;
        }
        // Sessions and VIN (spec §7): ≥ 1 A starts, < 1 A for 5 s ends.
        if actual >= ONE_AMP {
            s.below_one_amp_since = None;
            if !s.charging {
                s.charging = true;
                s.session_started_at = Some(now);
                s.session_start_kwh = s.lifetime_kwh;
                ev.push(MasterEvent::SessionStarted(id));
                if query_vin && s.vin.is_none() {
                    s.vin_state = VinState::Querying {
                        part: 1,
                        attempts: 1,
                        parts: Vec::new(),
                    };
                    s.next_vin_query = now;
                }
            }
        } else if s.charging {
            let since = *s.below_one_amp_since.get_or_insert(now);
            if now - since >= SESSION_END_AFTER {
                s.charging = false;
                s.below_one_amp_since = None;
                s.session_started_at = None;
                if s.vin.is_some() {
                    s.last_vin = s.vin.take();
                }
                s.vin_state = VinState::Idle;
                // A car that overdrew keeps its record across its sessions (stopped for not
                // following, it starts again and could ramp past its limit unseen); another
                // car's VIN clears it.
                ev.push(MasterEvent::SessionEnded(id));
            }
        }
    }

    fn on_vin_part(
        &mut self,
        id: TwcId,
        part: u8,
        chars: Vec<u8>,
        now: Instant,
        ev: &mut Vec<MasterEvent>,
    ) {
        let Some(s) = self.slaves.get_mut(&id) else {
            return;
        };
        let VinState::Querying {
            part: want,
            attempts,
            parts,
        } = &mut s.vin_state
        else {
            return;
        };
        if part != *want {
            return;
        }
        s.vin_unanswered = false;
        parts.push(chars);
        if part < 3 {
            *want += 1;
            s.next_vin_query = now;
            return;
        }
        let all: Vec<u8> = parts.iter().flatten().copied().collect();
        let attempts = *attempts;
        if all.iter().all(|&c| c == 0) {
            // Not a Tesla, or CAN disabled: stop asking (spec §3.7).
            s.vin_state = VinState::Unavailable;
            s.vin = Some(String::new());
            ev.push(MasterEvent::Vin(id, String::new()));
            return;
        }
        let vin = crate::protocol::message::ascii(&all);
        if vin_is_valid(&vin) {
            if s.excess_vin.as_ref().is_some_and(|v| *v != vin) {
                s.excess_seen = CentiAmps::ZERO;
                s.excess_vin = None;
            }
            s.vin = Some(vin.clone());
            s.vin_state = VinState::Done;
            ev.push(MasterEvent::Vin(id, vin));
        } else if attempts < VIN_MAX_ATTEMPTS {
            s.vin_state = VinState::Querying {
                part: 1,
                attempts: attempts + 1,
                parts: Vec::new(),
            };
            s.next_vin_query = now + VIN_RETRY;
        } else {
            s.vin_state = VinState::Unavailable;
        }
    }
}
