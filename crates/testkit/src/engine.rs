//! The real engine over simulated TWCs (`twc-sim`), for tests of control surfaces and status
//! publishers, started by the runtime (`twc_runtime::start`) as the daemon starts it.

use std::time::Duration;
use twc_core::engine::EngineConfig;
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Settings, Status};
use twc_core::protocol::TwcId;
pub use twc_runtime::Parts;
pub use twc_runtime::Running;
use twc_sim::{CarConfig, SimHandle, SimSlave, SlaveConfig};

/// The simulated TWC's id.
pub const TWC: TwcId = TwcId::from_u16(0x7777);

/// The engine (32 A for the site, 16 A per TWC, min 6 A) over one simulated TWC `7777` with a
/// Tesla plugged in; waits until it has linked.
pub async fn engine_with_twc(settings: Settings) -> (Running, SimHandle) {
    engine_with_twc_and(settings, |_| {}).await
}

/// As [`engine_with_twc`], with `extra` adding to the runtime's parts first (event sinks,
/// status publishers).
pub async fn engine_with_twc_and(
    settings: Settings,
    extra: impl FnOnce(&mut Parts),
) -> (Running, SimHandle) {
    let (comms, sim) = twc_sim::duplex_pair(vec![SimSlave {
        slave: SlaveConfig::eu().with_id(TWC),
        car: CarConfig::tesla(),
    }]);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let mut parts = Parts::new(cfg, Box::new(comms), settings);
    extra(&mut parts);
    let engine = twc_runtime::start(parts)
        .await
        .expect("nothing attached that could fail to start");
    let mut rx = engine.handle.watch_status();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if rx.borrow_and_update().slaves.iter().any(|s| s.id == TWC) {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the simulated TWC links within 30 s");
    (engine, sim)
}

/// Wait until the engine's status satisfies `pred`.
pub async fn wait_status(engine: &Running, secs: u64, pred: impl Fn(&Status) -> bool) -> Status {
    let mut rx = engine.handle.watch_status();
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            let s = rx.borrow_and_update().clone();
            if pred(&s) {
                return s;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "status did not reach the expected state within {secs} s: {:?}",
            engine.handle.status().policy
        )
    })
}
