//! The actor loop: heartbeats first, then the bus, the tick, the readings and commands; and what
//! the master reports.

use super::*;

impl Core {
    pub(super) async fn run(
        mut self,
        mut cmd_rx: mpsc::Receiver<Request>,
        mut bus_rx: mpsc::Receiver<BusIn>,
        mut read_rx: mpsc::Receiver<(usize, Result<EnergyReading, PluginError>)>,
        bus_task: JoinHandle<()>,
    ) {
        info!(
            master = %self.master.id(),
            sign = format!("{:02X}", self.master.sign()),
            wiring_max_all = %self.cfg.master.wiring_max_all,
            wiring_max_per_twc = %self.cfg.master.wiring_max_per_twc,
            "Engine started as bus master"
        );
        self.bus.link_up = true;
        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown: Option<(Instant, Vec<Reply>)> = None;
        let mut reads_open = true;
        self.recompute(Instant::now());
        // One timer for the next transmission, moved only when that changes (not made and
        // dropped again on every turn of the loop).
        let wake_timer = tokio::time::sleep_until(self.master.next_wakeup(Instant::now()));
        tokio::pin!(wake_timer);
        loop {
            let now = Instant::now();
            if let Some((started, _)) = &shutdown
                && (self.master.shutdown_complete() || now - *started >= self.cfg.shutdown_timeout)
            {
                break;
            }
            let wake = self.master.next_wakeup(now);
            if wake_timer.deadline() != wake || wake_timer.is_elapsed() {
                wake_timer.as_mut().reset(wake);
            }
            // Order matters under load: a due heartbeat first, then the bus, the tick and the
            // readings, and commands last, so that no flood of commands (nor of frames from a
            // noisy bridge) can delay a heartbeat or freeze the offer.
            tokio::select! {
                biased;
                _ = &mut wake_timer => {
                    // A wakeup with nothing to send (the idle one, half a second after the
                    // last) changed nothing a subscriber sees but the clock: the next turn
                    // (within half a second) publishes.
                    if !self.transmit(Instant::now()).await {
                        continue;
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let ev = self.master.check_timeouts(now);
                    self.on_master_events(ev, now);
                    self.recompute(now);
                    self.periodic_slave_events(now);
                }
                Some(input) = bus_rx.recv() => self.on_bus(input, Instant::now()),
                r = read_rx.recv(), if reads_open => match r {
                    Some((i, r)) => self.on_reading(i, r, Instant::now()),
                    None => reads_open = false,
                },
                Some(req) = cmd_rx.recv() => {
                    if matches!(req.cmd, Command::Shutdown) {
                        info!("Shutting down: offering 0 A to every slave");
                        self.master.begin_shutdown();
                        self.stop_load_points();
                        shutdown.get_or_insert((Instant::now(), Vec::new())).1.push(req.reply);
                    } else {
                        let r = self.on_command(req.cmd, Instant::now());
                        let _ = req.reply.send(r);
                    }
                }
            }
            self.publish(Instant::now());
        }
        let now = Instant::now();
        let open: Vec<TwcId> = self.sessions.keys().copied().collect();
        for id in open {
            self.end_session(id, now, "twcmanager stopped");
        }
        let n = self.master.slaves().count();
        let confirmed = self
            .master
            .slaves()
            .filter(|s| s.offered == CentiAmps::ZERO && s.reported_limit == CentiAmps::ZERO)
            .count();
        if confirmed == n {
            info!(
                slaves = n,
                "Stopped transmitting; every slave confirmed 0 A"
            );
        } else {
            warn!(
                slaves = n,
                confirmed,
                "Stopped transmitting; not every slave confirmed 0 A (their cars stop within 30 s without heartbeats)"
            );
        }
        drop(self.bus_out);
        let _ = tokio::time::timeout(Duration::from_secs(2), bus_task).await;
        // Let the settings writer finish the last save.
        drop(self.settings_tx.take());
        if let Some(w) = self.settings_writer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
        }
        if let Some((_, waiters)) = shutdown {
            for w in waiters {
                let _ = w.send(Ok(self.settings.clone()));
            }
        }
    }

    /// Send the frame that is due, if any; true if one was.
    pub(super) async fn transmit(&mut self, now: Instant) -> bool {
        if let Some((frame, events)) = self.master.poll_transmit(now) {
            trace!(hex = %frame.hex(), "TX");
            // Never wait for the transport: while the link is down and the bus task backs off,
            // its queue fills; a frame that does not fit is dropped (the next heartbeat round
            // carries fresh values), so commands and readings keep being handled.
            match self.bus_out.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!("Bus queue full (link down?); frame dropped")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.bus.link_up = false,
            }
            self.on_master_events(events, now);
            true
        } else {
            false
        }
    }

    pub(super) fn on_bus(&mut self, input: BusIn, now: Instant) {
        match input {
            BusIn::Rx(Received::Frame(f)) => {
                self.decode.frames_ok += 1;
                trace!(hex = %f.hex(), "RX");
                let ev = self.master.handle_frame(&f, now);
                self.on_master_events(ev, now);
            }
            BusIn::Rx(Received::Dropped(e)) => {
                match e {
                    FrameError::BadChecksum { .. } => self.decode.bad_checksum += 1,
                    FrameError::BadEscape(_) => self.decode.bad_escape += 1,
                    FrameError::TooLong => self.decode.too_long += 1,
                    _ => self.decode.bad_length += 1,
                }
                debug!(error = %e, "Dropped a frame");
            }
            BusIn::Down(e) => {
                if self.bus.link_up {
                    warn!(error = %e, "Bus link lost; retrying with backoff");
                    self.emit(Event::Fault {
                        at: self.wall(now),
                        component: "bus".into(),
                        message: format!("bus link lost: {e}"),
                    });
                }
                self.bus.link_up = false;
                self.bus.last_error = Some(e);
            }
            BusIn::Stats(s) => {
                if s.timed_out > self.decode.timed_out {
                    debug!(
                        count = s.timed_out,
                        "Dropped a partial frame after a silence"
                    );
                }
                self.decode.garbage_bytes = s.garbage_bytes;
                self.decode.timed_out = s.timed_out;
            }
            BusIn::Up => {
                info!("Bus link restored");
                self.bus.link_up = true;
                // The slaves may have given up on us: re-link them now, not in 10 s.
                self.master.announce();
            }
        }
    }

    pub(super) fn on_master_events(&mut self, events: Vec<MasterEvent>, now: Instant) {
        let at = self.wall(now);
        let mut recompute = false;
        for e in events {
            match e {
                MasterEvent::SlaveLinked(id) | MasterEvent::SlaveRelinked(id) => {
                    let s = self.master.slave(id).expect("linked slave exists");
                    info!(slave = %id, max = %s.max_amps, protocol = s.version.number(), "Slave linked");
                    if self.cfg.master.wiring_max_per_twc > s.max_amps {
                        warn!(slave = %id, rated = %s.max_amps, wiring = %self.cfg.master.wiring_max_per_twc,
                            "The wiring limit per TWC is above this unit's rating; offering at most its rating");
                    }
                    self.emit(Event::SlaveLinked {
                        at,
                        slave: id,
                        max_amps: s.max_amps,
                        version: s.version,
                    });
                    recompute = true;
                }
                MasterEvent::SlaveTimedOut(id) => {
                    warn!(slave = %id, "Slave timed out (no heartbeat reply for {} s)", self.cfg.master.slave_timeout.as_secs());
                    let last = self
                        .status
                        .borrow()
                        .slaves
                        .iter()
                        .find(|x| x.id == id)
                        .cloned();
                    if let Some(mut s) = last {
                        s.timed_out = true;
                        s.charging = false;
                        s.offered = CentiAmps::ZERO;
                        s.target = CentiAmps::ZERO;
                        self.lost_slaves.insert(id, (s, now));
                    }
                    self.emit(Event::SlaveTimedOut { at, slave: id });
                    self.draw_history.remove(&id);
                    self.offer_lowered.remove(&id);
                    self.end_session(id, now, "the slave timed out");
                    recompute = true;
                }
                MasterEvent::Heartbeat(id) => {
                    self.note_draw(id, now);
                    self.update_session_energy(id, now);
                    if self.pair_pending {
                        recompute = true;
                    }
                    if let Some(s) = self.master.slave(id) {
                        // A person follows the draw at info: log when it moves by ≥ 1 A.
                        let last = self.logged_actual.get(&id).copied().unwrap_or_default();
                        if s.actual.0.abs_diff(last.0) >= 100 {
                            info!(slave = %id, actual = %s.actual, offered = %s.offered, state = s.state.name(), "Car draw changed");
                            self.logged_actual.insert(id, s.actual);
                        }
                        debug!(slave = %id, state = s.state.name(), limit = %s.reported_limit, actual = %s.actual, offered = %s.offered, "Slave heartbeat");
                    }
                }
                MasterEvent::StateChanged { slave, from, to } => {
                    info!(slave = %slave, from = from.name(), to = to.name(), "Slave state changed");
                    recompute = true;
                }
                MasterEvent::OfferSent { slave, from, to } => {
                    info!(slave = %slave, from = %from, to = %to, "Offer changed");
                    if to < from {
                        let l = self.offer_lowered.entry(slave).or_default();
                        l.push_back(now);
                        // The readings still waiting for a pairing are a few seconds old.
                        while l.len() > 64 {
                            l.pop_front();
                        }
                    }
                    self.emit(Event::OfferChanged {
                        at,
                        slave,
                        from,
                        to,
                    });
                }
                MasterEvent::LifetimeKwh(id) => {
                    if let Some(s) = self.master.slave(id) {
                        debug!(slave = %id, kwh = s.lifetime_kwh, volts = ?s.volts, "Lifetime kWh and voltage");
                        if let (Some(sess), Some(kwh)) =
                            (self.sessions.get_mut(&id), s.lifetime_kwh)
                            && sess.start_kwh.is_none()
                        {
                            sess.start_kwh = Some(kwh);
                        }
                    }
                    self.update_session_energy(id, now);
                }
                MasterEvent::Vin(id, vin) => {
                    if vin.is_empty() {
                        info!(slave = %id, "The car gives no VIN (not a Tesla, or CAN disabled)");
                    } else {
                        info!(slave = %id, vin = %vin, "VIN read");
                    }
                    if let Some(sess) = self.sessions.get_mut(&id) {
                        sess.vin = (!vin.is_empty()).then(|| vin.clone());
                    }
                    self.emit(Event::VinRead { at, slave: id, vin });
                }
                MasterEvent::SessionStarted(id) => {
                    let s = self.master.slave(id).expect("slave exists");
                    let session = ChargeSession {
                        slave: id,
                        vin: s.vin.clone().filter(|v| !v.is_empty()),
                        started_at: at,
                        start_kwh: s.lifetime_kwh,
                        energy_kwh: 0.0,
                        metrics: self.session_start_metrics(id),
                    };
                    info!(slave = %id, "Charge session started");
                    self.sessions.insert(id, session.clone());
                    self.session_wh.insert(id, (0.0, now));
                    self.emit(Event::SessionStarted { at, session });
                    recompute = true;
                }
                MasterEvent::SessionEnded(id) => {
                    self.end_session(id, now, "the car stopped drawing");
                    recompute = true;
                }
                MasterEvent::ForeignMaster(id) => {
                    error!(other = %id, "Another master is on the bus: set every TWC's rotary switch to F. Not transmitting until it has been silent");
                    self.emit(Event::Fault {
                        at,
                        component: "bus".into(),
                        message: format!("another master ({id}) is on the bus; set every TWC's rotary switch to F"),
                    });
                }
                MasterEvent::ForeignMasterGone => {
                    info!("The other master has gone quiet; transmitting again")
                }
                MasterEvent::IdClash(id) => {
                    warn!(slave = %id, "TWCID clash; sending link-ready bursts so the slave picks a new TWCID");
                }
                MasterEvent::TooManySlaves(id) => {
                    warn!(slave = %id, max = self.cfg.master.max_slaves, "Ignoring a slave: the bus already has the most slaves allowed");
                }
                MasterEvent::Overdraw {
                    slave,
                    actual,
                    limit,
                } => {
                    warn!(slave = %slave, actual = %actual, limit = %limit, "The car draws more than the slave's limit");
                    self.emit(Event::Fault {
                        at,
                        component: format!("slave {slave}"),
                        message: format!("car draws {actual}, more than the limit {limit}"),
                    });
                }
                MasterEvent::NotFollowing {
                    slave,
                    actual,
                    offered,
                    reported,
                } => {
                    error!(slave = %slave, actual = %actual, offered = %offered, reported = %reported,
                        "The car does not follow its offer: its draw now counts against every other slave's budget");
                    self.emit(Event::Fault {
                        at,
                        component: format!("slave {slave}"),
                        message: format!(
                            "car draws {actual} with {offered} offered (slave reports {reported}); not following"
                        ),
                    });
                    recompute = true;
                }
                MasterEvent::FollowingAgain(slave) => {
                    info!(slave = %slave, "The car follows its offer again");
                    recompute = true;
                }
                MasterEvent::EscalatedStop(slave) => {
                    error!(slave = %slave, "The car kept drawing more than offered: sending the stop command (FC B2); a Tesla needs a re-plug afterwards");
                    self.emit(Event::Fault {
                        at,
                        component: format!("slave {slave}"),
                        message:
                            "car kept drawing more than offered; stop command sent (re-plug needed)"
                                .into(),
                    });
                }
                MasterEvent::Unknown(code) => debug!(code = %code, "Unknown message"),
                MasterEvent::Malformed(e) => debug!(error = %e, "Malformed message"),
                MasterEvent::Ack { slave, start } => {
                    info!(slave = %slave, "{} acknowledged", if start { "Start" } else { "Stop" })
                }
            }
        }
        if recompute {
            self.recompute(now);
        }
    }
}
