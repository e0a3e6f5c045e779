//! History queries for graphs and reports, answered by the database sinks (`logging.sqlite`,
//! `logging.mysql`) and called by the web UI.
//!
//! A sink that can answer them returns `Some` from [`crate::plugin::Logger::history`]; the runtime
//! assembly hands the first such sink's queries to the control surfaces
//! ([`crate::plugin::ControlSurface::set_history`]). There is no process-wide history source.

use crate::plugin::PluginError;
use crate::protocol::TwcId;
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One point of the power graph (TWCManager's `green_energy` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerPoint {
    /// When.
    pub at: DateTime<Utc>,
    /// PV generation, W.
    pub generation_w: Option<f64>,
    /// House consumption, W.
    pub consumption_w: Option<f64>,
    /// What the chargers drew, W (from the slaves' last reported amps and volts).
    pub charger_w: Option<f64>,
    /// Grid power, W, positive = import.
    pub grid_w: Option<f64>,
}

/// One charge session as stored (TWCManager's `charge_sessions` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The slave.
    pub slave: TwcId,
    /// The car, when known.
    pub vin: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End; `None` while it runs.
    pub ended_at: Option<DateTime<Utc>>,
    /// Lifetime counter at start, kWh.
    pub start_kwh: Option<u32>,
    /// Lifetime counter at the end (or the latest seen while it runs), kWh.
    pub end_kwh: Option<u32>,
}

impl SessionRecord {
    /// Energy delivered, kWh: the lifetime counter's delta, when both ends are known.
    pub fn energy_kwh(&self) -> Option<f64> {
        Some(self.end_kwh?.saturating_sub(self.start_kwh?) as f64)
    }
}

/// Energy charged on one day (in the caller's time zone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyEnergy {
    /// The day.
    pub day: NaiveDate,
    /// kWh charged in sessions that started that day.
    pub energy_kwh: f64,
    /// Number of sessions that started that day.
    pub sessions: u32,
}

/// The queries the web UI needs for graphs. Times are UTC; ranges are `[from, to)`.
#[async_trait]
pub trait HistoryQuery: Send + Sync {
    /// Power points (generation, consumption, chargers, grid) in the range, oldest first, at most
    /// `max_points` (evenly thinned when there are more).
    async fn power(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<PowerPoint>, PluginError>;

    /// Sessions that started in the range, oldest first; only those of `vin` when given.
    async fn sessions(
        &self,
        vin: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, PluginError>;

    /// Energy per day for the days `[from, to]` (inclusive) in time zone `offset`, every day
    /// present (0 kWh when nothing was charged). Default: computed from [`Self::sessions`].
    async fn energy_per_day(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        offset: FixedOffset,
    ) -> Result<Vec<DailyEnergy>, PluginError> {
        let start = day_start(from, offset);
        let end = day_start(to.succ_opt().unwrap_or(to), offset);
        let sessions = self.sessions(None, start, end).await?;
        Ok(energy_per_day(&sessions, from, to, offset))
    }
}

fn day_start(day: NaiveDate, offset: FixedOffset) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    (naive - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc()
}

/// Group sessions by the local day they started on; every day of `[from, to]` appears.
pub fn energy_per_day(
    sessions: &[SessionRecord],
    from: NaiveDate,
    to: NaiveDate,
    offset: FixedOffset,
) -> Vec<DailyEnergy> {
    let mut days: BTreeMap<NaiveDate, DailyEnergy> = BTreeMap::new();
    let mut d = from;
    while d <= to {
        days.insert(
            d,
            DailyEnergy {
                day: d,
                energy_kwh: 0.0,
                sessions: 0,
            },
        );
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    for s in sessions {
        let day = s.started_at.with_timezone(&offset).date_naive();
        if let Some(e) = days.get_mut(&day) {
            e.sessions += 1;
            e.energy_kwh += s.energy_kwh().unwrap_or(0.0);
        }
    }
    days.into_values().collect()
}

/// Keep every `len / max`-th point so at most `max` remain (0 = keep all): how the database
/// sinks thin a long time range for a chart.
pub fn thin<T>(v: Vec<T>, max: usize) -> Vec<T> {
    if max == 0 || v.len() <= max {
        return v;
    }
    let step = v.len().div_ceil(max);
    v.into_iter().step_by(step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_per_day_groups_by_local_start_day_and_fills_gaps() {
        let tz = FixedOffset::east_opt(3600).unwrap();
        let s = |iso: &str, a, b| SessionRecord {
            slave: TwcId::from_u16(0x4142),
            vin: None,
            started_at: iso.parse().unwrap(),
            ended_at: None,
            start_kwh: Some(a),
            end_kwh: Some(b),
        };
        // 23:30 UTC on the 1st is 00:30 on the 2nd at +01:00.
        let v = vec![
            s("2026-11-01T10:00:00Z", 100, 110),
            s("2026-11-01T23:30:00Z", 110, 113),
            s("2026-11-03T08:00:00Z", 113, 120),
        ];
        let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
        let d = energy_per_day(&v, from, to, tz);
        let got: Vec<(u32, f64)> = d.iter().map(|e| (e.sessions, e.energy_kwh)).collect();
        assert_eq!(got, vec![(1, 10.0), (1, 3.0), (1, 7.0), (0, 0.0)]);
    }
}
