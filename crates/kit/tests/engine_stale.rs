//! Engine-level: a source that starts failing is never read as 0 W. Its last reading ages, the
//! status shows the error and its count, and once the reading is stale green tracking ramps down
//! to 0 A and the grid limit falls back to its safe current. Paused time, in-process slaves.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use twc_core::engine::{EngineConfig, SourceSpec, spawn};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, EnergyReading, Settings, Status};
use twc_core::plugin::{EmsSource, ErrorKind, PluginError, PollSettings};
use twc_sim::{FleetSpec, duplex_pair};

struct Scripted {
    fail: Arc<AtomicBool>,
    reading: EnergyReading,
}

#[async_trait]
impl EmsSource for Scripted {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(PluginError::new(
                ErrorKind::Transient,
                "scripted",
                "GET /meter: HTTP 503",
            ));
        }
        Ok(EnergyReading {
            measured_at: tokio::time::Instant::now(),
            ..self.reading.clone()
        })
    }
}

fn start(
    reading: EnergyReading,
    cfg: impl FnOnce(&mut EngineConfig),
    settings: Settings,
) -> (twc_core::engine::EngineHandle, Arc<AtomicBool>) {
    let spec = FleetSpec {
        count: 1,
        plugged_in: vec![true],
        ..FleetSpec::default()
    };
    let (comms, _sim) = duplex_pair(spec.build());
    let mut c = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(32),
            ..MasterConfig::default()
        },
        consumption_includes_chargers: false,
        ..EngineConfig::default()
    };
    cfg(&mut c);
    let fail = Arc::new(AtomicBool::new(false));
    let source = SourceSpec {
        name: "meter".into(),
        source: Box::new(Scripted {
            fail: fail.clone(),
            reading,
        }),
        poll: PollSettings {
            interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(20),
        },
    };
    let engine = spawn(c, Box::new(comms), vec![source], settings);
    (engine.handle, fail)
}

fn offered(s: &Status) -> f64 {
    s.slaves.iter().map(|x| x.offered.amps()).sum()
}

#[tokio::test(start_paused = true)]
async fn a_failing_source_ages_then_green_ramps_down() {
    let settings = Settings {
        non_scheduled_action: "green".into(),
        ..Settings::default()
    };
    // 7 kW of PV, 400 W of house: a surplus worth well over the minimum.
    let reading = EnergyReading {
        generation_w: Some(7000.0),
        consumption_w: Some(400.0),
        grid_w: Some(-6600.0),
        ..EnergyReading::default()
    };
    let (h, fail) = start(reading, |_| {}, settings);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let s = h.status();
    assert!(
        s.policy.budget.amps() > 6.0,
        "green charging never started: {:?}",
        s.policy
    );
    assert!(offered(&s) > 6.0, "no current offered: {:?}", s.slaves);

    fail.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let s = h.status();
    let src = &s.sources[0];
    assert!(
        src.errors >= 1
            && src
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("HTTP 503")),
        "{src:?}"
    );
    assert!(!src.stale, "still within stale_after: {src:?}");
    assert_eq!(
        src.last.as_ref().and_then(|r| r.generation_w),
        Some(7000.0),
        "the last reading is kept, not zeroed"
    );
    assert!(
        s.policy.budget.amps() > 6.0,
        "an ageing reading still counts: {:?}",
        s.policy
    );

    tokio::time::sleep(Duration::from_secs(30)).await;
    let s = h.status();
    assert!(s.sources[0].stale, "{:?}", s.sources[0]);
    assert!(
        s.sources[0].age_secs.is_some_and(|a| a > 20.0),
        "{:?}",
        s.sources[0]
    );
    assert_eq!(
        s.policy.budget.amps(),
        0.0,
        "green must ramp down on a stale reading: {:?}",
        s.policy
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        offered(&h.status()),
        0.0,
        "current still offered after the source went stale"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_grid_reading_falls_back_to_the_safe_current() {
    let settings = Settings {
        non_scheduled_action: "charge".into(),
        non_scheduled_amps: 32.0,
        ..Settings::default()
    };
    // Importing 10 A worth under a 25 A import limit.
    let reading = EnergyReading {
        generation_w: Some(0.0),
        consumption_w: Some(2300.0),
        grid_w: Some(2300.0),
        ..EnergyReading::default()
    };
    let (h, fail) = start(
        reading,
        |c| {
            c.policy.grid.max_import_amps = Some(25.0);
            c.policy.grid.safe_amps = 8.0;
        },
        settings,
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let s = h.status();
    // Fresh: the measured grid power is used directly, and there is headroom under the limit.
    assert!(s.policy.grid_headroom_amps.is_some(), "{:?}", s.policy);
    assert_ne!(
        s.policy.limited_by.as_deref(),
        Some("stale"),
        "{:?}",
        s.policy
    );
    assert!(s.policy.budget.amps() > 8.0, "{:?}", s.policy);

    fail.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let s = h.status();
    assert!(s.sources[0].stale);
    assert_eq!(s.policy.budget.amps(), 8.0, "{:?}", s.policy);
    assert_eq!(
        s.policy.limited_by.as_deref(),
        Some("stale"),
        "{:?}",
        s.policy
    );
}
