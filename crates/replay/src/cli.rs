//! The command line behind `cargo xtask sim`.

use crate::corpus::{run_corpus, table};
use crate::generate::{DayKind, GenSpec, generate};
use crate::metrics::rows_csv;
use crate::reference::{ReferenceConfig, run_reference};
use crate::run::{SimOptions, run};
use crate::trace::Trace;
use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;
use twc_core::policy::PolicyConfig;

/// Replay a PV/load trace through the real engine, policy and simulated TWCs (paused time) and
/// print control metrics; or generate one of the synthetic traces.
#[derive(Debug, Parser)]
#[command(name = "twc-replay", version)]
pub struct Args {
    /// Trace CSV: `timestamp,pv_w,load_w[,battery_w][,battery_soc_pct]`.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Write the per-step record here (CSV).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a chart here (SVG).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Generate a synthetic trace (`clear` or `cloudy`) to --write instead of replaying.
    #[arg(long, value_parser = ["clear", "cloudy"])]
    pub generate: Option<String>,
    /// Where --generate writes.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Days to generate (or to repeat the --trace file's days for a long replay).
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Slaves, each with a car plugged in (1..=3).
    #[arg(long, default_value_t = 1)]
    pub slaves: usize,
    /// Phases (1 or 3).
    #[arg(long, default_value_t = 1)]
    pub phases: u8,
    /// Volts per phase.
    #[arg(long, default_value_t = 230.0)]
    pub voltage: f64,
    /// Minimum amps per TWC.
    #[arg(long, default_value_t = 6.0)]
    pub min_amps: f64,
    /// Wiring maximum per TWC, A.
    #[arg(long, default_value_t = 32.0)]
    pub max_amps_per_twc: f64,
    /// Wiring maximum for all TWCs, A.
    #[arg(long, default_value_t = 32.0)]
    pub max_amps_all: f64,
    /// Meter poll interval, s.
    #[arg(long, default_value_t = 5)]
    pub meter_interval_secs: u64,
    /// Non-scheduled action: green, charge or stop.
    #[arg(long, default_value = "green")]
    pub action: String,
    /// Amps for --action charge.
    #[arg(long, default_value_t = 16.0)]
    pub amps: f64,
    /// Flex amps for green tracking.
    #[arg(long, default_value_t = 0.0)]
    pub flex_amps: f64,
    /// Grid-import limit, W.
    #[arg(long)]
    pub grid_limit_w: Option<f64>,
    /// `[green] start_delay_secs` (default: the config default).
    #[arg(long)]
    pub start_delay_secs: Option<f64>,
    /// `[green] stop_delay_secs` (default: the config default).
    #[arg(long)]
    pub stop_delay_secs: Option<f64>,
    /// `[green] restart_delay_secs` (default: the config default).
    #[arg(long)]
    pub restart_delay_secs: Option<f64>,
    /// Sample period of the record and metrics, s.
    #[arg(long, default_value_t = 1)]
    pub sample_secs: u64,
    /// Replay every `*.csv` trace in this folder (ours and the reference controller) and print
    /// a per-day and total table (Markdown).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// `[green] reserve_w` (default: the config default).
    #[arg(long)]
    pub reserve_w: Option<f64>,
    /// `[green] closed_loop` (default: the config default).
    #[arg(long)]
    pub closed_loop: Option<bool>,
    /// `[green] mode`: `"solar"` or `"min_solar"` (default: the config default).
    #[arg(long)]
    pub green_mode: Option<String>,
    /// `[wiring] offer_step_amps` (default: the config default).
    #[arg(long)]
    pub offer_step_amps: Option<f64>,
    /// `[green] forecast_secs` (0 = start after the start delay; default: the config default).
    #[arg(long)]
    pub forecast_secs: Option<f64>,
    /// `[green] restart_cost_wh` (0 = weighted stop count only; default: the config default).
    #[arg(long)]
    pub restart_cost_wh: Option<f64>,
    /// `[green] drop_reserve_secs` (0 = off; default: the config default).
    #[arg(long)]
    pub drop_reserve_secs: Option<f64>,
    /// `[green] drop_reserve_max_w` (default: the config default).
    #[arg(long)]
    pub drop_reserve_max_w: Option<f64>,
    /// `[green] low_sun_minutes` (0 = off; default: the config default); needs --home.
    #[arg(long)]
    pub low_sun_minutes: Option<f64>,
    /// The home location `LAT,LON` in degrees (north and east positive), for sunrise and sunset
    /// (the corpus in docs/traces/real was measured at 39.74,-105.18).
    #[arg(long, value_parser = parse_home, allow_hyphen_values = true)]
    pub home: Option<twc_core::model::HomeLocation>,
    /// A price series (`timestamp,price_per_kwh`): run a weekday charge plan over it
    /// (`--plan-kwh`, `--plan-arrive`, `--plan-depart`) against charging on arrival. With
    /// --trace: the plan with the trace's PV and house load and a forecast (--plan-forecast),
    /// the prices put onto the trace's days by weekday.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Write the synthetic price series (this many days from --prices-start) to --write.
    #[arg(long)]
    pub generate_prices: Option<u32>,
    /// Start of --generate-prices, RFC 3339.
    #[arg(long, default_value = "2026-11-01T00:00:00+01:00")]
    pub prices_start: String,
    /// Energy the car needs each weekday morning, kWh.
    #[arg(long, default_value_t = 20.0)]
    pub plan_kwh: f64,
    /// Arrival the evening before, local HH:MM.
    #[arg(long, default_value = "18:00")]
    pub plan_arrive: String,
    /// Departure, local HH:MM.
    #[arg(long, default_value = "07:00")]
    pub plan_depart: String,
    /// Forecasts for a --trace --prices plan replay, comma-separated: `none` (prices only),
    /// `persistence` (the PV measured 24 h earlier), `refreshed` (persistence corrected every
    /// hour by the last two hours' measured PV), `perfect` (the trace's own hourly means).
    #[arg(long, default_value = "none,persistence,perfect")]
    pub plan_forecast: String,
    /// `[plans] solar_confidence` for a --trace --prices plan replay: the share of each
    /// forecast solar slot's energy the planner counts on (0 < c ≤ 1; the grid makes up the
    /// rest).
    #[arg(long, default_value_t = 1.0)]
    pub plan_solar_confidence: f64,
    /// A price series (`timestamp,price_per_kwh`, as --prices) given to the engine during a
    /// --trace replay, so each session's cost is reported next to its solar share.
    #[arg(long)]
    pub tariff: Option<PathBuf>,
    /// Feed-in price per kWh for --tariff (the value of the solar energy a session used).
    #[arg(long)]
    pub feed_in: Option<f64>,
    /// Charge below the TWC's minimum through the car (`[vehicles] low_current = true`, the
    /// other `[vehicles]` keys at their defaults), the cars' API played by simulated cars that
    /// follow `set_charging_amps`.
    #[arg(long)]
    pub low_current: bool,
    /// `[vehicles] low_current_min_amps` for --low-current (default: the config default).
    #[arg(long)]
    pub low_current_min_amps: Option<f64>,
    /// `[vehicles] amps_interval_secs` for --low-current (default: the config default).
    #[arg(long)]
    pub amps_interval_secs: Option<u64>,
    /// `[vehicles] amps_lower_interval_secs` for --low-current (default: the config default).
    #[arg(long)]
    pub amps_lower_interval_secs: Option<u64>,
}

/// Run the command line.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Result<(), String> {
    let a = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            print!("{e}");
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    if let Some(days) = a.generate_prices {
        let start = chrono::DateTime::parse_from_rfc3339(&a.prices_start)
            .map_err(|e| format!("--prices-start {:?}: {e}", a.prices_start))?;
        let Some(path) = &a.write else {
            return Err("--generate-prices needs --write FILE".into());
        };
        std::fs::write(path, crate::plan_month::synthetic_prices(start, days))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    if let (Some(path), Some(trace)) = (&a.prices, &a.trace) {
        return plan_solar(&a, path, trace);
    }
    if let Some(path) = &a.prices {
        use crate::plan_month::{parse_prices, run_plan_month, table};
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (prices, offset) =
            parse_prices(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let o = plan_options(&a)?;
        let days = run_plan_month(&prices, offset, &o)?;
        println!(
            "prices {} ({} slots); weekday plan {} kWh, arrive {} depart {}, {} A max, {} phase(s) at {} V",
            path.display(),
            prices.slots.len(),
            o.kwh,
            a.plan_arrive,
            a.plan_depart,
            o.max_amps,
            o.phases,
            o.voltage
        );
        print!("{}", table(&days, o.kwh));
        return Ok(());
    }
    if let Some(kind) = &a.generate {
        let mut spec = GenSpec::new(if kind == "clear" {
            DayKind::Clear
        } else {
            DayKind::BrokenCloud
        });
        spec.days = a.days.max(1);
        let t = generate(&spec)?;
        let Some(path) = &a.write else {
            return Err("--generate needs --write FILE".into());
        };
        std::fs::write(path, t.to_csv()).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {} rows to {}", t.steps.len(), path.display());
        return Ok(());
    }
    let opts = options(&a)?;
    if let Some(dir) = &a.corpus {
        let wall = std::time::Instant::now();
        let days = run_corpus(dir, &opts, &ReferenceConfig::default())?;
        println!(
            "corpus {} ({} traces), {} slave(s), {} phase(s), min {} A, meter every {} s; ours against the reference controller (start after 120 s at the minimum, stop after 300 s below it, whole amps)",
            dir.display(),
            days.len(),
            opts.slaves,
            opts.phases,
            opts.min_amps,
            opts.meter_interval.as_secs()
        );
        print!("{}", table(&days));
        if opts.low_current.is_some() {
            let total: usize = days.iter().map(|d| d.car_commands).sum();
            let most = days.iter().map(|d| d.car_commands).max().unwrap_or(0);
            println!(
                "car API commands (set_charging_amps, start, stop): {total} in total, at most {most} on one day"
            );
        }
        println!(
            "replays took {:.2} s wall clock",
            wall.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let Some(path) = &a.trace else {
        return Err(
            "--trace FILE.csv or --corpus DIR is required (or --generate clear|cloudy --write FILE)"
                .into(),
        );
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut trace = Trace::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if a.days > 1 {
        trace = repeat_days(&trace, a.days);
    }
    let report = run(&trace, &opts)?;
    println!(
        "trace {} ({} rows from {}), {} slave(s), {} phase(s), min {} A, action {}{}",
        path.display(),
        trace.steps.len(),
        trace.start().to_rfc3339(),
        opts.slaves,
        opts.phases,
        opts.min_amps,
        opts.action,
        opts.grid_limit_w
            .map(|w| format!(", grid limit {w:.0} W"))
            .unwrap_or_default()
    );
    print!("{}", report.metrics.report());
    if opts.low_current.is_some() {
        println!(
            "car API commands        {} (set_charging_amps, start, stop)",
            report.car_commands
        );
    }
    println!(
        "replay took             {:.2} s wall clock ({:.0}× real time)",
        report.wall_secs,
        report.metrics.simulated_secs / report.wall_secs.max(1e-9)
    );
    let reference = run_reference(&trace, &opts, &ReferenceConfig::default());
    println!(
        "reference controller    (start after 120 s at the minimum, stop after 300 s below it, whole amps, same meter and car)"
    );
    for line in reference
        .report()
        .lines()
        .filter(|l| !l.starts_with("reaction"))
    {
        println!("  {line}");
    }
    println!(
        "sessions                (energy, solar share and cost as the engine computed them{})",
        if opts.prices.is_some() {
            ""
        } else {
            "; no --tariff, so no cost"
        }
    );
    print!(
        "{}",
        crate::sessions::table(&report.sessions, *trace.start().offset())
    );
    write_outputs(&a, path, &report)
}

/// `--trace FILE --prices FILE`: the weekday plan with PV, forecasts and prices.
fn plan_solar(
    a: &Args,
    path: &std::path::Path,
    trace_path: &std::path::Path,
) -> Result<(), String> {
    use crate::plan_solar::{ForecastMode, PlanSolarOptions, map_prices, run_plan_solar, table};
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let trace =
        Trace::parse(&read(trace_path)?).map_err(|e| format!("{}: {e}", trace_path.display()))?;
    let (prices, offset) = crate::plan_month::parse_prices(&read(path)?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (mapped, map) = map_prices(&prices, offset, &trace)?;
    let modes = a
        .plan_forecast
        .split(',')
        .map(ForecastMode::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--plan-forecast: {e}"))?;
    let c = twc_core::planner::PlansConfig::new(a.plan_solar_confidence)
        .map_err(|e| format!("--plan-solar-confidence: {e}"))?
        .solar_confidence;
    let o = PlanSolarOptions {
        plan: plan_options(a)?,
        meter_interval: Duration::from_secs(a.meter_interval_secs.max(1)),
        solar_confidence: c,
    };
    let wall = std::time::Instant::now();
    let days = run_plan_solar(&trace, &mapped, &o, &modes)?;
    println!(
        "trace {} ({} rows from {}); prices {} put onto its days by weekday: {} → {}, …, {} → {}",
        trace_path.display(),
        trace.steps.len(),
        trace.start().to_rfc3339(),
        path.display(),
        map[0].0,
        map[0].1,
        map[map.len() - 1].0,
        map[map.len() - 1].1
    );
    println!(
        "weekday plan {} kWh, arrive {} depart {}, {} A max, {} phase(s) at {} V, meter every {} s, solar confidence {}",
        o.plan.kwh,
        a.plan_arrive,
        a.plan_depart,
        o.plan.max_amps,
        o.plan.phases,
        o.plan.voltage,
        o.meter_interval.as_secs(),
        o.solar_confidence
    );
    print!("{}", table(&days, &modes));
    println!(
        "replays took {:.1} s wall clock",
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--home LAT,LON`.
fn parse_home(s: &str) -> Result<twc_core::model::HomeLocation, String> {
    let bad = || format!("--home {s:?}: expected LAT,LON in degrees, e.g. 39.74,-105.18");
    let (lat, lon) = s.split_once(',').ok_or_else(bad)?;
    let (lat, lon): (f64, f64) = (
        lat.trim().parse().map_err(|_| bad())?,
        lon.trim().parse().map_err(|_| bad())?,
    );
    if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
        return Err(bad());
    }
    Ok(twc_core::model::HomeLocation { lat, lon })
}

/// The replay options the flags describe.
fn options(a: &Args) -> Result<SimOptions, String> {
    let mut policy = PolicyConfig::default();
    if let Some(s) = a.start_delay_secs {
        policy.green.start_delay_secs = s;
    }
    if let Some(s) = a.stop_delay_secs {
        policy.green.stop_delay_secs = s;
    }
    if let Some(s) = a.restart_delay_secs {
        policy.green.restart_delay_secs = s;
    }
    if let Some(w) = a.reserve_w {
        policy.green.reserve_w = w;
    }
    if let Some(c) = a.closed_loop {
        policy.green.closed_loop = c;
    }
    if let Some(m) = &a.green_mode {
        policy.green.mode = m.clone();
    }
    if let Some(f) = a.forecast_secs {
        policy.green.forecast_secs = f;
    }
    if let Some(c) = a.restart_cost_wh {
        policy.green.restart_cost_wh = c;
    }
    if let Some(d) = a.drop_reserve_secs {
        policy.green.drop_reserve_secs = d;
    }
    if let Some(w) = a.drop_reserve_max_w {
        policy.green.drop_reserve_max_w = w;
    }
    if let Some(m) = a.low_sun_minutes {
        policy.green.low_sun_minutes = m;
    }
    let mut opts = SimOptions {
        slaves: a.slaves,
        phases: a.phases,
        voltage: a.voltage,
        min_amps: a.min_amps,
        max_amps_per_twc: a.max_amps_per_twc,
        max_amps_all: a.max_amps_all,
        meter_interval: Duration::from_secs(a.meter_interval_secs.max(1)),
        sample: Duration::from_secs(a.sample_secs.max(1)),
        action: a.action.clone(),
        non_scheduled_amps: a.amps,
        flex_amps: a.flex_amps,
        grid_limit_w: a.grid_limit_w,
        policy,
        keep_rows: a.out.is_some() || a.chart.is_some(),
        home: a.home,
        ..SimOptions::default()
    };
    if let Some(step) = a.offer_step_amps {
        opts.offer_step_amps = step;
    }
    if a.low_current {
        // Checked by the daemon's own `[vehicles]` validation.
        let mut v = serde_json::json!({ "low_current": true });
        if let Some(m) = a.low_current_min_amps {
            v["low_current_min_amps"] = m.into();
        }
        if let Some(m) = a.amps_interval_secs {
            v["amps_interval_secs"] = m.into();
        }
        if let Some(m) = a.amps_lower_interval_secs {
            v["amps_lower_interval_secs"] = m.into();
        }
        let v =
            twc_core::vehicles::VehiclesConfig::from_root(&serde_json::json!({ "vehicles": v }))
                .map_err(|e| e.join("; "))?;
        opts.low_current = Some(v);
    } else if a.low_current_min_amps.is_some()
        || a.amps_interval_secs.is_some()
        || a.amps_lower_interval_secs.is_some()
    {
        return Err(
            "--low-current-min-amps, --amps-interval-secs and --amps-lower-interval-secs need --low-current"
                .into(),
        );
    }
    if let Some(path) = &a.tariff {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (mut prices, _) = crate::plan_month::parse_prices(&text)
            .map_err(|e| format!("--tariff {}: {e}", path.display()))?;
        prices.feed_in_per_kwh = a.feed_in;
        prices
            .validate()
            .map_err(|e| format!("--tariff {}: {e}", path.display()))?;
        opts.prices = Some(prices);
    } else if a.feed_in.is_some() {
        return Err("--feed-in needs --tariff FILE".into());
    }
    let mut problems = opts.policy.validate(opts.max_amps_all);
    if !(0.01..=1.0).contains(&opts.offer_step_amps) {
        problems.push(format!(
            "--offer-step-amps {}: expected 0.01..=1",
            opts.offer_step_amps
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(opts)
}

/// The weekday plan and the car of `--prices` (with or without `--trace`).
fn plan_options(a: &Args) -> Result<crate::plan_month::PlanMonthOptions, String> {
    let time = |k: &str, v: &str| {
        chrono::NaiveTime::parse_from_str(v, "%H:%M")
            .map_err(|e| format!("{k} {v:?}: {e} (expected HH:MM)"))
    };
    Ok(crate::plan_month::PlanMonthOptions {
        kwh: a.plan_kwh,
        arrive: time("--plan-arrive", &a.plan_arrive)?,
        depart: time("--plan-depart", &a.plan_depart)?,
        max_amps: a.max_amps_per_twc.min(a.max_amps_all),
        min_amps: a.min_amps,
        voltage: a.voltage,
        phases: a.phases,
    })
}

/// `--out` and `--chart`.
fn write_outputs(
    a: &Args,
    path: &std::path::Path,
    report: &crate::run::Report,
) -> Result<(), String> {
    if let Some(out) = &a.out {
        std::fs::write(out, rows_csv(&report.rows))
            .map_err(|e| format!("{}: {e}", out.display()))?;
        println!("per-step record         {}", out.display());
    }
    if let Some(c) = &a.chart {
        let title = format!(
            "{} — charged {:.1} kWh, captured {:.1} % of the oracle, green import {:.1} %, {} starts",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            report.metrics.charged_kwh,
            report.metrics.captured_pct(),
            report.metrics.green_import_pct(),
            report.metrics.starts
        );
        std::fs::write(c, crate::chart::svg(&report.rows, &title))
            .map_err(|e| format!("{}: {e}", c.display()))?;
        println!("chart                   {}", c.display());
    }
    Ok(())
}

/// The trace's days repeated `days` times in a row (for month-long speed runs).
pub fn repeat_days(t: &Trace, days: u32) -> Trace {
    let span = chrono::Duration::seconds(t.duration_secs());
    let mut steps = Vec::with_capacity(t.steps.len() * days as usize);
    for d in 0..days {
        for s in &t.steps {
            let mut s = s.clone();
            s.at += span * d as i32;
            steps.push(s);
        }
    }
    Trace { steps }
}
