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

/// The limits [`Settings::validate`] checks against, from the wiring limit and the `[grid]`
/// config.
pub fn settings_limits(wiring: f64, policy: &PolicyConfig) -> SettingsLimits {
    SettingsLimits {
        wiring_max_all: wiring,
        grid_max_import_amps: policy.grid.max_import_amps,
        grid_max_import_w: policy.grid.max_import_w,
    }
}

/// Validate runtime settings as a whole against the wiring limit and the `[grid]` config:
/// [`Settings::validate`], the one validator. Every control surface's change goes through it;
/// nothing is clamped (safety invariant 5).
pub fn validate_settings(
    s: &Settings,
    wiring: f64,
    policy: &PolicyConfig,
) -> Result<(), CommandError> {
    s.validate(&settings_limits(wiring, policy))
        .map_err(|e| CommandError::Invalid(e.0))
}
