//! Events turned into table rows, once for every table-shaped sink (CSV, SQLite, MySQL).

use super::records::{GreenEnergy, GreenEnergySampler, Mute, slave_power_w};
use super::sessions::{OpenSession, SessionOp, SessionTracker};
use crate::model::{CentiAmps, Event, LoadPointStatus};
use crate::protocol::TwcId;
use chrono::{DateTime, Utc};

/// One row for one table.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Row {
    /// `charge_sessions`: insert, update or close.
    Session(SessionOp),
    /// `green_energy`.
    GreenEnergy(GreenEnergy),
    /// `slave_status`: lifetime kWh and phase voltages.
    SlaveStatus {
        /// The slave.
        slave: TwcId,
        /// When.
        at: DateTime<Utc>,
        /// Lifetime counter, kWh.
        kwh: Option<u32>,
        /// Phase voltages.
        volts: [u16; 3],
    },
    /// `slave_power`: what a slave draws and is offered, or a link change.
    SlavePower {
        /// The slave.
        slave: TwcId,
        /// When.
        at: DateTime<Utc>,
        /// `"status"`, `"offer"`, `"linked"` or `"timed_out"`.
        kind: &'static str,
        /// State name (status rows).
        state: Option<String>,
        /// What the car draws (status rows).
        actual: Option<CentiAmps>,
        /// What we offer.
        offered: Option<CentiAmps>,
        /// Power, W (status rows).
        power_w: Option<f64>,
    },
    /// `load_point_status`: one external load point (a Gen3, an OCPP charger) at the slaves'
    /// status interval; muted with `slave_power`.
    LoadPoint {
        /// When.
        at: DateTime<Utc>,
        /// Its status.
        load_point: Box<LoadPointStatus>,
    },
    /// `policy_changes`.
    Policy {
        /// When.
        at: DateTime<Utc>,
        /// Previous policy.
        from: String,
        /// New policy.
        to: String,
        /// Why.
        reason: String,
    },
    /// `faults`.
    Fault {
        /// When.
        at: DateTime<Utc>,
        /// Which part.
        component: String,
        /// What happened.
        message: String,
    },
}

/// Turns events into rows, applying the mute switches. Stateful (open sessions, charger power,
/// green-energy interval): clone it before a batch and keep the clone only when the batch was
/// written, so a retried batch yields the same rows.
#[derive(Debug, Clone)]
pub struct RowBuilder {
    mute: Mute,
    sessions: SessionTracker,
    green: GreenEnergySampler,
}

impl RowBuilder {
    /// A builder with no open session.
    pub fn new(mute: Mute, green_energy_interval_secs: u64, resume_within_secs: u64) -> Self {
        RowBuilder {
            mute,
            sessions: SessionTracker::new(resume_within_secs),
            green: GreenEnergySampler::new(green_energy_interval_secs),
        }
    }

    /// Continue the sessions the previous run left open; returns the rows that close stale ones.
    pub fn restore(&mut self, open: Vec<OpenSession>, resume_within_secs: u64) -> Vec<Row> {
        let (t, ops) = SessionTracker::restore(open, resume_within_secs);
        self.sessions = t;
        ops.into_iter().map(Row::Session).collect()
    }

    /// The open sessions.
    pub fn open_sessions(&self) -> impl Iterator<Item = &OpenSession> {
        self.sessions.open()
    }

    /// The rows for one event.
    pub fn rows(&mut self, event: &Event) -> Vec<Row> {
        let m = self.mute;
        let mut out = Vec::new();
        let session_ops = self.sessions.observe(event);
        if !m.charge_sessions {
            out.extend(session_ops.into_iter().map(Row::Session));
        }
        let green = self.green.observe(event);
        if !m.green_energy {
            out.extend(green.map(Row::GreenEnergy));
        }
        match event {
            Event::SlaveStatus { at, slave } => {
                if !m.slave_status {
                    out.push(Row::SlaveStatus {
                        slave: slave.id,
                        at: *at,
                        kwh: slave.lifetime_kwh,
                        volts: slave.volts,
                    });
                }
                if !m.slave_power {
                    out.push(Row::SlavePower {
                        slave: slave.id,
                        at: *at,
                        kind: "status",
                        state: Some(slave.state_name.clone()),
                        actual: Some(slave.actual),
                        offered: Some(slave.offered),
                        power_w: Some(slave_power_w(slave)),
                    });
                }
            }
            Event::OfferChanged { at, slave, to, .. } if !m.slave_power => {
                out.push(Row::SlavePower {
                    slave: *slave,
                    at: *at,
                    kind: "offer",
                    state: None,
                    actual: None,
                    offered: Some(*to),
                    power_w: None,
                });
            }
            Event::SlaveLinked { at, slave, .. } if !m.slave_power => {
                out.push(Row::SlavePower {
                    slave: *slave,
                    at: *at,
                    kind: "linked",
                    state: None,
                    actual: None,
                    offered: None,
                    power_w: None,
                });
            }
            Event::SlaveTimedOut { at, slave } if !m.slave_power => {
                out.push(Row::SlavePower {
                    slave: *slave,
                    at: *at,
                    kind: "timed_out",
                    state: None,
                    actual: None,
                    offered: None,
                    power_w: None,
                });
            }
            Event::LoadPointStatus { at, load_point } if !m.slave_power => {
                out.push(Row::LoadPoint {
                    at: *at,
                    load_point: load_point.clone(),
                });
            }
            Event::PolicyChanged {
                at,
                from,
                to,
                reason,
            } if !m.policy => out.push(Row::Policy {
                at: *at,
                from: from.clone(),
                to: to.clone(),
                reason: reason.clone(),
            }),
            Event::Fault {
                at,
                component,
                message,
            } if !m.faults => out.push(Row::Fault {
                at: *at,
                component: component.clone(),
                message: message.clone(),
            }),
            Event::PlanMissed { at, plan, .. } if !m.faults => out.push(Row::Fault {
                at: *at,
                component: format!("plan {plan}"),
                message: super::describe(event),
            }),
            _ => {}
        }
        out
    }
}
