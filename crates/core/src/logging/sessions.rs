//! Charge sessions as rows: start, update and stop, with energy from the slave's lifetime kWh
//! counter, correct across restarts of twcmanager.
//!
//! A database sink restores the sessions that were still open when the process stopped
//! ([`SessionTracker::restore`]). After the restart:
//! - when the same slave starts a session again within `resume_within_secs` of the last update,
//!   with the same car (or an unknown one), the old row continues: its start and start kWh stay,
//!   so the energy counts from the original start;
//! - otherwise the old row is closed at its last update and kWh, and a new row starts;
//! - when a slave status shows the slave not charging, a restored row is closed with the lifetime
//!   counter now (which counts whatever that slave delivered while we were down);
//! - a continued row keeps no solar share or cost (`metrics` stays `None`): the energy charged
//!   before the restart was not split or priced, so the whole session's share is unknown;
//! - a restored row whose slave says nothing within `resume_within_secs` of the first event after
//!   the restart is closed at its last update.

use crate::model::Event;
use crate::protocol::TwcId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A session row that has no end yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSession {
    /// The slave.
    pub slave: TwcId,
    /// Start (with the slave, the row's key).
    pub started_at: DateTime<Utc>,
    /// Lifetime counter at start.
    pub start_kwh: Option<u32>,
    /// The car.
    pub vin: Option<String>,
    /// Last update.
    pub last_at: DateTime<Utc>,
    /// Lifetime counter at the last update.
    pub last_kwh: Option<u32>,
    /// Car name, state of charge, solar share and cost as the engine integrated them: at the
    /// start (name, start SoC) and the end (everything). `None` for rows read back after a
    /// restart and rows continued after one (their columns are left as they are).
    #[serde(default)]
    pub metrics: Option<crate::model::SessionMetrics>,
}

/// What to do to the `charge_sessions` table.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOp {
    /// Insert a new row.
    Start(OpenSession),
    /// Update the row keyed by (`slave`, `started_at`): VIN, start kWh, last time and kWh.
    Update(OpenSession),
    /// Close the row keyed by (`slave`, `started_at`).
    End {
        /// The row as last known.
        session: OpenSession,
        /// End time.
        ended_at: DateTime<Utc>,
        /// Lifetime counter at the end.
        end_kwh: Option<u32>,
    },
}

/// Tracks open sessions and turns events into [`SessionOp`]s. Clone it before a batch and keep the
/// clone only when the batch was written.
#[derive(Debug, Clone, Default)]
pub struct SessionTracker {
    open: BTreeMap<TwcId, (OpenSession, bool)>,
    resume_within_secs: i64,
    /// Time of the first event after a restore.
    restored_since: Option<DateTime<Utc>>,
    /// Slaves whose open row was continued after a restart.
    resumed: std::collections::BTreeSet<TwcId>,
}

impl SessionTracker {
    /// A tracker with no open session.
    pub fn new(resume_within_secs: u64) -> Self {
        SessionTracker {
            open: BTreeMap::new(),
            resume_within_secs: resume_within_secs as i64,
            restored_since: None,
            resumed: Default::default(),
        }
    }

    /// A tracker continuing the rows left open by the previous run (newest per slave wins; older
    /// ones are returned as [`SessionOp::End`] at their last update).
    pub fn restore(open: Vec<OpenSession>, resume_within_secs: u64) -> (Self, Vec<SessionOp>) {
        let mut t = SessionTracker::new(resume_within_secs);
        let mut ops = Vec::new();
        let mut v = open;
        v.sort_by_key(|s| s.started_at);
        for s in v {
            if let Some((old, _)) = t.open.insert(s.slave, (s, true)) {
                ops.push(end_at_last(old));
            }
        }
        (t, ops)
    }

    /// The open sessions.
    pub fn open(&self) -> impl Iterator<Item = &OpenSession> {
        self.open.values().map(|(s, _)| s)
    }

    /// Feed an event.
    pub fn observe(&mut self, event: &Event) -> Vec<SessionOp> {
        let mut ops = Vec::new();
        // A restored session whose slave has not shown up within `resume_within_secs` of the
        // first event after the restart is gone (unit replaced, rotary switch changed): close it
        // at its last update.
        if self.open.values().any(|(_, restored)| *restored) {
            let at = super::records::event_time(event);
            let first = *self.restored_since.get_or_insert(at);
            if (at - first).num_seconds() > self.resume_within_secs {
                let gone: Vec<TwcId> = self
                    .open
                    .iter()
                    .filter(|(_, (_, restored))| *restored)
                    .map(|(k, _)| *k)
                    .collect();
                for k in gone {
                    if let Some((s, _)) = self.open.remove(&k) {
                        ops.push(end_at_last(s));
                    }
                }
            }
        }
        match event {
            Event::SessionStarted { at, session } => {
                if let Some((mut old, restored)) = self.open.remove(&session.slave) {
                    let same_car = match (&old.vin, &session.vin) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                    let counter_ok = match (old.last_kwh.or(old.start_kwh), session.start_kwh) {
                        (Some(a), Some(b)) => b >= a,
                        _ => true,
                    };
                    let recent = (*at - old.last_at).num_seconds() <= self.resume_within_secs;
                    if restored && same_car && counter_ok && recent {
                        old.last_at = *at;
                        if session.start_kwh.is_some() {
                            old.last_kwh = session.start_kwh;
                        }
                        if old.start_kwh.is_none() {
                            old.start_kwh = session.start_kwh;
                        }
                        if old.vin.is_none() {
                            old.vin.clone_from(&session.vin);
                        }
                        old.metrics = None;
                        self.resumed.insert(session.slave);
                        ops.push(SessionOp::Update(old.clone()));
                        self.open.insert(session.slave, (old, false));
                        return ops;
                    }
                    ops.push(end_at_last(old));
                }
                self.resumed.remove(&session.slave);
                let s = OpenSession {
                    slave: session.slave,
                    started_at: session.started_at,
                    start_kwh: session.start_kwh,
                    vin: session.vin.clone(),
                    last_at: *at,
                    last_kwh: session.start_kwh,
                    metrics: Some(session.metrics.clone()),
                };
                ops.push(SessionOp::Start(s.clone()));
                self.open.insert(session.slave, (s, false));
            }
            Event::SessionEnded { at, session } => {
                let end_kwh = session
                    .start_kwh
                    .map(|a| a.saturating_add(session.energy_kwh.round().max(0.0) as u32));
                let resumed = self.resumed.remove(&session.slave);
                let mut s = match self.open.remove(&session.slave) {
                    Some((mut s, _)) => {
                        if s.start_kwh.is_none() {
                            s.start_kwh = session.start_kwh;
                        }
                        if s.vin.is_none() {
                            s.vin.clone_from(&session.vin);
                        }
                        s
                    }
                    None => {
                        // Never saw the start (muted, or before this sink existed): write both.
                        let s = OpenSession {
                            slave: session.slave,
                            started_at: session.started_at,
                            start_kwh: session.start_kwh,
                            vin: session.vin.clone(),
                            last_at: *at,
                            last_kwh: session.start_kwh,
                            metrics: Some(session.metrics.clone()),
                        };
                        ops.push(SessionOp::Start(s.clone()));
                        s
                    }
                };
                s.metrics = (!resumed).then(|| session.metrics.clone());
                let end_kwh = end_kwh.or(s.last_kwh);
                ops.push(SessionOp::End {
                    session: s,
                    ended_at: *at,
                    end_kwh,
                });
            }
            Event::VinRead { at, slave, vin } => {
                if let Some((s, _)) = self.open.get_mut(slave)
                    && !vin.is_empty()
                    && s.vin.as_deref() != Some(vin.as_str())
                {
                    s.vin = Some(vin.clone());
                    s.last_at = *at;
                    ops.push(SessionOp::Update(s.clone()));
                }
            }
            Event::SlaveStatus { at, slave } => {
                let Some((s, restored)) = self.open.get_mut(&slave.id) else {
                    return ops;
                };
                if *restored && !slave.charging {
                    let (s, _) = self.open.remove(&slave.id).expect("present");
                    let moved =
                        matches!((s.last_kwh, slave.lifetime_kwh), (Some(a), Some(b)) if b > a);
                    let ended_at = if moved { *at } else { s.last_at };
                    let end_kwh = slave.lifetime_kwh.or(s.last_kwh);
                    ops.push(SessionOp::End {
                        session: s,
                        ended_at,
                        end_kwh,
                    });
                    return ops;
                }
                s.last_at = *at;
                if slave.lifetime_kwh.is_some() {
                    s.last_kwh = slave.lifetime_kwh;
                }
                if s.start_kwh.is_none() {
                    s.start_kwh = slave.lifetime_kwh;
                }
                if s.vin.is_none() {
                    s.vin.clone_from(&slave.vin);
                }
                ops.push(SessionOp::Update(s.clone()));
            }
            _ => {}
        }
        ops
    }
}

fn end_at_last(s: OpenSession) -> SessionOp {
    let ended_at = s.last_at;
    let end_kwh = s.last_kwh;
    SessionOp::End {
        session: s,
        ended_at,
        end_kwh,
    }
}
