//! Trace files: `timestamp,pv_w,load_w[,battery_w][,battery_soc_pct]`.
//!
//! - A header line names the columns; order is free, extra columns are an error (typos).
//! - `timestamp` is RFC 3339 with its UTC offset (`2026-06-17T10:00:00+02:00`).
//! - Steps from 1 s to 15 min; several days in one file are fine; timestamps strictly increase.
//! - `pv_w` ≥ 0 (generation), `load_w` ≥ 0 (the house without the chargers), `battery_w`
//!   positive while the home battery discharges, `battery_soc_pct` 0..=100.
//! - Each value holds until the next timestamp (sample and hold); the last row holds for the
//!   step before it.

use chrono::{DateTime, FixedOffset};
use std::fmt::Write as _;

/// One row of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStep {
    /// When.
    pub at: DateTime<FixedOffset>,
    /// PV generation, W.
    pub pv_w: f64,
    /// House consumption without the chargers, W.
    pub load_w: f64,
    /// Home battery power, W (positive = discharging).
    pub battery_w: Option<f64>,
    /// Home battery state of charge, %.
    pub battery_soc_pct: Option<f64>,
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Rows in time order.
    pub steps: Vec<TraceStep>,
}

/// Longest step allowed between two rows, s.
pub const MAX_STEP_SECS: i64 = 15 * 60;

impl Trace {
    /// Parse CSV text. Errors name the line and the column.
    pub fn parse(text: &str) -> Result<Trace, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((_, header)) = lines.next() else {
            return Err("the trace is empty (expected a header line timestamp,pv_w,load_w)".into());
        };
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let idx = |name: &str| cols.iter().position(|c| *c == name);
        for c in &cols {
            if !matches!(
                *c,
                "timestamp" | "pv_w" | "load_w" | "battery_w" | "battery_soc_pct"
            ) {
                return Err(format!(
                    "line 1: unknown column {c:?}; expected timestamp, pv_w, load_w and optionally battery_w, battery_soc_pct"
                ));
            }
        }
        let (Some(ti), Some(pi), Some(li)) = (idx("timestamp"), idx("pv_w"), idx("load_w")) else {
            return Err("line 1: the header must name timestamp, pv_w and load_w".into());
        };
        let (bi, si) = (idx("battery_w"), idx("battery_soc_pct"));
        let mut steps: Vec<TraceStep> = Vec::new();
        for (n, line) in lines {
            let line_no = n + 1;
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != cols.len() {
                return Err(format!(
                    "line {line_no}: {} fields, the header has {}",
                    f.len(),
                    cols.len()
                ));
            }
            let at = DateTime::parse_from_rfc3339(f[ti]).map_err(|e| {
                format!(
                    "line {line_no}: timestamp {:?} is not RFC 3339 with an offset: {e}",
                    f[ti]
                )
            })?;
            let num = |i: usize, name: &str| -> Result<f64, String> {
                let v: f64 = f[i]
                    .parse()
                    .map_err(|_| format!("line {line_no}: {name} = {:?} is not a number", f[i]))?;
                if !v.is_finite() {
                    return Err(format!("line {line_no}: {name} must be finite"));
                }
                Ok(v)
            };
            let opt = |i: Option<usize>, name: &str| -> Result<Option<f64>, String> {
                match i {
                    Some(i) if !f[i].is_empty() => num(i, name).map(Some),
                    _ => Ok(None),
                }
            };
            let pv_w = num(pi, "pv_w")?;
            let load_w = num(li, "load_w")?;
            if pv_w < 0.0 || load_w < 0.0 {
                return Err(format!("line {line_no}: pv_w and load_w must be ≥ 0"));
            }
            let battery_soc_pct = opt(si, "battery_soc_pct")?;
            if battery_soc_pct.is_some_and(|s| !(0.0..=100.0).contains(&s)) {
                return Err(format!("line {line_no}: battery_soc_pct must be 0..=100"));
            }
            if let Some(prev) = steps.last() {
                let d = (at - prev.at).num_seconds();
                if !(1..=MAX_STEP_SECS).contains(&d) {
                    return Err(format!(
                        "line {line_no}: {d} s after the previous row; steps must be 1 s … 15 min and increasing"
                    ));
                }
            }
            steps.push(TraceStep {
                at,
                pv_w,
                load_w,
                battery_w: opt(bi, "battery_w")?,
                battery_soc_pct,
            });
        }
        if steps.len() < 2 {
            return Err("the trace needs at least two rows".into());
        }
        Ok(Trace { steps })
    }

    /// The trace as CSV (with battery columns when any row has them).
    pub fn to_csv(&self) -> String {
        let battery = self
            .steps
            .iter()
            .any(|s| s.battery_w.is_some() || s.battery_soc_pct.is_some());
        let mut out = String::from("timestamp,pv_w,load_w");
        if battery {
            out.push_str(",battery_w,battery_soc_pct");
        }
        out.push('\n');
        let o = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_default();
        for s in &self.steps {
            let _ = write!(out, "{},{:.0},{:.0}", s.at.to_rfc3339(), s.pv_w, s.load_w);
            if battery {
                let _ = write!(out, ",{},{}", o(s.battery_w), o(s.battery_soc_pct));
            }
            out.push('\n');
        }
        out
    }

    /// First timestamp.
    pub fn start(&self) -> DateTime<FixedOffset> {
        self.steps[0].at
    }

    /// Seconds covered: up to the last row plus one step.
    pub fn duration_secs(&self) -> i64 {
        let n = self.steps.len();
        let last = (self.steps[n - 1].at - self.steps[n - 2].at).num_seconds();
        (self.steps[n - 1].at - self.steps[0].at).num_seconds() + last
    }

    /// The row in force `secs` after the start (sample and hold).
    pub fn at_offset(&self, secs: f64) -> &TraceStep {
        let t0 = self.start();
        // One time addition, then plain time comparisons (this runs for every sample and every
        // meter reading of a month-long replay).
        let until = t0 + chrono::Duration::microseconds((secs * 1e6).floor() as i64);
        let i = self.steps.partition_point(|s| s.at <= until);
        &self.steps[i.saturating_sub(1)]
    }

    /// [`Trace::at_offset`] for a caller that moves forward through the trace: `hint` is where
    /// the last call found its row, tried first (it or the next row) before searching, and
    /// updated. The same row as `at_offset` for any hint.
    pub fn at_offset_near(&self, secs: f64, hint: &mut usize) -> &TraceStep {
        let t0 = self.start();
        let until = t0 + chrono::Duration::microseconds((secs * 1e6).floor() as i64);
        let n = self.steps.len();
        // `i` is the partition point: every row before it is at or before `until`, none from it.
        let is_split = |i: usize| {
            i <= n
                && (i == 0 || self.steps[i - 1].at <= until)
                && (i == n || self.steps[i].at > until)
        };
        let h = *hint;
        let i = if is_split(h) {
            h
        } else if is_split(h + 1) {
            h + 1
        } else {
            self.steps.partition_point(|s| s.at <= until)
        };
        *hint = i;
        &self.steps[i.saturating_sub(1)]
    }
}
