//! The importer over TWCManager's own configuration files and reconstructed ones.
use serde_json::Value;
use twc_import::{ImportError, Imported, Options, Outcome, import, parse_lenient};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture exists")
}

fn run(config: &str, settings: Option<&str>) -> (Imported, toml::Table) {
    let imported = import(
        &fixture(config),
        settings.map(fixture).as_deref(),
        &Options::default(),
    )
    .expect("imports");
    let table: toml::Table = imported.config_toml.parse().expect("valid TOML");
    (imported, table)
}

fn get<'a>(t: &'a toml::Table, path: &str) -> &'a toml::Value {
    let mut parts = path.split('.');
    let mut v = t
        .get(parts.next().unwrap())
        .unwrap_or_else(|| panic!("{path} missing"));
    for p in parts {
        v = v.get(p).unwrap_or_else(|| panic!("{path} missing at {p}"));
    }
    v
}

fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Every key of the input has a note (a rule list's note names its entries), and none is the
/// catch-all "not a key TWCManager documents".
fn assert_every_key_noted(config: &str, imported: &Imported) {
    let mut keys = Vec::new();
    leaves("", &parse_lenient(&fixture(config)).unwrap(), &mut keys);
    for k in &keys {
        assert!(
            imported.notes.iter().any(|n| n.file == "config.json"
                && (n.key == *k
                    || n.key.starts_with(&format!("{k}["))
                    || n.key.starts_with(&format!("{k}."))
                    || k.starts_with(&format!("{}.", n.key)))),
            "{config}: key {k} has no note"
        );
    }
    for n in &imported.notes {
        if let Outcome::Skipped { why } = &n.outcome {
            assert!(
                !why.contains("not a key TWCManager documents"),
                "{config}: unknown key {n}"
            );
        }
    }
    assert!(keys.len() > 40, "{config}: only {} keys read", keys.len());
}

#[test]
fn sample_config_maps_every_key() {
    let (imported, t) = run("twcmanager-sample-config.json", None);
    assert_every_key_noted("twcmanager-sample-config.json", &imported);
    assert_eq!(get(&t, "wiring.max_amps_all_twcs").as_float(), Some(6.0));
    assert_eq!(get(&t, "wiring.max_amps_per_twc").as_float(), Some(6.0));
    // 12 A minimum above a 6 A wiring limit: lowered, and said so.
    assert_eq!(get(&t, "wiring.min_amps_per_twc").as_float(), Some(6.0));
    assert!(
        imported
            .config_toml
            .contains("12 A is above wiringMaxAmpsPerTWC")
    );
    assert_eq!(get(&t, "grid.max_import_amps").as_float(), Some(15.0));
    assert_eq!(get(&t, "comms.rs485.enabled").as_bool(), Some(true));
    assert_eq!(get(&t, "comms.rs485.port").as_str(), Some("/dev/ttyUSB0"));
    assert_eq!(get(&t, "comms.dummy.enabled").as_bool(), Some(false));
    assert_eq!(get(&t, "control.http.port").as_integer(), Some(8080));
    assert_eq!(get(&t, "site.voltage").as_float(), Some(240.0));
    assert_eq!(get(&t, "logging.console.level").as_str(), Some("info"));
    // Sentry enabled with an empty DSN cannot work: written disabled, with the reason.
    assert_eq!(get(&t, "logging.sentry.enabled").as_bool(), Some(false));
    assert!(imported.skipped().any(|n| n.key == "logging.Sentry.DSN"));
    // The two grid-limit rules are what our [grid] does anyway: no custom policy.
    assert!(t.get("policy").and_then(|p| p.get("custom")).is_none());
    assert_eq!(
        get(&t, "ems.hass.url").as_str(),
        Some("http://192.168.1.1:8123")
    );
    assert_eq!(
        get(&t, "ems.powerwall.url").as_str(),
        Some("https://192.168.1.2")
    );
    assert_eq!(
        get(&t, "status.mqtt.url").as_str(),
        Some("mqtt://192.168.1.1:1883")
    );
    assert!(
        imported
            .skipped()
            .any(|n| n.key == "vehicle.TeslaMate.db_host")
    );
    assert!(
        imported.settings_json.is_some(),
        "greenEnergyFlexAmps is a runtime setting"
    );
}

#[test]
fn test_config_maps_every_key() {
    let (imported, t) = run("twcmanager-testconfig.json", None);
    assert_every_key_noted("twcmanager-testconfig.json", &imported);
    assert_eq!(get(&t, "comms.dummy.enabled").as_bool(), Some(true));
    assert_eq!(
        get(&t, "comms.dummy.ids").as_array().unwrap()[0].as_str(),
        Some("AB")
    );
    assert_eq!(get(&t, "comms.rs485.enabled").as_bool(), Some(false));
    assert_eq!(
        get(&t, "ems.enphase.url").as_str(),
        Some("http://127.0.0.1:1080")
    );
    assert_eq!(
        get(&t, "ems.smartpi.url").as_str(),
        Some("http://127.0.0.1:1080")
    );
    assert_eq!(
        get(&t, "control.mqtt.url").as_str(),
        Some("mqtt://127.0.0.1:1883")
    );
    assert_eq!(
        get(&t, "logging.files.path").as_str(),
        Some("/tmp/twcmanager/log")
    );
    assert_eq!(get(&t, "logging.files.rotate").as_str(), Some("hourly"));
    assert!(
        get(&t, "logging.sentry.dsn")
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let settings: Value = serde_json::from_str(imported.settings_json.as_deref().unwrap()).unwrap();
    assert_eq!(
        settings["consumption_offsets"]["greenEnergyAmpsOffset"]["value"],
        1.05
    );
    assert!(
        imported
            .skipped()
            .any(|n| n.key == "sources.ScenarioEMS.enabled")
    );
}

#[test]
fn documented_config_with_rules_and_sources() {
    let (imported, t) = run(
        "twcmanager-docs-config.json",
        Some("twcmanager-settings.json"),
    );
    assert_every_key_noted("twcmanager-docs-config.json", &imported);
    let urls = get(&t, "ems.fronius.urls").as_array().unwrap();
    assert_eq!(urls.len(), 2);
    assert_eq!(
        get(&t, "ems.hass.url").as_str(),
        Some("https://homeassistant.local:8123")
    );
    assert!(
        t["ems"]["hass"].get("generation_entity").is_none(),
        "blank entity is not read"
    );
    // Growatt needs ids TWCManager's library looked up: disabled, the keys named.
    assert_eq!(get(&t, "ems.growatt.enabled").as_bool(), Some(false));
    assert!(
        imported
            .skipped()
            .any(|n| n.key == "sources.Growatt.enabled"
                && matches!(&n.outcome, Outcome::Skipped { why } if why.contains("plant_id")))
    );
    let custom = get(&t, "policy.custom").as_array().unwrap();
    assert_eq!(custom.len(), 2, "{custom:?}");
    assert_eq!(custom[0]["name"].as_str(), Some("Night stop"));
    assert_eq!(custom[0]["position"].as_str(), Some("emergency"));
    assert_eq!(custom[0]["amps"].as_float(), Some(0.0));
    assert_eq!(
        custom[0]["conditions"][0]["match"].as_str(),
        Some("time.hour")
    );
    assert_eq!(custom[1]["name"].as_str(), Some("Weekend green"));
    assert!(
        custom[1].get("amps").is_none(),
        "green policy has no fixed amps"
    );
    // tm_wday counts from 0 = Monday; ours from 1 = Monday.
    assert_eq!(custom[1]["conditions"][0]["value"].as_float(), Some(6.0));
    assert_eq!(custom[1]["latch_minutes"].as_float(), Some(10.0));
    assert!(imported.skipped().any(|n| n.key.contains("Battery helper")));
    let hooks = get(&t, "policy.webhooks").as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["method"].as_str(), Some("GET"));
    assert!(
        imported
            .skipped()
            .any(|n| n.key == "policy.extend.webhooks.Charge Now.start")
    );
    assert_eq!(get(&t, "logging.console.level").as_str(), Some("trace"));
    assert_eq!(get(&t, "logging.console.ansi").as_bool(), Some(false));
    assert_eq!(get(&t, "green.start_delay_secs").as_float(), Some(120.0));

    let s: Value = serde_json::from_str(imported.settings_json.as_deref().unwrap()).unwrap();
    assert_eq!(s["non_scheduled_action"], "green");
    assert_eq!(
        s["non_scheduled_amps"], 32.0,
        "40 A lowered to the 32 A wiring limit"
    );
    assert_eq!(s["flex_amps"], 2.0);
    assert_eq!(s["schedule"]["enabled"], true);
    let windows = s["schedule"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 5, "bitmap 31 = Monday to Friday");
    assert_eq!(windows[0]["weekday"], 1);
    assert_eq!(windows[0]["start_minute"], 22 * 60 + 30);
    assert_eq!(windows[0]["end_minute"], 360);
    assert_eq!(s["consumption_offsets"]["heatpump"]["unit"], "W");
    assert_eq!(s["home"]["lat"], 51.4769);
    assert_eq!(s["vin_allow"][0], "5YJ3E1EA0KF000316");
    assert_eq!(s["extra"]["weekendMode"], "on");
    assert!(
        s["charge_now"].is_null(),
        "a Charge Now of 0 A is not running"
    );
    let mut keys = Vec::new();
    leaves(
        "",
        &parse_lenient(&fixture("twcmanager-settings.json")).unwrap(),
        &mut keys,
    );
    for k in keys {
        assert!(
            imported.notes.iter().any(|n| n.file == "settings.json"
                && (n.key == k
                    || n.key.starts_with(&format!("{k}."))
                    || k.starts_with(&format!("{}.", n.key)))),
            "settings.json key {k} has no note"
        );
    }
}

#[test]
fn missing_wiring_limit_is_an_error_naming_the_key() {
    let err = import(
        r#"{"config": {"minAmpsPerTWC": 6}}"#,
        None,
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Required { .. }));
    assert!(err.to_string().contains("wiringMaxAmpsAllTWCs"), "{err}");
}

#[test]
fn broken_json_names_the_line() {
    let err = import(
        "{\n \"config\": {\n  \"a\": 1 2\n }\n}",
        None,
        &Options::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("config.json") && err.to_string().contains("line 3"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_named_not_guessed() {
    let imported = import(
        r#"{"config": {"wiringMaxAmpsAllTWCs": 16, "wiringMaxAmpsPerTWC": 16, "wiringMaxAmpTWC": 3}, "sources": {"Fronius": {"enabled": true, "serverIP": "10.0.0.2", "serverIp": "x"}}}"#,
        None,
        &Options::default(),
    )
    .unwrap();
    let unknown: Vec<String> = imported
        .skipped()
        .filter(|n| matches!(&n.outcome, Outcome::Skipped { why } if why.contains("not a key")))
        .map(|n| n.key.clone())
        .collect();
    assert_eq!(
        unknown,
        ["config.wiringMaxAmpTWC", "sources.Fronius.serverIp"]
    );
}
