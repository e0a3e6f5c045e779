//! The runtime's order: control surfaces prepare before the engine sends anything, sinks see the
//! engine's first events and are flushed after it stops.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_core::engine::{EngineConfig, EngineHandle};
use twc_core::model::{Event, Settings};
use twc_core::plugin::{ControlSurface, ErrorKind, Logger, PluginError};
use twc_runtime::{Parts, start};
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

#[derive(Default)]
struct Seen {
    events: Vec<String>,
    flushed_after: Option<usize>,
}

struct Memory(Arc<Mutex<Seen>>);

#[twc_core::async_trait]
impl Logger for Memory {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        let name = format!("{event:?}");
        let name = name.split([' ', '{', '(']).next().unwrap_or("").to_string();
        self.0.lock().unwrap().events.push(name);
        Ok(())
    }

    async fn flush(&self) -> Result<(), PluginError> {
        let mut seen = self.0.lock().unwrap();
        seen.flushed_after = Some(seen.events.len());
        Ok(())
    }
}

fn parts() -> (Parts, twc_sim::SimHandle) {
    let (comms, sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig::eu(),
        car: CarConfig::tesla(),
    }]);
    let parts = Parts::new(
        EngineConfig::default(),
        Box::new(comms),
        Settings::default(),
    );
    (parts, sim)
}

#[tokio::test(start_paused = true)]
async fn sinks_see_the_first_events_and_are_flushed_after_the_engine_stops() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (mut parts, sim) = parts();
    parts
        .loggers
        .push(("memory".into(), Box::new(Memory(seen.clone()))));
    let running = start(parts).await.expect("nothing to prepare");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        sim.slaves().iter().all(|s| s.linked),
        "the slave links: {:?}",
        sim.slaves()
    );
    running.shutdown().await;
    let seen = seen.lock().unwrap();
    assert!(
        seen.events.iter().any(|e| e == "SlaveLinked"),
        "the first events reach the sink: {:?}",
        seen.events
    );
    assert_eq!(
        seen.flushed_after,
        Some(seen.events.len()),
        "flushed once, after the last event"
    );
}

struct PortTaken;

#[twc_core::async_trait]
impl ControlSurface for PortTaken {
    async fn serve(self: Box<Self>, _engine: EngineHandle) -> Result<(), PluginError> {
        Ok(())
    }

    async fn prepare(&mut self) -> Result<(), PluginError> {
        Err(PluginError::new(
            ErrorKind::Config,
            "web",
            "[control.web] port 8080 is taken",
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_surface_that_cannot_prepare_ends_the_start_up_before_any_frame() {
    let (mut parts, sim) = parts();
    parts.controls.push(("web".into(), Box::new(PortTaken)));
    let err = match start(parts).await {
        Ok(_) => panic!("the start-up must fail"),
        Err(e) => e,
    };
    assert_eq!(
        (err.control.as_str(), err.message.as_str()),
        ("web", "[control.web] port 8080 is taken")
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        sim.slaves().iter().all(|s| !s.linked),
        "no master ever spoke: {:?}",
        sim.slaves()
    );
}
