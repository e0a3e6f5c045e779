//! The sessions a replay produced, as the engine reported them when they ended (the same
//! [`twc_core::model::SessionMetrics`] the database loggers store and the Sessions page shows):
//! energy, solar share and cost per session and per local day.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use std::collections::BTreeMap;
use twc_core::model::ChargeSession;

/// A finished session.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedSession {
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// The session as the engine emitted it.
    pub session: ChargeSession,
}

/// Totals of one local day (of each session's start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayTotals {
    /// The day.
    pub day: Option<NaiveDate>,
    /// Sessions.
    pub sessions: usize,
    /// Energy integrated from the draw, kWh.
    pub kwh: f64,
    /// Of it from PV surplus, kWh (sessions with a known share only).
    pub solar_kwh: f64,
    /// Energy of the sessions with a known share, kWh.
    pub metered_kwh: f64,
    /// Cost of the sessions with a known cost.
    pub cost: Option<f64>,
    /// Sessions whose cost is unknown.
    pub unknown_cost: usize,
}

impl DayTotals {
    /// Solar share of the sessions whose share is known; `None` when none is.
    pub fn solar_share(&self) -> Option<f64> {
        (self.metered_kwh > 0.0).then(|| self.solar_kwh / self.metered_kwh)
    }
}

/// Totals per local day, oldest first.
pub fn per_day(sessions: &[EndedSession], offset: FixedOffset) -> Vec<DayTotals> {
    let mut days: BTreeMap<NaiveDate, DayTotals> = BTreeMap::new();
    for e in sessions {
        let m = &e.session.metrics;
        let day = e.session.started_at.with_timezone(&offset).date_naive();
        let d = days.entry(day).or_insert_with(|| DayTotals {
            day: Some(day),
            ..DayTotals::default()
        });
        d.sessions += 1;
        d.kwh += m.integrated_kwh;
        if m.solar_share().is_some() {
            d.solar_kwh += m.solar_kwh;
            d.metered_kwh += m.integrated_kwh;
        }
        match m.cost() {
            Some(c) => d.cost = Some(d.cost.unwrap_or(0.0) + c),
            None => d.unknown_cost += 1,
        }
    }
    days.into_values().collect()
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "unknown".into(), |x| format!("{:.1} %", x * 100.0))
}

fn money(x: Option<f64>, upper: bool) -> String {
    x.map_or_else(
        || "unknown".into(),
        |x| format!("{}{x:.2}", if upper { "≤ " } else { "" }),
    )
}

/// The sessions and the per-day totals as Markdown tables.
pub fn table(sessions: &[EndedSession], offset: FixedOffset) -> String {
    let mut s = String::from(
        "| session | TWC | start | end | kWh | solar share | cost | SoC |\n\
         | ---: | --- | --- | --- | ---: | ---: | ---: | --- |\n",
    );
    let soc = |x: Option<f64>| x.map_or_else(|| "?".into(), |v| format!("{v:.0} %"));
    for (i, e) in sessions.iter().enumerate() {
        let m = &e.session.metrics;
        s += &format!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} → {} |\n",
            i + 1,
            e.session.slave,
            e.session
                .started_at
                .with_timezone(&offset)
                .format("%Y-%m-%d %H:%M"),
            e.ended_at.with_timezone(&offset).format("%H:%M"),
            m.integrated_kwh,
            pct(m.solar_share()),
            money(m.cost(), m.cost_is_upper_bound()),
            soc(m.soc_start_pct),
            soc(m.soc_end_pct),
        );
    }
    s += "\n| day | sessions | kWh | solar share | cost |\n| --- | ---: | ---: | ---: | ---: |\n";
    for d in per_day(sessions, offset) {
        s += &format!(
            "| {} | {} | {:.2} | {} | {}{} |\n",
            d.day.map(|d| d.to_string()).unwrap_or_default(),
            d.sessions,
            d.kwh,
            pct(d.solar_share()),
            money(d.cost, false),
            if d.unknown_cost > 0 {
                format!(" (+{} unknown)", d.unknown_cost)
            } else {
                String::new()
            }
        );
    }
    s
}
