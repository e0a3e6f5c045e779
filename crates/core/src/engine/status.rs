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
        let master = &self.master;
        self.lost_slaves.retain(|id, (_, since)| {
            master.slave(*id).is_none() && now - *since < LOST_SLAVE_SHOWN
        });
        let sinks = self.sink_faults(now);
        let load_points = self.load_point_statuses(now);
        let updated_at = Some(self.wall(now));
        let this = &*self;
        // Field by field: a field equal to what subscribers have is left alone (not cloned
        // again), one that differs is replaced, and subscribers are told when any differed: the
        // same snapshot and the same notifications as building a whole new `Status` and
        // comparing it, without cloning the settings, policy, outlook and plans on every turn
        // of the loop (several times a second). The slaves and sources are refreshed in place
        // the same way, their strings cloned only when they changed.
        this.status.send_if_modified(|old| {
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
            put_ref(&mut old.bus, &this.bus, &mut changed);
            this.refresh_slaves(&mut old.slaves, now, &mut changed);
            put_ref(&mut old.policy, &this.policy, &mut changed);
            put_ref(&mut old.reading, &this.combined, &mut changed);
            this.refresh_sources(&mut old.sources, now, &mut changed);
            put_ref(&mut old.settings, &this.settings, &mut changed);
            put(
                &mut old.wiring_max_all,
                this.cfg.master.wiring_max_all,
                &mut changed,
            );
            put(
                &mut old.wiring_max_per_twc,
                this.cfg.master.wiring_max_per_twc,
                &mut changed,
            );
            put(
                &mut old.min_amps_per_twc,
                this.cfg.min_amps_per_twc,
                &mut changed,
            );
            put(&mut old.sinks, sinks, &mut changed);
            // Slaves and fresh load points (a stale one's power is unknown: left out, not 0 W).
            let charger_w = old
                .slaves
                .iter()
                .filter(|s| !s.timed_out)
                .map(|s| s.power_w)
                .sum::<f64>()
                + load_points.iter().filter_map(|l| l.power_w()).sum::<f64>();
            let site = SitePower {
                charger_w,
                ..this.site.clone()
            };
            put(&mut old.site, site, &mut changed);
            put_ref(&mut old.vehicles, &this.vehicles, &mut changed);
            put_ref(&mut old.outlook, &this.outlook, &mut changed);
            put_ref(&mut old.plans, &this.plans.status, &mut changed);
            put(&mut old.load_points, load_points, &mut changed);
            put_ref(&mut old.car_currents, &this.car_currents, &mut changed);
            changed
        });
    }

    /// Bring `dst` to the slaves as [`Core::slave_status`] gives them, then the lost ones (as
    /// last seen, `timed_out`), sorted by id. When the same slaves are listed, each is updated
    /// field by field ([`Core::refresh_slave_status`]); otherwise the list is built anew.
    fn refresh_slaves(&self, dst: &mut Vec<SlaveStatus>, now: Instant, changed: &mut bool) {
        let lost = |s: &SlaveStatus, since: &Instant| {
            let mut s = s.clone();
            s.last_heartbeat_secs += (now - *since).as_secs_f64();
            s
        };
        // Both maps are ordered by id and never share one (a lost slave that links again is
        // dropped from `lost_slaves` first), so the merged order is the sorted order.
        let same_ids = dst.len() == self.master.slaves().count() + self.lost_slaves.len()
            && dst.iter().map(|s| s.id).eq(merged_ids(
                self.master.slaves().map(|s| s.id),
                self.lost_slaves.keys().copied(),
            ));
        if !same_ids {
            let mut slaves: Vec<SlaveStatus> = self
                .master
                .slaves()
                .filter_map(|s| self.slave_status(s.id, now))
                .collect();
            slaves.extend(self.lost_slaves.values().map(|(s, since)| lost(s, since)));
            slaves.sort_by_key(|s| s.id);
            put(dst, slaves, changed);
            return;
        }
        for d in dst.iter_mut() {
            match self.master.slave(d.id) {
                Some(s) => self.refresh_slave_status(s, now, d, changed),
                None => {
                    let (s, since) = &self.lost_slaves[&d.id];
                    put(d, lost(s, since), changed);
                }
            }
        }
        debug_assert_eq!(
            dst.iter().map(|s| s.id).collect::<Vec<_>>(),
            {
                let mut ids: Vec<TwcId> = self.master.slaves().map(|s| s.id).collect();
                ids.extend(self.lost_slaves.keys().copied());
                ids.sort();
                ids
            },
            "the slaves in place are the sorted slaves"
        );
    }

    /// [`Core::slave_status`] written into `dst` field by field: an equal field is left alone
    /// (its strings not cloned again), one that differs is replaced and noted in `changed`.
    fn refresh_slave_status(
        &self,
        s: &crate::master::Slave,
        now: Instant,
        dst: &mut SlaveStatus,
        changed: &mut bool,
    ) {
        let id = s.id;
        // Every field named, so a field added to `SlaveStatus` fails to compile here.
        let SlaveStatus {
            id: d_id,
            sign,
            version,
            max_amps,
            cap_amps,
            state,
            state_name,
            reported_limit,
            actual,
            offered,
            target,
            lifetime_kwh,
            volts,
            vin,
            last_vin,
            last_heartbeat_secs,
            timed_out,
            charging,
            session_kwh,
            session_secs,
            firmware,
            overdraw,
            power_w,
        } = dst;
        put(d_id, s.id, changed);
        put(sign, s.sign, changed);
        put(version, s.version, changed);
        put(max_amps, s.max_amps, changed);
        put(cap_amps, self.master.cap(s.id), changed);
        put(state, s.state.0, changed);
        put_str(state_name, s.state.name(), changed);
        put(reported_limit, s.reported_limit, changed);
        put(actual, s.actual, changed);
        put(offered, s.offered, changed);
        put(target, s.target, changed);
        put(lifetime_kwh, s.lifetime_kwh, changed);
        put(volts, s.volts, changed);
        put_opt_str(vin, s.vin.as_deref().filter(|v| !v.is_empty()), changed);
        put_opt_str(last_vin, s.last_vin.as_deref(), changed);
        put(
            last_heartbeat_secs,
            s.last_rx.map(|t| (now - t).as_secs_f64()).unwrap_or(0.0),
            changed,
        );
        put(timed_out, false, changed);
        put(charging, s.charging, changed);
        put(
            session_kwh,
            self.sessions.get(&id).map(|x| x.energy_kwh).unwrap_or(0.0),
            changed,
        );
        put(
            session_secs,
            s.session_started_at.map(|t| (now - t).as_secs_f64()),
            changed,
        );
        put_opt_str(firmware, s.firmware.as_deref(), changed);
        put(overdraw, s.overdraw, changed);
        put(
            power_w,
            s.actual.amps() * self.site.voltage * f64::from(self.site.phases),
            changed,
        );
        // Compared as text, so that a NaN compares equal to itself.
        debug_assert_eq!(
            format!("{:?}", Some(&*dst)),
            format!("{:?}", self.slave_status(id, now).as_ref()),
            "refresh_slave_status gives what slave_status builds"
        );
    }

    /// The sources' statuses written into `dst` field by field (built anew when their number
    /// differs).
    fn refresh_sources(&self, dst: &mut Vec<SourceStatus>, now: Instant, changed: &mut bool) {
        if dst.len() != self.sources.len() {
            let sources = self
                .sources
                .iter()
                .map(|st| {
                    let mut d = SourceStatus {
                        name: st.name.clone(),
                        last: None,
                        age_secs: None,
                        stale: false,
                        last_error: None,
                        errors: 0,
                    };
                    refresh_source(st, now, &mut d, &mut false);
                    d
                })
                .collect();
            put(dst, sources, changed);
            return;
        }
        for (st, d) in self.sources.iter().zip(dst.iter_mut()) {
            refresh_source(st, now, d, changed);
        }
    }
}

/// One source's status written into `dst` field by field.
fn refresh_source(
    st: &super::readings::SourceState,
    now: Instant,
    dst: &mut SourceStatus,
    changed: &mut bool,
) {
    // Every field named, so a field added to `SourceStatus` fails to compile here.
    let SourceStatus {
        name,
        last,
        age_secs,
        stale,
        last_error,
        errors,
    } = dst;
    put_str(name, &st.name, changed);
    put_ref(last, &st.last, changed);
    put(age_secs, st.last.as_ref().map(|r| r.age_secs(now)), changed);
    put(
        stale,
        st.last
            .as_ref()
            .is_none_or(|r| r.age_secs(now) > st.poll.stale_after.as_secs_f64()),
        changed,
    );
    put_opt_str(last_error, st.last_error.as_deref(), changed);
    put(errors, st.errors, changed);
}

/// The ids of two id-ordered lists that share none, merged in order.
fn merged_ids(
    a: impl Iterator<Item = TwcId>,
    b: impl Iterator<Item = TwcId>,
) -> impl Iterator<Item = TwcId> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// As [`put`] for a string, allocating only when it differs.
fn put_str(dst: &mut String, src: &str, changed: &mut bool) {
    if dst != src {
        src.clone_into(dst);
        *changed = true;
    }
}

/// As [`put_str`] for an optional string.
fn put_opt_str(dst: &mut Option<String>, src: Option<&str>, changed: &mut bool) {
    if dst.as_deref() != src {
        *dst = src.map(str::to_string);
        *changed = true;
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
