//! Deciding the site budget: which policy applies and how many amps it allows.
//!
//! The foundation's policy list, in TWCManager's order: Charge Now, then the non-scheduled action
//! (fixed amps, stop, or green tracking). Green tracking and every limit fail safe: a missing or
//! stale reading gives 0 A, never "0 W consumption".

use crate::model::{EnergyReading, Settings};

/// Inputs to one policy evaluation.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    /// Runtime settings.
    pub settings: &'a Settings,
    /// Wall-clock Unix time, seconds.
    pub now_unix: i64,
    /// The combined reading, `None` when missing or stale.
    pub reading: Option<&'a EnergyReading>,
    /// What the chargers draw now, A (sum over slaves).
    pub charger_amps: f64,
    /// Volts per phase used to convert W to A.
    pub voltage: f64,
    /// Phases the chargers use.
    pub phases: u8,
    /// True when `consumption_w` includes the chargers.
    pub consumption_includes_chargers: bool,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// TWCManager's policy name.
    pub name: String,
    /// Why it matched.
    pub reason: String,
    /// Amps for the whole site before wiring limits.
    pub amps: f64,
    /// True when following green energy.
    pub is_green: bool,
}

/// Evaluate the built-in policy list.
pub fn decide(input: &PolicyInput<'_>) -> Decision {
    let s = input.settings;
    if let Some(cn) = s.charge_now
        && cn.until_unix > input.now_unix && cn.amps > 0.0 {
            return Decision {
                name: "Charge Now".into(),
                reason: format!(
                    "charge now at {:.0} A for {} more seconds",
                    cn.amps,
                    cn.until_unix - input.now_unix
                ),
                amps: cn.amps,
                is_green: false,
            };
        }
    match s.non_scheduled_action.as_str() {
        "stop" => Decision {
            name: "Non Scheduled Charging".into(),
            reason: "non-scheduled action is \"stop\"".into(),
            amps: 0.0,
            is_green: false,
        },
        "green" => green(input),
        _ => Decision {
            name: "Non Scheduled Charging".into(),
            reason: format!(
                "non-scheduled action is \"charge\" at {:.0} A",
                s.non_scheduled_amps
            ),
            amps: s.non_scheduled_amps.max(0.0),
            is_green: false,
        },
    }
}

/// Green tracking: surplus = generation − (house consumption without the chargers), in amps.
pub fn green(input: &PolicyInput<'_>) -> Decision {
    let name = "Track Green Energy".to_string();
    let Some(r) = input.reading else {
        return Decision {
            name,
            reason: "no fresh meter reading: offering 0 A until one arrives".into(),
            amps: 0.0,
            is_green: true,
        };
    };
    let volts_total = input.voltage * input.phases.max(1) as f64;
    let charger_w = input.charger_amps * volts_total;
    let surplus_w = match (r.generation_w, r.consumption_w, r.grid_w) {
        (Some(g), Some(c), _) => {
            let house = if input.consumption_includes_chargers {
                (c - charger_w).max(0.0)
            } else {
                c
            };
            g - house
        }
        // Only a grid meter: what we export plus what the chargers already take.
        (_, _, Some(grid)) => charger_w - grid,
        _ => {
            return Decision {
                name,
                reason: "the reading has neither generation+consumption nor grid power".into(),
                amps: 0.0,
                is_green: true,
            };
        }
    };
    let amps = (surplus_w / volts_total).max(0.0);
    Decision {
        name,
        reason: format!("surplus {surplus_w:.0} W = {amps:.2} A"),
        amps,
        is_green: true,
    }
}
