//! Configuration resolution against the plugins this build links (moved from the bin's src/
//! when the assembly moved to twc-runtime).
use std::collections::BTreeSet;
use twc_core::plugin::Registry;

fn resolve(
    raw: serde_json::Value,
    registry: &Registry,
) -> Result<twcmanager::config::Resolved, Vec<String>> {
    twcmanager::config::resolve(raw, registry, twcmanager::KNOWN_PLUGINS)
}

/// The registry holds exactly the plugins the enabled features name: a feature without its
/// link line, or a plugin missing from `KNOWN_PLUGINS`, fails here.
#[test]
fn registry_matches_enabled_features() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    let got: BTreeSet<String> = registry
        .list()
        .into_iter()
        .map(|(k, n, _)| format!("{k}-{n}"))
        .collect();
    let expected: BTreeSet<String> = twcmanager::build::ENABLED_FEATURES
        .iter()
        .filter(|f| {
            twcmanager::KNOWN_PLUGINS
                .iter()
                .any(|(k, n)| format!("{k}-{n}") == **f)
        })
        .map(|f| f.to_string())
        .collect();
    assert_eq!(got, expected);
}

/// The console logger installs the log subscriber exactly when it is compiled in; the bin does
/// not name it (the runtime asks the registry).
#[test]
fn the_log_subscriber_comes_from_the_console_plugin_when_it_is_linked() {
    let registry = Registry::collect().expect("registry");
    let linked = twcmanager::build::ENABLED_FEATURES.contains(&"logging-console");
    assert_eq!(
        registry.tracing.map(|t| t.name),
        linked.then_some("console")
    );
}

#[test]
fn the_default_config_is_valid_apart_from_the_transport() {
    let registry = Registry::collect().expect("registry");
    let raw = twcmanager::config::load(None).expect("default.toml parses");
    match resolve(raw, &registry) {
        Ok(_) => panic!("no transport is enabled by default, so resolving must fail"),
        Err(errors) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0].starts_with("[comms] exactly one bus transport"),
                "{errors:?}"
            );
        }
    }
}

#[test]
fn every_problem_is_reported_at_once_naming_the_key() {
    let registry = Registry::collect().expect("registry");
    let dir = std::env::temp_dir().join(format!("twc-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "[wiring]\nmax_amps_all_twcs = -5\nmax_amps_per_twc = 16\nmin_amps_per_twc = 32\n\
         [site]\nphases = 2\nvoltgae = 230\n[master]\ntwcid = \"XYZ\"\n[bogus]\nx = 1\n\
         [ems.nosuchthing]\nenabled = true\n",
    )
    .unwrap();
    let raw = twcmanager::config::load(Some(&f)).expect("parses as TOML");
    let errors = resolve(raw, &registry).expect_err("invalid");
    let all = errors.join("\n");
    for needle in [
        "[bogus] is not a known section",
        "[site] unknown field `voltgae`",
        "[master] twcid",
        "[ems.nosuchthing] unknown ems plugin",
        "[comms] exactly one bus transport",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn safety_escalation_keys_are_checked_and_reach_the_master() {
    let registry = Registry::collect().expect("registry");
    let mut raw = twcmanager::config::load(None).expect("defaults");
    raw["comms"]["dummy"] = serde_json::json!({ "enabled": true });
    raw["master"]["follow_grace_secs"] = serde_json::json!(0);
    raw["master"]["escalate_stop_secs"] = serde_json::json!(3);
    raw["master"]["max_pending_commands"] = serde_json::json!(0);
    let all = resolve(raw.clone(), &registry)
        .expect_err("invalid")
        .join("\n");
    for needle in [
        "[master] follow_grace_secs = 0",
        "[master] max_pending_commands = 0",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    raw["master"]["follow_grace_secs"] = serde_json::json!(10);
    raw["master"]["escalate_stop_secs"] = serde_json::json!(0);
    raw["master"]["max_pending_commands"] = serde_json::json!(4);
    let ok = resolve(raw, &registry).expect("valid");
    let m = &ok.engine.master;
    assert_eq!(
        (
            m.follow_grace.as_secs(),
            m.escalate_stop_after,
            m.max_pending_commands
        ),
        (10, None, 4)
    );
}

#[test]
fn site_sources_must_name_enabled_sources() {
    let registry = Registry::collect().expect("registry");
    let mut raw = twcmanager::config::load(None).expect("defaults");
    raw["comms"]["dummy"] = serde_json::json!({ "enabled": true });
    raw["site"]["sources"] = serde_json::json!({ "generation": "fronius" });
    let errors = resolve(raw, &registry).expect_err("fronius is not enabled");
    assert!(
        errors.iter().any(|e| e.contains("site.sources.generation")),
        "{errors:?}"
    );
}

/// At most one tariff: two enabled is an error naming both sections (fixed and tou are in the
/// default build).
#[test]
fn two_tariffs_are_refused_naming_both() {
    let registry = Registry::collect().expect("registry");
    if !(registry.tariff.contains_key("fixed") && registry.tariff.contains_key("tou")) {
        return; // a build without the default tariffs
    }
    let dir = std::env::temp_dir().join(format!("twc-cfg-tariff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("two.toml");
    std::fs::write(
        &f,
        "[comms.dummy]\nenabled = true\n\
         [tariff.fixed]\nenabled = true\nprice_per_kwh = 0.3\n\
         [tariff.tou]\nenabled = true\ndefault_price_per_kwh = 0.3\n",
    )
    .unwrap();
    let raw = twcmanager::config::load(Some(&f)).expect("parses as TOML");
    let errors = resolve(raw.clone(), &registry).expect_err("two tariffs");
    let all = errors.join("\n");
    assert!(
        all.contains("[tariff] at most one tariff may be enabled")
            && all.contains("[tariff.fixed]")
            && all.contains("[tariff.tou]"),
        "{all}"
    );
    // One is fine.
    std::fs::write(
        &f,
        "[comms.dummy]\nenabled = true\n[tariff.fixed]\nenabled = true\nprice_per_kwh = 0.3\n",
    )
    .unwrap();
    let raw = twcmanager::config::load(Some(&f)).expect("parses as TOML");
    let r = resolve(raw, &registry).expect("one tariff");
    assert!(r.plugins.iter().any(|p| p.name == "fixed"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `config/examples/solar-tracking.toml` is the setting the README and `cargo xtask bench`
/// measure on the real corpus: it must resolve in a full build and carry exactly those values
/// (a change here must change the replay options in xtask's bench and the tables, or fail).
#[test]
fn the_solar_tracking_example_resolves_with_the_measured_setting() {
    let registry = Registry::collect().expect("registry");
    let needed = [
        ("comms", "rs485"),
        ("ems", "fronius"),
        ("vehicle", "teslaapi"),
    ];
    let linked = |k: &str, n: &str| {
        twcmanager::build::ENABLED_FEATURES.contains(&format!("{k}-{n}").as_str())
    };
    if !needed.iter().all(|(k, n)| linked(k, n)) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI builds the tests with every feature"
        );
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/examples/solar-tracking.toml");
    let raw = twcmanager::config::load(Some(&path)).expect("parses as TOML");
    let r = resolve(raw, &registry).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let g = &r.engine.policy.green;
    assert_eq!(
        (
            g.restart_cost_wh,
            g.drop_reserve_secs,
            g.drop_reserve_max_w,
            g.low_sun_minutes
        ),
        (5.0, 600.0, 75.0, 30.0)
    );
    assert_eq!(r.settings.non_scheduled_action, "green");
    assert!(r.settings.home.is_some(), "low sun needs the home location");
    let v = twc_core::vehicles::VehiclesConfig::from_root(&r.raw).expect("[vehicles]");
    assert!(v.low_current);
    assert_eq!(v.low_current_min_amps, 2.0);
    for (k, n) in needed {
        assert!(
            r.plugins
                .iter()
                .any(|p| p.kind.to_string() == k && p.name == n),
            "[{k}.{n}] enabled"
        );
    }
}

/// `[settings] home` is range-checked, naming the key and the expected range.
#[test]
fn a_home_location_out_of_range_is_named() {
    let registry = Registry::collect().expect("registry");
    let mut raw = twcmanager::config::load(None).expect("defaults");
    raw["comms"]["dummy"] = serde_json::json!({ "enabled": true });
    raw["settings"]["home"] = serde_json::json!({ "lat": 95.0, "lon": 13.4 });
    let errors = resolve(raw.clone(), &registry).expect_err("lat 95");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("[settings] home") && e.contains("-90..=90")),
        "{errors:?}"
    );
    raw["settings"]["home"] = serde_json::json!({ "lat": 52.52, "lon": 13.4 });
    let r = resolve(raw, &registry).expect("a valid home");
    assert_eq!(r.settings.home.map(|h| (h.lat, h.lon)), Some((52.52, 13.4)));
}

/// `[plans] solar_confidence` is a share in (0, 1]: out of range is named, a valid one reaches
/// the engine, the default counts the forecast solar in full.
#[test]
fn plans_solar_confidence_is_checked_and_reaches_the_engine() {
    let registry = Registry::collect().expect("registry");
    let mut raw = twcmanager::config::load(None).expect("defaults");
    raw["comms"]["dummy"] = serde_json::json!({ "enabled": true });
    let ok = resolve(raw.clone(), &registry).expect("defaults are valid");
    assert_eq!(ok.engine.plans.solar_confidence, 1.0);
    for bad in [0.0, -0.5, 1.5] {
        raw["plans"]["solar_confidence"] = serde_json::json!(bad);
        let all = resolve(raw.clone(), &registry)
            .expect_err("out of range")
            .join("\n");
        assert!(
            all.contains("[plans] solar_confidence") && all.contains("0 < c ≤ 1"),
            "{bad}: {all}"
        );
    }
    raw["plans"]["solar_confidence"] = serde_json::json!(0.6);
    let ok = resolve(raw, &registry).expect("valid");
    assert_eq!(ok.engine.plans.solar_confidence, 0.6);
}
