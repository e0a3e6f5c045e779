//! Time-of-use windows in local time, across both DST changes of Europe/Berlin, and the errors.

use chrono::{TimeZone, Utc};
use twc_core::plugin::{PluginConfig, Registry};
use twc_tariff_tou::{build, build_tou};

fn cfg(v: serde_json::Value) -> PluginConfig {
    PluginConfig::new("tariff.tou", v.as_object().unwrap().clone())
}

fn berlin_night() -> serde_json::Value {
    serde_json::json!({
        "timezone": "Europe/Berlin",
        "default_price_per_kwh": 0.32,
        "feed_in_per_kwh": 0.08,
        "windows": [
            {"days": ["Sat", "Sun"], "start": "00:00", "end": "24:00", "price_per_kwh": 0.25},
            {"start": "22:00", "end": "06:00", "price_per_kwh": 0.21}
        ]
    })
}

fn unix(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp()
}

#[test]
fn windows_follow_local_time_in_winter_and_summer() {
    let t = build_tou(&cfg(berlin_night())).unwrap();
    // Wednesday 2024-01-10: CET (UTC+1). 21:00 UTC = 22:00 local: night.
    let p = t.prices_at(unix(2024, 1, 10, 12, 7)).unwrap();
    assert_eq!(p.at(unix(2024, 1, 10, 20, 59)).unwrap().price_per_kwh, 0.32);
    assert_eq!(p.at(unix(2024, 1, 10, 21, 0)).unwrap().price_per_kwh, 0.21);
    assert_eq!(p.at(unix(2024, 1, 11, 4, 59)).unwrap().price_per_kwh, 0.21);
    assert_eq!(p.at(unix(2024, 1, 11, 5, 0)).unwrap().price_per_kwh, 0.32);
    // The first slot starts at the current quarter hour.
    assert_eq!(p.slots[0].start_unix, unix(2024, 1, 10, 12, 0));
    assert_eq!(p.feed_in_per_kwh, Some(0.08));
    // Wednesday 2024-07-10: CEST (UTC+2). 20:00 UTC = 22:00 local.
    let p = t.prices_at(unix(2024, 7, 10, 12, 0)).unwrap();
    assert_eq!(p.at(unix(2024, 7, 10, 19, 59)).unwrap().price_per_kwh, 0.32);
    assert_eq!(p.at(unix(2024, 7, 10, 20, 0)).unwrap().price_per_kwh, 0.21);
    assert_eq!(p.at(unix(2024, 7, 11, 4, 0)).unwrap().price_per_kwh, 0.32);
}

#[test]
fn the_night_window_is_seven_hours_in_spring_and_nine_in_autumn() {
    let weekday_night = serde_json::json!({
        "timezone": "Europe/Berlin",
        "default_price_per_kwh": 0.32,
        "windows": [{"start": "22:00", "end": "06:00", "price_per_kwh": 0.21}]
    });
    let t = build_tou(&cfg(weekday_night)).unwrap();
    // Clocks go forward at 02:00 local on Sunday 2024-03-31.
    let p = t.prices_at(unix(2024, 3, 30, 12, 0)).unwrap();
    let night = p.slots.iter().find(|s| s.price_per_kwh == 0.21).unwrap();
    assert_eq!(night.start_unix, unix(2024, 3, 30, 21, 0)); // 22:00 CET
    assert_eq!(night.end_unix, unix(2024, 3, 31, 4, 0)); // 06:00 CEST
    assert_eq!(night.end_unix - night.start_unix, 7 * 3600);
    // Clocks go back at 03:00 local on Sunday 2024-10-27.
    let p = t.prices_at(unix(2024, 10, 26, 12, 0)).unwrap();
    let night = p.slots.iter().find(|s| s.price_per_kwh == 0.21).unwrap();
    assert_eq!(night.start_unix, unix(2024, 10, 26, 20, 0)); // 22:00 CEST
    assert_eq!(night.end_unix, unix(2024, 10, 27, 5, 0)); // 06:00 CET
    assert_eq!(night.end_unix - night.start_unix, 9 * 3600);
}

#[test]
fn the_first_matching_window_wins_and_days_are_the_start_day() {
    let t = build_tou(&cfg(berlin_night())).unwrap();
    // Saturday 2024-01-13 10:00 local: the weekend window.
    assert_eq!(
        t.price_at(Utc.with_ymd_and_hms(2024, 1, 13, 9, 0, 0).unwrap()),
        0.25
    );
    // Friday 23:00 local: the night window (every day).
    assert_eq!(
        t.price_at(Utc.with_ymd_and_hms(2024, 1, 12, 22, 0, 0).unwrap()),
        0.21
    );
    // Slots are merged: no two neighbours share a price, and they tile without gaps.
    let p = t.prices_at(unix(2024, 1, 10, 0, 0)).unwrap();
    for w in p.slots.windows(2) {
        assert_ne!(w[0].price_per_kwh, w[1].price_per_kwh);
        assert_eq!(w[0].end_unix, w[1].start_unix);
    }
    let days_only = serde_json::json!({
        "timezone": "UTC",
        "default_price_per_kwh": 0.3,
        "windows": [{"days": ["Fri"], "start": "23:00", "end": "01:00", "price_per_kwh": 0.1}]
    });
    let t = build_tou(&cfg(days_only)).unwrap();
    // Friday 2024-01-12 23:30 and Saturday 00:30 are in it; Thursday 23:30 is not.
    assert_eq!(
        t.price_at(Utc.with_ymd_and_hms(2024, 1, 12, 23, 30, 0).unwrap()),
        0.1
    );
    assert_eq!(
        t.price_at(Utc.with_ymd_and_hms(2024, 1, 13, 0, 30, 0).unwrap()),
        0.1
    );
    assert_eq!(
        t.price_at(Utc.with_ymd_and_hms(2024, 1, 11, 23, 30, 0).unwrap()),
        0.3
    );
    assert_eq!(
        t.price_at(Utc.with_ymd_and_hms(2024, 1, 13, 1, 0, 0).unwrap()),
        0.3
    );
}

#[test]
fn bad_keys_name_the_key() {
    let e = |v: serde_json::Value| build(&cfg(v)).err().unwrap().to_string();
    let base = |k: &str, v: serde_json::Value| {
        let mut b = berlin_night();
        b[k] = v;
        b
    };
    assert!(e(base("timezone", "Berlin".into())).contains("timezone"));
    let w = |start: &str, end: &str, days: serde_json::Value| {
        base(
            "windows",
            serde_json::json!([{"start": start, "end": end, "days": days, "price_per_kwh": 0.1}]),
        )
    };
    assert!(e(w("22:10", "06:00", serde_json::json!([]))).contains("windows[0].start"));
    assert!(e(w("22:00", "25:00", serde_json::json!([]))).contains("windows[0].end"));
    assert!(e(w("24:00", "06:00", serde_json::json!([]))).contains("windows[0].start"));
    assert!(e(w("22:00", "06:00", serde_json::json!(["Funday"]))).contains("windows[0].days"));
    assert!(e(serde_json::json!({"timezone": "UTC"})).contains("default_price_per_kwh"));
}

#[test]
fn registered_as_a_tariff() {
    assert!(Registry::collect().unwrap().tariff.contains_key("tou"));
}
