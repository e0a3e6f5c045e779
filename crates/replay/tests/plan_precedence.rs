//! Which wins, a charge plan or the policy (docs/plans.md, "Precedence"), and the plan-missed
//! event, in the running engine with a simulated TWC (paused time).

use chrono::{TimeZone, Utc};
use std::time::Duration;
use twc_core::engine::{self, Command, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Event, Settings};
use twc_core::planner::{ChargePlan, Departure, PlanTarget};
use twc_core::plugin::{PriceSlot, Prices};
use twc_core::policy::{CustomPolicy, Position};
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

const T0: i64 = 1_780_000_000 - 1_780_000_000 % 3600;

fn flat_prices() -> Prices {
    Prices {
        source: "test".into(),
        currency: "EUR".into(),
        slots: (0..24)
            .map(|i| PriceSlot {
                start_unix: T0 + i * 3600,
                end_unix: T0 + (i + 1) * 3600,
                price_per_kwh: 0.2,
                co2_g_per_kwh: None,
            })
            .collect(),
        feed_in_per_kwh: None,
    }
}

fn plan(kwh: f64, hours: i64) -> ChargePlan {
    ChargePlan {
        id: "night".into(),
        vin: None,
        twc: Some("3003".into()),
        target: PlanTarget::Energy { kwh },
        departure: Departure::Once {
            at_unix: T0 + hours * 3600,
        },
        battery_kwh: None,
        enabled: true,
    }
}

/// One TWC (3003, 16 A) with a car plugged in; non-scheduled action `stop`, and `custom`.
fn site(custom: Vec<CustomPolicy>) -> (EngineHandle, twc_sim::SimHandle) {
    let (comms, sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig {
            volts: [230, 0, 0],
            ..SlaveConfig::eu().with_id(TwcId([0x30, 0x03]))
        },
        car: CarConfig::tesla(),
    }]);
    let mut cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        start_wall: Some(Utc.timestamp_opt(T0, 0).unwrap()),
        ..EngineConfig::default()
    };
    cfg.policy.rules.custom = custom;
    let settings = Settings {
        non_scheduled_action: "stop".into(),
        ..Settings::default()
    };
    let eng = engine::spawn(cfg, Box::new(comms), Vec::new(), settings);
    std::mem::forget(eng.task);
    (eng.handle, sim)
}

/// The most offered to the TWC over `minutes`, A.
async fn max_offer(h: &EngineHandle, minutes: u32) -> f64 {
    let mut max: f64 = 0.0;
    for _ in 0..minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        if let Some(s) = h.status().slaves.first() {
            max = max.max(s.offered.amps());
        }
    }
    max
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_plan_wins_over_the_non_scheduled_stop() {
    let (h, _sim) = site(Vec::new());
    h.command(Command::SetPrices(Some(flat_prices())))
        .await
        .unwrap();
    // 10 kWh in 4 h at 3.68 kW: the planner needs most of the slots, the first one included.
    h.command(Command::SetPlan(Box::new(plan(10.0, 4))))
        .await
        .unwrap();
    let offered = max_offer(&h, 60).await;
    assert_eq!(h.status().policy.name, "Non Scheduled Charging");
    assert!(
        offered >= 6.0,
        "the plan's grid slot is charged: {offered} A"
    );
    assert!(offered <= 16.0, "never above the TWC's cap: {offered} A");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_explicit_stop_wins_over_a_plan() {
    let (h, _sim) = site(vec![CustomPolicy {
        name: "Home battery low".into(),
        position: Position::Emergency,
        conditions: Vec::new(),
        amps: Some(0.0),
        latch_minutes: 0.0,
        flex_amps: None,
    }]);
    h.command(Command::SetPrices(Some(flat_prices())))
        .await
        .unwrap();
    h.command(Command::SetPlan(Box::new(plan(10.0, 4))))
        .await
        .unwrap();
    let offered = max_offer(&h, 60).await;
    let st = h.status();
    assert_eq!(st.policy.name, "Home battery low");
    // The plan asks for current now; the explicit stop keeps it from the car.
    assert!(st.plans[0].active_amps.is_some(), "{:?}", st.plans[0]);
    assert_eq!(offered, 0.0, "a custom 0 A policy is not overridden");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_plan_that_cannot_make_it_is_told_once_and_again_when_it_missed() {
    let (h, _sim) = site(Vec::new());
    let mut events = h.subscribe();
    h.command(Command::SetPrices(Some(flat_prices())))
        .await
        .unwrap();
    // 40 kWh in 2 h at 3.68 kW cannot be done.
    h.command(Command::SetPlan(Box::new(plan(40.0, 2))))
        .await
        .unwrap();
    let mut missed = Vec::new();
    for _ in 0..(3 * 360) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        loop {
            match events.try_recv() {
                Ok(Event::PlanMissed {
                    plan,
                    passed,
                    missing_kwh,
                    departure,
                    ..
                }) => missed.push((plan, passed, missing_kwh, departure.timestamp())),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    panic!("the test fell {n} events behind")
                }
                Err(_) => break,
            }
        }
    }
    assert_eq!(missed.len(), 2, "{missed:?}");
    assert_eq!((missed[0].0.as_str(), missed[0].1), ("night", false));
    assert!(missed[0].2 > 30.0, "{missed:?}");
    assert_eq!((missed[1].0.as_str(), missed[1].1), ("night", true));
    assert!(missed.iter().all(|m| m.3 == T0 + 2 * 3600), "{missed:?}");
}
