//! Charge plans in the running engine with simulated TWCs (paused time): the planned current is
//! offered in the cheap slots only, never above the caps, and a feasible plan meets its target;
//! and the planner's own invariants over random prices, forecasts and limits.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::time::Duration;
use twc_core::engine::{self, Command, CommandError, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Settings};
use twc_core::planner::{self, ChargePlan, Departure, PlanInput, PlanTarget, SlotKind};
use twc_core::plugin::{Forecast, ForecastSlot, PriceSlot, Prices};
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

const T0: i64 = 1_780_000_000 - 1_780_000_000 % 3600;

fn hourly(from: i64, p: &[f64]) -> Prices {
    Prices {
        source: "test".into(),
        currency: "EUR".into(),
        slots: p
            .iter()
            .enumerate()
            .map(|(i, &x)| PriceSlot {
                start_unix: from + i as i64 * 3600,
                end_unix: from + (i as i64 + 1) * 3600,
                price_per_kwh: x,
                co2_g_per_kwh: None,
            })
            .collect(),
        feed_in_per_kwh: None,
    }
}

fn energy_plan(kwh: f64, at: i64) -> ChargePlan {
    ChargePlan {
        id: "night".into(),
        vin: None,
        twc: Some("3003".into()),
        target: PlanTarget::Energy { kwh },
        departure: Departure::Once { at_unix: at },
        battery_kwh: None,
        enabled: true,
    }
}

/// One TWC (3003, 16 A per TWC, `wiring_all` for the site) with a car that draws what it is
/// offered; green policy without a meter, so the policy alone gives 0 A.
fn site(wiring_all: u16, per_twc: u16) -> (EngineHandle, twc_sim::SimHandle) {
    let (comms, sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig {
            volts: [230, 0, 0],
            ..SlaveConfig::eu().with_id(TwcId([0x30, 0x03]))
        },
        car: CarConfig::tesla(),
    }]);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(wiring_all),
            wiring_max_per_twc: CentiAmps::from_amps(per_twc),
            ..MasterConfig::default()
        },
        start_wall: Some(Utc.timestamp_opt(T0, 0).unwrap()),
        ..EngineConfig::default()
    };
    let settings = Settings {
        non_scheduled_action: "green".into(),
        ..Settings::default()
    };
    let eng = engine::spawn(cfg, Box::new(comms), Vec::new(), settings);
    std::mem::forget(eng.task);
    (eng.handle, sim)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_plan_charges_in_the_cheapest_hours_and_meets_its_target() {
    let (h, _sim) = site(32, 16);
    // Hours 0..8 from T0: the cheap ones are 2 and 5 (3.68 kW × 2 h = 7.4 kWh ≥ 5 kWh + 10 %).
    let prices = hourly(T0, &[0.4, 0.4, 0.1, 0.4, 0.4, 0.12, 0.4, 0.4]);
    h.command(Command::SetPrices(Some(prices))).await.unwrap();
    h.command(Command::SetPlan(Box::new(energy_plan(5.0, T0 + 8 * 3600))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let st = h.status();
    let p = &st.plans[0];
    assert_eq!(p.twc.as_deref(), Some("3003"), "{p:?}");
    assert!(p.outcome.feasible, "{p:?}");
    assert_eq!(p.currency.as_deref(), Some("EUR"));
    let cost = p.outcome.expected_cost.unwrap();
    assert!(cost <= 5.5 * 0.12 + 1e-6, "cost {cost}");
    let mut offered_by_hour = [0u16; 8];
    let mut delivered = 0.0;
    for _ in 0..(8 * 60 - 2) {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let st = h.status();
        let s = &st.slaves[0];
        assert!(
            s.offered <= CentiAmps::from_amps(16),
            "over the cap: {:?}",
            s.offered
        );
        // The hour of the wall clock the offer was made at (the status's own time).
        let hour = ((st.updated_at.unwrap().timestamp() - T0 - 1) / 3600) as usize;
        offered_by_hour[hour] = offered_by_hour[hour].max(s.offered.0 / 100);

        delivered = st.plans[0].delivered_kwh.unwrap_or(delivered);
    }
    assert_eq!(offered_by_hour[0], 0, "{offered_by_hour:?}");
    assert_eq!(offered_by_hour[1], 0, "{offered_by_hour:?}");
    assert!(offered_by_hour[2] >= 6, "{offered_by_hour:?}");
    assert_eq!(offered_by_hour[3], 0, "{offered_by_hour:?}");
    assert!(offered_by_hour[5] >= 6, "{offered_by_hour:?}");
    assert!(
        delivered >= 5.0,
        "delivered {delivered} kWh, {offered_by_hour:?}"
    );
    assert_eq!(h.status().plans[0].state, "target reached");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn plans_are_validated_replaced_and_deleted() {
    let (h, _sim) = site(32, 16);
    let mut bad = energy_plan(5.0, T0 + 3600);
    bad.target = PlanTarget::Soc { pct: 80.0 };
    let err = h
        .command(Command::SetPlan(Box::new(bad)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CommandError::Invalid(m) if m.contains("vin")),
        "{err}"
    );
    h.command(Command::SetPlan(Box::new(energy_plan(5.0, T0 + 3600))))
        .await
        .unwrap();
    let s = h
        .command(Command::SetPlan(Box::new(energy_plan(7.0, T0 + 3600))))
        .await
        .unwrap();
    assert_eq!(s.plans.len(), 1);
    assert_eq!(s.plans[0].target, PlanTarget::Energy { kwh: 7.0 });
    let s = h
        .command(Command::DeletePlan("night".into()))
        .await
        .unwrap();
    assert!(s.plans.is_empty());
    assert!(
        h.command(Command::DeletePlan("night".into()))
            .await
            .is_err()
    );
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(6)))]

    /// Through the engine: whatever the plan asks and whatever the wiring, no offer exceeds
    /// min(wiring per TWC, the slave's rating) nor the site's wiring.
    #[test]
    fn a_plan_never_makes_offers_exceed_the_caps(
        wiring_all in 6u16..40, per_twc in 6u16..40, kwh in 1.0f64..60.0,
        hours in 1i64..6, cheap in 0usize..6,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all().start_paused(true).build().unwrap();
        rt.block_on(async {
            let (h, _sim) = site(wiring_all, per_twc);
            let mut p = vec![0.3; 6];
            p[cheap] = 0.05;
            h.command(Command::SetPrices(Some(hourly(T0, &p)))).await.unwrap();
            h.command(Command::SetPlan(Box::new(energy_plan(kwh, T0 + hours * 3600))))
                .await.unwrap();
            // The EU slave is rated 32 A.
            let cap = CentiAmps::from_amps(per_twc.min(wiring_all).min(32));
            for _ in 0..(hours * 60) {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let st = h.status();
                for s in &st.slaves {
                    assert!(s.offered <= cap, "offered {:?} > cap {cap:?}", s.offered);
                }
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// The planner alone: every slot is within [min, max] (grid slots) or at most max (solar),
    /// within the horizon and before departure; a feasible plan integrates to its target.
    #[test]
    fn planner_slots_stay_within_limits_and_a_feasible_plan_meets_its_target(
        prices in proptest::collection::vec(-0.1f64..0.6, 1..30),
        pv in proptest::collection::vec(0.0f64..8000.0, 0..30),
        needed in 0.0f64..80.0, max_a in 0.0f64..48.0, min_a in 5.0f64..8.0,
        phases in 1u8..=3, hours in 1i64..30, offset in 0i64..3600,
        grid in proptest::option::of(0.0f64..40.0),
        confidence in prop_oneof![Just(1.0f64), 0.05f64..1.0],
    ) {
        let now = T0 + offset;
        let p = hourly(T0, &prices);
        let f = Forecast {
            source: "f".into(),
            slots: pv.iter().enumerate().map(|(i, &w)| ForecastSlot {
                start_unix: T0 + i as i64 * 3600,
                end_unix: T0 + (i as i64 + 1) * 3600,
                watts: w,
            }).collect(),
        };
        let input = PlanInput {
            now_unix: now,
            departure_unix: now + hours * 3600,
            needed_kwh: needed,
            max_amps: max_a,
            min_amps: min_a,
            voltage: 230.0,
            phases,
            grid_limit_amps: grid,
            house_load_w: 400.0,
            prices: Some(&p),
            forecast: Some(&f),
            solar_confidence: confidence,
        };
        let o = planner::plan(&input);
        let cap = grid.map_or(max_a, |g| max_a.min(g));
        let volts = 230.0 * f64::from(phases);
        let mut kwh = 0.0;
        // What the plan counts on: a solar slot only `confidence` of its energy.
        let mut counted = 0.0;
        let mut last_end = now;
        for s in &o.slots {
            prop_assert!(s.amps <= cap + 1e-9, "{s:?} above cap {cap}");
            if s.kind == SlotKind::Grid {
                prop_assert!(s.amps >= min_a - 1e-9, "{s:?} below min {min_a}");
            }
            prop_assert!(s.start_unix >= last_end && s.end_unix > s.start_unix);
            prop_assert!(s.end_unix <= input.departure_unix - planner::PLAN_END_MARGIN_SECS);
            last_end = s.end_unix;
            // What the car gets when it draws the planned current over the slot.
            let k = s.amps * volts * (s.end_unix - s.start_unix) as f64 / 3.6e6;
            kwh += k;
            counted += if s.kind == SlotKind::Solar { k * confidence } else { k };
        }
        if o.feasible {
            prop_assert!(kwh + 1e-6 >= needed, "feasible but {kwh} < {needed}");
            // Even if only `confidence` of the forecast solar comes.
            prop_assert!(counted + 1e-6 >= needed, "feasible but counted {counted} < {needed}");
        } else {
            // Infeasible: every slot at the maximum, and what it counts on still falls short.
            prop_assert!(counted < needed * (1.0 + planner::PLAN_ENERGY_MARGIN) + 1e-6);
        }
    }
}
