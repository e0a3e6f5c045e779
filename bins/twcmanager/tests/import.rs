//! `twcmanager import-config` on TWCManager's own configuration files: what it writes passes the
//! real `check-config` (run as a second command on the written file), and the saved settings
//! pass the start-up check of `run`.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twcmanager"));
    c.env_remove("RUST_LOG");
    c
}

fn fixture(name: &str) -> String {
    format!(
        "{}/../../crates/import/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Problems `check-config` may report only because this test binary was built without the
/// plugin (CI builds with `--features full`, where none may remain).
fn only_missing_features(err: &str) -> bool {
    err.lines()
        .filter(|l| l.trim_start().starts_with("- "))
        .all(|l| l.contains("not compiled into this binary"))
}

fn import_and_check(config: &str, settings: Option<&str>) -> (String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut cmd = bin();
    cmd.arg("import-config").arg(fixture(config));
    if let Some(s) = settings {
        cmd.arg(fixture(s));
    }
    let out = cmd.arg("--out").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let written = dir.join("config.toml");
    assert!(written.exists(), "{stdout}\n{stderr}");
    let check = bin().arg("check-config").arg(&written).output().unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr).to_string();
    if cfg!(feature = "full") {
        assert_eq!(
            out.status.code(),
            Some(0),
            "import-config: {stdout}\n{stderr}"
        );
        assert_eq!(check.status.code(), Some(0), "check-config: {check_err}");
    } else {
        assert!(
            check.status.success() || only_missing_features(&check_err),
            "check-config: {check_err}"
        );
    }
    (stdout, dir)
}

#[test]
fn twcmanager_sample_config_imports_and_passes_check_config() {
    let (stdout, dir) = import_and_check("twcmanager-sample-config.json", None);
    assert!(
        stdout.contains("config.wiringMaxAmpsAllTWCs -> [wiring] max_amps_all_twcs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("vehicle.TeslaMate.db_host: not mapped"),
        "{stdout}"
    );
    let toml = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(toml.contains("# Not mapped (and why):"));
    assert!(
        dir.join("settings.json").exists(),
        "greenEnergyFlexAmps goes to the settings"
    );
}

#[test]
fn twcmanager_test_config_imports_and_passes_check_config() {
    import_and_check("twcmanager-testconfig.json", None);
}

#[test]
fn documented_config_and_settings_import_and_the_settings_load() {
    let (_, dir) = import_and_check(
        "twcmanager-docs-config.json",
        Some("twcmanager-settings.json"),
    );
    let toml = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let settings_path = dir.join("settings.json");
    assert!(
        toml.contains(&format!("path = \"{}\"", settings_path.display())),
        "[settings] path points at the converted settings"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings_path).unwrap()).unwrap();
    assert_eq!(s["non_scheduled_action"], "green");
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "# mine\n").unwrap();
    let out = bin()
        .args([
            "import-config",
            &fixture("twcmanager-testconfig.json"),
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        "# mine\n"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"config\": {}}").unwrap();
    let out = bin()
        .args(["import-config"])
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wiringMaxAmpsAllTWCs"));
    assert!(!Path::new(&dir.path().join("x/config.toml")).exists());
}

#[test]
fn settings_path_names_where_the_settings_will_live() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "import-config",
            &fixture("twcmanager-testconfig.json"),
            "--out",
        ])
        .arg(dir.path())
        .args(["--settings-path", "/var/lib/twcmanager/settings.json"])
        .output()
        .unwrap();
    let toml = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(
        toml.contains("path = \"/var/lib/twcmanager/settings.json\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("settings.json").exists());
}
