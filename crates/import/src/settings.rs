//! TWCManager's `settings.json` (runtime state written by its web UI) into our runtime settings.

use crate::out::{Out, num, text};
use serde_json::{Map, Value};
use twc_core::model::{
    ChargeNow, ConsumptionOffset, HomeLocation, OffsetUnit, ScheduleWindow, bounds,
};

const F: &str = "settings.json";

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

pub(crate) fn import_settings(mut s: Map<String, Value>, out: &mut Out) {
    out.settings();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let amps = s.remove("chargeNowAmps").as_ref().and_then(num);
    let end = s.remove("chargeNowTimeEnd").as_ref().and_then(num);
    match (amps, end) {
        (Some(a), Some(e)) if a > 0.0 && (e as i64) > now => {
            out.settings().charge_now = Some(ChargeNow {
                amps: a,
                until_unix: e as i64,
            });
            out.mapped(F, "chargeNowAmps", "charge_now.amps");
            out.mapped(F, "chargeNowTimeEnd", "charge_now.until_unix");
        }
        (a, e) => {
            for (k, v) in [("chargeNowAmps", a), ("chargeNowTimeEnd", e)] {
                if v.is_some() {
                    out.skip(F, k, "no Charge Now running (0 A or already ended)");
                }
            }
        }
    }
    if let Some(v) = s.remove("nonScheduledAmpsMax").as_ref().and_then(num) {
        out.settings().non_scheduled_amps = v.max(0.0);
        out.mapped(F, "nonScheduledAmpsMax", "non_scheduled_amps");
    }
    if let Some(v) = s.remove("nonScheduledAction").as_ref().and_then(num) {
        let action = match v as i64 {
            1 => Some("charge"),
            2 => Some("stop"),
            3 => Some("green"),
            _ => None,
        };
        match action {
            Some(a) => {
                out.settings().non_scheduled_action = a.into();
                out.mapped_with(
                    F,
                    "nonScheduledAction",
                    "non_scheduled_action",
                    "1 = charge, 2 = stop, 3 = green",
                );
            }
            None => out.skip(F, "nonScheduledAction", "expected 1, 2 or 3"),
        }
    }
    schedule(&mut s, out);
    if let Some(Value::Object(offsets)) = s.remove("consumptionOffset") {
        for (name, o) in offsets {
            let key = format!("consumptionOffset.{name}");
            let value = o.get("value").and_then(num);
            let unit = match o.get("unit").and_then(text).as_deref() {
                Some("A") => Some(OffsetUnit::A),
                Some("W") => Some(OffsetUnit::W),
                _ => None,
            };
            let ok_name = name.chars().count() < bounds::MAX_OFFSET_NAME_CHARS
                && !name.contains(bounds::UNSAFE_CHARS);
            match (value, unit, ok_name) {
                (Some(value), Some(unit), true) => {
                    out.settings()
                        .consumption_offsets
                        .insert(name.clone(), ConsumptionOffset { value, unit });
                    out.mapped(F, &key, &format!("consumption_offsets.{name}"));
                }
                (_, _, false) => out.skip(
                    F,
                    &key,
                    "the name is too long or has characters our API refuses",
                ),
                _ => out.skip(F, &key, "expected { value: number, unit: \"A\" or \"W\" }"),
            }
        }
    }
    let lat = s.remove("homeLat").as_ref().and_then(num);
    let lon = s.remove("homeLon").as_ref().and_then(num);
    match (lat, lon) {
        (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => {
            out.settings().home = Some(HomeLocation { lat, lon });
            out.mapped(F, "homeLat", "home.lat");
            out.mapped(F, "homeLon", "home.lon");
        }
        (lat, lon) => {
            for (k, v) in [("homeLat", lat), ("homeLon", lon)] {
                if v.is_some() {
                    out.skip(
                        F,
                        k,
                        "10000 means \"not known yet\" in TWCManager; no home location is set",
                    );
                }
            }
        }
    }
    if let Some(Value::Object(groups)) = s.remove("VehicleGroups") {
        for (name, g) in groups {
            let key = format!("VehicleGroups.{name}");
            let members: Vec<String> = match g.get("Members") {
                Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
                _ => Vec::new(),
            };
            match name.as_str() {
                "Allow Charging" => {
                    out.settings().vin_allow = members;
                    out.mapped(F, &key, "vin_allow");
                }
                "Deny Charging" => {
                    out.settings().vin_deny = members;
                    out.mapped(F, &key, "vin_deny");
                }
                _ => out.skip(F, &key, "only the built-in Allow/Deny groups exist here; use a [[policy.custom]] condition on vehicle.vin for others"),
            }
        }
    }
    for (key, why) in SKIPPED {
        if s.remove(*key).is_some() {
            out.skip(F, key, why);
        }
    }
    // Anything else was stored through /api/setSetting: kept as a free-form setting
    // (settings.<key> in policy conditions), as strings like upstream.
    for (k, v) in s {
        let value = match &v {
            Value::String(t) => Some(t.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let fits = k.len() <= bounds::MAX_EXTRA_KEY
            && !k.contains(bounds::UNSAFE_CHARS)
            && value.as_ref().is_some_and(|v| {
                v.len() <= bounds::MAX_EXTRA_VALUE && !v.contains(bounds::UNSAFE_CHARS)
            });
        match value {
            Some(value) if fits && out.settings().extra.len() < bounds::MAX_EXTRA => {
                out.settings().extra.insert(k.clone(), value);
                out.mapped_with(F, &k, &format!("extra.{k}"), "kept as a free-form setting (settings.<key> in policy conditions)");
            }
            _ => out.skip(F, &k, "not a setting TWCManager documents, and not a plain value our free-form settings can hold"),
        }
    }
}

const SKIPPED: &[(&str, &str)] = &[
    (
        "chargeStopMode",
        "how to stop a car: twcmanager offers 0 A (and FC B2 only against a car that ignores it, see [master] escalate_stop_secs)",
    ),
    (
        "chargeRateControl",
        "twcmanager always controls the rate through the TWCs' offers",
    ),
    (
        "chargeAuthorizationMode",
        "needs a vehicle API, which twcmanager does not have yet",
    ),
    (
        "commandPolicy",
        "needs a vehicle API, which twcmanager does not have yet",
    ),
    (
        "spikeAmpsProactively",
        "the amps spike for cars stuck at a low rate is not implemented",
    ),
    (
        "spikeAmpsReactively",
        "the amps spike for cars stuck at a low rate is not implemented",
    ),
    (
        "respondToSlaves",
        "twcmanager always answers the slaves (that is its job as the master)",
    ),
    (
        "respondToSlavesExpiry",
        "twcmanager always answers the slaves (that is its job as the master)",
    ),
    (
        "sendServerTime",
        "sending the time to slaves is not implemented",
    ),
    (
        "kWhDelivered",
        "the fake-slave kWh counter of TWCManager; twcmanager is never a slave",
    ),
    ("webControlTheme", "our web UI has one theme"),
    (
        "enableDebugCommands",
        "debug commands are always available to authenticated clients",
    ),
    ("sunrise", "computed from the home location here"),
    ("sunset", "computed from the home location here"),
    ("Graphs", "the UI's graph range is chosen on the page"),
    (
        "history",
        "the live chart is kept in memory; history comes from the SQLite/MySQL logger",
    ),
    ("SlaveTWCs", "learnt again from the slaves at start"),
    (
        "Vehicles",
        "per-car session counts are rebuilt from the event log",
    ),
    (
        "carApiBearerToken",
        "Tesla API tokens: no vehicle API yet (and tokens are not copied)",
    ),
    (
        "carApiRefreshToken",
        "Tesla API tokens: no vehicle API yet (and tokens are not copied)",
    ),
    (
        "carApiTokenExpireTime",
        "Tesla API tokens: no vehicle API yet",
    ),
    (
        "chargeLimits",
        "car charge limits need a vehicle API, which twcmanager does not have yet",
    ),
    (
        "greenEnergyAmpsOffset",
        "written by TWCManager's API but never used by it",
    ),
    (
        "hourResumeTrackGreenEnergy",
        "no equivalent setting: daytime green tracking is [policy] daytime_green with green_window",
    ),
];

fn schedule(s: &mut Map<String, Value>, out: &mut Out) {
    // The newer per-day "Schedule" object wins over the old scheduledAmps* keys.
    let amps = s.remove("scheduledAmpsMax").as_ref().and_then(num);
    let start = s.remove("scheduledAmpsStartHour").as_ref().and_then(num);
    let end = s.remove("scheduledAmpsEndHour").as_ref().and_then(num);
    let days = s.remove("scheduledAmpsDaysBitmap").as_ref().and_then(num);
    let flex = s.remove("scheduledAmpsFlexStart").as_ref().and_then(num);
    if let Some(b) = s.remove("scheduledAmpsBatterySize").as_ref().and_then(num) {
        out.settings().schedule.flex_battery_kwh = b.clamp(1.0, bounds::MAX_FLEX_BATTERY_KWH);
        out.mapped(F, "scheduledAmpsBatterySize", "schedule.flex_battery_kwh");
    }
    let minute = |h: f64| ((h * 60.0).round() as i64).clamp(0, 1439) as u16;
    if let Some(Value::Object(mut sch)) = s.remove("Schedule") {
        let settings = sch.remove("Settings").unwrap_or(Value::Null);
        let common = sch.remove("Common").unwrap_or(Value::Null);
        let per_day = settings
            .get("schedulePerDay")
            .and_then(crate::out::boolean)
            .unwrap_or(false);
        let amps = settings
            .get("scheduledAmpsMax")
            .and_then(num)
            .or(amps)
            .unwrap_or(0.0);
        let mut windows = Vec::new();
        for (i, day) in DAYS.iter().enumerate() {
            let Some(d) = sch.remove(*day) else { continue };
            let on = d
                .get("enabled")
                .and_then(crate::out::boolean)
                .unwrap_or(false);
            let src = if per_day { &d } else { &common };
            let (Some(a), Some(b)) = (
                src.get("start").and_then(text).and_then(|t| hhmm(&t)),
                src.get("end").and_then(text).and_then(|t| hhmm(&t)),
            ) else {
                continue;
            };
            if on {
                windows.push(ScheduleWindow {
                    weekday: i as u8 + 1,
                    start_minute: a,
                    end_minute: b,
                });
            }
            if d.get("flex").and_then(crate::out::boolean) == Some(true) {
                out.settings().schedule.flex_start = true;
            }
        }
        let sched = &mut out.settings().schedule;
        sched.amps = amps.max(0.0);
        sched.enabled = amps > 0.0 && !windows.is_empty();
        sched.windows = windows;
        out.mapped(F, "Schedule", "schedule (windows per weekday, amps)");
        if settings.get("resumeGreenEnergy").is_some() {
            out.skip(F, "Schedule.Settings.resumeGreenEnergy", "no equivalent setting: daytime green tracking is [policy] daytime_green with green_window");
        }
        out.unknown(F, "Schedule.", sch);
        for k in [
            "scheduledAmpsMax",
            "scheduledAmpsStartHour",
            "scheduledAmpsEndHour",
            "scheduledAmpsDaysBitmap",
        ] {
            out.skip(F, k, "the Schedule object (newer) was used instead");
        }
        return;
    }
    if let (Some(a), Some(st), Some(en)) = (amps, start, end) {
        let bitmap = days.unwrap_or(127.0) as u32;
        let windows: Vec<ScheduleWindow> = if st >= 0.0 && en >= 0.0 {
            (0..7)
                .filter(|i| bitmap & (1 << i) != 0)
                .map(|i| ScheduleWindow {
                    weekday: i as u8 + 1,
                    start_minute: minute(st),
                    end_minute: minute(en),
                })
                .collect()
        } else {
            Vec::new()
        };
        let sched = &mut out.settings().schedule;
        sched.enabled = a > 0.0 && !windows.is_empty();
        sched.amps = a.max(0.0);
        sched.windows = windows;
        sched.flex_start = flex.unwrap_or(0.0) > 0.0;
        for k in [
            "scheduledAmpsMax",
            "scheduledAmpsStartHour",
            "scheduledAmpsEndHour",
            "scheduledAmpsDaysBitmap",
        ] {
            out.mapped(F, k, "schedule");
        }
        if flex.is_some() {
            out.mapped(F, "scheduledAmpsFlexStart", "schedule.flex_start");
        }
    } else {
        for (k, v) in [
            ("scheduledAmpsMax", amps),
            ("scheduledAmpsStartHour", start),
            ("scheduledAmpsEndHour", end),
            ("scheduledAmpsDaysBitmap", days),
            ("scheduledAmpsFlexStart", flex),
        ] {
            if v.is_some() {
                out.skip(
                    F,
                    k,
                    "the schedule needs scheduledAmpsMax, StartHour and EndHour together",
                );
            }
        }
    }
}

/// "HH:MM" into minutes after midnight.
fn hhmm(t: &str) -> Option<u16> {
    let (h, m) = t.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}
