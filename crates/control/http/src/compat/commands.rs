//! TWCManager's command routes: start/stop, arrival/departure, debug queries and their last
//! reply, and the vehicle API (through the vehicles task, when a vehicle plugin is enabled).

use super::{body_object, text};
use crate::AppState;
use crate::util::{bad, command_error, error, json_object};
use crate::v2;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use twc_core::engine::{Command, CommandError};
use twc_core::protocol::MessageCode;
use twc_core::vehicles::{CarAction, VehicleRequest};

pub(super) async fn start_stop(st: &AppState, start: bool) -> Response {
    match v2::slaves::send_start_stop(st, None, start).await {
        Ok(_) => StatusCode::OK.into_response(),
        // TWCManager sends to every slave; with none linked there is nothing to send.
        Err(CommandError::Unavailable(m)) if st.engine.status().slaves.is_empty() => {
            tracing::debug!(kind = "control", plugin = "http", reason = %m, "Start/stop with no slave linked");
            StatusCode::OK.into_response()
        }
        Err(e) => command_error(e),
    }
}

pub(super) async fn send_start(State(st): State<AppState>) -> Response {
    start_stop(&st, true).await
}

pub(super) async fn send_stop(State(st): State<AppState>) -> Response {
    start_stop(&st, false).await
}

pub(super) async fn check_arrival(State(st): State<AppState>) -> StatusCode {
    // Arrival/departure checks read the cars now (which applies or restores the policy's
    // charge limits); without a vehicle API there is nothing to queue, which TWCManager also
    // answers with 202.
    check(&st, VehicleRequest::CheckArrival).await
}

pub(super) async fn check_departure(State(st): State<AppState>) -> StatusCode {
    check(&st, VehicleRequest::CheckDeparture).await
}

async fn check(st: &AppState, req: VehicleRequest) -> StatusCode {
    if let Some(h) = &st.vehicles
        && let Err(e) = h.request(req).await
    {
        tracing::warn!(kind = "control", plugin = "http", error = %e, "Vehicle check failed");
    }
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

pub(super) async fn send_debug_command(State(st): State<AppState>, body: Bytes) -> Response {
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

pub(super) async fn get_last_twc_response(State(st): State<AppState>) -> Response {
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

pub(super) async fn send_tesla_api_command(State(st): State<AppState>, body: Bytes) -> Response {
    let m = match json_object(&body) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    let command = match m.get("commandName").and_then(Value::as_str) {
        Some(c @ ("setChargeRate" | "wakeVehicle")) => c,
        Some(other) => {
            return bad(format!(
                "unknown commandName {other:?}: use setChargeRate or wakeVehicle"
            ));
        }
        None => return bad("commandName is required and must be a string"),
    };
    let Some(vin) = m
        .get("vehicleID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return bad("vehicleID is required and must be a string");
    };
    let params: Map<String, Value> = match m.get("parameters") {
        None => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Map<String, Value>>(s) {
            Ok(o) => o,
            Err(_) => return bad("parameters must be a JSON object or a string holding one"),
        },
        Some(_) => return bad("parameters must be a JSON object or a string holding one"),
    };
    let action = if command == "wakeVehicle" {
        CarAction::Wake
    } else {
        // TWCManager's key is `charge_rate`; `chargeRate` is accepted too.
        let rate = params
            .get("charge_rate")
            .or_else(|| params.get("chargeRate"))
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()));
        match rate {
            Some(a) if (1..=48).contains(&a) => CarAction::SetAmps(a as u8),
            _ => return bad("setChargeRate needs parameters.charge_rate, whole amps 1 to 48"),
        }
    };
    let Some(h) = &st.vehicles else {
        return error(
            StatusCode::CONFLICT,
            "no vehicle plugin is enabled: enable [vehicle.teslaapi]",
        );
    };
    match h
        .request(VehicleRequest::Command {
            vin: Some(vin.to_string()),
            action,
        })
        .await
    {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => crate::vehicle_login::vehicle_error(e),
    }
}
