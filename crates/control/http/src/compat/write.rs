//! TWCManager's write routes (Charge Now, offsets, policy, home, settings, schedule): each parses
//! TWCManager's loose body, then calls the typed API's operation (`crate::v2::…`) or sends the
//! engine command, and answers in TWCManager's shape.

use super::body_object;
use super::unit_str;
use crate::AppState;
use crate::ops;
use crate::util::{bad, error, loose_bool, loose_f64, loose_int, python_str};
use crate::v2;
use crate::v2::offsets::Missing;
use crate::v2::settings::SettingsPatch;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::time::Duration;
use twc_core::engine::Command;
use twc_core::model::{ConsumptionOffset, OffsetUnit, Schedule, ScheduleWindow};

pub(super) async fn charge_now(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let get = |k: &str| -> Result<i64, Response> {
        match m.get(k) {
            None => Ok(0),
            Some(v) => loose_int(v).ok_or_else(|| bad("Invalid rate or duration")),
        }
    };
    let (rate, duration) = match (get("chargeNowRate"), get("chargeNowDuration")) {
        (Ok(r), Ok(d)) => (r, d),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if rate <= 0 || duration <= 0 {
        return bad("Rate and duration must be positive");
    }
    if duration > 7 * 24 * 3600 {
        return bad("chargeNowDuration must be at most 604800 s (one week)");
    }
    let duration_secs = Duration::from_secs(duration as u64);
    match v2::charge_now::start(&st, rate as f64, duration_secs).await {
        Ok(_) => {
            Json(json!({"status": "success", "rate": rate, "duration": duration})).into_response()
        }
        Err(r) => r,
    }
}

pub(super) async fn cancel_charge_now(State(st): State<AppState>) -> Response {
    match v2::charge_now::cancel(&st).await {
        Ok(_) => Json(json!({"status": "success"})).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn add_consumption_offset(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(name) = m
        .get("offsetName")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return bad("offsetName is required and must be a string");
    };
    let Some(value) = m.get("offsetValue").and_then(loose_f64) else {
        return bad("offsetValue is required and must be a number");
    };
    let unit = match m.get("offsetUnit").and_then(Value::as_str) {
        Some("A") => OffsetUnit::A,
        Some("W") => OffsetUnit::W,
        _ => return bad("offsetUnit must be \"A\" or \"W\""),
    };
    let o = ConsumptionOffset { value, unit };
    let r = v2::offsets::store(&st, name.clone(), o).await;
    match r {
        Ok(_) => Json(json!({"status": "success", "offsetName": name, "offsetValue": value, "offsetUnit": unit_str(unit)}))
            .into_response(),
        Err(r) => r,
    }
}

pub(super) async fn delete_consumption_offset(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(name) = m
        .get("offsetName")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return bad("offsetName is required and must be a string");
    };
    // TWCManager answers 404 "Offset not found" here; no offset can have an empty name, so the
    // request itself is wrong.
    if name.trim().is_empty() {
        return bad("offsetName must not be empty");
    }
    let missing = |m| match m {
        Missing::NoOffsets => error(StatusCode::NOT_FOUND, "No consumption offsets configured"),
        Missing::NoSuchName => error(StatusCode::NOT_FOUND, "Offset not found"),
    };
    let r = v2::offsets::remove(&st, name.clone(), missing).await;
    match r {
        Ok(_) => Json(json!({"status": "success", "offsetName": name})).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn set_consumption_offset(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(v) = m.get("offset").filter(|v| !v.is_null()) else {
        return bad("offset is required");
    };
    let Some(x) = loose_f64(v).filter(|x| x.abs() <= 400.0) else {
        return bad("Value must be a number (amps, within ±400)");
    };
    // Like TWCManager, this stores greenEnergyAmpsOffset, which the calculation does not read;
    // named offsets (addConsumptionOffset) are the ones that count.
    let cmd = Command::SetSetting {
        key: "greenEnergyAmpsOffset".into(),
        value: Some(x.to_string()),
    };
    match ops::apply(&st, cmd).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

pub(super) async fn set_policy(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let p = match m.get("policy") {
        None | Some(Value::Null) => return bad("policy field is required"),
        Some(Value::String(p)) => p.clone(),
        Some(_) => return bad("policy must be a string"),
    };
    if p.trim().is_empty() {
        return bad("policy cannot be empty");
    }
    let known = st.engine.status().policy.rules.contains(&p);
    if !known {
        return bad(format!("Policy '{p}' not found"));
    }
    // As in TWCManager, the next evaluation selects the first matching rule again, so this
    // changes nothing lasting; it is accepted for compatibility.
    Json(json!({"status": "success", "policy": p})).into_response()
}

pub(super) async fn set_lat_lon(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let lat = m.get("lat").and_then(loose_f64);
    let lon = m.get("lon").and_then(loose_f64);
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return bad("lat and lon are required numbers");
    };
    match v2::settings::patch(&st, SettingsPatch::home(lat, lon)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

pub(super) async fn set_setting(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(key) = m.get("setting").and_then(Value::as_str).map(str::to_string) else {
        return bad("setting is required and must be a string");
    };
    let Some(value) = m.get("value") else {
        return bad("value is required");
    };
    let value = python_str(value);
    // The engine's validator holds the key, the value and how many are stored to its bounds
    // (`bounds::MAX_EXTRA*`, `bounds::UNSAFE_CHARS`).
    match ops::apply(
        &st,
        Command::SetSetting {
            key,
            value: Some(value),
        },
    )
    .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

pub(super) async fn save_settings() -> StatusCode {
    // Every change above already went to the engine, which persists its settings.
    StatusCode::NO_CONTENT
}

fn sched_field<T>(
    m: &Map<String, Value>,
    k: &str,
    f: impl Fn(&Value) -> Option<T>,
) -> Result<Option<T>, Response> {
    match m.get(k) {
        None => Ok(None),
        Some(v) => f(v)
            .map(Some)
            .ok_or_else(|| bad(format!("{k} has the wrong type"))),
    }
}

pub(super) async fn set_scheduled_charging(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<Schedule, Response> {
        let enabled = sched_field(&m, "enabled", loose_bool)?.unwrap_or(false);
        let mut s = Schedule {
            enabled,
            ..Schedule::default()
        };
        if let Some(b) = sched_field(&m, "flexBatterySize", loose_int)? {
            // TWCManager keeps a battery size only when it is above 40 kWh.
            if b > 40 {
                s.flex_battery_kwh = b as f64;
            }
        }
        s.flex_start = sched_field(&m, "flexStartEnabled", loose_bool)?.unwrap_or(false);
        if !enabled {
            return Ok(s);
        }
        let start = sched_field(&m, "startingMinute", loose_int)?
            .ok_or_else(|| bad("startingMinute is required"))?;
        let end = sched_field(&m, "endingMinute", loose_int)?
            .ok_or_else(|| bad("endingMinute is required"))?;
        if !(0..=1439).contains(&start) || !(0..=1439).contains(&end) {
            return Err(bad("startingMinute and endingMinute must be 0..1439"));
        }
        s.amps = sched_field(&m, "amps", loose_int)?.ok_or_else(|| bad("amps is required"))? as f64;
        let days = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        for (i, d) in days.iter().enumerate() {
            if sched_field(&m, d, loose_bool)?.unwrap_or(false) {
                s.windows.push(ScheduleWindow {
                    weekday: i as u8 + 1,
                    start_minute: start as u16,
                    end_minute: end as u16,
                });
            }
        }
        if s.windows.is_empty() {
            return Err(bad("an enabled schedule needs at least one weekday"));
        }
        Ok(s)
    })();
    let sched = match parsed {
        Ok(s) => s,
        Err(r) => return r,
    };
    match v2::schedules::replace(&st, sched).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(r) => r,
    }
}
