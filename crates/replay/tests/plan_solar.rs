//! The weekday plan with real PV, a forecast and real prices, through the real engine, on one
//! sunny window of the Payerne month (the month itself is `cargo xtask sim --trace … --prices …`,
//! docs/plans.md), and the month trace's format.

use chrono::NaiveTime;
use twc_replay::Trace;
use twc_replay::plan_month::{PlanMonthOptions, parse_prices};
use twc_replay::plan_solar::{ForecastMode, PlanSolarOptions, map_prices, run_plan_solar};

fn month() -> Trace {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/traces/real-month/payerne-1min-2016-06.csv"
    );
    Trace::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_committed_month_parses_as_a_trace_and_covers_thirty_days() {
    let t = month();
    assert_eq!(t.start().offset().local_minus_utc(), 2 * 3600, "CEST");
    assert_eq!(t.start().to_rfc3339(), "2016-06-01T02:01:00+02:00");
    // 43,200 minutes less the 4 the source lacks; a day of 1,440 minutes less at most 3.
    assert_eq!(t.steps.len(), 43_196);
    assert!(
        t.duration_secs() >= 30 * 86_400 - 3 * 60,
        "{}",
        t.duration_secs()
    );
    let mut days: Vec<_> = t
        .steps
        .iter()
        .filter(|s| s.pv_w > 0.0)
        .map(|s| s.at.date_naive())
        .collect();
    days.dedup();
    assert_eq!(days.len(), 30, "every day of June has daylight rows");
    assert!(
        t.steps
            .iter()
            .all(|s| s.load_w > 0.0 && s.pv_w <= 6000.0 * 0.85 * 1.5)
    );
}

#[test]
fn a_sunny_window_meets_its_target_with_more_solar_with_a_forecast_and_costs_less_than_on_arrival()
{
    // 2016-06-22 (Wednesday) 01:00 to 06-23 12:00, two sunny days (7.7 and 8.5 kWh/m²): one
    // window (short, for the debug build), Thursday the 23rd from midnight (night prices, the
    // cheapest from 02:00) to 11:00 (the morning's sun), the 22nd measured for the persistence
    // forecast.
    let m = month();
    let from = chrono::DateTime::parse_from_rfc3339("2016-06-22T01:00:00+02:00").unwrap();
    let to = chrono::DateTime::parse_from_rfc3339("2016-06-23T12:00:00+02:00").unwrap();
    let trace = Trace {
        steps: m
            .steps
            .into_iter()
            .filter(|s| s.at >= from && s.at < to)
            .collect(),
    };
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/traces/prices-real/epex-de-lu-2023-11.csv"
    );
    let (p, off) = parse_prices(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (prices, map) = map_prices(&p, off, &trace).unwrap();
    assert_eq!(map[0].1.to_string(), "2023-11-01", "Wednesday to Wednesday");
    let o = PlanSolarOptions {
        plan: PlanMonthOptions {
            kwh: 15.0,
            arrive: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            depart: NaiveTime::from_hms_opt(11, 0, 0).unwrap(),
            max_amps: 32.0,
            min_amps: 6.0,
            voltage: 230.0,
            phases: 1,
        },
        meter_interval: std::time::Duration::from_secs(5),
        solar_confidence: 1.0,
    };
    let modes = [ForecastMode::None, ForecastMode::Persistence];
    let days = run_plan_solar(&trace, &prices, &o, &modes).unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    let d = &days[0];
    assert_eq!(d.date.to_string(), "2016-06-23");
    let (none, persistence) = (d.plans[0].1, d.plans[1].1);
    for c in [none, persistence] {
        assert!(c.met && c.kwh >= 15.0 - 1e-6, "{d:?}");
        assert!(c.cost <= d.arrival.cost, "{d:?}");
    }
    assert!(
        persistence.solar_share() > none.solar_share() + 0.2,
        "with yesterday's sun as the forecast the plan waits for it: {d:?}"
    );
}

#[test]
fn a_refreshed_forecast_follows_the_measured_sun_and_is_persistence_at_night() {
    use twc_replay::plan_solar::{forecast, refreshed};
    let m = month();
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    let sum = |f: &twc_core::plugin::Forecast| f.slots.iter().map(|s| s.watts).sum::<f64>();
    // 2 June after a sunny 1 June: by 11:00 the morning measured far less than the day before,
    // so the rest of the day is expected lower than yesterday's, in proportion.
    let (now, to) = (
        at("2016-06-02T11:00:00+02:00"),
        at("2016-06-02T16:00:00+02:00"),
    );
    let p = forecast(&m, ForecastMode::Persistence, now, to).unwrap();
    let r = refreshed(&m, now, to).unwrap();
    assert_eq!(r.slots.len(), p.slots.len());
    assert_eq!(r.source, "refreshed");
    let k = sum(&r) / sum(&p);
    assert!(k < 0.7, "scaled by {k}");
    for (a, b) in r.slots.iter().zip(&p.slots) {
        assert_eq!(a.start_unix, b.start_unix);
        assert!((a.watts - b.watts * k).abs() < 1e-6 * b.watts.max(1.0));
    }
    // At 02:00 nothing was measured for two hours, nor the night before: persistence as it is.
    let (night, to) = (
        at("2016-06-03T02:00:00+02:00"),
        at("2016-06-03T16:00:00+02:00"),
    );
    let p = forecast(&m, ForecastMode::Persistence, night, to).unwrap();
    let r = refreshed(&m, night, to).unwrap();
    assert_eq!(sum(&r), sum(&p));
    // Before the trace has a day behind it there is nothing to refresh from.
    assert!(refreshed(&m, at("2016-06-01T12:00:00+02:00"), to).is_none());
}
