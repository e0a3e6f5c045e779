//! Pure parsing of Fleet API answers (all wrapped as `{"response": …}`).

use serde_json::Value;
use twc_core::plugin::{ChargeState, Vehicle};

/// What an answer body says, before HTTP status handling.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Not the JSON we expect.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// `"response": null` with an `error` text.
    #[error("{0}")]
    Api(String),
}

fn response(body: &[u8]) -> Result<Value, ParseError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ParseError::Protocol(format!("not JSON ({e})")))?;
    match v.get("response") {
        Some(Value::Null) | None => Err(match v.get("error").and_then(Value::as_str) {
            Some(e) => ParseError::Api(e.to_string()),
            None => ParseError::Protocol("no `response` in the answer".into()),
        }),
        Some(r) => Ok(r.clone()),
    }
}

/// The error text of an error answer (`{"response": null, "error": "…"}`), if any.
pub fn error_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("error").and_then(Value::as_str).map(str::to_string)
}

/// `GET /api/1/vehicles`: the cars and whether each is asleep.
pub fn parse_vehicles(body: &[u8]) -> Result<Vec<(Vehicle, Option<String>)>, ParseError> {
    let r = response(body)?;
    let list = r
        .as_array()
        .ok_or_else(|| ParseError::Protocol("`response` is not a list".into()))?;
    list.iter().map(parse_vehicle_entry).collect()
}

/// `GET /api/1/vehicles/{vin}`: one car and its state.
pub fn parse_vehicle(body: &[u8]) -> Result<(Vehicle, Option<String>), ParseError> {
    parse_vehicle_entry(&response(body)?)
}

fn parse_vehicle_entry(v: &Value) -> Result<(Vehicle, Option<String>), ParseError> {
    let vin = v
        .get("vin")
        .and_then(Value::as_str)
        .ok_or_else(|| ParseError::Protocol("a vehicle without `vin`".into()))?;
    let id = match v.get("id_s").and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => v.get("id").map(|x| x.to_string()).unwrap_or_default(),
    };
    Ok((
        Vehicle {
            id,
            vin: vin.to_string(),
            name: v
                .get("display_name")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        v.get("state").and_then(Value::as_str).map(str::to_string),
    ))
}

/// `GET /api/1/vehicles/{vin}/vehicle_data`: charge state and location. `now_unix` turns the
/// GPS time into an age. `at_home` is left to the caller (the geofence).
pub fn parse_vehicle_data(body: &[u8], now_unix: i64) -> Result<ChargeState, ParseError> {
    let r = response(body)?;
    let cs = r
        .get("charge_state")
        .ok_or_else(|| ParseError::Protocol("no `charge_state` in vehicle_data".into()))?;
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let soc = num(cs, "battery_level")
        .ok_or_else(|| ParseError::Protocol("no `charge_state.battery_level`".into()))?;
    let charging_state = text(cs, "charging_state");
    let plugged = charging_state.as_deref().map(|s| s != "Disconnected");
    let ds = r.get("drive_state");
    let (lat, lon) = match ds {
        Some(d) => (num(d, "latitude"), num(d, "longitude")),
        None => (None, None),
    };
    // `charge_state.timestamp` is in milliseconds; the oldest of the parts counts.
    let ts_ms = num(cs, "timestamp");
    let age_secs = ts_ms.map(|ms| ((now_unix as f64) - ms / 1000.0).max(0.0));
    Ok(ChargeState {
        soc_pct: Some(soc),
        limit_pct: num(cs, "charge_limit_soc"),
        charging: charging_state.as_deref().map(|s| s == "Charging"),
        plugged_in: plugged,
        at_home: None,
        name: r
            .get("vehicle_state")
            .and_then(|v| text(v, "vehicle_name"))
            .or_else(|| text(&r, "display_name")),
        state: text(&r, "state"),
        charging_state,
        latitude: lat,
        longitude: lon,
        actual_amps: num(cs, "charger_actual_current"),
        max_amps: num(cs, "charge_current_request_max"),
        age_secs,
    })
}

/// What a command answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandResult {
    /// Done (or already so: `already_set`, `not_charging`, `complete`, `is_charging`).
    Done,
    /// Refused for now; worth another try (`could_not_wake_buses`).
    Retry(String),
    /// Refused.
    Refused(String),
}

/// `POST …/command/*`: `{"response": {"result": bool, "reason": "…"}}`.
pub fn parse_command(body: &[u8]) -> Result<CommandResult, ParseError> {
    let r = response(body)?;
    let ok = r
        .get("result")
        .and_then(Value::as_bool)
        .ok_or_else(|| ParseError::Protocol("no `result` in the command answer".into()))?;
    let reason = r
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(match (ok, reason.as_str()) {
        (true, _) => CommandResult::Done,
        // TWCManager counts these as success: the car is already where we want it.
        (false, "already_set" | "not_charging" | "complete" | "is_charging" | "charging") => {
            CommandResult::Done
        }
        (false, "could_not_wake_buses") => CommandResult::Retry(reason),
        (false, _) => CommandResult::Refused(reason),
    })
}

/// The OAuth token endpoint's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAnswer {
    /// Access token.
    pub access_token: String,
    /// Refresh token (kept when the answer has none).
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// `POST /oauth2/v3/token`.
pub fn parse_token(body: &[u8]) -> Result<TokenAnswer, ParseError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ParseError::Protocol(format!("token answer is not JSON ({e})")))?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        let d = v
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(ParseError::Api(format!("{e} {d}").trim().to_string()));
    }
    let access_token = v
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| ParseError::Protocol("no `access_token` in the token answer".into()))?
        .to_string();
    Ok(TokenAnswer {
        access_token,
        refresh_token: v
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string),
        expires_in: v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600),
    })
}
