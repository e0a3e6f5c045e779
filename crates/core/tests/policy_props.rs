//! Safety invariants 3 and 4 of DESIGN.md, property-tested on the policy engine:
//!
//! 3. A stale or missing reading never raises the budget: green tracking gives 0 A, a grid limit
//!    falls back to `[grid] safe_amps`, and a fixed policy is what it is without any reading.
//! 4. With a fresh reading, the planned import (house import + the budget) stays within the grid
//!    limit, under every policy, whenever the house alone is within it (else the budget is 0).

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use twc_core::model::{
    ChargeNow, ConsumptionOffset, EnergyReading, GridLimit, OffsetUnit, Schedule, ScheduleWindow,
    Settings,
};
use twc_core::policy::{Context, PolicyConfig, PolicyEngine};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 17, 12, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
enum Which {
    ChargeNow(f64),
    Scheduled(f64),
    Fixed(f64),
    Stop,
    Green,
}

fn arb_which() -> impl Strategy<Value = Which> {
    prop_oneof![
        (0.1f64..=80.0).prop_map(Which::ChargeNow),
        (0.0f64..=80.0).prop_map(Which::Scheduled),
        (0.0f64..=80.0).prop_map(Which::Fixed),
        Just(Which::Stop),
        Just(Which::Green),
    ]
}

fn settings_for(w: &Which, offset_w: f64, flex: f64) -> Settings {
    let mut s = Settings {
        flex_amps: flex,
        ..Settings::default()
    };
    if offset_w != 0.0 {
        s.consumption_offsets.insert(
            "x".into(),
            ConsumptionOffset {
                value: offset_w,
                unit: OffsetUnit::W,
            },
        );
    }
    match w {
        Which::ChargeNow(a) => {
            s.charge_now = Some(ChargeNow {
                amps: *a,
                until_unix: now().timestamp() + 3600,
            })
        }
        Which::Scheduled(a) => {
            s.schedule = Schedule {
                enabled: true,
                amps: *a,
                windows: (1..=7)
                    .map(|d| ScheduleWindow {
                        weekday: d,
                        start_minute: 0,
                        end_minute: 1439,
                    })
                    .collect(),
                ..Schedule::default()
            }
        }
        Which::Fixed(a) => s.non_scheduled_amps = *a,
        Which::Stop => s.non_scheduled_action = "stop".into(),
        Which::Green => s.non_scheduled_action = "green".into(),
    }
    s
}

struct Case {
    wiring: f64,
    phases: u8,
    charger_amps: f64,
    min_amps: f64,
}

fn eval(e: &mut PolicyEngine, s: &Settings, r: Option<&EnergyReading>, c: &Case, t: f64) -> f64 {
    let o = e.evaluate(&Context {
        settings: s,
        now: now(),
        mono_secs: t,
        reading: r,
        charger_amps: c.charger_amps,
        drawn_amps: c.charger_amps,
        offered_amps: None,
        drawn_is_bound: false,
        voltage: 230.0,
        phases: c.phases,
        consumption_includes_chargers: true,
        wiring_max_all: c.wiring,
        min_amps: c.min_amps,
        cars_connected: 1,
        cars_charging: usize::from(c.charger_amps >= 1.0),
        vins: &[],
        battery_expected: false,
        price_per_kwh: None,
        co2_g_per_kwh: None,
    });
    assert!(o.amps >= 0.0 && o.amps.is_finite(), "budget {}", o.amps);
    assert!(
        o.amps <= c.wiring + 1e-9,
        "budget {} above wiring {}",
        o.amps,
        c.wiring
    );
    o.amps
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Invariant 3.
    #[test]
    fn stale_or_missing_readings_never_raise_the_budget(
        which in arb_which(),
        wiring in 6.0f64..=80.0,
        phases in prop_oneof![Just(1u8), Just(3u8)],
        gen_w in 0.0f64..30_000.0,
        cons_w in 0.0f64..20_000.0,
        offset_w in -20_000.0f64..20_000.0,
        flex in 0.0f64..6.0,
        limit in proptest::option::of(0.0f64..100.0),
        safe in 0.0f64..6.0,
        fresh_secs in 0u32..600,
    ) {
        let mut cfg = PolicyConfig::default();
        cfg.rules.utc_offset = "+00:00".into();
        cfg.grid.max_import_amps = limit;
        cfg.grid.safe_amps = safe.min(wiring);
        let s = settings_for(&which, offset_w, flex);
        let c = Case { wiring, phases, charger_amps: 0.0, min_amps: 6.0 };
        let mut e = PolicyEngine::new(cfg.clone());
        let r = EnergyReading {
            generation_w: Some(gen_w),
            consumption_w: Some(cons_w),
            grid_w: Some(cons_w - gen_w),
            ..EnergyReading::default()
        };
        // Some time with fresh readings (green may have started charging)…
        let mut t = 0.0;
        for _ in 0..fresh_secs {
            eval(&mut e, &s, Some(&r), &c, t);
            t += 1.0;
        }
        // …then the reading goes stale.
        let stale = eval(&mut e, &s, None, &c, t);
        match which {
            Which::Green => prop_assert_eq!(stale, 0.0),
            _ if limit.is_some() => prop_assert!(stale <= cfg.grid.safe_amps + 1e-9),
            _ => {
                // A fixed policy does not depend on readings at all.
                let mut fresh = PolicyEngine::new(cfg.clone());
                prop_assert_eq!(stale, eval(&mut fresh, &s, Some(&r), &c, 0.0));
            }
        }
        // And it stays there while stale.
        for k in 1..30 {
            prop_assert!(eval(&mut e, &s, None, &c, t + k as f64) <= stale + 1e-9);
        }
    }

    /// Invariant 4.
    #[test]
    fn fresh_readings_keep_planned_import_within_the_limit(
        which in arb_which(),
        wiring in 6.0f64..=80.0,
        phases in prop_oneof![Just(1u8), Just(3u8)],
        house_w in -15_000.0f64..25_000.0,
        charger_amps in 0.0f64..40.0,
        offset_w in -30_000.0f64..5_000.0,
        flex in 0.0f64..6.0,
        limit_in_amps in any::<bool>(),
        limit in 0.0f64..80.0,
        runtime_limit in proptest::option::of(0.0f64..80.0),
        per_phase in proptest::option::of(proptest::collection::vec(0.0f64..40.0, 3)),
        steps in 1u32..200,
    ) {
        let mut cfg = PolicyConfig::default();
        cfg.rules.utc_offset = "+00:00".into();
        let volts_total = 230.0 * phases as f64;
        if limit_in_amps {
            cfg.grid.max_import_amps = Some(limit);
        } else {
            cfg.grid.max_import_w = Some(limit * volts_total);
        }
        let mut s = settings_for(&which, offset_w, flex);
        s.max_grid_import = runtime_limit.map(|v| GridLimit {
            value: if limit_in_amps { v } else { v * volts_total },
            unit: if limit_in_amps { OffsetUnit::A } else { OffsetUnit::W },
        });
        let c = Case { wiring, phases, charger_amps, min_amps: 6.0 };
        let charger_w = charger_amps * volts_total;
        // The meter sees the house plus the chargers; a negative house is export.
        let per_phase = per_phase.filter(|_| phases == 3 && limit_in_amps).map(|p| {
            p.iter().map(|a| a + charger_amps).collect::<Vec<_>>()
        });
        let r = EnergyReading {
            grid_w: Some(house_w + charger_w),
            generation_w: Some((-house_w).max(0.0) + 20_000.0),
            consumption_w: Some(house_w.max(0.0) + 20_000.0 + charger_w),
            phase_currents_a: per_phase.clone(),
            ..EnergyReading::default()
        };
        let mut e = PolicyEngine::new(cfg);
        let eff_limit = runtime_limit.map_or(limit, |rl| rl.min(limit));
        for k in 0..steps {
            let amps = eval(&mut e, &s, Some(&r), &c, k as f64);
            // House load per phase (A) as the limit sees it.
            let house_a = match &per_phase {
                Some(p) => p.iter().copied().fold(f64::MIN, f64::max) - charger_amps,
                None => house_w / volts_total,
            };
            if house_a <= eff_limit {
                prop_assert!(house_a + amps <= eff_limit + 1e-6,
                    "planned {:.3} A > limit {:.3} A (house {:.3} A, budget {:.3} A)",
                    house_a + amps, eff_limit, house_a, amps);
            } else {
                prop_assert_eq!(amps, 0.0);
            }
        }
    }
}
