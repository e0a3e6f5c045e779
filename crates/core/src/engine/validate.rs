//! Validation of runtime settings as a whole.

use super::*;

pub(super) fn validate_amps(key: &str, amps: f64, wiring: f64) -> Result<(), CommandError> {
    if !amps.is_finite() || amps < 0.0 {
        return Err(CommandError::Invalid(format!(
            "{key} must be a number ≥ 0, got {amps}"
        )));
    }
    if amps > wiring {
        return Err(CommandError::Invalid(format!(
            "{key} = {amps} A is above the wiring limit for all TWCs ({wiring} A)"
        )));
    }
    Ok(())
}

/// Validate runtime settings as a whole against the wiring limit and the `[grid]` config. Every
/// control surface's change goes through this; nothing is clamped (safety invariant 5).
pub fn validate_settings(
    s: &Settings,
    wiring: f64,
    policy: &PolicyConfig,
) -> Result<(), CommandError> {
    let bad = |m: String| Err(CommandError::Invalid(m));
    validate_amps("non_scheduled_amps", s.non_scheduled_amps, wiring)?;
    if let Some(cn) = s.charge_now {
        validate_amps("charge_now.amps", cn.amps, wiring)?;
    }
    if !matches!(s.non_scheduled_action.as_str(), "charge" | "stop" | "green") {
        return bad(format!(
            "non_scheduled_action must be \"charge\", \"stop\" or \"green\", got {:?}",
            s.non_scheduled_action
        ));
    }
    validate_amps("flex_amps", s.flex_amps, wiring)?;
    validate_amps("schedule.amps", s.schedule.amps, wiring)?;
    for (d, a) in &s.schedule.day_amps {
        if !(1..=7).contains(d) {
            return bad(format!(
                "schedule.day_amps: weekday {d} is not 1 (Monday) … 7 (Sunday)"
            ));
        }
        validate_amps(&format!("schedule.day_amps[{d}]"), *a, wiring)?;
    }
    for w in &s.schedule.windows {
        if !(1..=7).contains(&w.weekday) {
            return bad(format!(
                "schedule window weekday {} is not 1 (Monday) … 7 (Sunday)",
                w.weekday
            ));
        }
        if w.start_minute > 1439 || w.end_minute > 1439 {
            return bad(format!(
                "schedule window on day {}: minutes must be 0..=1439, got {}–{}",
                w.weekday, w.start_minute, w.end_minute
            ));
        }
    }
    if !(s.schedule.flex_battery_kwh.is_finite() && s.schedule.flex_battery_kwh >= 0.0) {
        return bad("schedule.flex_battery_kwh must be a number ≥ 0".into());
    }
    for (name, o) in &s.consumption_offsets {
        let max = match o.unit {
            OffsetUnit::A => 1000.0,
            OffsetUnit::W => 1_000_000.0,
        };
        if name.trim().is_empty() {
            return bad("consumption offset names must not be empty".into());
        }
        if !o.value.is_finite() || o.value.abs() > max {
            return bad(format!(
                "consumption offset {name:?} = {} {:?}: expected a finite value within ±{max}",
                o.value, o.unit
            ));
        }
    }
    if let Some(h) = s.home
        && !(h.lat.is_finite()
            && h.lon.is_finite()
            && (-90.0..=90.0).contains(&h.lat)
            && (-180.0..=180.0).contains(&h.lon))
    {
        return bad(format!(
            "home location lat = {}, lon = {}: expected −90..=90 and −180..=180",
            h.lat, h.lon
        ));
    }
    if let Some(l) = s.max_grid_import {
        if !(l.value.is_finite() && l.value >= 0.0) {
            return bad(format!(
                "max_grid_import = {}: expected a number ≥ 0",
                l.value
            ));
        }
        let (cfg_a, cfg_w) = (policy.grid.max_import_amps, policy.grid.max_import_w);
        match l.unit {
            OffsetUnit::A => {
                if let Some(c) = cfg_a
                    && l.value > c
                {
                    return bad(format!(
                        "max_grid_import = {} A is above the configured [grid] max_import_amps = {c} A",
                        l.value
                    ));
                }
            }
            OffsetUnit::W => {
                if let Some(c) = cfg_w
                    && l.value > c
                {
                    return bad(format!(
                        "max_grid_import = {} W is above the configured [grid] max_import_w = {c} W",
                        l.value
                    ));
                }
            }
        }
    }
    for v in s.vin_allow.iter().chain(&s.vin_deny) {
        if v.is_empty() || v.len() > 17 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad(format!(
                "VIN {v:?} in the allow/deny lists: expected up to 17 letters and digits"
            ));
        }
    }
    Ok(())
}
