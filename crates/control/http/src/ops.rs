//! Operations shared by the compatibility API and v2: settings commands sent to the engine (which
//! validates, applies atomically and persists), with the checks the engine does not do.

use crate::AppState;
use crate::util::{UNSAFE_CHARS, bad, command_error};
use axum::response::Response;
use twc_core::engine::Command;
use twc_core::model::{ConsumptionOffset, Schedule, Settings};

/// The engine's current settings, asked from the engine itself (a no-op command), so a change
/// made a moment ago by another request is never lost.
pub(crate) async fn current_settings(st: &AppState) -> Result<Settings, Response> {
    st.engine
        .command(Command::SetNonScheduled {
            action: None,
            amps: None,
        })
        .await
        .map_err(command_error)
}

/// Wiring limit for all TWCs, A.
pub(crate) fn wiring_max_all(st: &AppState) -> f64 {
    st.engine.status().wiring_max_all.amps()
}

/// Check a schedule: minutes in range, weekdays 1..=7 once each, amps within the wiring limit.
pub(crate) fn validate_schedule(s: &Schedule, wiring: f64) -> Result<(), String> {
    if !s.amps.is_finite() || s.amps < 0.0 {
        return Err(format!("amps must be a number ≥ 0, got {}", s.amps));
    }
    if s.amps > wiring {
        return Err(format!(
            "amps = {} A is above the wiring limit for all TWCs ({wiring} A)",
            s.amps
        ));
    }
    if s.enabled && s.amps <= 0.0 {
        return Err("amps must be greater than 0 when the schedule is enabled".into());
    }
    let mut seen = [false; 8];
    for w in &s.windows {
        if !(1..=7).contains(&w.weekday) {
            return Err(format!(
                "weekday must be 1 (Monday) … 7 (Sunday), got {}",
                w.weekday
            ));
        }
        if seen[w.weekday as usize] {
            return Err(format!("weekday {} has more than one window", w.weekday));
        }
        seen[w.weekday as usize] = true;
        if w.start_minute > 1439 || w.end_minute > 1439 {
            return Err("start_minute and end_minute must be 0..=1439".into());
        }
        if w.start_minute == w.end_minute {
            return Err(format!(
                "the window on weekday {} is empty (start = end)",
                w.weekday
            ));
        }
    }
    for (d, a) in &s.day_amps {
        if !(1..=7).contains(d) {
            return Err(format!("day_amps: weekday must be 1 … 7, got {d}"));
        }
        if !a.is_finite() || *a < 0.0 || *a > wiring {
            return Err(format!(
                "day_amps[{d}] = {a} must be between 0 and the wiring limit ({wiring} A)"
            ));
        }
    }
    if !s.flex_battery_kwh.is_finite() || !(0.0..=1000.0).contains(&s.flex_battery_kwh) {
        return Err("flex_battery_kwh must be between 0 and 1000".into());
    }
    Ok(())
}

/// Check an offset name as TWCManager does: 1..32 characters, none of `@#$%^&*"+<>;/`.
pub(crate) fn validate_offset_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("offsetName must not be empty".into());
    }
    if name.chars().count() >= 32 {
        return Err("offsetName must be shorter than 32 characters".into());
    }
    if name.contains(UNSAFE_CHARS) || name.chars().any(char::is_control) {
        return Err("offsetName must not contain any of @#$%^&*\"+<>;/".into());
    }
    Ok(())
}

/// Largest consumption offset in amps.
pub(crate) const MAX_OFFSET_A: f64 = 400.0;
/// Largest consumption offset in watts.
pub(crate) const MAX_OFFSET_W: f64 = 100_000.0;

/// Check an offset value: finite, not 0, within ±100 kW (or ±400 A).
pub(crate) fn validate_offset(o: &ConsumptionOffset) -> Result<(), String> {
    let max = match o.unit {
        twc_core::model::OffsetUnit::A => MAX_OFFSET_A,
        twc_core::model::OffsetUnit::W => MAX_OFFSET_W,
    };
    if !o.value.is_finite() || o.value == 0.0 {
        return Err("offsetValue must be a number other than 0".into());
    }
    if o.value.abs() > max {
        return Err(format!("offsetValue must be within ±{max}"));
    }
    Ok(())
}

/// Refuse more than this many offsets.
pub(crate) const MAX_OFFSETS: usize = 64;

pub(crate) fn too_many_offsets() -> Response {
    bad(format!(
        "at most {MAX_OFFSETS} consumption offsets can be stored"
    ))
}

/// Send one settings command after `check` accepted the current settings (for limits and 404s
/// the engine does not know about). Serialised with every other `apply`.
pub(crate) async fn apply(
    st: &AppState,
    check: impl FnOnce(&Settings) -> Result<(), Response>,
    cmd: Command,
) -> Result<Settings, Response> {
    let _serial = st.settings_lock.lock().await;
    let s = current_settings(st).await?;
    check(&s)?;
    st.engine.command(cmd).await.map_err(command_error)
}
