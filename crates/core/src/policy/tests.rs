use super::*;
use crate::model::{
    ChargeNow, ConsumptionOffset, GridLimit, HomeLocation, Schedule, ScheduleWindow,
};
use chrono::TimeZone;
use serde_json::json;

/// 2026-06-17 is a Wednesday (ISO weekday 3).
fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 17, h, m, 0).unwrap()
}

fn reading(gen_w: f64, cons_w: f64, grid_w: Option<f64>) -> EnergyReading {
    EnergyReading {
        generation_w: Some(gen_w),
        consumption_w: Some(cons_w),
        grid_w,
        ..EnergyReading::default()
    }
}

struct T {
    settings: Settings,
    reading: Option<EnergyReading>,
    now: DateTime<Utc>,
    mono: f64,
    charger_amps: f64,
    phases: u8,
    includes: bool,
    charging: usize,
    price: Option<f64>,
    co2: Option<f64>,
}

impl T {
    fn new() -> Self {
        T {
            settings: Settings::default(),
            reading: None,
            now: at(12, 0),
            mono: 0.0,
            charger_amps: 0.0,
            phases: 1,
            includes: false,
            charging: 0,
            price: None,
            co2: None,
        }
    }
    fn eval(&self, e: &mut PolicyEngine) -> Outcome {
        e.evaluate(&Context {
            settings: &self.settings,
            now: self.now,
            mono_secs: self.mono,
            reading: self.reading.as_ref(),
            charger_amps: self.charger_amps,
            drawn_amps: self.charger_amps,
            offered_amps: None,
            drawn_is_bound: false,
            voltage: 230.0,
            phases: self.phases,
            consumption_includes_chargers: self.includes,
            wiring_max_all: 32.0,
            min_amps: 6.0,
            cars_connected: 1,
            cars_charging: self.charging,
            vins: &[],
            battery_expected: false,
            price_per_kwh: self.price,
            co2_g_per_kwh: self.co2,
        })
    }
}

fn utc_cfg() -> PolicyConfig {
    let mut c = PolicyConfig::default();
    c.rules.utc_offset = "+00:00".into();
    c
}

#[test]
fn non_scheduled_charge_stop_and_wiring_cap() {
    let mut e = PolicyEngine::new(utc_cfg());
    let mut t = T::new();
    t.settings.non_scheduled_amps = 16.0;
    let o = t.eval(&mut e);
    assert_eq!(
        (o.name.as_str(), o.amps, o.is_green),
        ("Non Scheduled Charging", 16.0, false)
    );
    t.settings.non_scheduled_action = "stop".into();
    assert_eq!(t.eval(&mut e).amps, 0.0);
    t.settings.non_scheduled_action = "charge".into();
    t.settings.non_scheduled_amps = 40.0;
    let o = t.eval(&mut e);
    assert_eq!((o.amps, o.limited_by.as_deref()), (32.0, Some("wiring")));
}

#[test]
fn charge_now_wins_until_its_end() {
    let mut e = PolicyEngine::new(utc_cfg());
    let mut t = T::new();
    t.settings.non_scheduled_action = "stop".into();
    t.settings.charge_now = Some(ChargeNow {
        amps: 20.0,
        until_unix: at(13, 0).timestamp(),
    });
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Charge Now", 20.0));
    t.now = at(13, 0);
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Non Scheduled Charging", 0.0));
}

fn schedule(windows: &[(u8, u16, u16)], amps: f64) -> Schedule {
    Schedule {
        enabled: true,
        amps,
        windows: windows
            .iter()
            .map(|&(weekday, start_minute, end_minute)| ScheduleWindow {
                weekday,
                start_minute,
                end_minute,
            })
            .collect(),
        ..Schedule::default()
    }
}

#[test]
fn scheduled_windows_per_weekday_and_across_midnight() {
    let mut e = PolicyEngine::new(utc_cfg());
    let mut t = T::new();
    t.settings.non_scheduled_action = "stop".into();
    // Wednesday 22:00 → Thursday 06:00 at 16 A; Thursday has no window of its own.
    t.settings.schedule = schedule(&[(3, 22 * 60, 6 * 60)], 16.0);
    t.now = at(21, 59);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    t.now = at(22, 0);
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Scheduled Charging", 16.0));
    assert!(o.reason.contains("Wed 22:00–06:00"), "{}", o.reason);
    // Thursday 05:59 is still the Wednesday window; 06:00 is not.
    t.now = Utc.with_ymd_and_hms(2026, 6, 18, 5, 59, 0).unwrap();
    assert_eq!(t.eval(&mut e).name, "Scheduled Charging");
    t.now = Utc.with_ymd_and_hms(2026, 6, 18, 6, 0, 0).unwrap();
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    // Tuesday 23:00 is not in a window (no Tuesday bit).
    t.now = Utc.with_ymd_and_hms(2026, 6, 16, 23, 0, 0).unwrap();
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    // Per-day amps override; start == end is an empty window; disabled schedule never matches.
    t.settings.schedule = schedule(&[(3, 600, 900), (4, 600, 600)], 16.0);
    t.settings.schedule.day_amps.insert(3, 10.0);
    t.now = at(11, 0);
    assert_eq!(t.eval(&mut e).amps, 10.0);
    t.now = Utc.with_ymd_and_hms(2026, 6, 18, 10, 0, 0).unwrap();
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    t.settings.schedule.enabled = false;
    t.now = at(11, 0);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
}

#[test]
fn schedule_follows_the_configured_utc_offset() {
    let mut cfg = utc_cfg();
    cfg.rules.utc_offset = "+02:00".into();
    let mut e = PolicyEngine::new(cfg);
    let mut t = T::new();
    t.settings.schedule = schedule(&[(3, 12 * 60, 13 * 60)], 8.0);
    t.now = at(10, 30); // 12:30 local
    assert_eq!(t.eval(&mut e).name, "Scheduled Charging");
    t.now = at(12, 30); // 14:30 local
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
}

#[test]
fn green_surplus_from_generation_consumption_grid_offsets_and_battery() {
    let mut e = PolicyEngine::new(utc_cfg());
    let mut t = T::new();
    t.settings.non_scheduled_action = "green".into();
    t.charging = 1;
    // Consumption without the chargers: 4600 − 1150 = 3450 W = 15 A.
    t.reading = Some(reading(4600.0, 1150.0, None));
    let o = t.eval(&mut e);
    assert_eq!(o.name, "Track Green Energy");
    assert!(o.is_green);
    assert!((o.amps - 15.0).abs() < 1e-9, "{}", o.amps);
    // Consumption including 10 A of chargers: the same surplus.
    t.includes = true;
    t.charger_amps = 10.0;
    t.reading = Some(reading(4600.0, 1150.0 + 2300.0, None));
    assert!((t.eval(&mut e).amps - 15.0).abs() < 1e-9);
    // Only a grid meter: exporting 1150 W with 10 A of chargers → 15 A.
    t.reading = Some(EnergyReading {
        grid_w: Some(-1150.0),
        ..EnergyReading::default()
    });
    assert!((t.eval(&mut e).amps - 15.0).abs() < 1e-9);
    // Offsets: +2 A and +230 W of consumption → 15 − 2 − 1 = 12 A.
    t.settings.consumption_offsets.insert(
        "pool".into(),
        ConsumptionOffset {
            value: 2.0,
            unit: OffsetUnit::A,
        },
    );
    t.settings.consumption_offsets.insert(
        "fridge".into(),
        ConsumptionOffset {
            value: 230.0,
            unit: OffsetUnit::W,
        },
    );
    assert!((t.eval(&mut e).amps - 12.0).abs() < 1e-9);
    // A negative offset is generation.
    t.settings.consumption_offsets.clear();
    t.settings.consumption_offsets.insert(
        "gen".into(),
        ConsumptionOffset {
            value: -460.0,
            unit: OffsetUnit::W,
        },
    );
    assert!((t.eval(&mut e).amps - 17.0).abs() < 1e-9);
    t.settings.consumption_offsets.clear();
    // Battery discharging 460 W does not feed the car (grid-meter form).
    t.reading = Some(EnergyReading {
        grid_w: Some(-1150.0),
        battery_w: Some(460.0),
        ..EnergyReading::default()
    });
    assert!((t.eval(&mut e).amps - 13.0).abs() < 1e-9);
}

#[test]
fn battery_first_reserves_the_battery_charge_below_its_soc() {
    let mut cfg = utc_cfg();
    cfg.green.battery_priority = "battery_first".into();
    cfg.green.battery_first_below_soc = 80.0;
    cfg.green.battery_charge_w = 1150.0;
    let mut e = PolicyEngine::new(cfg);
    let mut t = T::new();
    t.settings.non_scheduled_action = "green".into();
    t.charging = 1;
    let mut r = reading(4600.0, 1150.0, None);
    r.battery_soc_pct = Some(50.0);
    t.reading = Some(r.clone());
    assert!((t.eval(&mut e).amps - 10.0).abs() < 1e-9);
    r.battery_soc_pct = Some(90.0);
    t.reading = Some(r);
    assert!((t.eval(&mut e).amps - 15.0).abs() < 1e-9);
}

#[test]
fn green_without_fresh_data_is_zero() {
    let mut e = PolicyEngine::new(utc_cfg());
    let mut t = T::new();
    t.settings.non_scheduled_action = "green".into();
    t.charging = 1;
    t.reading = Some(reading(6000.0, 0.0, None));
    assert!(t.eval(&mut e).amps > 20.0);
    t.reading = None;
    t.mono = 1.0;
    let o = t.eval(&mut e);
    assert_eq!(o.amps, 0.0);
    assert!(o.reason.contains("no fresh reading"), "{}", o.reason);
}

#[test]
fn daytime_green_by_hours_and_by_sun() {
    let mut cfg = utc_cfg();
    cfg.rules.daytime_green = true;
    cfg.rules.green_window = "hours".into();
    cfg.rules.green_start_hour = 9.0;
    cfg.rules.green_end_hour = 17.0;
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.settings.non_scheduled_amps = 10.0;
    t.now = at(8, 59);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    t.now = at(9, 0);
    assert_eq!(t.eval(&mut e).name, "Track Green Energy");
    // Action "stop" disables the daytime entry (TWCManager).
    t.settings.non_scheduled_action = "stop".into();
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    // Sun: Berlin, sunrise ~02:43 UTC in June.
    cfg.rules.green_window = "sun".into();
    let mut e = PolicyEngine::new(cfg);
    t.settings.non_scheduled_action = "charge".into();
    t.settings.home = Some(HomeLocation {
        lat: 52.52,
        lon: 13.405,
    });
    t.now = at(2, 30);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    t.now = at(3, 0);
    let o = t.eval(&mut e);
    assert_eq!(o.name, "Track Green Energy");
    assert!(o.reason.contains("sunrise"), "{}", o.reason);
    t.now = at(19, 40);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
}

#[test]
fn latch_keeps_the_daytime_green_entry() {
    let mut cfg = utc_cfg();
    cfg.rules.daytime_green = true;
    cfg.rules.green_window = "hours".into();
    cfg.rules.green_start_hour = 9.0;
    cfg.rules.green_end_hour = 17.0;
    cfg.rules.green_latch_minutes = 30.0;
    let mut e = PolicyEngine::new(cfg);
    let mut t = T::new();
    t.now = at(16, 59);
    t.mono = 0.0;
    assert_eq!(t.eval(&mut e).name, "Track Green Energy");
    t.now = at(17, 20);
    t.mono = 21.0 * 60.0;
    let o = t.eval(&mut e);
    assert_eq!(o.name, "Track Green Energy");
    assert!(o.reason.starts_with("latched"), "{}", o.reason);
    t.now = at(17, 31);
    t.mono = 32.0 * 60.0;
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
}

fn cond(what: &str, op: Op, value: serde_json::Value) -> Condition {
    Condition {
        what: what.into(),
        op,
        value,
    }
}

#[test]
fn custom_policies_restrictions_and_replacement() {
    let mut cfg = utc_cfg();
    cfg.rules.custom = vec![
        CustomPolicy {
            name: "Battery low".into(),
            position: Position::Emergency,
            conditions: vec![cond("battery.soc", Op::Lt, json!(20))],
            amps: Some(0.0),
            latch_minutes: 0.0,
            flex_amps: None,
        },
        CustomPolicy {
            name: "Guest car".into(),
            position: Position::After,
            conditions: vec![cond("settings.guest", Op::Eq, json!("yes"))],
            amps: Some(8.0),
            latch_minutes: 0.0,
            flex_amps: None,
        },
    ];
    cfg.rules.restrictions.insert(
        "Charge Now".into(),
        vec![cond("time.hour", Op::Lt, json!(20))],
    );
    assert!(cfg.validate(32.0).is_empty(), "{:?}", cfg.validate(32.0));
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.settings.charge_now = Some(ChargeNow {
        amps: 16.0,
        until_unix: at(23, 0).timestamp(),
    });
    let mut r = reading(0.0, 500.0, Some(500.0));
    r.battery_soc_pct = Some(15.0);
    t.reading = Some(r.clone());
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Battery low", 0.0));
    // The list the status shows: every policy in the order tried, custom ones included.
    assert_eq!(
        o.rules,
        [
            "Battery low",
            "Charge Now",
            "Scheduled Charging",
            "Guest car",
            "Non Scheduled Charging"
        ]
    );
    r.battery_soc_pct = Some(50.0);
    t.reading = Some(r);
    assert_eq!(t.eval(&mut e).name, "Charge Now");
    // The restriction: Charge Now only before 20:00.
    t.now = at(20, 30);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    t.settings.extra.insert("guest".into(), "yes".into());
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Guest car", 8.0));
    // Replace the built-in list: nothing matches → the previous policy stays.
    cfg.rules.replace_builtin = true;
    let mut e = PolicyEngine::new(cfg);
    let o = t.eval(&mut e);
    assert_eq!(o.name, "Guest car");
    assert_eq!(o.rules, ["Battery low", "Guest car"]);
    t.settings.extra.clear();
    let o = t.eval(&mut e);
    assert_eq!(o.name, "Guest car");
    assert!(o.reason.contains("keeping the previous"), "{}", o.reason);
}

#[test]
fn config_errors_name_the_key() {
    let mut cfg = utc_cfg();
    cfg.rules.custom.push(CustomPolicy {
        name: "x".into(),
        position: Position::Before,
        conditions: vec![cond("moon.phase", Op::Eq, json!(1))],
        amps: Some(50.0),
        latch_minutes: 0.0,
        flex_amps: None,
    });
    cfg.rules.restrictions.insert("Charge Later".into(), vec![]);
    cfg.grid.safe_amps = 40.0;
    cfg.green.battery_priority = "dog_first".into();
    let errs = cfg.validate(32.0).join("\n");
    for needle in [
        "amps = 50",
        "moon.phase",
        "Charge Later",
        "safe_amps = 40",
        "battery_priority",
    ] {
        assert!(errs.contains(needle), "{needle} missing from:\n{errs}");
    }
    let root = json!({"green": {"start_delay": 3}});
    let errs = PolicyConfig::from_sections(&root, 32.0)
        .unwrap_err()
        .join("\n");
    assert!(
        errs.contains("[green]") && errs.contains("start_delay"),
        "{errs}"
    );
}

#[test]
fn webhooks_fire_on_enter_and_exit_only_when_the_policy_changes() {
    let mut cfg = utc_cfg();
    cfg.rules.webhooks = vec![
        Webhook {
            policy: "Charge Now".into(),
            event: "enter".into(),
            url: "http://example.invalid/a".into(),
            method: "POST".into(),
        },
        Webhook {
            policy: "*".into(),
            event: "exit".into(),
            url: "http://example.invalid/b".into(),
            method: "GET".into(),
        },
    ];
    let mut e = PolicyEngine::new(cfg);
    let mut t = T::new();
    assert!(t.eval(&mut e).webhooks.is_empty());
    t.settings.charge_now = Some(ChargeNow {
        amps: 16.0,
        until_unix: at(23, 0).timestamp(),
    });
    let hooks: Vec<String> = t
        .eval(&mut e)
        .webhooks
        .into_iter()
        .map(|(w, ev)| format!("{ev} {}", w.url))
        .collect();
    assert_eq!(
        hooks,
        [
            "exit http://example.invalid/b",
            "enter http://example.invalid/a"
        ]
    );
    assert!(t.eval(&mut e).webhooks.is_empty());
}

fn grid_limit_case(t: &mut T, e: &mut PolicyEngine, expect_name: &str) {
    // House imports 2300 W (10 A) with the chargers at 0; limit 25 A per phase → 15 A.
    t.charger_amps = 0.0;
    t.reading = Some(EnergyReading {
        generation_w: Some(0.0),
        consumption_w: Some(2300.0),
        grid_w: Some(2300.0),
        ..EnergyReading::default()
    });
    let o = t.eval(e);
    assert_eq!(o.name, expect_name);
    assert!((o.amps - 15.0).abs() < 1e-9, "{expect_name}: {}", o.amps);
    assert_eq!(o.limited_by.as_deref(), Some("grid"));
    // Chargers already draw 15 A, included in the grid reading: still 15 A.
    t.charger_amps = 15.0;
    t.reading = Some(EnergyReading {
        generation_w: Some(0.0),
        consumption_w: Some(2300.0),
        grid_w: Some(2300.0 + 15.0 * 230.0),
        ..EnergyReading::default()
    });
    assert!((t.eval(e).amps - 15.0).abs() < 1e-9);
    // The house jumps to 23 A: the chargers get 2 A.
    t.reading = Some(EnergyReading {
        generation_w: Some(0.0),
        consumption_w: Some(23.0 * 230.0),
        grid_w: Some(23.0 * 230.0 + 15.0 * 230.0),
        ..EnergyReading::default()
    });
    assert!((t.eval(e).amps - 2.0).abs() < 1e-9);
    // No fresh reading: the safe current.
    t.reading = None;
    let o = t.eval(e);
    assert_eq!(
        (o.amps, o.limited_by.as_deref()),
        (
            if expect_name == "Track Green Energy" {
                0.0
            } else {
                3.0
            },
            if expect_name == "Track Green Energy" {
                None
            } else {
                Some("stale")
            }
        )
    );
}

#[test]
fn grid_limit_applies_under_every_policy() {
    let mut cfg = utc_cfg();
    cfg.grid.max_import_amps = Some(25.0);
    cfg.grid.safe_amps = 3.0;
    // Non-scheduled.
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.settings.non_scheduled_amps = 32.0;
    grid_limit_case(&mut t, &mut e, "Non Scheduled Charging");
    // Charge Now.
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.settings.charge_now = Some(ChargeNow {
        amps: 32.0,
        until_unix: at(23, 0).timestamp(),
    });
    grid_limit_case(&mut t, &mut e, "Charge Now");
    // Scheduled.
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.settings.schedule = schedule(&[(3, 0, 1439)], 32.0);
    grid_limit_case(&mut t, &mut e, "Scheduled Charging");
    // Green with a huge negative offset as "generation": the grid limit still holds.
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.settings.non_scheduled_action = "green".into();
    t.charging = 1;
    t.settings.consumption_offsets.insert(
        "fake sun".into(),
        ConsumptionOffset {
            value: -20000.0,
            unit: OffsetUnit::W,
        },
    );
    grid_limit_case(&mut t, &mut e, "Track Green Energy");
}

#[test]
fn grid_limit_in_watts_per_phase_currents_and_runtime_setting() {
    let mut cfg = utc_cfg();
    cfg.grid.max_import_w = Some(11_000.0);
    let mut e = PolicyEngine::new(cfg);
    let mut t = T::new();
    t.phases = 3;
    t.settings.non_scheduled_amps = 32.0;
    // House 4100 W on 3 phases: (11000 − 4100) / 690 = 10 A.
    t.reading = Some(EnergyReading {
        grid_w: Some(4100.0),
        ..EnergyReading::default()
    });
    assert!((t.eval(&mut e).amps - 10.0).abs() < 1e-9);
    // A runtime limit of 16 A per phase with per-phase currents: L2 carries 9 A → 7 A.
    t.settings.max_grid_import = Some(GridLimit {
        value: 16.0,
        unit: OffsetUnit::A,
    });
    t.reading = Some(EnergyReading {
        grid_w: Some(4100.0),
        phase_currents_a: Some(vec![5.0, 9.0, 4.0]),
        ..EnergyReading::default()
    });
    let o = t.eval(&mut e);
    assert!((o.amps - 7.0).abs() < 1e-9, "{}", o.amps);
    assert!((o.grid_headroom_amps.unwrap() - 7.0).abs() < 1e-9);
    // Derived grid from consumption and generation when no grid power is measured.
    t.settings.max_grid_import = None;
    t.reading = Some(reading(1000.0, 5100.0, None));
    assert!((t.eval(&mut e).amps - 10.0).abs() < 1e-9);
}

/// Issue #12: when nothing matches, the previous policy stays (TWCManager) — but an ended Charge
/// Now is over and does not keep its amps.
#[test]
fn an_ended_charge_now_does_not_keep_its_amps_when_nothing_else_matches() {
    let mut cfg = utc_cfg();
    // Non Scheduled Charging never matches.
    cfg.rules.restrictions.insert(
        "Non Scheduled Charging".into(),
        vec![cond("time.hour", Op::Lt, json!(0))],
    );
    let mut e = PolicyEngine::new(cfg);
    let mut t = T::new();
    t.settings.charge_now = Some(ChargeNow {
        amps: 20.0,
        until_unix: at(13, 0).timestamp(),
    });
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Charge Now", 20.0));
    // The engine clears the setting when it ends.
    t.settings.charge_now = None;
    t.now = at(13, 1);
    let o = t.eval(&mut e);
    assert_eq!(o.amps, 0.0, "{o:?}");
    assert_ne!(o.name, "Charge Now");
}

#[test]
fn charge_from_the_grid_when_the_price_is_below_a_threshold_and_unknown_is_false() {
    let mut cfg = utc_cfg();
    cfg.rules.custom = vec![CustomPolicy {
        name: "Cheap grid".into(),
        position: Position::Before,
        conditions: vec![cond("price.per_kwh", Op::Lt, json!(0.15))],
        amps: Some(16.0),
        latch_minutes: 0.0,
        flex_amps: None,
    }];
    assert!(cfg.validate(32.0).is_empty(), "{:?}", cfg.validate(32.0));
    let mut e = PolicyEngine::new(cfg.clone());
    let mut t = T::new();
    t.reading = Some(reading(0.0, 500.0, Some(500.0)));
    t.price = Some(0.12);
    let o = t.eval(&mut e);
    assert_eq!((o.name.as_str(), o.amps), ("Cheap grid", 16.0));
    // Negative prices are below the threshold too.
    t.price = Some(-0.02);
    assert_eq!(t.eval(&mut e).name, "Cheap grid");
    t.price = Some(0.15);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging", "not below");
    t.price = Some(0.30);
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    // No tariff, or no slot for now: unknown, never cheap (fail safe) — whatever the operator.
    t.price = None;
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
    for op in [Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::Eq, Op::Ne] {
        let mut c = cfg.clone();
        c.rules.custom[0].conditions = vec![cond("price.per_kwh", op, json!(0.15))];
        let mut e = PolicyEngine::new(c);
        assert_eq!(
            t.eval(&mut e).name,
            "Non Scheduled Charging",
            "{op:?} on an unknown price"
        );
    }
    // The CO₂ intensity, where the tariff gives it.
    cfg.rules.custom[0].conditions = vec![cond("price.co2_g_per_kwh", Op::Lte, json!(200))];
    let mut e = PolicyEngine::new(cfg);
    t.co2 = Some(180.0);
    assert_eq!(t.eval(&mut e).name, "Cheap grid");
    t.co2 = None;
    assert_eq!(t.eval(&mut e).name, "Non Scheduled Charging");
}
