//! Building the `Status` snapshot and the periodic per-slave events.

use super::*;

/// How long a slave that timed out stays in `Status.slaves` (with `timed_out`) unless it links
/// again; after that it is forgotten, as TWCManager does at once.
pub(super) const LOST_SLAVE_SHOWN: Duration = Duration::from_secs(600);

impl Core {
    pub(super) fn periodic_slave_events(&mut self, now: Instant) {
        let due: Vec<TwcId> = self
            .master
            .slaves()
            .filter(|s| {
                self.last_slave_event
                    .get(&s.id)
                    .is_none_or(|t| now - *t >= self.cfg.slave_status_interval)
            })
            .map(|s| s.id)
            .collect();
        for id in due {
            self.last_slave_event.insert(id, now);
            if let Some(s) = self.slave_status(id, now) {
                self.emit(Event::SlaveStatus {
                    at: self.wall(now),
                    slave: s,
                });
            }
        }
        self.periodic_load_point_events(now);
    }

    pub(super) fn slave_status(&self, id: TwcId, now: Instant) -> Option<SlaveStatus> {
        let s = self.master.slave(id)?;
        Some(SlaveStatus {
            id: s.id,
            sign: s.sign,
            version: s.version,
            max_amps: s.max_amps,
            cap_amps: self.master.cap(s.id),
            state: s.state.0,
            state_name: s.state.name().to_string(),
            reported_limit: s.reported_limit,
            actual: s.actual,
            offered: s.offered,
            target: s.target,
            lifetime_kwh: s.lifetime_kwh,
            volts: s.volts,
            vin: s.vin.clone().filter(|v| !v.is_empty()),
            last_vin: s.last_vin.clone(),
            last_heartbeat_secs: s.last_rx.map(|t| (now - t).as_secs_f64()).unwrap_or(0.0),
            timed_out: false,
            charging: s.charging,
            session_kwh: self.sessions.get(&id).map(|x| x.energy_kwh).unwrap_or(0.0),
            session_secs: s.session_started_at.map(|t| (now - t).as_secs_f64()),
            firmware: s.firmware.clone(),
            overdraw: s.overdraw,
            power_w: s.actual.amps() * self.site.voltage * f64::from(self.site.phases),
        })
    }

    pub(super) fn publish(&mut self, now: Instant) {
        let c = self.master.counters();
        self.bus.master_id = self.master.id();
        self.bus.master_sign = self.master.sign();
        self.bus.transmitting = self.master.transmitting();
        self.bus.foreign_master = self.master.foreign_master();
        self.bus.frames_tx = c.frames_tx;
        self.bus.decode = self.decode;
        self.bus.unknown_messages = c.unknown;
        self.bus.malformed_messages = c.malformed;
        self.bus.unlinked_heartbeats = c.unlinked_heartbeats;
        self.bus.echoes = c.echoes;
        let (reply, replies) = self.master.last_reply();
        // Formatted again only when a new reply came (publishing runs several times a second).
        if replies != self.bus.replies || self.bus.last_reply.is_none() != reply.is_none() {
            self.bus.last_reply = reply.map(|f| f.hex());
            self.bus.replies = replies;
        }
        let mut slaves: Vec<SlaveStatus> = self
            .master
            .slaves()
            .filter_map(|s| self.slave_status(s.id, now))
            .collect();
        let master = &self.master;
        self.lost_slaves.retain(|id, (_, since)| {
            master.slave(*id).is_none() && now - *since < LOST_SLAVE_SHOWN
        });
        for (s, since) in self.lost_slaves.values() {
            let mut s = s.clone();
            s.last_heartbeat_secs += (now - *since).as_secs_f64();
            slaves.push(s);
        }
        slaves.sort_by_key(|s| s.id);
        let sources = self
            .sources
            .iter()
            .map(|st| SourceStatus {
                name: st.name.clone(),
                last: st.last.clone(),
                age_secs: st.last.as_ref().map(|r| r.age_secs(now)),
                stale: st
                    .last
                    .as_ref()
                    .is_none_or(|r| r.age_secs(now) > st.poll.stale_after.as_secs_f64()),
                last_error: st.last_error.clone(),
                errors: st.errors,
            })
            .collect();
        let load_points = self.load_point_statuses(now);
        // Slaves and fresh load points (a stale one's power is unknown: left out, not 0 W).
        let charger_w = slaves
            .iter()
            .filter(|s| !s.timed_out)
            .map(|s| s.power_w)
            .sum::<f64>()
            + load_points.iter().filter_map(|l| l.power_w()).sum::<f64>();
        let updated_at = Some(self.wall(now));
        let sinks = self.sink_faults(now);
        let site = SitePower {
            charger_w,
            ..self.site.clone()
        };
        // Field by field: a field equal to what subscribers have is left alone (not cloned
        // again), one that differs is replaced, and subscribers are told when any differed: the
        // same snapshot and the same notifications as building a whole new `Status` and
        // comparing it, without cloning the settings, policy, outlook and plans on every turn
        // of the loop (several times a second).
        let (cfg, bus, policy, reading, settings) = (
            &self.cfg,
            &self.bus,
            &self.policy,
            &self.combined,
            &self.settings,
        );
        let (vehicles, outlook, plans, car_currents) = (
            &self.vehicles,
            &self.outlook,
            &self.plans.status,
            &self.car_currents,
        );
        self.status.send_if_modified(|old| {
            // Every field named, so a field added to `Status` fails to compile here until it
            // is published too.
            let Status {
                updated_at: _,
                bus: _,
                slaves: _,
                policy: _,
                reading: _,
                sources: _,
                settings: _,
                wiring_max_all: _,
                wiring_max_per_twc: _,
                min_amps_per_twc: _,
                sinks: _,
                site: _,
                vehicles: _,
                outlook: _,
                plans: _,
                load_points: _,
                car_currents: _,
            } = old;
            let mut changed = false;
            put(&mut old.updated_at, updated_at, &mut changed);
            put_ref(&mut old.bus, bus, &mut changed);
            put(&mut old.slaves, slaves, &mut changed);
            put_ref(&mut old.policy, policy, &mut changed);
            put_ref(&mut old.reading, reading, &mut changed);
            put(&mut old.sources, sources, &mut changed);
            put_ref(&mut old.settings, settings, &mut changed);
            put(
                &mut old.wiring_max_all,
                cfg.master.wiring_max_all,
                &mut changed,
            );
            put(
                &mut old.wiring_max_per_twc,
                cfg.master.wiring_max_per_twc,
                &mut changed,
            );
            put(
                &mut old.min_amps_per_twc,
                cfg.min_amps_per_twc,
                &mut changed,
            );
            put(&mut old.sinks, sinks, &mut changed);
            put(&mut old.site, site, &mut changed);
            put_ref(&mut old.vehicles, vehicles, &mut changed);
            put_ref(&mut old.outlook, outlook, &mut changed);
            put_ref(&mut old.plans, plans, &mut changed);
            put(&mut old.load_points, load_points, &mut changed);
            put_ref(&mut old.car_currents, car_currents, &mut changed);
            changed
        });
    }
}

/// Replace `*dst` with `src` when they differ, noting that something changed.
fn put<T: PartialEq>(dst: &mut T, src: T, changed: &mut bool) {
    if *dst != src {
        *dst = src;
        *changed = true;
    }
}

/// As [`put`], cloning `src` only when it differs.
fn put_ref<T: PartialEq + Clone>(dst: &mut T, src: &T, changed: &mut bool) {
    if dst != src {
        dst.clone_from(src);
        *changed = true;
    }
}

impl Core {
    /// The sinks' statuses; a sink that starts failing emits one fault (until it writes again).
    fn sink_faults(&mut self, now: Instant) -> Vec<crate::logging::SinkStatus> {
        let sinks = self.cfg.sinks.statuses();
        for s in &sinks {
            match &s.last_error {
                Some(e) if !self.failing_sinks.contains(&s.name) => {
                    self.failing_sinks.insert(s.name.clone());
                    self.emit(Event::Fault {
                        at: self.wall(now),
                        component: format!("logging.{}", s.name),
                        message: format!("the sink fails to write ({e}); events wait in its queue"),
                    });
                }
                None => {
                    self.failing_sinks.remove(&s.name);
                }
                _ => {}
            }
        }
        sinks
    }
}
