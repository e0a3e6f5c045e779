//! TWCManager's record types, the per-type mute switches, and the green-energy snapshot.

use crate::model::{EnergyReading, Event, SlaveStatus};
use crate::protocol::TwcId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The record types a sink sees, named as TWCManager names them (`logtype`), plus policy changes
/// and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordType {
    /// Session start, update (VIN, kWh) and stop.
    ChargeSessions,
    /// Generation / consumption / charger power snapshots (from readings).
    GreenEnergy,
    /// A slave's lifetime kWh and phase voltages.
    SlaveStatus,
    /// A slave's link, timeout and offer changes.
    SlavePower,
    /// Policy and budget changes.
    Policy,
    /// Faults the user should know about.
    Faults,
}

impl RecordType {
    /// The type an event belongs to.
    pub fn of(event: &Event) -> RecordType {
        match event {
            Event::SessionStarted { .. } | Event::SessionEnded { .. } | Event::VinRead { .. } => {
                RecordType::ChargeSessions
            }
            Event::Reading { .. } => RecordType::GreenEnergy,
            Event::SlaveStatus { .. } => RecordType::SlaveStatus,
            Event::SlaveLinked { .. }
            | Event::SlaveTimedOut { .. }
            | Event::OfferChanged { .. }
            | Event::LoadPointStatus { .. } => RecordType::SlavePower,
            Event::PolicyChanged { .. } | Event::BudgetChanged { .. } => RecordType::Policy,
            Event::Fault { .. } | Event::PlanMissed { .. } => RecordType::Faults,
        }
    }

    /// The config key of its mute switch.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::ChargeSessions => "charge_sessions",
            RecordType::GreenEnergy => "green_energy",
            RecordType::SlaveStatus => "slave_status",
            RecordType::SlavePower => "slave_power",
            RecordType::Policy => "policy",
            RecordType::Faults => "faults",
        }
    }
}

/// Per-type mute switches, the `[logging.<sink>.mute]` table of every sink (TWCManager's
/// `mute.{ChargeSessions,GreenEnergy,SlavePower,SlaveStatus}` plus `policy` and `faults`).
/// `true` = the sink does not record that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mute {
    /// Session start/update/stop.
    pub charge_sessions: bool,
    /// Green-energy snapshots.
    pub green_energy: bool,
    /// Slave kWh and voltages.
    pub slave_status: bool,
    /// Slave link, timeout and offer changes.
    pub slave_power: bool,
    /// Policy and budget changes.
    pub policy: bool,
    /// Faults.
    pub faults: bool,
}

impl Mute {
    /// True when the sink records events of this type.
    pub fn allows(&self, event: &Event) -> bool {
        !self.is_muted(RecordType::of(event))
    }

    /// True when `t` is muted.
    pub fn is_muted(&self, t: RecordType) -> bool {
        match t {
            RecordType::ChargeSessions => self.charge_sessions,
            RecordType::GreenEnergy => self.green_energy,
            RecordType::SlaveStatus => self.slave_status,
            RecordType::SlavePower => self.slave_power,
            RecordType::Policy => self.policy,
            RecordType::Faults => self.faults,
        }
    }
}

/// The time an event happened.
pub fn event_time(event: &Event) -> DateTime<Utc> {
    match event {
        Event::SlaveLinked { at, .. }
        | Event::SlaveTimedOut { at, .. }
        | Event::SlaveStatus { at, .. }
        | Event::LoadPointStatus { at, .. }
        | Event::OfferChanged { at, .. }
        | Event::SessionStarted { at, .. }
        | Event::SessionEnded { at, .. }
        | Event::VinRead { at, .. }
        | Event::PolicyChanged { at, .. }
        | Event::BudgetChanged { at, .. }
        | Event::Reading { at, .. }
        | Event::PlanMissed { at, .. }
        | Event::Fault { at, .. } => *at,
    }
}

/// A slave's power from its reported amps and phase voltages (230 V per phase when it reports
/// none), W.
pub fn slave_power_w(s: &SlaveStatus) -> f64 {
    let volts: f64 = s
        .volts
        .iter()
        .filter(|&&v| v >= 100)
        .map(|&v| f64::from(v))
        .sum();
    let volts = if volts > 0.0 { volts } else { 230.0 };
    s.actual.amps() * volts
}

/// One green-energy row: TWCManager's genW / conW / chgW plus grid and battery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GreenEnergy {
    /// When.
    pub at: DateTime<Utc>,
    /// Generation, W.
    pub generation_w: Option<f64>,
    /// Consumption, W.
    pub consumption_w: Option<f64>,
    /// The chargers' draw, W, from the latest slave status of each slave.
    pub charger_w: f64,
    /// Grid, W, positive = import.
    pub grid_w: Option<f64>,
    /// Home battery, W, positive = discharging.
    pub battery_w: Option<f64>,
}

/// Turns readings into green-energy rows at most once per `interval_secs`, tracking the chargers'
/// draw from slave status events. Clone it before a batch and keep the clone only when the batch
/// was written, so a retried batch yields the same rows.
#[derive(Debug, Clone, Default)]
pub struct GreenEnergySampler {
    interval_secs: u64,
    last: Option<DateTime<Utc>>,
    charger_w: BTreeMap<TwcId, f64>,
    load_point_w: BTreeMap<String, f64>,
}

impl GreenEnergySampler {
    /// A sampler that emits at most one row per `interval_secs` (0 = every reading).
    pub fn new(interval_secs: u64) -> Self {
        GreenEnergySampler {
            interval_secs,
            ..Default::default()
        }
    }

    /// Feed an event; returns a row when a reading is due.
    pub fn observe(&mut self, event: &Event) -> Option<GreenEnergy> {
        match event {
            Event::SlaveStatus { slave, .. } => {
                self.charger_w.insert(slave.id, slave_power_w(slave));
                None
            }
            Event::SlaveTimedOut { slave, .. } => {
                self.charger_w.remove(slave);
                None
            }
            Event::LoadPointStatus { load_point: l, .. } => {
                match l.power_w() {
                    Some(w) => self.load_point_w.insert(l.name.clone(), w),
                    None => self.load_point_w.remove(&l.name),
                };
                None
            }
            Event::Reading { at, reading, .. } => {
                if let Some(last) = self.last
                    && (*at - last).num_seconds() < self.interval_secs as i64
                    && *at >= last
                {
                    return None;
                }
                self.last = Some(*at);
                Some(self.row(*at, reading))
            }
            _ => None,
        }
    }

    fn row(&self, at: DateTime<Utc>, r: &EnergyReading) -> GreenEnergy {
        GreenEnergy {
            at,
            generation_w: r.generation_w,
            consumption_w: r.consumption_w,
            charger_w: self.charger_w.values().sum::<f64>()
                + self.load_point_w.values().sum::<f64>(),
            grid_w: r.grid_w,
            battery_w: r.battery_w,
        }
    }
}

/// One line in words for an event, for text logs, the console and Sentry breadcrumbs.
pub fn describe(event: &Event) -> String {
    match event {
        Event::SlaveLinked {
            slave,
            max_amps,
            version,
            ..
        } => format!("Slave {slave} linked (rated {max_amps}, protocol {version:?})"),
        Event::SlaveTimedOut { slave, .. } => format!("Slave {slave} timed out"),
        Event::SlaveStatus { slave: s, .. } => format!(
            "Slave {} {}: draws {} of {} offered, {} kWh lifetime, {}/{}/{} V",
            s.id,
            s.state_name,
            s.actual,
            s.offered,
            s.lifetime_kwh
                .map(|k| k.to_string())
                .unwrap_or_else(|| "?".into()),
            s.volts[0],
            s.volts[1],
            s.volts[2]
        ),
        Event::LoadPointStatus { load_point: l, .. } => format!(
            "Load point {} ({}) {}: draws {}, given {}{}",
            l.name,
            l.kind,
            if l.stale { "stale" } else { l.state.as_str() },
            l.draw.map_or_else(|| "?".to_string(), |d| d.to_string()),
            l.allocated,
            l.problem
                .as_deref()
                .map(|p| format!("; {p}"))
                .unwrap_or_default()
        ),
        Event::OfferChanged {
            slave, from, to, ..
        } => {
            format!("Offer to slave {slave} changed from {from} to {to}")
        }
        Event::SessionStarted { session: s, .. } => format!(
            "Charge session started on slave {} (VIN {}, {} kWh lifetime)",
            s.slave,
            s.vin.as_deref().unwrap_or("unknown"),
            s.start_kwh
                .map(|k| k.to_string())
                .unwrap_or_else(|| "?".into())
        ),
        Event::SessionEnded { session: s, .. } => format!(
            "Charge session ended on slave {} (VIN {}): {:.1} kWh",
            s.slave,
            s.vin.as_deref().unwrap_or("unknown"),
            s.energy_kwh
        ),
        Event::VinRead { slave, vin, .. } if vin.is_empty() => {
            format!("Slave {slave}: the car gives no VIN")
        }
        Event::VinRead { slave, vin, .. } => format!("Slave {slave}: VIN {vin}"),
        Event::PolicyChanged {
            from, to, reason, ..
        } => format!("Policy changed from {from:?} to {to:?}: {reason}"),
        Event::BudgetChanged { budget, .. } => format!("Site budget is now {budget}"),
        Event::Reading {
            source, reading, ..
        } => {
            let w = |v: Option<f64>| v.map(|v| format!("{v:.0} W")).unwrap_or_else(|| "-".into());
            format!(
                "Reading from {source}: generation {}, consumption {}, grid {}",
                w(reading.generation_w),
                w(reading.consumption_w),
                w(reading.grid_w)
            )
        }
        Event::Fault {
            component, message, ..
        } => format!("Fault in {component}: {message}"),
        Event::PlanMissed {
            plan,
            departure,
            missing_kwh,
            passed,
            ..
        } => format!(
            "Charge plan {plan} {} its target for {departure}: {missing_kwh:.1} kWh missing",
            if *passed { "missed" } else { "will miss" }
        ),
    }
}
