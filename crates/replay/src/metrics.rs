//! Control metrics, computed from the per-step record alone (so anyone can recompute them from
//! the `--out` CSV), plus the reaction times measured from the engine's events.
//!
//! Per row of length `dt` (the sample period):
//! - `surplus_w = pv_w − load_w + battery_w` (what the chargers could take without importing);
//! - charged energy: `charger_w × dt`;
//! - surplus energy: `max(surplus_w, 0) × dt`;
//! - captured: `min(charger_w, max(surplus_w, 0)) × dt`;
//! - oracle: the best a controller bound by the cars' minimum and maximum can capture without
//!   importing: `surplus_w` clamped to the maximum when it reaches the minimum, else 0;
//! - grid import while tracking green: `max(charger_w − max(surplus_w, 0), 0) × dt` on rows whose
//!   policy is green;
//! - over the grid limit: rows where `grid_w` exceeds the limit although the house alone does not;
//!   "beyond one reaction" subtracts from each such episode the allowance (meter interval plus two
//!   heartbeat periods);
//! - start/stop cycles: a slave's draw rising through 1 A is a start, falling through it a stop;
//! - absorbable surplus: `min(max(surplus_w, 0), max_w) × dt` on every row (what chargers bound
//!   by their maximum could take without importing, ignoring their minimum); *captured %* is
//!   captured ÷ absorbable;
//! - the strict variant: the same sums over rows whose surplus reaches one car's minimum only
//!   (the surplus a controller that never imports can reach);
//! - import while charging: `max(charger_w − max(surplus_w, 0), 0) × dt` on rows where the
//!   chargers draw, whatever the policy; *import %* is it ÷ charged.

use chrono::{DateTime, FixedOffset};
use std::fmt::Write as _;

/// One sample of the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// When.
    pub at: DateTime<FixedOffset>,
    /// PV, W.
    pub pv_w: f64,
    /// House load without the chargers, W.
    pub load_w: f64,
    /// Home battery, W (positive = discharging).
    pub battery_w: Option<f64>,
    /// Home battery state of charge, %.
    pub battery_soc_pct: Option<f64>,
    /// Site budget the engine computed, A.
    pub budget_a: f64,
    /// What each slave is offered, A.
    pub offered_a: Vec<f64>,
    /// What each car draws, A.
    pub actual_a: Vec<f64>,
    /// All chargers together, W.
    pub charger_w: f64,
    /// Grid power, W (positive = import).
    pub grid_w: f64,
    /// True when the active policy tracks green energy.
    pub green: bool,
}

impl Row {
    /// Surplus available to the chargers, W.
    pub fn surplus_w(&self) -> f64 {
        self.pv_w - self.load_w + self.battery_w.unwrap_or(0.0)
    }
}

/// What the metrics need besides the rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricParams {
    /// Sample period, s.
    pub dt_secs: f64,
    /// Least power one car charges with, W.
    pub min_w: f64,
    /// Most all chargers together can take, W.
    pub max_w: f64,
    /// Grid-import limit, W.
    pub grid_limit_w: Option<f64>,
    /// Allowance per over-limit episode, s.
    pub reaction_allowance_secs: f64,
}

/// The results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Simulated time, s.
    pub simulated_secs: f64,
    /// Energy into the cars, kWh.
    pub charged_kwh: f64,
    /// Surplus energy, kWh.
    pub surplus_kwh: f64,
    /// Surplus energy that went into the cars, kWh.
    pub captured_kwh: f64,
    /// The oracle's capture, kWh.
    pub oracle_kwh: f64,
    /// Grid import attributable to the chargers while tracking green, kWh.
    pub green_import_kwh: f64,
    /// Surplus the chargers could absorb (bounded by their maximum), kWh.
    pub absorbable_kwh: f64,
    /// Absorbable surplus on rows where the surplus reaches one car's minimum, kWh.
    pub strict_absorbable_kwh: f64,
    /// Surplus captured on those rows, kWh.
    pub strict_captured_kwh: f64,
    /// Grid import attributable to the chargers on rows where they draw, kWh.
    pub charging_import_kwh: f64,
    /// Seconds over the grid limit.
    pub over_limit_secs: f64,
    /// Seconds over the grid limit beyond one reaction per episode.
    pub over_limit_beyond_reaction_secs: f64,
    /// Charging starts (all slaves).
    pub starts: u32,
    /// Charging stops (all slaves).
    pub stops: u32,
    /// Reaction times, s.
    pub reactions: Vec<f64>,
}

/// Incremental metric computation (one row at a time, constant memory).
#[derive(Debug, Clone)]
pub struct Accumulator {
    p: MetricParams,
    m: Metrics,
    prev_actual: Vec<f64>,
    episode: f64,
}

impl Accumulator {
    /// Empty.
    pub fn new(p: MetricParams) -> Self {
        Accumulator {
            p,
            m: Metrics::default(),
            prev_actual: Vec::new(),
            episode: 0.0,
        }
    }

    /// Add one row.
    pub fn push(&mut self, r: &Row) {
        let p = &self.p;
        let m = &mut self.m;
        let h = p.dt_secs / 3600.0;
        m.simulated_secs += p.dt_secs;
        let surplus = r.surplus_w().max(0.0);
        m.charged_kwh += r.charger_w * h / 1000.0;
        m.surplus_kwh += surplus * h / 1000.0;
        m.captured_kwh += r.charger_w.min(surplus) * h / 1000.0;
        let absorbable = surplus.min(p.max_w) * h / 1000.0;
        let captured = r.charger_w.min(surplus) * h / 1000.0;
        m.absorbable_kwh += absorbable;
        if surplus >= p.min_w {
            m.oracle_kwh += absorbable;
            m.strict_absorbable_kwh += absorbable;
            m.strict_captured_kwh += captured;
        }
        let import = (r.charger_w - surplus).max(0.0) * h / 1000.0;
        if r.green {
            m.green_import_kwh += import;
        }
        if r.charger_w > 0.0 {
            m.charging_import_kwh += import;
        }
        if let Some(limit) = p.grid_limit_w {
            let house_import = r.load_w - r.pv_w - r.battery_w.unwrap_or(0.0);
            if r.grid_w > limit + 1.0 && house_import <= limit {
                m.over_limit_secs += p.dt_secs;
                self.episode += p.dt_secs;
                if self.episode > p.reaction_allowance_secs {
                    m.over_limit_beyond_reaction_secs += p.dt_secs;
                }
            } else {
                self.episode = 0.0;
            }
        }
        if self.prev_actual.len() != r.actual_a.len() {
            self.prev_actual = vec![0.0; r.actual_a.len()];
        }
        for (a, b) in self.prev_actual.iter().zip(&r.actual_a) {
            if *a < 1.0 && *b >= 1.0 {
                m.starts += 1;
            }
            if *a >= 1.0 && *b < 1.0 {
                m.stops += 1;
            }
        }
        self.prev_actual.clone_from(&r.actual_a);
    }

    /// The metrics, with these reaction times.
    pub fn finish(self, reactions: Vec<f64>) -> Metrics {
        Metrics {
            reactions,
            ..self.m
        }
    }
}

impl Metrics {
    /// Compute from rows and reaction times.
    pub fn compute(rows: &[Row], p: &MetricParams, reactions: Vec<f64>) -> Metrics {
        let mut acc = Accumulator::new(*p);
        for r in rows {
            acc.push(r);
        }
        acc.finish(reactions)
    }

    /// Captured surplus as a percentage of the oracle's.
    pub fn captured_pct(&self) -> f64 {
        if self.oracle_kwh > 0.0 {
            100.0 * self.captured_kwh / self.oracle_kwh
        } else {
            0.0
        }
    }

    /// Captured surplus as a percentage of the absorbable surplus.
    pub fn absorbed_pct(&self) -> f64 {
        pct(self.captured_kwh, self.absorbable_kwh)
    }

    /// The strict variant: captured ÷ absorbable on rows whose surplus reaches the minimum.
    pub fn strict_pct(&self) -> f64 {
        pct(self.strict_captured_kwh, self.strict_absorbable_kwh)
    }

    /// Import while charging as a percentage of the charged energy.
    pub fn charging_import_pct(&self) -> f64 {
        pct(self.charging_import_kwh, self.charged_kwh)
    }

    /// Green import as a percentage of the charged energy.
    pub fn green_import_pct(&self) -> f64 {
        if self.charged_kwh > 0.0 {
            100.0 * self.green_import_kwh / self.charged_kwh
        } else {
            0.0
        }
    }

    /// Mean reaction time, s.
    pub fn reaction_mean(&self) -> f64 {
        if self.reactions.is_empty() {
            0.0
        } else {
            self.reactions.iter().sum::<f64>() / self.reactions.len() as f64
        }
    }

    /// 95th percentile reaction time, s (nearest rank).
    pub fn reaction_p95(&self) -> f64 {
        if self.reactions.is_empty() {
            return 0.0;
        }
        let mut v = self.reactions.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// A human-readable report.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "simulated               {:.1} h",
            self.simulated_secs / 3600.0
        );
        let _ = writeln!(s, "charged                 {:.2} kWh", self.charged_kwh);
        let _ = writeln!(s, "surplus                 {:.2} kWh", self.surplus_kwh);
        let _ = writeln!(
            s,
            "surplus captured        {:.2} kWh = {:.1} % of the oracle ({:.2} kWh)",
            self.captured_kwh,
            self.captured_pct(),
            self.oracle_kwh
        );
        let _ = writeln!(
            s,
            "captured / absorbable   {:.1} % of {:.2} kWh (strict, surplus ≥ minimum: {:.1} % of {:.2} kWh)",
            self.absorbed_pct(),
            self.absorbable_kwh,
            self.strict_pct(),
            self.strict_absorbable_kwh
        );
        let _ = writeln!(
            s,
            "import while charging   {:.3} kWh = {:.2} % of charged",
            self.charging_import_kwh,
            self.charging_import_pct()
        );
        let _ = writeln!(
            s,
            "grid import while green {:.3} kWh = {:.2} % of charged",
            self.green_import_kwh,
            self.green_import_pct()
        );
        let _ = writeln!(
            s,
            "over the grid limit     {:.0} s ({:.0} s beyond one reaction)",
            self.over_limit_secs, self.over_limit_beyond_reaction_secs
        );
        let _ = writeln!(
            s,
            "start/stop cycles       {} starts, {} stops",
            self.starts, self.stops
        );
        let _ = writeln!(
            s,
            "reaction time           mean {:.2} s, p95 {:.2} s ({} offer changes)",
            self.reaction_mean(),
            self.reaction_p95(),
            self.reactions.len()
        );
        s
    }
}

fn pct(a: f64, b: f64) -> f64 {
    if b > 0.0 { 100.0 * a / b } else { 0.0 }
}

/// The per-step record as CSV.
pub fn rows_csv(rows: &[Row]) -> String {
    let n = rows.first().map(|r| r.offered_a.len()).unwrap_or(0);
    let mut s = String::from("time,pv_w,load_w,battery_w,battery_soc_pct,budget_a");
    for i in 0..n {
        let _ = write!(s, ",offered_a_{i},actual_a_{i}");
    }
    s.push_str(",charger_w,grid_w,green\n");
    let o = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_default();
    for r in rows {
        let _ = write!(
            s,
            "{},{:.0},{:.0},{},{},{:.2}",
            r.at.to_rfc3339(),
            r.pv_w,
            r.load_w,
            o(r.battery_w),
            o(r.battery_soc_pct),
            r.budget_a
        );
        for (a, b) in r.offered_a.iter().zip(&r.actual_a) {
            let _ = write!(s, ",{a:.2},{b:.2}");
        }
        let _ = writeln!(
            s,
            ",{:.0},{:.0},{}",
            r.charger_w,
            r.grid_w,
            u8::from(r.green)
        );
    }
    s
}
