//! Weekday charge plans with PV, a solar forecast and prices (`cargo xtask sim --trace FILE
//! --prices FILE --plan-kwh …`): the car is at home from `arrive` to the next `depart`, needs
//! the same energy by every weekday departure and takes no more (its battery has exactly that
//! room). Each window runs through the real engine (paused time) with a simulated TWC and car,
//! the trace's PV and house load as the site meter the green policy charges from, the prices
//! (`SetPrices`), a forecast (`SetForecast`, one of [`ForecastMode`]) and the plan (`SetPlan`).
//! Energy, solar share and grid cost are measured from what the car drew, and compared with
//! charging at full current on arrival over the same trace and prices.

use crate::run::Meter;
use crate::trace::Trace;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use std::sync::Arc;
use twc_core::plugin::{Forecast, ForecastSlot, PriceSlot, Prices};

/// Where the planner's solar forecast comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForecastMode {
    /// No forecast: the planner sees prices only.
    None,
    /// Yesterday's measured hourly PV as today's (the value 24 h before each hour): the
    /// standard naive forecast, using only what was measured before arrival.
    Persistence,
    /// The trace's own hourly means over the window: a perfect hourly forecast, an upper bound.
    Perfect,
    /// Persistence at arrival, then corrected every hour by what was measured since: the hours
    /// still to come are yesterday's times the ratio of the last two hours' measured PV to
    /// yesterday's same two hours (as forecast services tune a forecast with a site's
    /// measurements). Causal: only what was measured before each update.
    Refreshed,
}

impl ForecastMode {
    /// `none`, `persistence` or `perfect`.
    pub fn parse(s: &str) -> Result<ForecastMode, String> {
        match s.trim() {
            "none" => Ok(ForecastMode::None),
            "persistence" => Ok(ForecastMode::Persistence),
            "perfect" => Ok(ForecastMode::Perfect),
            "refreshed" => Ok(ForecastMode::Refreshed),
            o => Err(format!(
                "forecast {o:?}: expected none, persistence, refreshed or perfect"
            )),
        }
    }

    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            ForecastMode::None => "none",
            ForecastMode::Persistence => "persistence",
            ForecastMode::Perfect => "perfect",
            ForecastMode::Refreshed => "refreshed",
        }
    }
}

/// The scenario: the weekday plan and the car as for the price-only month, and the meter.
#[derive(Debug, Clone)]
pub struct PlanSolarOptions {
    /// Energy needed by each weekday departure (also the room in the car's battery), arrival,
    /// departure (the first time of day `depart` after arrival: the next day when not later)
    /// and the car.
    pub plan: crate::plan_month::PlanMonthOptions,
    /// Meter poll interval.
    pub meter_interval: std::time::Duration,
    /// `[plans] solar_confidence`: the share of each forecast solar slot the planner counts on.
    pub solar_confidence: f64,
}

/// What the car got in one window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Charged {
    /// Energy into the car, kWh.
    pub kwh: f64,
    /// The part of it covered by solar surplus (per step min(draw, PV − house load)), kWh.
    pub solar_kwh: f64,
    /// Cost of the rest at the import price.
    pub cost: f64,
    /// True when the car got its need by departure.
    pub met: bool,
}

impl Charged {
    /// Adds `e` kWh drawn over `step` seconds while the surplus was `surplus_w`, the part not
    /// covered by it at `price`.
    fn add(&mut self, e: f64, surplus_w: f64, step: i64, price: f64) {
        let solar = e.min(surplus_w * step as f64 / 3.6e6);
        self.kwh += e;
        self.solar_kwh += solar;
        self.cost += (e - solar) * price;
    }

    /// Solar share, 0..=1 (0 without energy).
    pub fn solar_share(&self) -> f64 {
        if self.kwh > 0.0 {
            self.solar_kwh / self.kwh
        } else {
            0.0
        }
    }
}

/// One weekday departure.
#[derive(Debug, Clone, PartialEq)]
pub struct SolarDay {
    /// The departure's date.
    pub date: NaiveDate,
    /// PV generation in the window, kWh.
    pub pv_kwh: f64,
    /// Charging at full current on arrival.
    pub arrival: Charged,
    /// The plan, for each forecast mode asked for (in that order).
    pub plans: Vec<(ForecastMode, Charged)>,
}

fn local_day(t: i64, offset: FixedOffset) -> NaiveDate {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.with_timezone(&offset).date_naive())
        .unwrap_or_default()
}

fn local_at(day: NaiveDate, time: NaiveTime, offset: FixedOffset) -> Result<i64, String> {
    offset
        .from_local_datetime(&day.and_time(time))
        .single()
        .map(|t| t.timestamp())
        .ok_or_else(|| format!("{day} {time} has no single local time"))
}

/// The prices put onto the trace's days by local time of day: trace day `k` (from the trace's
/// first local date) gets the prices of the price series' day `s + k`, where `s` is the first
/// price day with the trace's first weekday, so weekdays and weekends line up; past the series'
/// end it steps back a week at a time. Returns the mapped series and, per trace day, the price
/// day it took.
pub fn map_prices(
    prices: &Prices,
    price_offset: FixedOffset,
    trace: &Trace,
) -> Result<(Prices, Vec<(NaiveDate, NaiveDate)>), String> {
    let t_off = *trace.start().offset();
    let t0 = trace.start().timestamp();
    let first = trace.start().date_naive();
    let last = local_day(t0 + trace.duration_secs() - 1, t_off);
    let mut price_days: Vec<NaiveDate> = prices
        .slots
        .iter()
        .map(|s| local_day(s.start_unix, price_offset))
        .collect();
    price_days.dedup();
    let s = price_days
        .iter()
        .position(|d| d.weekday() == first.weekday())
        .ok_or("the price series has no day with the trace's first weekday")?;
    if price_days.len() < s + 7 {
        return Err(format!(
            "the price series needs a full week from its first {:?} ({} days)",
            first.weekday(),
            price_days.len()
        ));
    }
    let mut slots = Vec::new();
    let mut map = Vec::new();
    let mut day = first;
    let mut k = 0usize;
    while day <= last {
        let mut j = s + k;
        while j >= price_days.len() {
            j -= 7;
        }
        let from = price_days[j];
        let shift =
            local_at(day, NaiveTime::MIN, t_off)? - local_at(from, NaiveTime::MIN, price_offset)?;
        for p in prices
            .slots
            .iter()
            .filter(|p| local_day(p.start_unix, price_offset) == from)
        {
            slots.push(PriceSlot {
                start_unix: p.start_unix + shift,
                end_unix: p.end_unix + shift,
                ..p.clone()
            });
        }
        map.push((day, from));
        day += Duration::days(1);
        k += 1;
    }
    let mapped = Prices {
        slots,
        ..prices.clone()
    };
    mapped
        .validate()
        .map_err(|e| format!("mapped prices: {e}"))?;
    Ok((mapped, map))
}

/// Mean PV of the trace over `[from, to)` (Unix seconds), W; `None` unless the trace covers it.
fn mean_pv(trace: &Trace, from: i64, to: i64) -> Option<f64> {
    let t0 = trace.start().timestamp();
    if from < t0 || to > t0 + trace.duration_secs() {
        return None;
    }
    let step = 60;
    let (mut sum, mut n) = (0.0, 0u32);
    let mut t = from;
    while t < to {
        sum += trace.at_offset((t - t0) as f64).pv_w;
        n += 1;
        t += step;
    }
    Some(sum / f64::from(n.max(1)))
}

/// The hourly forecast for `[from, to)` in `mode` (`None` for [`ForecastMode::None`]); hours
/// the source does not cover are left out (a gap means unknown).
pub fn forecast(trace: &Trace, mode: ForecastMode, from: i64, to: i64) -> Option<Forecast> {
    let lag = match mode {
        ForecastMode::None => return None,
        ForecastMode::Persistence | ForecastMode::Refreshed => 24 * 3600,
        ForecastMode::Perfect => 0,
    };
    let mut slots = Vec::new();
    let mut h = from.div_euclid(3600) * 3600;
    while h < to {
        if let Some(w) = mean_pv(trace, h - lag, h + 3600 - lag) {
            slots.push(ForecastSlot {
                start_unix: h,
                end_unix: h + 3600,
                watts: w,
            });
        }
        h += 3600;
    }
    Some(Forecast {
        source: mode.name().into(),
        slots,
    })
}

/// Below this mean PV over the last two hours (and yesterday's same hours) a refresh keeps
/// persistence as it is: at night and at dawn a ratio says nothing.
const REFRESH_MIN_W: f64 = 200.0;
/// How far a refresh may scale yesterday's hours.
const REFRESH_SCALE: (f64, f64) = (0.1, 3.0);

/// [`ForecastMode::Refreshed`] at `now` (on the hour) for the hours from `now` to `to`:
/// yesterday's hourly PV times the ratio of the PV measured over the last two hours to
/// yesterday's over the same two hours (`None` when the trace does not cover them).
pub fn refreshed(trace: &Trace, now: i64, to: i64) -> Option<Forecast> {
    const DAY: i64 = 24 * 3600;
    let measured = mean_pv(trace, now - 2 * 3600, now)?;
    let yesterday = mean_pv(trace, now - 2 * 3600 - DAY, now - DAY)?;
    let k = if measured.max(yesterday) < REFRESH_MIN_W || yesterday <= 0.0 {
        1.0
    } else {
        (measured / yesterday).clamp(REFRESH_SCALE.0, REFRESH_SCALE.1)
    };
    let mut f = forecast(trace, ForecastMode::Persistence, now, to)?;
    for s in &mut f.slots {
        s.watts *= k;
    }
    f.source = ForecastMode::Refreshed.name().into();
    Some(f)
}

fn surplus_w(trace: &Trace, t: i64) -> f64 {
    let s = trace.at_offset((t - trace.start().timestamp()) as f64);
    (s.pv_w - s.load_w).max(0.0)
}

/// Every weekday departure the trace covers from the arrival before it.
pub fn run_plan_solar(
    trace: &Trace,
    prices: &Prices,
    o: &PlanSolarOptions,
    modes: &[ForecastMode],
) -> Result<Vec<SolarDay>, String> {
    let off = *trace.start().offset();
    let t0 = trace.start().timestamp();
    let end = t0 + trace.duration_secs();
    let mut out = Vec::new();
    let mut day = trace.start().date_naive();
    loop {
        let arrive = local_at(day, o.plan.arrive, off)?;
        let dep_day = if o.plan.depart > o.plan.arrive {
            day
        } else {
            day + Duration::days(1)
        };
        let depart = local_at(dep_day, o.plan.depart, off)?;
        day += Duration::days(1);
        if depart > end {
            break;
        }
        if arrive < t0 || dep_day.weekday().number_from_monday() > 5 {
            continue;
        }
        let mut plans = Vec::new();
        for &m in modes {
            let f = forecast(trace, m, arrive, depart);
            let refresh = m == ForecastMode::Refreshed;
            plans.push((
                m,
                engine_window(trace, prices, f, refresh, arrive, depart, o)?,
            ));
        }
        out.push(SolarDay {
            date: dep_day,
            pv_kwh: mean_pv(trace, arrive, depart).unwrap_or(0.0) * (depart - arrive) as f64
                / 3.6e6,
            arrival: on_arrival(trace, prices, arrive, depart, o)?,
            plans,
        });
    }
    Ok(out)
}

/// Full current from arrival until the need is in (or departure), from the trace and prices.
fn on_arrival(
    trace: &Trace,
    prices: &Prices,
    arrive: i64,
    depart: i64,
    o: &PlanSolarOptions,
) -> Result<Charged, String> {
    let w = o.plan.max_amps * o.plan.voltage * f64::from(o.plan.phases.max(1));
    let mut c = Charged::default();
    let step = 10;
    let mut t = arrive;
    while t < depart && c.kwh < o.plan.kwh {
        let e = (w * step as f64 / 3.6e6).min(o.plan.kwh - c.kwh);
        let p = prices.at(t).ok_or("no price on arrival")?.price_per_kwh;
        c.add(e, surplus_w(trace, t), step, p);
        t += step;
    }
    c.met = c.kwh + 1e-9 >= o.plan.kwh;
    Ok(c)
}

/// One window through the real engine: the runtime as the daemon starts it, a meter reading
/// the trace, a TWC with a car whose battery has room for the need, the policy "green" (so it
/// charges from surplus, and from the grid only in the plan's grid slots). With `refresh`, a
/// [`refreshed`] forecast replaces the last one on every hour (the engine re-plans on it).
fn engine_window(
    trace: &Trace,
    prices: &Prices,
    forecast: Option<Forecast>,
    refresh: bool,
    arrive: i64,
    depart: i64,
    o: &PlanSolarOptions,
) -> Result<Charged, String> {
    use crate::plan_month::{paused_runtime, plan_engine_config, plan_slave, weekday_plan};
    use std::time::Duration as StdDuration;
    use twc_core::engine::{Command, EngineConfig, SourceSpec};
    use twc_core::model::Settings;
    use twc_core::plugin::PollSettings;
    use twc_core::policy::PolicyConfig;
    use twc_sim::{CarConfig, duplex_pair};
    const BATTERY_KWH: f64 = 75.0;
    let rt = paused_runtime()?;
    rt.block_on(async move {
        let volts = o.plan.voltage * f64::from(o.plan.phases.max(1));
        let car = CarConfig {
            battery_kwh: Some(BATTERY_KWH),
            soc_pct: Some(100.0 - o.plan.kwh / BATTERY_KWH * 100.0),
            ..CarConfig::tesla()
        };
        let (comms, sim) = duplex_pair(vec![plan_slave(&o.plan, car)]);
        let mut policy = PolicyConfig::default();
        policy.rules.utc_offset = trace.start().offset().to_string();
        let cfg = EngineConfig {
            consumption_includes_chargers: false,
            policy,
            plans: twc_core::planner::PlansConfig {
                solar_confidence: o.solar_confidence,
            },
            ..plan_engine_config(&o.plan, arrive)
        };
        let settings = Settings {
            non_scheduled_action: "green".into(),
            ..Settings::default()
        };
        let mut parts = twc_runtime::Parts::new(cfg, Box::new(comms), settings);
        parts.sources = vec![SourceSpec {
            name: "replay-meter".into(),
            source: Box::new(Meter {
                trace: Arc::new(trace.clone()),
                start: tokio::time::Instant::now(),
                base_secs: (arrive - trace.start().timestamp()) as f64,
                sim: sim.clone(),
                volts_sum: volts,
                hint: Default::default(),
            }),
            poll: PollSettings {
                interval: o.meter_interval,
                stale_after: StdDuration::from_secs(30),
            },
        }];
        let eng = twc_runtime::start(parts)
            .await
            .map_err(|e| format!("engine: {}: {}", e.control, e.message))?;
        let h = eng.handle.clone();
        let err = |e: twc_core::engine::CommandError| e.to_string();
        h.command(Command::SetPrices(Some(prices.clone())))
            .await
            .map_err(err)?;
        h.command(Command::SetForecast(forecast))
            .await
            .map_err(err)?;
        h.command(weekday_plan(o.plan.kwh, depart))
            .await
            .map_err(err)?;
        let car = || sim.slave(0).map_err(|e| e.to_string());
        let step = 10i64;
        let mut c = Charged::default();
        let mut wh = car()?.energy_wh;
        let mut t = arrive;
        while t + step <= depart {
            if refresh
                && t > arrive
                && t % 3600 == 0
                && let Some(f) = refreshed(trace, t, depart)
            {
                h.command(Command::SetForecast(Some(f)))
                    .await
                    .map_err(err)?;
            }
            tokio::time::sleep(StdDuration::from_secs(step as u64)).await;
            let now_wh = car()?.energy_wh;
            let e = (now_wh - wh) / 1000.0;
            wh = now_wh;
            let p = prices.at(t).ok_or("no price in the window")?.price_per_kwh;
            c.add(e, surplus_w(trace, t), step, p);
            t += step;
        }
        let last = car()?;
        c.met = last.soc_pct.is_some_and(|s| s >= 100.0 - 1e-9) || c.kwh + 1e-9 >= o.plan.kwh;
        eng.shutdown().await;
        Ok(c)
    })
}

/// The table for docs/plans.md: per departure the window's PV, then energy, solar share and
/// cost on arrival and for each forecast mode, and the totals.
pub fn table(days: &[SolarDay], modes: &[ForecastMode]) -> String {
    let mut s = String::from("| departure | PV kWh | on arrival kWh / solar / cost |");
    let mut rule = String::from("| --- | ---: | ---: |");
    for m in modes {
        s += &format!(" plan, forecast {} kWh / solar / cost |", m.name());
        rule += " ---: |";
    }
    s += "\n";
    s += &rule;
    s += "\n";
    let cell = |c: &Charged| {
        format!(
            " {:.2} / {:.0} % / {:.2}{} |",
            c.kwh,
            c.solar_share() * 100.0,
            c.cost,
            if c.met { "" } else { " **missed**" }
        )
    };
    for d in days {
        s += &format!("| {} | {:.1} |{}", d.date, d.pv_kwh, cell(&d.arrival));
        for (_, c) in &d.plans {
            s += &cell(c);
        }
        s += "\n";
    }
    let total = |pick: &dyn Fn(&SolarDay) -> Charged| {
        let (mut k, mut sk, mut c, mut met) = (0.0, 0.0, 0.0, 0);
        for d in days {
            let x = pick(d);
            k += x.kwh;
            sk += x.solar_kwh;
            c += x.cost;
            met += usize::from(x.met);
        }
        format!(
            " **{k:.1} / {:.0} % / {c:.2}**, met {met} of {} |",
            if k > 0.0 { sk / k * 100.0 } else { 0.0 },
            days.len()
        )
    };
    let pv: f64 = days.iter().map(|d| d.pv_kwh).sum();
    s += &format!(
        "| **{} weekdays** | {pv:.0} |{}",
        days.len(),
        total(&|d| d.arrival)
    );
    for i in 0..modes.len() {
        s += &total(&|d| d.plans[i].1);
    }
    s += "\n";
    s
}
