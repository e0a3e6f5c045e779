//! Safety invariant 5 on the running engine: nothing a control surface sends breaks invariants
//! 1–4. Random command sequences (valid and invalid: NaN, negative, above the wiring, huge fake
//! "generation" offsets) go to an engine driving two simulated TWCs, with a live meter; after each
//! command and a few seconds of (paused) time: offers within the wiring limits, the budget within
//! the grid limit, refused commands leave the settings as they were.

use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use twc_core::async_trait;
use twc_core::engine::{self, Command, CommandError, EngineConfig, SourceSpec};
use twc_core::master::MasterConfig;
use twc_core::model::{
    CentiAmps, ConsumptionOffset, EnergyReading, GridLimit, OffsetUnit, Schedule, ScheduleWindow,
    Settings,
};
use twc_core::plugin::{EmsSource, PluginError, PollSettings};
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig, duplex_pair};

const WIRING_ALL: f64 = 20.0;
const WIRING_PER: f64 = 16.0;
const LIMIT_W: f64 = 5000.0;

struct LiveMeter {
    house_w: f64,
    pv_w: f64,
    sim: SimHandle,
}

#[async_trait]
impl EmsSource for LiveMeter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let charger: f64 = self
            .sim
            .slaves()
            .iter()
            .map(|s| s.actual.amps() * 230.0)
            .sum();
        Ok(EnergyReading {
            generation_w: Some(self.pv_w),
            consumption_w: Some(self.house_w),
            grid_w: Some(self.house_w + charger - self.pv_w),
            ..EnergyReading::default()
        })
    }
}

fn amps() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -5.0f64..40.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(1e9),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            amps(),
            prop_oneof![4 => 0u64..7200, 1 => Just(i64::MAX as u64), 1 => Just(u64::MAX)]
        )
            .prop_map(|(amps, s)| Command::ChargeNow {
                amps,
                duration: Duration::from_secs(s)
            }),
        Just(Command::CancelChargeNow),
        (
            proptest::option::of(prop_oneof![
                Just("charge".to_string()),
                Just("stop".to_string()),
                Just("green".to_string()),
                Just("turbo".to_string())
            ]),
            proptest::option::of(amps())
        )
            .prop_map(|(action, amps)| Command::SetNonScheduled { action, amps }),
        proptest::option::of((-1000.0f64..30_000.0, any::<bool>())).prop_map(|l| {
            Command::SetGridLimit(l.map(|(value, a)| GridLimit {
                value: if a { value / 230.0 } else { value },
                unit: if a { OffsetUnit::A } else { OffsetUnit::W },
            }))
        }),
        amps().prop_map(Command::SetFlexAmps),
        (-60_000.0f64..60_000.0, proptest::option::of(Just(()))).prop_map(|(v, del)| {
            Command::SetOffset {
                name: "sun".into(),
                offset: del.map(|_| ConsumptionOffset {
                    value: v,
                    unit: OffsetUnit::W,
                }),
            }
        }),
        (amps(), 0u8..9, 0u16..1500, 0u16..1500).prop_map(|(a, d, s, e)| {
            Command::SetSchedule(Box::new(Schedule {
                enabled: true,
                amps: a,
                windows: vec![ScheduleWindow {
                    weekday: d,
                    start_minute: s,
                    end_minute: e,
                }],
                ..Schedule::default()
            }))
        }),
        (amps(), amps()).prop_map(|(a, f)| {
            Command::ReplaceSettings(Box::new(Settings {
                non_scheduled_amps: a,
                flex_amps: f,
                ..Settings::default()
            }))
        }),
        Just(Command::StartCharging { slave: None }),
        Just(Command::StopCharging { slave: None }),
        // An OCPP central system's limit, for the site or one slave, set or cleared.
        (proptest::option::of(0u8..2), proptest::option::of(amps())).prop_map(|(slave, amps)| {
            Command::SetExternalLimit {
                source: "ocpp".into(),
                slave: slave.map(|i| TwcId([0x20 + i, 0x02])),
                amps,
            }
        }),
    ]
}

fn check_case(house_w: f64, pv_w: f64, cmds: Vec<Command>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let slaves: Vec<SimSlave> = (0..2u8)
            .map(|i| SimSlave {
                slave: SlaveConfig {
                    volts: [230, 0, 0],
                    ..SlaveConfig::eu().with_id(TwcId([0x20 + i, 0x02]))
                },
                car: CarConfig::tesla().with_vin(Some(&twc_sim::sample_vin(i as u32))),
            })
            .collect();
        let (comms, sim) = duplex_pair(slaves);
        let mut cfg = EngineConfig {
            master: MasterConfig {
                wiring_max_all: CentiAmps::from_f64(WIRING_ALL),
                wiring_max_per_twc: CentiAmps::from_f64(WIRING_PER),
                ..MasterConfig::default()
            },
            consumption_includes_chargers: false,
            ..EngineConfig::default()
        };
        cfg.policy.grid.max_import_w = Some(LIMIT_W);
        cfg.policy.grid.safe_amps = 0.0;
        let meter = LiveMeter { house_w, pv_w, sim: sim.clone() };
        let eng = engine::spawn(
            cfg,
            Box::new(comms),
            vec![SourceSpec {
                name: "meter".into(),
                source: Box::new(meter),
                poll: PollSettings {
                    interval: Duration::from_secs(1),
                    stale_after: Duration::from_secs(10),
                },
            }],
            Settings {
                non_scheduled_amps: 16.0,
                ..Settings::default()
            },
        );
        let h = Arc::new(eng.handle);
        tokio::time::sleep(Duration::from_secs(10)).await;
        for cmd in cmds {
            let before = h.status().settings;
            let r = h.command(cmd.clone()).await;
            if let Err(e) = &r {
                prop_assert!(
                    matches!(e, CommandError::Invalid(_) | CommandError::Unavailable(_)),
                    "{cmd:?}: {e:?}"
                );
                prop_assert_eq!(&h.status().settings, &before, "refused {:?} changed settings", cmd);
            }
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let st = h.status();
                // Invariant 1 on what the engine offers and what the simulated slaves hold.
                let sum: f64 = st.slaves.iter().map(|s| s.offered.amps()).sum();
                prop_assert!(sum <= WIRING_ALL + 1e-9, "Σ offered {sum} after {cmd:?}");
                for s in &st.slaves {
                    prop_assert!(s.offered.amps() <= WIRING_PER + 1e-9, "{} offered {}", s.id, s.offered);
                }
                let held: f64 = sim.slaves().iter().map(|s| s.limit.amps()).sum();
                prop_assert!(held <= WIRING_ALL + 1e-9, "Σ held by slaves {held}");
                // Invariant 4: the budget leaves the grid within the (stricter) limit.
                let limit = match st.settings.max_grid_import {
                    Some(GridLimit { value, unit: OffsetUnit::W }) => value.min(LIMIT_W),
                    Some(GridLimit { value, unit: OffsetUnit::A }) => (value * 230.0).min(LIMIT_W),
                    None => LIMIT_W,
                };
                let house_import = house_w - pv_w;
                let planned = house_import + st.policy.budget.amps() * 230.0;
                if house_import <= limit {
                    prop_assert!(planned <= limit + 1.0,
                        "planned import {planned:.0} W > limit {limit:.0} W (budget {}) after {cmd:?}",
                        st.policy.budget);
                } else {
                    prop_assert_eq!(st.policy.budget, CentiAmps::ZERO);
                }
            }
        }
        let _ = h.command(Command::Shutdown).await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn no_command_sequence_breaks_the_limits(
        house_w in 0.0f64..7000.0,
        pv_w in 0.0f64..8000.0,
        cmds in proptest::collection::vec(arb_command(), 1..12),
    ) {
        check_case(house_w, pv_w, cmds)?;
    }
}
