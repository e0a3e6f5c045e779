//! Embedding twc-core: run the engine on your own transport, watch its status, send it commands.
//! The engine is started and stopped by `twc-runtime`, the same assembly the `twcmanager` daemon
//! uses: add event sinks, status publishers and control surfaces to [`twc_runtime::Parts`] and
//! they are started and stopped in the daemon's order (sinks subscribe before the engine runs and
//! are flushed after it stops).
//!
//! Here the "bus" is two simulated TWCs from `twc-sim` over an in-memory stream; with real
//! hardware you would wrap your serial port or TCP stream in `twc_core::transport::StreamComms`.
//! The clock is paused, so the ten simulated minutes below take a fraction of a second.
//!
//!     cargo run -p twc-example-embed-core

use std::time::Duration;
use twc_core::engine::{Command, EngineConfig};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Settings};
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let slaves = vec![
        SimSlave {
            slave: SlaveConfig::eu(),
            car: CarConfig::tesla(),
        },
        SimSlave {
            slave: SlaveConfig::eu(),
            car: CarConfig::none(),
        },
    ];
    let (comms, sim) = duplex_pair(slaves);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let settings = Settings {
        non_scheduled_amps: 12.0,
        ..Settings::default()
    };
    let engine = twc_runtime::start(twc_runtime::Parts::new(cfg, Box::new(comms), settings))
        .await
        .expect("no control surface to fail");

    tokio::time::sleep(Duration::from_secs(60)).await;
    print_status("after one minute at 12 A", &engine.handle.status());

    // Ask for more; the engine validates (above the wiring limit would be refused, not clamped).
    let refused = engine
        .handle
        .command(Command::ChargeNow {
            amps: 40.0,
            duration: Duration::from_secs(3600),
        })
        .await;
    println!("charge now at 40 A: {refused:?}");
    engine
        .handle
        .command(Command::ChargeNow {
            amps: 24.0,
            duration: Duration::from_secs(3600),
        })
        .await
        .expect("24 A is within the wiring limit");
    tokio::time::sleep(Duration::from_secs(9 * 60)).await;
    print_status(
        "ten minutes in, Charge Now at 24 A",
        &engine.handle.status(),
    );
    for s in sim.slaves() {
        println!("  simulated slave {:?}", s);
    }

    // 0 A to every slave, the engine awaited, the sinks (none here) flushed.
    engine.shutdown().await;
}

fn print_status(title: &str, s: &twc_core::model::Status) {
    println!(
        "{title}: policy {:?}, budget {}",
        s.policy.name, s.policy.budget
    );
    for sl in &s.slaves {
        println!(
            "  slave {} offered {} draws {} ({})",
            sl.id, sl.offered, sl.actual, sl.state_name
        );
    }
}
