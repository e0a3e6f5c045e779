//! External load points (a Wall Connector Gen3, …) next to Gen2 slaves, on the real engine in
//! paused time: the wiring max holds for slaves and load points together, also while one of
//! them is stale or does not follow, and a stale load point counts at its maximum, never 0.

use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use twc_core::engine::{self, Command, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, LoadPointMeasurement, LoadPointReport, LoadPointState, Settings};
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig, duplex_pair};

const WIRING_ALL: f64 = 32.0;
const WIRING_PER: f64 = 20.0;

/// How the simulated load point behaves in one step.
#[derive(Debug, Clone, Copy)]
enum Lp {
    /// Draws what it was given (a car wanting up to `car` A).
    Follows { car: f64 },
    /// Draws `amps` whatever it was given.
    Ignores { amps: f64 },
    /// Does not answer (the plugin reports no measurement).
    Silent,
    /// A car is plugged in and not charging yet.
    Waiting,
}

fn report(max: f64, measured: Option<(f64, LoadPointState)>) -> Command {
    Command::ReportLoadPoint(Box::new(LoadPointReport {
        name: "gen3.garage".into(),
        kind: "gen3".into(),
        max: CentiAmps::from_f64(max),
        min: CentiAmps::from_amps(6),
        controllable: true,
        stale_after_secs: 5.0,
        measured: measured.map(|(a, state)| LoadPointMeasurement {
            draw: CentiAmps::from_f64(a),
            state,
            details: serde_json::Value::Null,
        }),
        problem: None,
        via_car: None,
    }))
}

fn spawn(n_slaves: u8) -> (Arc<EngineHandle>, SimHandle) {
    let slaves: Vec<SimSlave> = (0..n_slaves)
        .map(|i| SimSlave {
            slave: SlaveConfig {
                volts: [230, 0, 0],
                ..SlaveConfig::eu().with_id(TwcId([0x20 + i, 0x02]))
            },
            car: CarConfig::tesla().with_vin(Some(&twc_sim::sample_vin(u32::from(i)))),
        })
        .collect();
    let (comms, sim) = duplex_pair(slaves);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_f64(WIRING_ALL),
            wiring_max_per_twc: CentiAmps::from_f64(WIRING_PER),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let eng = engine::spawn(
        cfg,
        Box::new(comms),
        vec![],
        Settings {
            non_scheduled_amps: WIRING_ALL,
            ..Settings::default()
        },
    );
    (Arc::new(eng.handle), sim)
}

fn check_case(max: f64, steps: Vec<(Lp, u8)>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let (h, sim) = spawn(2);
        tokio::time::sleep(Duration::from_secs(8)).await;
        let mut draw = 0.0f64;
        let mut silent_for = 0u32;
        for (lp, secs) in steps {
            for _ in 0..secs {
                let st = h.status();
                let given = st.load_points.first().map_or(0.0, |l| l.allocated.amps());
                let cmd = match lp {
                    Lp::Follows { car } => {
                        // The unit takes a second to follow; it never draws above its own max.
                        draw = given.min(car).min(max);
                        Some(report(max, Some((draw, LoadPointState::Charging))))
                    }
                    Lp::Ignores { amps } => {
                        draw = amps.min(max);
                        Some(report(max, Some((draw, LoadPointState::Charging))))
                    }
                    Lp::Waiting => {
                        draw = 0.0;
                        Some(report(max, Some((0.0, LoadPointState::Connected))))
                    }
                    Lp::Silent => Some(report(max, None)),
                };
                silent_for = if matches!(lp, Lp::Silent) {
                    silent_for + 1
                } else {
                    0
                };
                if let Some(c) = cmd {
                    h.command(c).await.expect("valid report");
                }
                for _ in 0..2 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let st = h.status();
                    let lp = st.load_points.first().expect("registered");
                    let offered: f64 = st.slaves.iter().map(|s| s.offered.amps()).sum();
                    // Invariant: Σ Gen2 offers + the load point's allocation ≤ the wiring max.
                    prop_assert!(
                        offered + lp.allocated.amps() <= WIRING_ALL + 1e-9,
                        "offers {offered} + load point {} > {WIRING_ALL} ({lp:?})",
                        lp.allocated
                    );
                    // A load point is never given more than min(its max, wiring per charger).
                    prop_assert!(lp.allocated.amps() <= max.min(WIRING_PER) + 1e-9);
                    // Its reservation is never below what it may draw.
                    if lp.stale {
                        prop_assert_eq!(lp.reserved, CentiAmps::from_f64(max));
                        prop_assert!(lp.draw.is_none(), "a stale draw is unknown, not 0");
                    } else {
                        prop_assert!(
                            lp.reserved >= CentiAmps::from_f64(draw).max(lp.allocated),
                            "draw {draw} {lp:?}"
                        );
                    }
                    // Once it has been stale long enough for the slaves to lower, what they
                    // hold leaves room for its maximum.
                    if lp.stale && silent_for >= 12 {
                        let held: f64 = sim.slaves().iter().map(|s| s.limit.amps()).sum();
                        let max = CentiAmps::from_f64(max).amps();
                        prop_assert!(
                            held + max <= WIRING_ALL + 1e-9,
                            "slaves hold {held} A next to a stale load point of {max} A"
                        );
                    }
                }
            }
        }
        let _ = h.command(Command::Shutdown).await;
        Ok(())
    })
}

fn arb_lp() -> impl Strategy<Value = Lp> {
    prop_oneof![
        3 => (0.0f64..48.0).prop_map(|car| Lp::Follows { car }),
        1 => (0.0f64..48.0).prop_map(|amps| Lp::Ignores { amps }),
        1 => Just(Lp::Silent),
        1 => Just(Lp::Waiting),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn slaves_and_a_load_point_stay_within_the_wiring(
        max in 6.0f64..=WIRING_ALL,
        steps in proptest::collection::vec((arb_lp(), 1u8..20), 1..8),
    ) {
        check_case(max, steps)?;
    }
}

/// The policy's current reaches a load point alone, and is shared fairly with a slave.
#[tokio::test(start_paused = true)]
async fn the_policy_current_reaches_a_load_point_and_is_shared_with_slaves() {
    let (h, _sim) = spawn(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..5 {
        h.command(report(32.0, Some((0.0, LoadPointState::Connected))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let st = h.status();
    assert_eq!(st.load_points[0].allocated, CentiAmps::from_f64(WIRING_PER));
    // Stale: budgeted at its maximum, its allocation not raised any further.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let st = h.status();
    assert!(st.load_points[0].stale);
    assert_eq!(st.load_points[0].reserved, CentiAmps::from_amps(32));
    h.command(Command::Shutdown).await.ok();

    let (h, _sim) = spawn(1);
    tokio::time::sleep(Duration::from_secs(8)).await;
    for _ in 0..20 {
        let given = h
            .status()
            .load_points
            .first()
            .map_or(0.0, |l| l.allocated.amps());
        h.command(report(32.0, Some((given, LoadPointState::Charging))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let st = h.status();
    let slave = st.slaves[0].offered.amps();
    let lp = st.load_points[0].allocated.amps();
    assert_eq!((slave, lp), (16.0, 16.0), "{st:#?}");
}

/// A bad report is refused with a reason naming the field.
#[tokio::test(start_paused = true)]
async fn a_bad_report_names_the_field() {
    let (h, _sim) = spawn(0);
    let Command::ReportLoadPoint(mut r) = report(0.0, None) else {
        unreachable!()
    };
    let e = h
        .command(Command::ReportLoadPoint(r.clone()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("max must be > 0"), "{e}");
    r.max = CentiAmps::from_amps(16);
    r.stale_after_secs = f64::NAN;
    let e = h.command(Command::ReportLoadPoint(r)).await.unwrap_err();
    assert!(e.to_string().contains("stale_after_secs"), "{e}");
}

/// The engine sends each load point's status as an event at the slaves' status interval (the
/// loggers' rows), with a stale one marked stale rather than drawing 0 A.
#[tokio::test(start_paused = true)]
async fn load_point_status_events_go_out_at_the_status_interval() {
    let (h, _sim) = spawn(0);
    let mut rx = h.subscribe();
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.command(report(32.0, Some((10.0, LoadPointState::Charging))))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(130);
    while tokio::time::Instant::now() < end {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Ok(twc_core::model::Event::LoadPointStatus { load_point, .. })) => {
                seen.push(*load_point)
            }
            Ok(Ok(_)) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    assert!((2..=4).contains(&seen.len()), "{} events", seen.len());
    assert_eq!(seen[0].name, "gen3.garage");
    assert_eq!(seen[0].draw, Some(CentiAmps::from_amps(10)));
    // No report since: the later ones are stale, with no draw (unknown, not 0 A).
    let last = seen.last().unwrap();
    assert!(last.stale && last.draw.is_none(), "{last:?}");
    h.command(Command::Shutdown).await.ok();
}
