//! `--corpus DIR`: every trace in a folder, ours against the reference controller, one row per
//! day and a total.

use crate::metrics::Metrics;
use crate::reference::{ReferenceConfig, run_reference};
use crate::run::{SimOptions, run};
use crate::trace::Trace;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How a day looked, from its PV alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sky {
    /// Smooth PV: variability index below 1.5.
    Clear,
    /// Variable PV with a useful yield.
    BrokenCloud,
    /// Little PV all day (see [`classify`]).
    Overcast,
}

impl Sky {
    /// For the table.
    pub fn name(self) -> &'static str {
        match self {
            Sky::Clear => "clear",
            Sky::BrokenCloud => "broken-cloud",
            Sky::Overcast => "overcast",
        }
    }
}

/// Classify a day by its PV: the variability index `Σ|ΔPV| ÷ (2 × peak)` (1 for a smooth bell,
/// more for every cloud edge) and the yield. Overcast: under 15 kWh of PV (2.5 kWh/kWp on the
/// 6 kWp roof of the corpus); clear: variability below 1.5; broken-cloud: the rest.
pub fn classify(t: &Trace) -> Sky {
    let (mut var, mut peak, mut kwh) = (0.0f64, 0.0f64, 0.0f64);
    for w in t.steps.windows(2) {
        var += (w[1].pv_w - w[0].pv_w).abs();
        peak = peak.max(w[0].pv_w);
        kwh += w[0].pv_w * (w[1].at - w[0].at).num_seconds() as f64 / 3.6e6;
    }
    if kwh < 15.0 {
        Sky::Overcast
    } else if peak > 0.0 && var / (2.0 * peak) < 1.5 {
        Sky::Clear
    } else {
        Sky::BrokenCloud
    }
}

/// One day's results.
#[derive(Debug, Clone)]
pub struct DayResult {
    /// File name.
    pub name: String,
    /// Its kind.
    pub kind: Sky,
    /// Ours.
    pub ours: Metrics,
    /// The reference controller's.
    pub reference: Metrics,
    /// Wall-clock seconds our replay took.
    pub wall_secs: f64,
    /// Commands ours sent to the cars' API (with `low_current`).
    pub car_commands: usize,
}

impl DayResult {
    /// True when ours beats the reference on captured surplus, import while charging and
    /// starts at once (import and starts may tie).
    pub fn ours_wins(&self) -> bool {
        self.ours.captured_kwh > self.reference.captured_kwh
            && self.ours.charging_import_kwh <= self.reference.charging_import_kwh
            && self.ours.starts <= self.reference.starts
    }
}

/// The `*.csv` files of `dir`, sorted by name.
pub fn trace_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(format!("{}: no *.csv trace in it", dir.display()));
    }
    Ok(v)
}

/// Replay every trace of `dir` with ours and the reference.
pub fn run_corpus(
    dir: &Path,
    opts: &SimOptions,
    reference: &ReferenceConfig,
) -> Result<Vec<DayResult>, String> {
    let mut out = Vec::new();
    for p in trace_files(dir)? {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let trace = Trace::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut o = opts.clone();
        o.keep_rows = false;
        let ours = run(&trace, &o)?;
        out.push(DayResult {
            name: p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind: classify(&trace),
            reference: run_reference(&trace, &o, reference),
            ours: ours.metrics,
            wall_secs: ours.wall_secs,
            car_commands: ours.car_commands,
        });
    }
    Ok(out)
}

fn sum(days: &[DayResult], f: impl Fn(&DayResult) -> &Metrics) -> Metrics {
    let mut t = Metrics::default();
    for d in days {
        let m = f(d);
        t.simulated_secs += m.simulated_secs;
        t.charged_kwh += m.charged_kwh;
        t.surplus_kwh += m.surplus_kwh;
        t.captured_kwh += m.captured_kwh;
        t.oracle_kwh += m.oracle_kwh;
        t.green_import_kwh += m.green_import_kwh;
        t.absorbable_kwh += m.absorbable_kwh;
        t.strict_absorbable_kwh += m.strict_absorbable_kwh;
        t.strict_captured_kwh += m.strict_captured_kwh;
        t.charging_import_kwh += m.charging_import_kwh;
        t.over_limit_secs += m.over_limit_secs;
        t.over_limit_beyond_reaction_secs += m.over_limit_beyond_reaction_secs;
        t.starts += m.starts;
        t.stops += m.stops;
    }
    t
}

/// The per-day and total table, Markdown.
pub fn table(days: &[DayResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| day | kind | absorbable kWh | captured % ours / ref | strict % ours / ref | import while charging kWh (%) ours / ref | starts ours / ref | over limit s ours / ref | ours wins all three |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let row = |s: &mut String, name: &str, kind: &str, o: &Metrics, r: &Metrics, win: &str| {
        let _ = writeln!(
            s,
            "| {name} | {kind} | {:.2} | {:.1} / {:.1} | {:.1} / {:.1} | {:.3} ({:.2}) / {:.3} ({:.2}) | {} / {} | {:.0} / {:.0} | {win} |",
            o.absorbable_kwh,
            o.absorbed_pct(),
            r.absorbed_pct(),
            o.strict_pct(),
            r.strict_pct(),
            o.charging_import_kwh,
            o.charging_import_pct(),
            r.charging_import_kwh,
            r.charging_import_pct(),
            o.starts,
            r.starts,
            o.over_limit_secs,
            r.over_limit_secs,
        );
    };
    for d in days {
        row(
            &mut s,
            &d.name,
            d.kind.name(),
            &d.ours,
            &d.reference,
            if d.ours_wins() { "yes" } else { "no" },
        );
    }
    let (o, r) = (sum(days, |d| &d.ours), sum(days, |d| &d.reference));
    let broken: Vec<&DayResult> = days.iter().filter(|d| d.kind == Sky::BrokenCloud).collect();
    let wins = broken.iter().filter(|d| d.ours_wins()).count();
    row(
        &mut s,
        "**total**",
        &format!("{} days", days.len()),
        &o,
        &r,
        &format!("{wins} of {} broken-cloud days", broken.len()),
    );
    s
}
