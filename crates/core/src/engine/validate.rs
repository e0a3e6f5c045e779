//! Validation of runtime settings as a whole.

use super::*;

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
