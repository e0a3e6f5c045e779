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
    /// The car's name, when a vehicle plugin knew it.
    #[serde(default)]
    pub car_name: Option<String>,
    /// State of charge at the start, %, when known.
    #[serde(default)]
    pub soc_start_pct: Option<f64>,
    /// State of charge at the end, %, when known.
    #[serde(default)]
    pub soc_end_pct: Option<f64>,
    /// The energy split and cost as the engine integrated them; `None` for a session still
    /// running, one continued across a restart, and rows written before they were recorded.
    #[serde(default)]
    pub metrics: Option<crate::model::SessionMetrics>,
}

impl SessionRecord {
    /// Energy delivered, kWh: the lifetime counter's delta, when both ends are known.
    pub fn energy_kwh(&self) -> Option<f64> {
        Some(self.end_kwh?.saturating_sub(self.start_kwh?) as f64)
    }

    /// Energy delivered, kWh, as precisely as known: the integrated draw, or the lifetime
    /// counter's delta (whole kWh) when that is larger or the only one known.
    pub fn charged_kwh(&self) -> Option<f64> {
        let integrated = self.metrics.as_ref().map(|m| m.integrated_kwh);
        match (integrated, self.energy_kwh()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The fraction of the energy that came from PV surplus; `None` when unknown.
    pub fn solar_share(&self) -> Option<f64> {
        self.metrics.as_ref()?.solar_share()
    }

    /// What the session cost at the tariff's prices; `None` when unknown.
    pub fn cost(&self) -> Option<f64> {
        self.metrics.as_ref()?.cost()
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
    /// PV energy that day, kWh, from the stored power points; `None` without any.
    #[serde(default)]
    pub generation_kwh: Option<f64>,
    /// Grid import that day, kWh, from the stored power points; `None` without any.
    #[serde(default)]
    pub import_kwh: Option<f64>,
    /// Grid export that day, kWh, from the stored power points; `None` without any.
    #[serde(default)]
    pub export_kwh: Option<f64>,
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
    /// present (0 kWh when nothing was charged). Default: charged energy from
    /// [`Self::sessions`], PV and grid energy integrated from [`Self::power`].
    async fn energy_per_day(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        offset: FixedOffset,
    ) -> Result<Vec<DailyEnergy>, PluginError> {
        let start = day_start(from, offset);
        let end = day_start(to.succ_opt().unwrap_or(to), offset);
        let sessions = self.sessions(None, start, end).await?;
        let mut days = energy_per_day(&sessions, from, to, offset);
        let points = self.power(start, end, 0).await?;
        add_power_energy(&mut days, &points, offset);
        Ok(days)
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
                generation_kwh: None,
                import_kwh: None,
                export_kwh: None,
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
            e.energy_kwh += s.charged_kwh().unwrap_or(0.0);
        }
    }
    days.into_values().collect()
}

/// Points further apart than this leave a gap: nobody knows what flowed in between.
pub const MAX_POWER_GAP_SECS: i64 = 15 * 60;

/// Add PV, import and export energy to `days` from power points (oldest first): each point's
/// power holds until the next one, for at most [`MAX_POWER_GAP_SECS`]; a value a point does not
/// have counts as unknown, not as 0 W. A day with no usable point keeps `None`.
pub fn add_power_energy(days: &mut [DailyEnergy], points: &[PowerPoint], offset: FixedOffset) {
    fn add(slot: &mut Option<f64>, wh: f64) {
        *slot = Some(slot.unwrap_or(0.0) + wh / 1000.0);
    }
    for w in points.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let secs = (b.at - a.at).num_seconds();
        if secs <= 0 || secs > MAX_POWER_GAP_SECS {
            continue;
        }
        let hours = secs as f64 / 3600.0;
        let day = a.at.with_timezone(&offset).date_naive();
        let Some(d) = days.iter_mut().find(|d| d.day == day) else {
            continue;
        };
        if let Some(g) = a.generation_w.filter(|g| g.is_finite()) {
            add(&mut d.generation_kwh, g.max(0.0) * hours);
        }
        if let Some(g) = a.grid_w.filter(|g| g.is_finite()) {
            add(&mut d.import_kwh, g.max(0.0) * hours);
            add(&mut d.export_kwh, (-g).max(0.0) * hours);
        }
    }
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
            car_name: None,
            soc_start_pct: None,
            soc_end_pct: None,
            metrics: None,
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

    #[test]
    fn pv_and_grid_energy_are_integrated_per_local_day_and_gaps_stay_unknown() {
        let tz = FixedOffset::east_opt(3600).unwrap();
        let p = |iso: &str, pv: Option<f64>, grid: Option<f64>| PowerPoint {
            at: iso.parse().unwrap(),
            generation_w: pv,
            consumption_w: None,
            charger_w: None,
            grid_w: grid,
        };
        let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let mut days = energy_per_day(&[], from, to, tz);
        add_power_energy(
            &mut days,
            &[
                // 1 kW of PV and 500 W export for 10 minutes, then 2 kW import for 5 minutes.
                p("2026-11-01T10:00:00Z", Some(1000.0), Some(-500.0)),
                p("2026-11-01T10:10:00Z", Some(0.0), Some(2000.0)),
                p("2026-11-01T10:15:00Z", None, None),
                // An hour later: the gap is not counted.
                p("2026-11-01T11:15:00Z", Some(6000.0), Some(100.0)),
                // 23:55 UTC is the 2nd at +01:00: 6 kW for 5 minutes lands on the 2nd…
                p("2026-11-01T23:55:00Z", Some(6000.0), Some(-6000.0)),
                p("2026-11-02T00:00:00Z", Some(0.0), None),
            ],
            tz,
        );
        let r = |x: Option<f64>| x.map(|v| (v * 1000.0).round() / 1000.0);
        assert_eq!(r(days[0].generation_kwh), Some(0.167));
        assert_eq!(r(days[0].export_kwh), Some(0.083));
        assert_eq!(r(days[0].import_kwh), Some(0.167));
        assert_eq!(r(days[1].generation_kwh), Some(0.5));
        assert_eq!(r(days[1].export_kwh), Some(0.5));
        // …and a day without points stays unknown, not 0 kWh.
        assert_eq!(days[2].generation_kwh, None);
        assert_eq!(days[2].import_kwh, None);
    }
}
