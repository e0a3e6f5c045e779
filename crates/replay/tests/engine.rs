//! The policy inside the running engine with simulated TWCs (paused time): VIN allow/deny lists
//! (with the log line saying why), sharing priority, Charge Now ending, and settings saved after
//! every settings-changing command.

use std::time::Duration;
use twc_core::engine::{self, Command, CommandError, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Settings};
use twc_core::protocol::TwcId;
use twc_core::settings_store::SettingsStore;
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair, sample_vin};

fn two_cars(
    settings: Settings,
    store: Option<SettingsStore>,
) -> (EngineHandle, twc_sim::SimHandle) {
    let slaves: Vec<SimSlave> = (0..2u8)
        .map(|i| SimSlave {
            slave: SlaveConfig {
                volts: [230, 0, 0],
                ..SlaveConfig::eu().with_id(TwcId([0x30 + i, 0x03]))
            },
            car: CarConfig::tesla().with_vin(Some(&sample_vin(i as u32))),
        })
        .collect();
    let (comms, sim) = duplex_pair(slaves);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        settings_store: store,
        ..EngineConfig::default()
    };
    let eng = engine::spawn(cfg, Box::new(comms), Vec::new(), settings);
    (eng.handle, sim)
}

/// Offered whole amps by car (slave 30 03 has the car with `sample_vin(0)`, 31 03 `sample_vin(1)`).
fn offered(h: &EngineHandle) -> Vec<(String, u16)> {
    h.status()
        .slaves
        .iter()
        .map(|s| (sample_vin(u32::from(s.id.0[0] - 0x30)), s.offered.0 / 100))
        .collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_denied_car_gets_zero_with_a_log_line_and_the_allow_list_admits_only_its_members() {
    // Other tests in this binary run in parallel without a subscriber: see `twc_testkit::logs`.
    let log = twc_testkit::logs::capture(tracing::Level::INFO);
    let (v0, v1) = (sample_vin(0), sample_vin(1));
    let settings = Settings {
        non_scheduled_amps: 32.0,
        vin_deny: vec![v1.clone()],
        ..Settings::default()
    };
    let (h, sim) = two_cars(settings, None);
    tokio::time::sleep(Duration::from_secs(40)).await;
    let o = offered(&h);
    assert!(
        o.contains(&(v0.clone(), 16)) && o.contains(&(v1.clone(), 0)),
        "{o:?}"
    );
    // It stays stopped (no start/stop cycling once its VIN is known).
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(offered(&h).contains(&(v1.clone(), 0)), "{:?}", offered(&h));
    }
    assert!(
        sim.slave(1).unwrap().actual.0 < 100,
        "the denied car still draws"
    );
    let text = log.text();
    assert!(
        text.contains("Car not allowed to charge")
            && text.contains(&format!("VIN {v1} is in the deny list")),
        "{text}"
    );
    // Allow list: only v1 (and the deny list emptied).
    h.command(Command::SetVinLists {
        allow: Some(vec![v1.clone()]),
        deny: Some(vec![]),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let o = offered(&h);
    assert!(
        o.contains(&(v0.clone(), 0)) && o.contains(&(v1.clone(), 16)),
        "{o:?}"
    );
    assert!(
        log.text()
            .contains(&format!("VIN {v0} is not in the allow list"))
    );
    // A malformed VIN is refused, not stored.
    let e = h
        .command(Command::SetVinLists {
            allow: Some(vec!["not a vin!".into()]),
            deny: None,
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a vin!"), "{e}");
    h.command(Command::Shutdown).await.unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn priority_serves_the_preferred_car_first() {
    let (v0, v1) = (sample_vin(0), sample_vin(1));
    let settings = Settings {
        non_scheduled_amps: 10.0,
        ..Settings::default()
    };
    let (h, _sim) = two_cars(settings, None);
    tokio::time::sleep(Duration::from_secs(40)).await;
    // 10 A cannot give two cars 6 A each: one charges, at equal priority the lower TWCID.
    let o = offered(&h);
    assert!(
        o.contains(&(v0.clone(), 10)) && o.contains(&(v1.clone(), 0)),
        "{o:?}"
    );
    // By TWCID (a VIN priority needs the VIN, which slaves give once the car has drawn current).
    h.command(Command::SetPriority {
        key: "3103".into(),
        priority: Some(10),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let o = offered(&h);
    assert!(
        o.contains(&(v0.clone(), 0)) && o.contains(&(v1.clone(), 10)),
        "{o:?}"
    );
    h.command(Command::Shutdown).await.unwrap();
}

/// The settings as saved once the writer task (off the engine loop) has caught up.
async fn saved_when(store: &SettingsStore, ok: impl Fn(&Settings) -> bool) -> Settings {
    for _ in 0..200 {
        if let Some(s) = store.load().unwrap()
            && ok(&s)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the settings were not saved as expected: {:?}",
        store.load()
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn settings_are_saved_after_each_change_and_charge_now_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = SettingsStore::new(dir.path().join("settings.json"));
    let (h, _sim) = two_cars(Settings::default(), Some(store.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        store.load().unwrap(),
        None,
        "nothing changed yet, nothing written"
    );
    h.command(Command::SetFlexAmps(2.0)).await.unwrap();
    saved_when(&store, |s| s.flex_amps == 2.0).await;
    // Invalid: refused and not saved.
    assert!(h.command(Command::SetFlexAmps(-1.0)).await.is_err());
    assert_eq!(store.load().unwrap().unwrap().flex_amps, 2.0);
    h.command(Command::ChargeNow {
        amps: 20.0,
        duration: Duration::from_secs(600),
    })
    .await
    .unwrap();
    saved_when(&store, |s| s.charge_now.is_some()).await;
    assert_eq!(h.status().policy.name, "Charge Now");
    tokio::time::sleep(Duration::from_secs(601)).await;
    assert_eq!(h.status().policy.name, "Non Scheduled Charging");
    let saved = saved_when(&store, |s| s.charge_now.is_none()).await;
    assert_eq!(saved, h.status().settings);
    h.command(Command::Shutdown).await.unwrap();
}

/// A meter that answers until `fail_after`, then fails every read.
struct FailingMeter {
    start: tokio::time::Instant,
    fail_after: Duration,
    sim: twc_sim::SimHandle,
}

#[twc_core::async_trait]
impl twc_core::plugin::EmsSource for FailingMeter {
    async fn read(&self) -> Result<twc_core::model::EnergyReading, twc_core::plugin::PluginError> {
        if self.start.elapsed() >= self.fail_after {
            return Err(twc_core::plugin::PluginError::new(
                twc_core::plugin::ErrorKind::Transient,
                "meter",
                "connection refused",
            ));
        }
        let charger: f64 = self
            .sim
            .slaves()
            .iter()
            .map(|s| s.actual.amps() * 230.0)
            .sum();
        Ok(twc_core::model::EnergyReading {
            generation_w: Some(6000.0),
            consumption_w: Some(500.0),
            grid_w: Some(500.0 + charger - 6000.0),
            ..twc_core::model::EnergyReading::default()
        })
    }
}

async fn stale_case(
    settings: Settings,
    grid_limit: Option<f64>,
) -> Vec<(u64, f64, Option<String>)> {
    let slaves = vec![SimSlave {
        slave: SlaveConfig {
            volts: [230, 0, 0],
            ..SlaveConfig::eu().with_id(TwcId([0x40, 0x04]))
        },
        car: CarConfig::tesla(),
    }];
    let (comms, sim) = duplex_pair(slaves);
    let mut cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(32),
            ..MasterConfig::default()
        },
        consumption_includes_chargers: false,
        ..EngineConfig::default()
    };
    cfg.policy.grid.max_import_w = grid_limit;
    cfg.policy.grid.safe_amps = 8.0;
    cfg.policy.green.start_delay_secs = 10.0;
    let meter = FailingMeter {
        start: tokio::time::Instant::now(),
        fail_after: Duration::from_secs(120),
        sim: sim.clone(),
    };
    let eng = engine::spawn(
        cfg,
        Box::new(comms),
        vec![engine::SourceSpec {
            name: "meter".into(),
            source: Box::new(meter),
            poll: twc_core::plugin::PollSettings {
                interval: Duration::from_secs(5),
                stale_after: Duration::from_secs(30),
            },
        }],
        settings,
    );
    let mut out = Vec::new();
    for t in (10..=200).step_by(10) {
        tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(10)).await;
        let st = eng.handle.status();
        out.push((t, st.policy.budget.amps(), st.policy.limited_by.clone()));
    }
    eng.handle.command(Command::Shutdown).await.unwrap();
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_meter_stops_green_and_drops_fixed_amps_to_the_safe_current() {
    // Green: 5500 W surplus ≈ 23.9 A while the meter works; once its last reading is older than
    // 30 s (it fails from 120 s; last good reading ≤ 120 s), 0 A.
    let green = stale_case(
        Settings {
            non_scheduled_action: "green".into(),
            ..Settings::default()
        },
        None,
    )
    .await;
    for (t, budget, _) in &green {
        match *t {
            40..=110 => assert!(*budget > 20.0, "{green:?}"),
            160.. => assert_eq!(*budget, 0.0, "{green:?}"),
            _ => {}
        }
    }
    // Fixed 32 A with a 9 kW grid limit: the limit allows it while readings are fresh, then the
    // safe current (8 A).
    let fixed = stale_case(
        Settings {
            non_scheduled_amps: 32.0,
            ..Settings::default()
        },
        Some(9000.0),
    )
    .await;
    for (t, budget, limited_by) in &fixed {
        match *t {
            20..=110 => assert_eq!(*budget, 32.0, "{fixed:?}"),
            160.. => {
                assert_eq!(*budget, 8.0, "{fixed:?}");
                assert_eq!(limited_by.as_deref(), Some("stale"));
            }
            _ => {}
        }
    }
}

/// Issue #12, case 8: a whole-settings replace or patch may not set a Charge Now without amps
/// or ending centuries ahead (they skipped the checks before), and a patch applies to the
/// settings as they are when the engine gets it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn charge_now_is_checked_on_every_path_and_patches_apply_to_current_settings() {
    let (h, _sim) = two_cars(Settings::default(), None);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut far = h.status().settings;
    far.charge_now = Some(twc_core::model::ChargeNow {
        amps: 16.0,
        until_unix: i64::MAX,
    });
    assert!(matches!(
        h.command(Command::ReplaceSettings(Box::new(far))).await,
        Err(CommandError::Invalid(_))
    ));
    let patch = serde_json::json!({ "charge_now": { "amps": 0.0, "until_unix": 1 } });
    assert!(matches!(
        h.command(Command::PatchSettings(patch)).await,
        Err(CommandError::Invalid(_))
    ));
    assert_eq!(h.status().settings.charge_now, None);
    // A patch applies to the settings as they are (no stale write-back).
    h.command(Command::SetFlexAmps(3.0)).await.unwrap();
    h.command(Command::PatchSettings(
        serde_json::json!({ "non_scheduled_amps": 10.0 }),
    ))
    .await
    .unwrap();
    let s = h.status().settings;
    assert_eq!((s.flex_amps, s.non_scheduled_amps), (3.0, 10.0));
    h.command(Command::Shutdown).await.unwrap();
}

/// Issue #13, item 5: a session ends when its slave times out and when twcmanager stops (with an
/// end time and energy), its energy has better than 1 kWh resolution, and the shutdown log says
/// how many slaves confirmed 0 A.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn sessions_end_on_timeout_and_on_shutdown_with_fine_energy() {
    // Other tests in this binary run in parallel without a subscriber: see `twc_testkit::logs`.
    let log = twc_testkit::logs::capture(tracing::Level::INFO);
    let settings = Settings {
        non_scheduled_amps: 32.0,
        ..Settings::default()
    };
    let (h, sim) = two_cars(settings, None);
    let mut events = h.subscribe();
    tokio::time::sleep(Duration::from_secs(600)).await;
    // 16 A each (15.2 A drawn) for about ten minutes: ~0.55 kWh, not 0 or 1.
    let kwh: Vec<f64> = h.status().slaves.iter().map(|s| s.session_kwh).collect();
    assert!(
        kwh.iter().all(|k| (0.45..0.62).contains(k)),
        "session energy {kwh:?}"
    );
    // Cut slave 0: its session ends when it times out.
    sim.set_cut(0, true).unwrap();
    tokio::time::sleep(Duration::from_secs(40)).await;
    let cut_id = sim.slave(0).unwrap().id;
    let mut ended = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let twc_core::model::Event::SessionEnded { session, .. } = e {
            ended.push((session.slave, session.energy_kwh));
        }
    }
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].0, cut_id);
    assert!(ended[0].1 > 0.45, "{ended:?}");
    // Stop: the other session ends too; slave 0 was forgotten, so every linked slave confirms.
    sim.set_cut(1, true).unwrap();
    h.command(Command::Shutdown).await.unwrap();
    let mut ended = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let twc_core::model::Event::SessionEnded { session, .. } = e {
            ended.push(session.slave);
        }
    }
    assert_eq!(ended, vec![sim.slave(1).unwrap().id]);
    let text = log.text();
    assert!(
        text.contains("not every slave confirmed 0 A"),
        "a slave that did not answer is not claimed to hold 0 A:\n{}",
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
}

/// Issue #12: the engine's wall clock follows the system clock when NTP steps it (a Pi boots
/// with a stale clock, then NTP corrects it): a schedule window that the step puts us in
/// applies at once, not after the engine's own elapsed time gets there.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_wall_clock_follows_an_ntp_step_into_a_schedule_window() {
    use chrono::{TimeZone, Utc};
    use std::sync::{Arc, Mutex};
    use twc_core::engine::WallClock;
    use twc_core::model::{Schedule, ScheduleWindow};
    // Friday 2026-12-04, 21:58 UTC; the window is Friday 22:00–23:00 UTC.
    let system = Arc::new(Mutex::new(
        Utc.with_ymd_and_hms(2026, 12, 4, 21, 58, 0).unwrap(),
    ));
    let read = system.clone();
    let settings = Settings {
        non_scheduled_action: "stop".into(),
        schedule: Schedule {
            enabled: true,
            amps: 16.0,
            windows: vec![ScheduleWindow {
                weekday: 5,
                start_minute: 22 * 60,
                end_minute: 23 * 60,
            }],
            ..Schedule::default()
        },
        ..Settings::default()
    };
    let (comms, _sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig::eu().with_id(TwcId([0x30, 0x03])),
        car: CarConfig::tesla(),
    }]);
    let mut cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(32),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        clock: Some(WallClock(Arc::new(move || *read.lock().unwrap()))),
        ..EngineConfig::default()
    };
    cfg.policy.rules.utc_offset = "+00:00".into();
    let h = engine::spawn(cfg, Box::new(comms), Vec::new(), settings).handle;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let st = h.status();
    assert_ne!(st.policy.name, "Scheduled Charging", "{:?}", st.policy);
    assert!(
        st.slaves.iter().all(|s| s.offered.0 == 0),
        "{:?}",
        st.slaves
    );
    // NTP steps the system clock forward by two and a half minutes.
    *system.lock().unwrap() = Utc.with_ymd_and_hms(2026, 12, 4, 22, 0, 30).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = h.status();
    assert_eq!(st.policy.name, "Scheduled Charging", "{:?}", st.policy);
    assert!(
        st.slaves.iter().any(|s| s.offered.0 >= 1600),
        "{:?}",
        st.slaves
    );
}

/// Issue #14: every plugin task runs in one span shape, `plugin{kind=… plugin=…}`, so a source's
/// own log lines carry its kind and name without the plugin adding them, also those of a task
/// the plugin starts itself (with `twc_core::plugin::spawn`).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_sources_log_lines_carry_the_plugin_span() {
    use twc_core::model::EnergyReading;
    use twc_core::plugin::{EmsSource, PluginError, PollSettings};
    struct Chatty;
    #[twc_core::async_trait]
    impl EmsSource for Chatty {
        async fn read(&self) -> Result<EnergyReading, PluginError> {
            tracing::warn!("chatty source says hello");
            twc_core::plugin::spawn(async { tracing::warn!("chatty's own task says hello") });
            Ok(EnergyReading::default())
        }
    }
    let log = twc_testkit::logs::capture(tracing::Level::INFO);
    let (comms, _sim) = duplex_pair(Vec::new());
    let sources = vec![engine::SourceSpec {
        name: "chatty".into(),
        source: Box::new(Chatty),
        poll: PollSettings {
            interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
        },
    }];
    let _eng = engine::spawn(
        EngineConfig::default(),
        Box::new(comms),
        sources,
        Settings::default(),
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("chatty source says hello"))
        .unwrap_or_else(|| panic!("no line from the source:\n{text}"));
    assert!(
        line.contains("plugin{kind=\"ems\" plugin=\"chatty\"}"),
        "{line}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("chatty's own task says hello"))
        .unwrap_or_else(|| panic!("no line from the source's task:\n{text}"));
    assert!(
        line.contains("plugin{kind=\"ems\" plugin=\"chatty\"}"),
        "{line}"
    );
}
