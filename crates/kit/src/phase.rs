//! Per-phase grid currents from what meters report: many (DSMR P1, DSMR-reader) give the current of
//! each phase without a sign, in whole amperes, next to the phase's imported and exported power.

/// The signed current of one phase, A (+ import / − export), or `None` when neither a current
/// nor a power with a voltage is known.
///
/// - The magnitude is the larger of the meter's current and |import − export| / voltage: whole-ampere
///   currents read 0 A for a draw of 0.9 A, and a real-power current misses the reactive part,
///   so the larger one never understates the load on the phase.
/// - The sign is the power's: exporting when export exceeds import. A phase whose direction is
///   unknown (no power given) counts as importing, which for a grid import limit errs on the
///   safe side.
pub fn signed_current(
    import_w: Option<f64>,
    export_w: Option<f64>,
    amps: Option<f64>,
    volts: Option<f64>,
) -> Option<f64> {
    let net = match (import_w, export_w) {
        (None, None) => None,
        (i, e) => Some(i.unwrap_or(0.0) - e.unwrap_or(0.0)),
    };
    let from_power = match (net, volts) {
        (Some(p), Some(v)) if v > 0.0 => Some(p.abs() / v),
        _ => None,
    };
    let magnitude = match (amps.map(f64::abs), from_power) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => a.or(b)?,
    };
    Some(if net.is_some_and(|p| p < 0.0) {
        -magnitude
    } else {
        magnitude
    })
}

#[cfg(test)]
mod tests {
    use super::signed_current;

    #[test]
    fn sign_from_power_magnitude_never_understated() {
        // Whole amperes: 0 A reported for 56 W at 236.8 V.
        let a = signed_current(Some(56.0), Some(0.0), Some(0.0), Some(236.8)).unwrap();
        assert!((a - 0.2365).abs() < 1e-3, "{a}");
        // The meter's current wins when larger (reactive load).
        assert_eq!(
            signed_current(Some(1462.0), Some(0.0), Some(7.0), Some(221.2)),
            Some(7.0)
        );
        // Exporting phase: negative.
        let a = signed_current(Some(0.0), Some(2450.0), Some(4.8), Some(238.9)).unwrap();
        assert!((a + 10.255).abs() < 1e-2, "{a}");
        // Unknown direction counts as import.
        assert_eq!(
            signed_current(None, None, Some(6.0), Some(230.0)),
            Some(6.0)
        );
        // Nothing to go on.
        assert_eq!(signed_current(Some(100.0), None, None, None), None);
        assert_eq!(signed_current(None, None, None, Some(230.0)), None);
    }
}
