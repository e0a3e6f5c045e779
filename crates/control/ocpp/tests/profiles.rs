//! Charging profile evaluation (OCPP 1.6 §3.13), pure: schedules over time, stack levels,
//! purposes, units and the checks on what a central system sends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use twc_control_ocpp::profile::*;

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, h, m, s).unwrap()
}

fn profile(v: serde_json::Value) -> Profile {
    serde_json::from_value(v).unwrap()
}

fn inst(connector: u32, p: Profile) -> Installed {
    Installed {
        connector,
        profile: p,
        installed_at: t(0, 0, 0),
    }
}

#[test]
fn absolute_schedule_periods_and_duration() {
    let p = inst(
        1,
        profile(json!({
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": "2026-06-01T10:00:00Z",
            "duration": 7200, "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 6.0}, {"startPeriod": 3600, "limit": 16.0}]}})),
    );
    let at = |h, m| connector_limit(std::slice::from_ref(&p), 1, None, t(h, m, 0), 230.0, 3);
    assert_eq!(at(9, 59), None, "before the start");
    assert_eq!(at(10, 0), Some(6.0));
    assert_eq!(at(10, 59), Some(6.0));
    assert_eq!(at(11, 0), Some(16.0));
    assert_eq!(at(12, 0), None, "after the duration");
}

#[test]
fn relative_starts_with_the_transaction_and_tx_profile_beats_the_default() {
    let def = inst(
        0,
        profile(json!({
        "chargingProfileId": 1, "stackLevel": 5, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}})),
    );
    let tx = inst(
        1,
        profile(json!({
        "chargingProfileId": 2, "transactionId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 8.0}, {"startPeriod": 600, "limit": 12.0}]}})),
    );
    let all = vec![def, tx];
    let start = t(12, 0, 0);
    // No transaction: connector 0's default applies to connector 1.
    assert_eq!(connector_limit(&all, 1, None, start, 230.0, 3), Some(10.0));
    assert_eq!(
        connector_limit(
            &all,
            1,
            Some((7, start)),
            start + Duration::seconds(5),
            230.0,
            3
        ),
        Some(8.0)
    );
    assert_eq!(
        connector_limit(
            &all,
            1,
            Some((7, start)),
            start + Duration::seconds(601),
            230.0,
            3
        ),
        Some(12.0)
    );
    // Another transaction: its TxProfile does not apply.
    assert_eq!(
        connector_limit(&all, 1, Some((8, start)), start, 230.0, 3),
        Some(10.0)
    );
}

#[test]
fn the_highest_stack_level_wins_and_validity_bounds_hold() {
    let mk = |id, level, limit, to: Option<&str>| {
        inst(
            1,
            profile(json!({
        "chargingProfileId": id, "stackLevel": level, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "validTo": to,
        "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": "2026-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}})),
        )
    };
    let all = vec![
        mk(1, 0, 16.0, None),
        mk(2, 3, 6.0, Some("2026-06-01T12:00:00Z")),
    ];
    assert_eq!(
        connector_limit(&all, 1, None, t(11, 0, 0), 230.0, 3),
        Some(6.0)
    );
    assert_eq!(
        connector_limit(&all, 1, None, t(12, 0, 0), 230.0, 3),
        Some(16.0),
        "level 3 expired"
    );
}

#[test]
fn recurring_daily_and_site_limit_in_watts() {
    let p = inst(
        0,
        profile(json!({
        "chargingProfileId": 4, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Recurring", "recurrencyKind": "Daily",
        "chargingSchedule": {"chargingRateUnit": "W", "startSchedule": "2026-01-01T17:00:00Z", "duration": 14400,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 4140.0, "numberPhases": 3}]}})),
    );
    let all = vec![p];
    // 17:00–21:00 every day: 4140 W / (230 V × 3) = 6 A.
    assert_eq!(site_limit(&all, t(18, 0, 0), 230.0, 3), Some(6.0));
    assert_eq!(site_limit(&all, t(16, 59, 0), 230.0, 3), None);
    assert_eq!(site_limit(&all, t(21, 0, 0), 230.0, 3), None);
    // A one-phase site: the watts are on one phase.
    assert_eq!(site_limit(&all, t(18, 0, 0), 230.0, 1), Some(18.0));
    assert_eq!(to_amps(2300.0, Unit::W, Some(1), 230.0, 3), 10.0);
    assert_eq!(
        to_amps(2300.0, Unit::W, Some(1), 0.0, 3),
        10.0,
        "unknown volts: 230 V"
    );
}

#[test]
fn checks_name_what_is_wrong() {
    let base = json!({
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}]}});
    let p = profile(base.clone());
    assert!(check(1, &p, Some(1)).is_ok());
    assert!(check(1, &p, None).unwrap_err().contains("no transaction"));
    assert!(check(0, &p, Some(1)).unwrap_err().contains("not 0"));
    let mut v = base.clone();
    v["chargingSchedule"]["chargingSchedulePeriod"] = json!([{"startPeriod": 5, "limit": 6.0}]);
    assert!(
        check(1, &profile(v), Some(1))
            .unwrap_err()
            .contains("startPeriod 0")
    );
    let mut v = base.clone();
    v["chargingSchedule"]["chargingSchedulePeriod"] = json!([{"startPeriod": 0, "limit": -1.0}]);
    assert!(
        check(1, &profile(v), Some(1))
            .unwrap_err()
            .contains("limit")
    );
    let mut v = base.clone();
    v["stackLevel"] = json!(99);
    assert!(
        check(1, &profile(v), Some(1))
            .unwrap_err()
            .contains("stackLevel")
    );
    let mut v = base;
    v["chargingProfilePurpose"] = json!("ChargePointMaxProfile");
    assert!(
        check(1, &profile(v), None)
            .unwrap_err()
            .contains("connectorId 0")
    );
}

#[test]
fn install_replaces_and_clear_matches() {
    let mk = |id, conn, level, purpose: &str| {
        profile(json!({
        "chargingProfileId": id, "stackLevel": level, "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": conn as f64}]}}))
    };
    let mut all = Vec::new();
    install(&mut all, 1, mk(1, 1, 0, "TxDefaultProfile"), t(0, 0, 0));
    install(&mut all, 1, mk(2, 1, 0, "TxDefaultProfile"), t(0, 0, 0));
    assert_eq!(all.len(), 1, "same purpose, level and connector replaces");
    install(&mut all, 2, mk(3, 2, 1, "TxDefaultProfile"), t(0, 0, 0));
    install(
        &mut all,
        0,
        mk(4, 0, 0, "ChargePointMaxProfile"),
        t(0, 0, 0),
    );
    assert_eq!(clear(&mut all, Some(99), None, None, None), 0);
    assert_eq!(clear(&mut all, None, Some(2), None, None), 1);
    assert_eq!(
        clear(
            &mut all,
            None,
            None,
            Some(Purpose::ChargePointMaxProfile),
            None
        ),
        1
    );
    assert_eq!(clear(&mut all, None, None, None, None), 1);
    assert!(all.is_empty());
}
