//! Settings persistence: round trip, defaults for old files, and atomicity under `kill -9`.
//!
//! The kill test re-runs this test binary as a child that saves settings in a tight loop, kills
//! it with SIGKILL at random moments (many times), and checks after every kill that the file
//! parses and is one complete version (its fields agree with each other).

use std::process::{Command, Stdio};
use std::time::Duration;
use twc_core::model::{ConsumptionOffset, OffsetUnit, Settings};
use twc_core::settings_store::SettingsStore;

const CHILD_ENV: &str = "TWC_SETTINGS_STORE_CHILD";

/// A settings value whose fields all derive from `n`, so a torn or mixed file is detectable.
fn version(n: u64) -> Settings {
    let mut s = Settings {
        non_scheduled_amps: (n % 32) as f64,
        ..Settings::default()
    };
    s.extra.insert("n".into(), n.to_string());
    // Make the file large enough that a write takes several syscalls.
    for i in 0..200 {
        s.consumption_offsets.insert(
            format!("offset-{i:03}"),
            ConsumptionOffset {
                value: (n * 1000 + i) as f64,
                unit: OffsetUnit::W,
            },
        );
    }
    s
}

fn consistent(s: &Settings) -> Option<u64> {
    let n: u64 = s.extra.get("n")?.parse().ok()?;
    (*s == version(n)).then_some(n)
}

/// Not a test on its own: when started by `kill_minus_nine_never_leaves_a_torn_file` with the
/// environment variable set, it saves forever until killed.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SettingsStore::new(path);
    let mut n = std::env::var("TWC_SETTINGS_STORE_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0u64);
    loop {
        n += 1;
        store.save(&version(n)).expect("save");
    }
}

#[test]
fn round_trip_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SettingsStore::new(dir.path().join("settings.json"));
    assert_eq!(store.load().unwrap(), None);
    let s = version(7);
    store.save(&s).unwrap();
    assert_eq!(store.load().unwrap(), Some(s));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("settings.json")]);
}

#[test]
fn old_files_get_defaults_and_garbage_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, r#"{"non_scheduled_action":"green"}"#).unwrap();
    let s = SettingsStore::new(&path).load().unwrap().unwrap();
    assert_eq!(s.non_scheduled_action, "green");
    assert_eq!(s.flex_amps, 0.0);
    std::fs::write(&path, "{\"non_sched").unwrap();
    let e = SettingsStore::new(&path).load().unwrap_err().to_string();
    assert!(e.contains("s.json"), "{e}");
}

#[test]
fn kill_minus_nine_never_leaves_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    let store = SettingsStore::new(&path);
    store.save(&version(0)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last = 0u64;
    let mut advanced = 0;
    for round in 0..25u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_writer",
                "--test-threads",
                "1",
                "--nocapture",
            ])
            .env(CHILD_ENV, &path)
            .env("TWC_SETTINGS_STORE_START", (last + 1_000_000).to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a different moment each round (5 ms … 77 ms into the writing).
        std::thread::sleep(Duration::from_millis(5 + (round * 37) % 73));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let s = store
            .load()
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .expect("the file exists");
        let n = consistent(&s).unwrap_or_else(|| panic!("round {round}: a mixed file"));
        if n != last {
            advanced += 1;
        }
        last = n;
        // The next save after a kill works over a leftover temporary file.
        store.save(&s).unwrap();
    }
    assert!(
        advanced >= 10,
        "the child wrote in only {advanced} of 25 rounds"
    );
}

/// Issue #14: the handle reads the engine's settings without sending it a command, and a
/// command's change is there when the command returns (so a read-modify-write never loses it).
#[tokio::test(start_paused = true)]
async fn the_handle_reads_the_settings_a_command_made_without_a_command() {
    use twc_core::engine::{self, Command, EngineConfig};
    use twc_core::model::Settings;
    let (ours, theirs) = tokio::io::duplex(4096);
    let eng = engine::spawn(
        EngineConfig::default(),
        Box::new(twc_core::transport::StreamComms::new(ours, "bus")),
        Vec::new(),
        Settings::default(),
    );
    let h = eng.handle;
    assert_eq!(h.settings(), Settings::default());
    let watch = h.watch_settings();
    let after = h
        .command(Command::SetNonScheduled {
            action: None,
            amps: Some(5.0),
        })
        .await
        .expect("accepted");
    assert_eq!(h.settings(), after);
    assert_eq!(h.settings().non_scheduled_amps, 5.0);
    assert!(watch.has_changed().unwrap(), "a change is seen by watchers");
    drop(theirs);
}
