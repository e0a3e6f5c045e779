//! Session solar share and cost as the engine computes them (the numbers the loggers store and
//! the Sessions page shows), measured against the trace the replay fed the meter.

use std::time::Duration;
use twc_core::plugin::{PriceSlot, Prices};
use twc_replay::{Report, SimOptions, Trace, run};

fn committed(name: &str) -> String {
    let path = format!("{}/../../docs/traces/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn slice(t: &Trace, from_h: u32, to_h: u32) -> Trace {
    use chrono::Timelike;
    Trace {
        steps: t
            .steps
            .iter()
            .filter(|s| (from_h..to_h).contains(&s.at.hour()))
            .cloned()
            .collect(),
    }
}

/// 0.30 a kWh all day (two slots, so the lookup crosses a slot), 0.08 feed-in.
fn flat(t: &Trace) -> Prices {
    let a = t.start().timestamp() - 3600;
    let b = a + 12 * 3600;
    Prices {
        source: "test".into(),
        currency: "EUR".into(),
        slots: vec![
            PriceSlot {
                start_unix: a,
                end_unix: b,
                price_per_kwh: 0.30,
                co2_g_per_kwh: None,
            },
            PriceSlot {
                start_unix: b,
                end_unix: b + 24 * 3600,
                price_per_kwh: 0.30,
                co2_g_per_kwh: None,
            },
        ],
        feed_in_per_kwh: Some(0.08),
    }
}

/// The solar share measured from the replay's own record: per sample, what the cars drew of
/// the PV surplus (generation − house, ≥ 0) over what they drew.
fn measured_share(r: &Report) -> f64 {
    let (mut solar, mut all) = (0.0, 0.0);
    for row in &r.rows {
        let surplus = (row.pv_w - row.load_w).max(0.0);
        solar += row.charger_w.min(surplus);
        all += row.charger_w;
    }
    solar / all
}

fn totals(r: &Report) -> (f64, f64) {
    r.sessions.iter().fold((0.0, 0.0), |(k, s), e| {
        let m = &e.session.metrics;
        (k + m.integrated_kwh, s + m.solar_kwh)
    })
}

fn check_cost(r: &Report) {
    for e in &r.sessions {
        let m = &e.session.metrics;
        let cost = m.cost().expect("every interval had a price");
        let grid = m.integrated_kwh - m.solar_kwh;
        assert!((cost - grid * 0.30).abs() < 1e-6, "{m:?}");
        let value = m.solar_value.expect("a feed-in price");
        assert!((value - m.solar_kwh * 0.08).abs() < 1e-6, "{m:?}");
        assert_eq!(m.currency.as_deref(), Some("EUR"));
    }
}

#[test]
fn green_midday_sessions_are_almost_all_solar_and_cost_only_their_grid_part() {
    let t = slice(&Trace::parse(&committed("clear-day.csv")).unwrap(), 11, 14);
    let opts = SimOptions {
        prices: Some(flat(&t)),
        ..SimOptions::default()
    };
    let r = run(&t, &opts).unwrap();
    assert!(!r.sessions.is_empty(), "{}", r.metrics.report());
    let (kwh, solar) = totals(&r);
    // The engine's integral matches what the replay saw the car draw.
    let charged = r.metrics.charged_kwh;
    assert!(
        (kwh - charged).abs() <= 0.03 * charged + 0.05,
        "{kwh} vs {charged}"
    );
    let share = solar / kwh;
    let measured = measured_share(&r);
    println!("green midday: {kwh:.2} kWh, engine share {share:.3}, measured {measured:.3}");
    assert!(share > 0.9, "{share}");
    assert!(
        (share - measured).abs() < 0.03,
        "engine {share}, measured {measured}"
    );
    for e in &r.sessions {
        assert!(
            e.session.metrics.solar_share().is_some(),
            "{:?}",
            e.session.metrics
        );
    }
    check_cost(&r);
}

#[test]
fn fixed_amps_into_the_evening_split_solar_and_grid_as_measured() {
    let t = slice(&Trace::parse(&committed("clear-day.csv")).unwrap(), 17, 20);
    let opts = SimOptions {
        action: "charge".into(),
        non_scheduled_amps: 16.0,
        prices: Some(flat(&t)),
        ..SimOptions::default()
    };
    let r = run(&t, &opts).unwrap();
    let (kwh, solar) = totals(&r);
    assert!(kwh > 5.0, "{kwh}");
    let share = solar / kwh;
    let measured = measured_share(&r);
    println!("evening: {kwh:.2} kWh, engine share {share:.3}, measured {measured:.3}");
    // 16 A through a fading June evening: part solar, part grid.
    assert!(share > 0.1 && share < 0.9, "{share}");
    assert!(
        (share - measured).abs() < 0.03,
        "engine {share}, measured {measured}"
    );
    check_cost(&r);
}

#[test]
fn a_stale_meter_makes_the_share_unknown_and_the_cost_an_upper_bound() {
    let t = slice(&Trace::parse(&committed("clear-day.csv")).unwrap(), 12, 13);
    let opts = SimOptions {
        action: "charge".into(),
        non_scheduled_amps: 16.0,
        // Read every 60 s, stale after 20 s: most of each minute has no fresh reading.
        meter_interval: Duration::from_secs(60),
        stale_after: Duration::from_secs(20),
        prices: Some(flat(&t)),
        ..SimOptions::default()
    };
    let r = run(&t, &opts).unwrap();
    assert!(!r.sessions.is_empty());
    for e in &r.sessions {
        let m = &e.session.metrics;
        assert_eq!(m.solar_share(), None, "{m:?}");
        assert!(m.unmetered_kwh > 0.0 && m.cost_is_upper_bound(), "{m:?}");
        // Unmetered energy is priced as grid energy: the most it can have cost.
        let cost = m.cost().unwrap();
        assert!((cost - (m.integrated_kwh - m.solar_kwh) * 0.30).abs() < 1e-6);
    }
    // Without a tariff the cost is unknown, never 0.
    let r = run(
        &t,
        &SimOptions {
            prices: None,
            ..opts
        },
    )
    .unwrap();
    assert!(
        r.sessions
            .iter()
            .all(|e| e.session.metrics.cost().is_none())
    );
}
