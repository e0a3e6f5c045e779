//! TWCManager-compatible `/api/*`: the 25 routes of TWCManager's HTTPControl with its methods,
//! bodies, status codes and loose JSON types, so existing scripts and dashboards work unchanged.
//! Where TWCManager drops the connection or silently ignores a value, this answers 400 with a
//! reason and changes nothing.

use crate::AppState;
use crate::ops;
use crate::util::{
    UNSAFE_CHARS, bad, command_error, error, json_object, loose_bool, loose_f64, loose_int,
    python_str, r2, scrub_secrets,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::sync::Mutex;
use std::time::Duration;
use twc_core::engine::{Command, CommandError};
use twc_core::model::{
    ConsumptionOffset, HomeLocation, OffsetUnit, Schedule, ScheduleWindow, Status,
};
use twc_core::protocol::MessageCode;

/// State only the compatibility API has.
pub(crate) struct CompatState {
    last_twc_response: Mutex<String>,
    /// `Status.bus.replies` when the last debug query was sent: a later reply is its answer.
    debug_sent_at: Mutex<Option<u64>>,
    uuid: u64,
}

impl CompatState {
    pub(crate) fn new() -> Self {
        CompatState {
            last_twc_response: Mutex::new("None".into()),
            debug_sent_at: Mutex::new(None),
            uuid: host_node(),
        }
    }
}

/// Python's `uuid.getnode()`: the first hardware MAC address as a 48-bit number, or a random
/// number with the multicast bit set when there is none.
fn host_node() -> u64 {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        if n == "lo" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(format!("/sys/class/net/{n}/address")) else {
            continue;
        };
        let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
        if let Ok(v) = u64::from_str_radix(&hex, 16)
            && v != 0
            && hex.len() == 12
        {
            return v;
        }
    }
    (rand::random::<u64>() & 0xFFFF_FFFF_FFFF) | 0x0100_0000_0000
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/getStatus", get(get_status))
        .route("/getSlaveTWCs", get(get_slave_twcs))
        .route("/getActivePolicyAction", get(get_active_policy_action))
        .route("/getPolicy", get(get_policy))
        .route("/getConfig", get(get_config))
        .route("/getConsumptionOffsets", get(get_consumption_offsets))
        .route("/getLastTWCResponse", get(get_last_twc_response))
        .route("/getHistory", get(get_history))
        .route("/getUUID", get(get_uuid))
        .route("/chargeNow", post(charge_now))
        .route("/cancelChargeNow", post(cancel_charge_now))
        .route("/addConsumptionOffset", post(add_consumption_offset))
        .route("/deleteConsumptionOffset", post(delete_consumption_offset))
        .route("/setConsumptionOffset", post(set_consumption_offset))
        .route("/setPolicy", post(set_policy))
        .route("/setLatLon", post(set_lat_lon))
        .route("/setSetting", post(set_setting))
        .route("/saveSettings", post(save_settings))
        .route(
            "/setScheduledChargingSettings",
            post(set_scheduled_charging),
        )
        .route("/sendStartCommand", post(send_start))
        .route("/sendStopCommand", post(send_stop))
        .route("/checkArrival", post(check_arrival))
        .route("/checkDeparture", post(check_departure))
        .route("/sendDebugCommand", post(send_debug_command))
        .route("/sendTeslaAPICommand", post(send_tesla_api_command))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
}

fn f2(x: f64) -> String {
    // `+ 0.0` turns −0.0 (an empty float sum) into 0.0.
    format!("{:.2}", x + 0.0)
}

/// Volts per phase × phases for W ↔ A, as the engine uses them (`Status.site`).
fn site_volts(st: &AppState, s: &Status) -> f64 {
    let v = if s.site.voltage > 0.0 {
        s.site.voltage
    } else {
        st.recorder.voltage()
    };
    v * f64::from(s.site.phases.max(1))
}

/// `"0.00"` when zero, a one-element array `["x.xx"]` otherwise (TWCManager's tuple accident),
/// `null` when there is no fresh reading.
fn loose_amps(w: Option<f64>, volts: f64) -> Value {
    match w {
        None => Value::Null,
        Some(w) => {
            let a = (w.max(0.0) / volts).max(0.0);
            if a == 0.0 {
                json!("0.00")
            } else {
                json!([f2(a)])
            }
        }
    }
}

fn schedule_json(s: &Schedule) -> Value {
    let days = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let (start, end) = match s.windows.first() {
        Some(w) if s.enabled => (i64::from(w.start_minute), i64::from(w.end_minute)),
        _ => (-1, -1),
    };
    let mut m = Map::new();
    m.insert("enabled".into(), json!(s.enabled));
    m.insert("amps".into(), json!(s.amps.floor() as i64));
    m.insert("startingMinute".into(), json!(start));
    m.insert("endingMinute".into(), json!(end));
    for (i, d) in days.iter().enumerate() {
        let on = s.windows.is_empty() || s.windows.iter().any(|w| usize::from(w.weekday) == i + 1);
        m.insert((*d).into(), json!(on));
    }
    m.insert("flexStartEnabled".into(), json!(i64::from(s.flex_start)));
    m.insert("flexStartingMinute".into(), json!(-1));
    m.insert("flexEndingMinute".into(), json!(-1));
    for d in days {
        let mut k = String::from("flex");
        k.push_str(&d[..1].to_uppercase());
        k.push_str(&d[1..]);
        m.insert(k, json!(true));
    }
    m.insert(
        "flexBatterySize".into(),
        json!(s.flex_battery_kwh.round() as i64),
    );
    Value::Object(m)
}

async fn get_status(State(st): State<AppState>) -> Json<Value> {
    Json(status_json(&st, &st.engine.status()))
}

pub(crate) fn status_json(st: &AppState, s: &Status) -> Value {
    let volts = site_volts(st, s);
    let r = s.reading.as_ref();
    let gen_w = r.and_then(|r| r.generation_w).map(|w| w.max(0.0));
    let cons_w = r.and_then(|r| r.consumption_w).map(|w| w.max(0.0));
    let charger_a = s.total_actual().amps();
    let mut m = Map::new();
    m.insert("carsCharging".into(), json!(s.cars_charging()));
    m.insert("chargerLoadWatts".into(), json!(f2(s.site.charger_w)));
    m.insert("chargerLoadAmps".into(), json!([f2(charger_a)]));
    let name = if s.policy.name.is_empty() {
        "None"
    } else {
        s.policy.name.as_str()
    };
    m.insert("currentPolicy".into(), json!(name));
    m.insert(
        "maxAmpsToDivideAmongSlaves".into(),
        json!(f2(s.policy.budget.amps())),
    );
    m.insert("consumptionAmps".into(), loose_amps(cons_w, volts));
    m.insert(
        "consumptionWatts".into(),
        cons_w.map(f2).map_or(Value::Null, Value::from),
    );
    m.insert("generationAmps".into(), loose_amps(gen_w, volts));
    m.insert(
        "generationWatts".into(),
        gen_w.map(f2).map_or(Value::Null, Value::from),
    );
    m.insert(
        "isGreenPolicy".into(),
        json!(if s.policy.is_green { "Yes" } else { "No" }),
    );
    let sch = &s.settings.schedule;
    let first = sch.windows.first().filter(|_| sch.enabled);
    m.insert(
        "scheduledChargingStartHour".into(),
        json!(first.map_or(-1, |w| i64::from(w.start_minute / 60))),
    );
    m.insert("scheduledChargingFlexStart".into(), json!(-1));
    m.insert(
        "scheduledChargingEndHour".into(),
        first.map_or(json!(-1), |w| json!(f64::from(w.end_minute) / 60.0)),
    );
    m.insert("ScheduledCharging".into(), schedule_json(sch));
    if let Some(cn) = s.settings.charge_now {
        let now = chrono::Utc::now().timestamp();
        if cn.until_unix > now {
            m.insert("chargeNowTimeEnd".into(), json!(cn.until_unix as f64));
        }
        if cn.amps > 0.0 {
            m.insert("chargeNowAmps".into(), json!(cn.amps.floor() as i64));
        }
    }
    if s.settings.extra.get("sendServerTime").map(String::as_str) == Some("1") {
        let t = chrono::Local::now()
            .format("%Y-%m-%d, %H:%M&nbsp;|&nbsp;")
            .to_string();
        m.insert("currentServerTime".into(), json!(t));
    }
    Value::Object(m)
}

fn charge_time(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s >= 0.0 => {
            let s = s as u64;
            format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
        }
        _ => "--:--:--".into(),
    }
}

async fn get_slave_twcs(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.status();
    let mut m = Map::new();
    let (mut charging, mut offered, mut kwh, mut actual) = (0i64, 0.0, 0i64, 0.0);
    let mut max_amps: Option<f64> = None;
    for x in &s.slaves {
        let id = x.id.to_string();
        let w = x.power_w;
        m.insert(
            id.clone(),
            json!({
                "carsCharging": x.charging,
                "chargerLoadInW": w.round() as i64,
                "currentVIN": x.vin.clone().unwrap_or_default(),
                "lastAmpsOffered": r2(x.offered.amps()),
                "lastHeartbeat": r2(x.last_heartbeat_secs),
                "lastVIN": x.last_vin.clone().unwrap_or_default(),
                "lifetimekWh": x.lifetime_kwh.unwrap_or(0),
                "maxAmps": x.max_amps.amps(),
                "reportedAmpsActual": r2(x.actual.amps()),
                "state": x.state,
                "version": x.version.number(),
                "voltsPhaseA": x.volts[0],
                "voltsPhaseB": x.volts[1],
                "voltsPhaseC": x.volts[2],
                "TWCID": id,
                "chargeTime": charge_time(x.session_secs),
            }),
        );
        charging += i64::from(x.charging);
        offered += x.offered.amps();
        kwh += i64::from(x.lifetime_kwh.unwrap_or(0));
        actual += x.actual.amps();
        let ma = x.max_amps.amps();
        max_amps = Some(max_amps.map_or(ma, |m: f64| m.min(ma)));
    }
    m.insert(
        "total".into(),
        json!({
            "carsCharging": charging,
            "lastAmpsOffered": r2(offered),
            "lifetimekWh": kwh,
            "maxAmps": max_amps.unwrap_or(0.0),
            "reportedAmpsActual": r2(actual),
            "TWCID": "total",
        }),
    );
    Json(Value::Object(m))
}

async fn get_active_policy_action(State(st): State<AppState>) -> Json<Value> {
    Json(json!(crate::v2::policy_action(&st.engine.status())))
}

/// The built-in policy list, in TWCManager's rule format and order.
pub(crate) fn policy_list() -> Value {
    json!([
        {"name": "Charge Now",
         "match": ["settings.chargeNowAmps", "settings.chargeNowTimeEnd", "settings.chargeNowTimeEnd"],
         "condition": ["gt", "gt", "gt"], "value": [0, 0, "now"],
         "charge_amps": "settings.chargeNowAmps"},
        {"name": "Scheduled Charging",
         "match": ["checkScheduledCharging()"], "condition": ["eq"], "value": [1],
         "charge_amps": "settings.scheduledAmpsMax"},
        {"name": "Track Green Energy",
         "match": ["settings.nonScheduledAction"], "condition": ["eq"], "value": ["green"],
         "background_task": "checkGreenEnergy"},
        {"name": "Non Scheduled Charging",
         "match": ["none"], "condition": ["none"], "value": [0],
         "charge_amps": "settings.nonScheduledAmpsMax"}
    ])
}

async fn get_policy() -> Json<Value> {
    Json(policy_list())
}

async fn get_config(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.status();
    let eff = st.cfg.effective_config.clone().unwrap_or_else(|| json!({}));
    let min = s.min_amps_per_twc.amps();
    let branch = |k: &str| scrub_secrets(eff.get(k).unwrap_or(&json!({})));
    Json(json!({
        "config": {
            "wiringMaxAmpsAllTWCs": s.wiring_max_all.amps(),
            "wiringMaxAmpsPerTWC": s.wiring_max_per_twc.amps(),
            "minAmpsPerTWC": min,
        },
        "interface": branch("comms"),
        "sources": branch("ems"),
        "status": branch("status"),
        "control": branch("control"),
        "logging": branch("logging"),
        "vehicle": branch("vehicle"),
        "twcmanager": scrub_secrets(&eff),
    }))
}

async fn get_consumption_offsets(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.status();
    let m: Map<String, Value> = s
        .settings
        .consumption_offsets
        .iter()
        .map(|(k, o)| {
            (
                k.clone(),
                json!({"value": o.value, "unit": unit_str(o.unit)}),
            )
        })
        .collect();
    Json(Value::Object(m))
}

fn unit_str(u: OffsetUnit) -> &'static str {
    match u {
        OffsetUnit::A => "A",
        OffsetUnit::W => "W",
    }
}

fn text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s).into_response()
}

async fn get_last_twc_response(State(st): State<AppState>) -> Response {
    let sent_at = *st
        .compat
        .debug_sent_at
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(sent_at) = sent_at {
        let bus = st.engine.status().bus;
        if bus.replies > sent_at
            && let Some(bytes) = bus
                .last_reply
                .as_deref()
                .and_then(twc_core::protocol::codec::parse_hex)
        {
            return text(python_bytearray(&bytes));
        }
    }
    let s = st
        .compat
        .last_twc_response
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    text(s)
}

/// Python's `repr(bytearray(...))`, which TWCManager's getLastTWCResponse returns.
fn python_bytearray(bytes: &[u8]) -> String {
    let mut s = String::from("bytearray(b'");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push_str("')");
    s
}

async fn get_history(State(st): State<AppState>) -> Json<Value> {
    let b = st.recorder.buckets(chrono::Utc::now());
    Json(Value::Array(
        b.into_iter()
            .map(|(t, w)| {
                json!({
                    "timestamp": t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
                    "charger_power": r2(w.unwrap_or(0.0)),
                })
            })
            .collect(),
    ))
}

async fn get_uuid(State(st): State<AppState>) -> Response {
    text(st.compat.uuid.to_string())
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    json_object(body).map_err(bad)
}

async fn charge_now(State(st): State<AppState>, body: Bytes) -> Response {
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
    let cmd = Command::ChargeNow {
        amps: rate as f64,
        duration: Duration::from_secs(duration as u64),
    };
    match st.engine.command(cmd).await {
        Ok(_) => {
            Json(json!({"status": "success", "rate": rate, "duration": duration})).into_response()
        }
        Err(e) => command_error(e),
    }
}

async fn cancel_charge_now(State(st): State<AppState>) -> Response {
    match st.engine.command(Command::CancelChargeNow).await {
        Ok(_) => Json(json!({"status": "success"})).into_response(),
        Err(e) => command_error(e),
    }
}

async fn add_consumption_offset(State(st): State<AppState>, body: Bytes) -> Response {
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
    if let Err(e) = ops::validate_offset_name(&name) {
        return bad(e);
    }
    let Some(value) = m.get("offsetValue").and_then(loose_f64) else {
        return bad("offsetValue is required and must be a number");
    };
    let unit = match m.get("offsetUnit").and_then(Value::as_str) {
        Some("A") => OffsetUnit::A,
        Some("W") => OffsetUnit::W,
        _ => return bad("offsetUnit must be \"A\" or \"W\""),
    };
    let o = ConsumptionOffset { value, unit };
    if let Err(e) = ops::validate_offset(&o) {
        return bad(e);
    }
    let n = name.clone();
    let cmd = Command::SetOffset {
        name: name.clone(),
        offset: Some(o),
    };
    let r = ops::apply(
        &st,
        move |s| {
            if !s.consumption_offsets.contains_key(&n)
                && s.consumption_offsets.len() >= ops::MAX_OFFSETS
            {
                return Err(ops::too_many_offsets());
            }
            Ok(())
        },
        cmd,
    )
    .await;
    match r {
        Ok(_) => Json(json!({"status": "success", "offsetName": name, "offsetValue": value, "offsetUnit": unit_str(unit)}))
            .into_response(),
        Err(r) => r,
    }
}

async fn delete_consumption_offset(State(st): State<AppState>, body: Bytes) -> Response {
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
    let n = name.clone();
    let cmd = Command::SetOffset {
        name: name.clone(),
        offset: None,
    };
    let r = ops::apply(
        &st,
        move |s| {
            if s.consumption_offsets.is_empty() {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "No consumption offsets configured",
                ));
            }
            if !s.consumption_offsets.contains_key(&n) {
                return Err(error(StatusCode::NOT_FOUND, "Offset not found"));
            }
            Ok(())
        },
        cmd,
    )
    .await;
    match r {
        Ok(_) => Json(json!({"status": "success", "offsetName": name})).into_response(),
        Err(r) => r,
    }
}

async fn set_consumption_offset(State(st): State<AppState>, body: Bytes) -> Response {
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
    match ops::apply(&st, |_| Ok(()), cmd).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

async fn set_policy(body: Bytes) -> Response {
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
    let list = policy_list();
    let known = list
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["name"].as_str() == Some(p.as_str())));
    if !known {
        return bad(format!("Policy '{p}' not found"));
    }
    // As in TWCManager, the next evaluation selects the first matching rule again, so this
    // changes nothing lasting; it is accepted for compatibility.
    Json(json!({"status": "success", "policy": p})).into_response()
}

async fn set_lat_lon(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let lat = m.get("lat").and_then(loose_f64);
    let lon = m.get("lon").and_then(loose_f64);
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return bad("lat and lon are required numbers");
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return bad("lat must be within −90..90 and lon within −180..180");
    }
    match ops::apply(
        &st,
        |_| Ok(()),
        Command::SetHome(Some(HomeLocation { lat, lon })),
    )
    .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

async fn set_setting(State(st): State<AppState>, body: Bytes) -> Response {
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
    if key.is_empty() || key.len() > 64 || value.len() > 1024 {
        return bad("setting must be 1..64 characters and value at most 1024");
    }
    if key.contains(UNSAFE_CHARS) || value.contains(UNSAFE_CHARS) {
        return bad("setting and value must not contain any of @#$%^&*\"+<>;/");
    }
    let k = key.clone();
    let check = move |s: &twc_core::model::Settings| {
        if !s.extra.contains_key(&k) && s.extra.len() >= 256 {
            return Err(bad("at most 256 free-form settings can be stored"));
        }
        Ok(())
    };
    match ops::apply(
        &st,
        check,
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

async fn save_settings() -> StatusCode {
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

async fn set_scheduled_charging(State(st): State<AppState>, body: Bytes) -> Response {
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
    if let Err(e) = ops::validate_schedule(&sched, ops::wiring_max_all(&st)) {
        return bad(e);
    }
    match ops::apply(&st, |_| Ok(()), Command::SetSchedule(Box::new(sched))).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(r) => r,
    }
}

async fn start_stop(st: &AppState, start: bool) -> Response {
    let cmd = if start {
        Command::StartCharging { slave: None }
    } else {
        Command::StopCharging { slave: None }
    };
    match st.engine.command(cmd).await {
        Ok(_) => StatusCode::OK.into_response(),
        // TWCManager sends to every slave; with none linked there is nothing to send.
        Err(CommandError::Unavailable(m)) if st.engine.status().slaves.is_empty() => {
            tracing::debug!(kind = "control", plugin = "http", reason = %m, "Start/stop with no slave linked");
            StatusCode::OK.into_response()
        }
        Err(e) => command_error(e),
    }
}

async fn send_start(State(st): State<AppState>) -> Response {
    start_stop(&st, true).await
}

async fn send_stop(State(st): State<AppState>) -> Response {
    start_stop(&st, false).await
}

async fn check_arrival() -> StatusCode {
    // Arrival/departure checks apply vehicle charge limits; without a vehicle API there is
    // nothing to queue, which TWCManager also answers with 202.
    StatusCode::ACCEPTED
}

async fn check_departure() -> StatusCode {
    StatusCode::ACCEPTED
}

/// Debug commands TWCManager offers by name, with the protocol code each sends.
pub(crate) const DEBUG_COMMANDS: &[(&str, MessageCode)] = &[
    ("GetFirmwareVersion", MessageCode::QUERY_FIRMWARE),
    ("GetSerialNumber", MessageCode::QUERY_SERIAL),
    ("GetModelNo", MessageCode::QUERY_MODEL),
    ("GetVINStart", MessageCode::QUERY_VIN1),
    ("GetVINMiddle", MessageCode::QUERY_VIN2),
    ("GetVINEnd", MessageCode::QUERY_VIN3),
    ("GetPlugState", MessageCode::QUERY_PLUG),
    ("GetLifetimeKWh", MessageCode::QUERY_KWH),
];

async fn send_debug_command(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(name) = m.get("commandName").and_then(Value::as_str) else {
        return bad("commandName is required and must be a string");
    };
    let code = if name == "Custom" {
        let Some(hex) = m.get("customCommand").and_then(Value::as_str) else {
            return bad("customCommand is required when Command is Custom");
        };
        let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        let Ok(v) = u16::from_str_radix(digits.get(..4).unwrap_or(""), 16) else {
            return bad("customCommand must start with a 4-digit hex message code, e.g. FBB4");
        };
        let code = MessageCode(v);
        if code.is_dangerous() || !code.is_query() {
            *st.compat
                .last_twc_response
                .lock()
                .unwrap_or_else(|e| e.into_inner()) =
                "Command blocked as it may cause your TWC to be permanently disabled!".into();
            return bad(format!(
                "customCommand {code} is refused: only the queries the protocol spec marks safe may be sent"
            ));
        }
        code
    } else {
        match DEBUG_COMMANDS.iter().find(|(n, _)| *n == name) {
            Some((_, c)) => *c,
            None => return bad(format!("unknown commandName {name:?}")),
        }
    };
    let replies_before = st.engine.status().bus.replies;
    match st
        .engine
        .command(Command::DebugQuery { slave: None, code })
        .await
    {
        Ok(_) => {
            // TWCManager clears the last reply when it sends; the answer shows in
            // getLastTWCResponse once it arrives.
            *st.compat
                .last_twc_response
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = "bytearray(b'')".into();
            *st.compat
                .debug_sent_at
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(replies_before);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => command_error(e),
    }
}

async fn send_tesla_api_command(body: Bytes) -> Response {
    let m = match json_object(&body) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    match m.get("commandName").and_then(Value::as_str) {
        Some("setChargeRate" | "wakeVehicle") => {}
        Some(other) => {
            return bad(format!(
                "unknown commandName {other:?}: use setChargeRate or wakeVehicle"
            ));
        }
        None => return bad("commandName is required and must be a string"),
    }
    if m.get("vehicleID")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return bad("vehicleID is required and must be a string");
    }
    if let Some(p) = m.get("parameters") {
        let ok = p
            .as_str()
            .is_some_and(|s| serde_json::from_str::<Map<String, Value>>(s).is_ok())
            || p.is_object();
        if !ok {
            return bad("parameters must be a JSON object or a string holding one");
        }
    }
    error(
        StatusCode::CONFLICT,
        "no vehicle API is available to the HTTP control surface",
    )
}
