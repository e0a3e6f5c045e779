//! Energy per day, ISO week and month for the history chart, summed here so the UI shows the
//! server's numbers and does no arithmetic of its own.

use super::history::DailyView;
use crate::recorder::DayTotals;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Days, weeks and months shown (the most recent ones that have data).
const DAYS: usize = 14;
const WEEKS: usize = 12;
const MONTHS: usize = 12;

/// Energy of one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub(crate) struct EnergyPeriod {
    /// `YYYY-MM-DD` (day), `YYYY-Www` (ISO week) or `YYYY-MM` (month).
    pub(crate) label: String,
    /// Energy the chargers delivered, kWh.
    pub(crate) charged_kwh: f64,
    /// PV energy, kWh; absent when neither the database logger nor this process has samples.
    pub(crate) generation_kwh: Option<f64>,
    /// Grid import, kWh; absent when neither the database logger nor this process has samples.
    pub(crate) import_kwh: Option<f64>,
    /// Grid export, kWh; absent when neither the database logger nor this process has samples.
    pub(crate) export_kwh: Option<f64>,
}

/// Energy by day, week and month, oldest first.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(crate) struct EnergyPeriods {
    /// The last 14 days with data.
    pub(crate) day: Vec<EnergyPeriod>,
    /// The last 12 ISO weeks with data.
    pub(crate) week: Vec<EnergyPeriod>,
    /// The last 12 months with data.
    pub(crate) month: Vec<EnergyPeriod>,
    /// True when no period has any energy (a fresh install): show an empty state, not zeros.
    pub(crate) empty: bool,
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn group(
    days: &BTreeMap<NaiveDate, EnergyPeriod>,
    key: impl Fn(NaiveDate) -> String,
    keep: usize,
) -> Vec<EnergyPeriod> {
    let mut out: BTreeMap<String, EnergyPeriod> = BTreeMap::new();
    for (d, e) in days {
        let label = key(*d);
        let p = out.entry(label.clone()).or_insert_with(|| EnergyPeriod {
            label,
            ..EnergyPeriod::default()
        });
        p.charged_kwh += e.charged_kwh;
        p.generation_kwh = add(p.generation_kwh, e.generation_kwh);
        p.import_kwh = add(p.import_kwh, e.import_kwh);
        p.export_kwh = add(p.export_kwh, e.export_kwh);
    }
    let n = out.len().saturating_sub(keep);
    out.into_values()
        .skip(n)
        .map(|mut p| {
            p.charged_kwh = r3(p.charged_kwh);
            p.generation_kwh = p.generation_kwh.map(r3);
            p.import_kwh = p.import_kwh.map(r3);
            p.export_kwh = p.export_kwh.map(r3);
            p
        })
        .collect()
}

/// Merge this process's day totals with a database logger's energy per day (which wins where
/// it has a value: it spans restarts) and group them.
pub(crate) fn periods(local: &[DayTotals], stored: Option<&[DailyView]>) -> EnergyPeriods {
    let mut days: BTreeMap<NaiveDate, EnergyPeriod> = BTreeMap::new();
    for d in local {
        let Ok(date) = NaiveDate::parse_from_str(&d.date, "%Y-%m-%d") else {
            continue;
        };
        days.insert(
            date,
            EnergyPeriod {
                label: d.date.clone(),
                charged_kwh: d.charged_kwh,
                generation_kwh: Some(d.generation_kwh),
                import_kwh: Some(d.import_kwh),
                export_kwh: Some(d.export_kwh),
            },
        );
    }
    for d in stored.unwrap_or_default() {
        let Ok(date) = NaiveDate::parse_from_str(&d.date, "%Y-%m-%d") else {
            continue;
        };
        let e = days.entry(date).or_insert_with(|| EnergyPeriod {
            label: d.date.clone(),
            ..EnergyPeriod::default()
        });
        e.charged_kwh = d.energy_kwh;
        e.generation_kwh = d.generation_kwh.or(e.generation_kwh);
        e.import_kwh = d.import_kwh.or(e.import_kwh);
        e.export_kwh = d.export_kwh.or(e.export_kwh);
    }
    let empty = days.values().all(|e| {
        e.charged_kwh < 0.005
            && e.generation_kwh.unwrap_or(0.0) < 0.005
            && e.import_kwh.unwrap_or(0.0) < 0.005
            && e.export_kwh.unwrap_or(0.0) < 0.005
    });
    EnergyPeriods {
        day: group(&days, |d| d.format("%Y-%m-%d").to_string(), DAYS),
        week: group(
            &days,
            |d| {
                let w = d.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            },
            WEEKS,
        ),
        month: group(&days, |d| d.format("%Y-%m").to_string(), MONTHS),
        empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(date: &str, charged: f64, pv: f64) -> DayTotals {
        DayTotals {
            date: date.into(),
            charged_kwh: charged,
            generation_kwh: pv,
            import_kwh: 1.0,
            export_kwh: 0.5,
            covered_secs: 3600.0,
        }
    }

    #[test]
    fn weeks_and_months_sum_days_and_the_database_wins_for_charged_energy() {
        // 2026-11-29 is a Sunday (ISO week 48), 2026-11-30 and 2026-12-01 are in week 49.
        let l = [
            local("2026-11-29", 1.0, 10.0),
            local("2026-11-30", 2.0, 20.0),
            local("2026-12-01", 3.0, 30.0),
        ];
        let stored = [
            DailyView {
                date: "2026-11-30".into(),
                energy_kwh: 7.25,
                sessions: 1,
                generation_kwh: None,
                import_kwh: None,
                export_kwh: None,
            },
            // The database's PV (it spans restarts) wins over this process's samples.
            DailyView {
                date: "2026-12-02".into(),
                energy_kwh: 0.0,
                sessions: 0,
                generation_kwh: Some(12.5),
                import_kwh: Some(0.5),
                export_kwh: Some(4.0),
            },
        ];
        let mut l = l.to_vec();
        l.push(local("2026-12-02", 0.0, 3.0));
        let p = periods(&l, Some(&stored));
        assert_eq!(p.day.len(), 4);
        assert_eq!(p.day[1].charged_kwh, 7.25);
        assert_eq!(p.day[1].generation_kwh, Some(20.0));
        assert_eq!(p.day[3].generation_kwh, Some(12.5));
        assert_eq!(p.day[3].export_kwh, Some(4.0));
        let w: Vec<_> = p
            .week
            .iter()
            .map(|w| (w.label.as_str(), w.charged_kwh, w.generation_kwh))
            .collect();
        assert_eq!(
            w,
            [
                ("2026-W48", 1.0, Some(10.0)),
                ("2026-W49", 10.25, Some(62.5))
            ]
        );
        let m: Vec<_> = p
            .month
            .iter()
            .map(|m| (m.label.as_str(), m.charged_kwh, m.import_kwh))
            .collect();
        assert_eq!(
            m,
            [("2026-11", 8.25, Some(2.0)), ("2026-12", 3.0, Some(1.5))]
        );
        assert!(!p.empty);
    }

    #[test]
    fn a_stored_day_without_local_samples_has_no_pv_and_zeros_are_empty() {
        let stored = [
            DailyView {
                date: "2026-12-01".into(),
                energy_kwh: 0.0,
                sessions: 0,
                generation_kwh: None,
                import_kwh: None,
                export_kwh: None,
            },
            DailyView {
                date: "2026-12-02".into(),
                energy_kwh: 0.0,
                sessions: 0,
                generation_kwh: None,
                import_kwh: None,
                export_kwh: None,
            },
        ];
        let p = periods(&[], Some(&stored));
        assert_eq!(p.day.len(), 2);
        assert_eq!(p.day[0].generation_kwh, None);
        assert!(p.empty, "a fresh database's zero days are an empty state");
        let p = periods(&[local("2026-12-01", 0.0, 0.01)], None);
        assert!(!p.empty);
    }

    #[test]
    fn only_the_most_recent_days_are_kept() {
        let l: Vec<_> = (1..=20)
            .map(|d| local(&format!("2026-10-{d:02}"), 1.0, 0.0))
            .collect();
        let p = periods(&l, None);
        assert_eq!(p.day.len(), DAYS);
        assert_eq!(p.day[0].label, "2026-10-07");
        assert_eq!(p.month.len(), 1);
        assert_eq!(p.month[0].charged_kwh, 20.0);
    }
}
