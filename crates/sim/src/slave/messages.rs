//! How a simulated slave reacts to frames from the master: heartbeats, queries and start/stop.

use super::*;

impl SlaveSim {
    /// React to one decoded frame from the bus. `avoid` lists TWCIDs in use by other units, for
    /// picking a new one after a clash.
    pub fn on_message(&mut self, msg: &Message, now: Instant, avoid: &[TwcId]) -> Vec<Message> {
        self.advance(now);
        if self.cut {
            return Vec::new();
        }
        let me = self.cfg.id;
        match *msg {
            Message::MasterLinkReady1 { master, .. } | Message::MasterLinkReady2 { master, .. } => {
                if master == me {
                    let mut taken = avoid.to_vec();
                    taken.push(me);
                    self.cfg.id = twc_core::master::random_id(&taken);
                    self.cfg.sign = rand::random();
                    info!(old = %me, new = %self.cfg.id, sign = format!("{:02X}", self.cfg.sign),
                        "A master link-ready carries our TWCID: picked a new TWCID and sign");
                }
                if matches!(msg, Message::MasterLinkReady2 { .. }) && !self.error_latched {
                    if self
                        .last_fb_e2
                        .is_none_or(|t| now - t > Duration::from_secs(2))
                    {
                        self.fb_e2_count = 0;
                    }
                    self.last_fb_e2 = Some(now);
                    self.fb_e2_count += 1;
                    if self.fb_e2_count == 2 {
                        // Real slaves ignore the first FB E2 and answer the second with 5 × FD E2.
                        self.burst_replies.clear();
                        for k in 0..5u32 {
                            self.burst_replies
                                .push_back(now + BURST_REPLY_DELAY + BURST_REPLY_SPACING * k);
                        }
                    }
                }
                Vec::new()
            }
            Message::MasterHeartbeat {
                master,
                slave,
                command,
                amps,
                ..
            } if slave == me => self.on_heartbeat(master, command, amps, now),
            Message::Query { code, slave, .. } if slave == me => self.on_query(code),
            Message::StartCharging { slave, .. } if slave == me => self.on_start_stop(true),
            Message::StopCharging { slave, .. } if slave == me => self.on_start_stop(false),
            _ => Vec::new(),
        }
    }

    fn on_heartbeat(
        &mut self,
        master: TwcId,
        command: MasterCommand,
        amps: CentiAmps,
        now: Instant,
    ) -> Vec<Message> {
        if self.error_latched {
            if self.error_reported {
                // After reporting 02 once a slave stays silent until its reset button is held.
                return Vec::new();
            }
            self.error_reported = true;
            return vec![self.heartbeat_reply(master)];
        }
        if !self.linked || self.master != Some(master) {
            info!(slave = %self.cfg.id, master = %master, protocol = self.cfg.version.number(), "Linked to a master");
        }
        self.linked = true;
        self.master = Some(master);
        self.last_hb = Some(now);
        self.heartbeats += 1;
        let v = self.cfg.version;
        match command.0 {
            0x05 if v == ProtocolVersion::V1 => self.set_limit(amps),
            // Protocol 2: 05 only sets the value used before a car starts (spec §4.1).
            0x05 if self.actual <= 0.0 => self.set_limit(amps),
            0x09 if v == ProtocolVersion::V2 => self.set_limit(amps),
            0x08 => self.set_limit(amps),
            0x02 => {
                self.error_latched = true;
                self.error_reported = true;
                self.actual = 0.0;
                info!(slave = %self.cfg.id, bitmap = format!("{:02X}", amps.0 >> 8), "Error command from the master: state 02, then silent until reset");
            }
            0x00 => {}
            other => {
                debug!(slave = %self.cfg.id, command = format!("{other:02X}"), "Heartbeat command not modelled; ignored")
            }
        }
        vec![self.heartbeat_reply(master)]
    }

    fn set_limit(&mut self, amps: CentiAmps) {
        // A real slave copies whatever it gets: no sanity check here (spec §4.2).
        if amps != self.limit {
            info!(slave = %self.cfg.id, from = %self.limit, to = %amps, "Limit changed by the master");
        }
        self.limit = amps;
        self.max_limit_seen = self.max_limit_seen.max(amps);
        if amps > CentiAmps::ZERO {
            self.limit_since_plug = true;
        }
        self.stopped_by_master_loss = false;
        // A car obeys a lower limit at once (its draw follows the pilot within a second).
        self.actual = self.actual.min(self.target_draw());
    }

    fn heartbeat_reply(&self, master: TwcId) -> Message {
        Message::SlaveHeartbeat {
            slave: self.cfg.id,
            master,
            state: self.state(),
            max: self.limit,
            actual: if self.error_latched {
                CentiAmps::ZERO
            } else {
                self.reported_actual()
            },
            version: self.cfg.version,
        }
    }

    fn on_query(&mut self, code: MessageCode) -> Vec<Message> {
        if self.error_latched {
            return Vec::new();
        }
        let slave = self.cfg.id;
        let v2 = self.cfg.version == ProtocolVersion::V2;
        let reply = match code {
            MessageCode::QUERY_KWH => Message::LifetimeKwh {
                slave,
                kwh: self.lifetime_kwh(),
                volts: self.cfg.volts,
                phase_current_bytes: self.cfg.long_kwh_reply.then_some([0, 0, 0]),
            },
            // Older (protocol-1) firmware ignores the newer queries (spec §2.5).
            MessageCode::QUERY_FIRMWARE if v2 => Message::Firmware {
                slave,
                version: self.cfg.firmware,
            },
            MessageCode::QUERY_SERIAL if v2 => Message::Serial {
                slave,
                serial: self.cfg.serial.clone(),
            },
            MessageCode::QUERY_VIN1 | MessageCode::QUERY_VIN2 | MessageCode::QUERY_VIN3 if v2 => {
                let (part, range) = match code {
                    MessageCode::QUERY_VIN1 => (1, 0..7),
                    MessageCode::QUERY_VIN2 => (2, 7..14),
                    _ => (3, 14..17),
                };
                let chars = match (&self.car.vin, self.car.plugged_in) {
                    (Some(vin), true) => {
                        let mut b = vin.as_bytes().to_vec();
                        b.resize(17, 0);
                        b[range].to_vec()
                    }
                    _ => vec![0; range.len()],
                };
                Message::VinPart { slave, part, chars }
            }
            other => {
                debug!(slave = %slave, code = %other, "Query not answered by this firmware");
                return Vec::new();
            }
        };
        vec![reply]
    }

    fn on_start_stop(&mut self, start: bool) -> Vec<Message> {
        if self.cfg.version != ProtocolVersion::V2 || self.error_latched {
            return Vec::new();
        }
        let slave = self.cfg.id;
        if start {
            if self.contactor_open {
                info!(slave = %slave, "FC B1: contactor closed, the car may charge again");
            }
            self.contactor_open = false;
            vec![Message::StartAck { slave }]
        } else {
            if !self.contactor_open {
                info!(slave = %slave, "FC B2: contactor opened; the car stops until re-plugged or FC B1");
            }
            self.contactor_open = true;
            self.actual = 0.0;
            vec![Message::StopAck { slave }]
        }
    }
}
