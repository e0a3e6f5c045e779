//! The real binary: configuration layering, check-config, plugins, and (with the dummy transport
//! compiled in) the demo linking two simulated slaves and shutting down cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twcmanager"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn environment_overrides_the_file_and_problems_name_the_key() {
    let out = bin()
        .args(["check-config", "config/demo.toml"])
        .env("TWCMANAGER__WIRING__MAX_AMPS_ALL_TWCS", "-3")
        .env("TWCMANAGER__SITE__PHASES", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[wiring] max_amps_all_twcs = -3"), "{err}");
    assert!(err.contains("[site] phases = 2: expected 1 or 3"), "{err}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = bin()
        .args(["run", "--config", "no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.toml does not exist"));
}

#[test]
fn plugins_lists_what_is_compiled_in() {
    let out = bin().arg("plugins").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.contains("dummy"),
        cfg!(feature = "comms-dummy"),
        "{text}"
    );
}

#[cfg(feature = "comms-dummy")]
#[test]
fn the_demo_links_both_slaves_within_five_seconds_and_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!("twc-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = bin()
        .args(["run", "--config", "config/demo.toml"])
        .env("TWCMANAGER__SETTINGS__PATH", dir.join("settings.json"))
        .env("TWCMANAGER__CONTROL__HTTP__ENABLED", "false")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut linked = 0;
    let mut offered = false;
    let mut log = Vec::new();
    while start.elapsed() < Duration::from_secs(5) && !(linked >= 2 && offered) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            linked += usize::from(line.contains("Slave linked"));
            offered |= line.contains("Offer changed");
            log.push(line);
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(
        linked >= 2 && offered,
        "within 5 s: {linked} slaves linked, offer logged {offered}\n{log}"
    );
    assert!(status.success(), "exit status {status}\n{log}");
    assert!(log.contains("offering 0 A to every slave"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}
