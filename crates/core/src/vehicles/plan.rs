//! The decisions, pure: from the cars, their slaves and the active policy to commands.

use super::VehiclesConfig;
use crate::protocol::TwcId;

/// A car's draw at or above which it counts as drawing although offered 0 A (TWCManager: 4 A).
const STILL_DRAWING_A: f64 = 4.0;
/// A car's draw below which it counts as not drawing (TWCManager: 1 A).
const NOT_DRAWING_A: f64 = 1.0;
/// How long an offer must stand before the car is told to follow it (TWCManager: 60 s).
const OFFER_SETTLED_SECS: f64 = 60.0;

/// The slave a car is plugged into, as the decisions need it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveView {
    /// Its TWCID.
    pub id: TwcId,
    /// What we offer it, A.
    pub offered_a: f64,
    /// What its car draws, A.
    pub actual_a: f64,
    /// Seconds since the offer last changed.
    pub offer_age_secs: f64,
    /// The least it can be offered, A.
    pub min_amps: f64,
}

/// One car, as the decisions need it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CarView {
    /// VIN.
    pub vin: String,
    /// The slave it is plugged into (matched by VIN).
    pub slave: Option<SlaveView>,
    /// True when its data is fresh enough to act on.
    pub fresh: bool,
    /// State of charge, %.
    pub soc_pct: Option<f64>,
    /// Its charge limit now, %.
    pub limit_pct: Option<f64>,
    /// Its charging state in the API's words.
    pub charging_state: Option<String>,
    /// The limit the policy set (and that a departure restores from).
    pub policy_limit_pct: Option<u8>,
    /// The car's own limit, remembered.
    pub own_limit_pct: Option<u8>,
    /// Seconds since the last start/stop command (`None` = never).
    pub since_start_stop_secs: Option<f64>,
    /// True when the vehicle API can command it.
    pub can_command: bool,
}

/// What to do with a car.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set the policy's limit; remember `own` as the car's own limit first.
    SetLimit {
        /// VIN.
        vin: String,
        /// The policy's limit, %.
        pct: u8,
        /// The car's own limit, to restore later.
        own: Option<u8>,
    },
    /// Put the car's own limit back (departure, or a policy without a limit).
    RestoreLimit {
        /// VIN.
        vin: String,
        /// Its own limit, %.
        pct: u8,
    },
    /// Start charging through the car.
    Start {
        /// VIN.
        vin: String,
        /// Why, in words.
        reason: String,
    },
    /// Stop charging through the car.
    Stop {
        /// VIN.
        vin: String,
        /// Why, in words.
        reason: String,
    },
}

/// True when the car is below `[vehicles] min_soc_pct` at a TWC with fresh data (and below
/// its own limit): the engine then gives it the full allowed current.
pub fn below_min_soc(car: &CarView, cfg: &VehiclesConfig) -> bool {
    if cfg.min_soc_pct <= 0.0 || car.slave.is_none() || !car.fresh {
        return false;
    }
    match car.soc_pct {
        Some(soc) => soc < cfg.min_soc_pct && car.limit_pct.is_none_or(|l| soc < l),
        None => false,
    }
}

/// The commands for one car under the active policy `policy`.
pub fn plan(car: &CarView, policy: &str, cfg: &VehiclesConfig) -> Vec<Action> {
    let mut out = Vec::new();
    if !car.can_command {
        return out;
    }
    let vin = car.vin.clone();
    let limit_now = car.limit_pct.map(|l| l.round() as u8);
    match (&car.slave, cfg.limits.get(policy)) {
        // At a TWC under a policy with a limit: set it once the car's limit is known.
        (Some(_), Some(&pct)) if car.fresh => {
            if let Some(now) = limit_now
                && now != pct
            {
                // The car's own limit is what it had before the policy first changed it.
                let own = if car.policy_limit_pct.is_none() {
                    Some(now)
                } else {
                    car.own_limit_pct
                };
                out.push(Action::SetLimit {
                    vin: vin.clone(),
                    pct,
                    own,
                });
            }
        }
        // Gone from the TWCs, or a policy without a limit: put the car's own limit back.
        (None, _) | (Some(_), None) => {
            if car.policy_limit_pct.is_some()
                && let Some(own) = car.own_limit_pct
            {
                out.push(Action::RestoreLimit {
                    vin: vin.clone(),
                    pct: own,
                });
            }
        }
        _ => {}
    }
    let Some(sl) = &car.slave else {
        return out;
    };
    let settled = sl.offer_age_secs >= OFFER_SETTLED_SECS;
    let may_start_stop = car
        .since_start_stop_secs
        .is_none_or(|s| s >= cfg.command_interval_secs as f64);
    if !(settled && may_start_stop) {
        return out;
    }
    if cfg.stop_via_car && sl.offered_a <= 0.0 && sl.actual_a >= STILL_DRAWING_A {
        out.push(Action::Stop {
            vin,
            reason: format!(
                "offered 0 A for {:.0} s but the car draws {:.1} A",
                sl.offer_age_secs, sl.actual_a
            ),
        });
        return out;
    }
    let state = car.charging_state.as_deref().unwrap_or("");
    let below_limit = match (car.soc_pct, car.limit_pct) {
        (Some(s), Some(l)) => s < l,
        _ => false,
    };
    if cfg.start_via_car
        && car.fresh
        && sl.offered_a >= sl.min_amps
        && sl.actual_a < NOT_DRAWING_A
        && below_limit
        && !matches!(state, "Charging" | "Complete" | "Disconnected" | "")
    {
        out.push(Action::Start {
            vin,
            reason: format!(
                "offered {:.1} A for {:.0} s but the car draws nothing ({state})",
                sl.offered_a, sl.offer_age_secs
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VehiclesConfig {
        let mut c = VehiclesConfig::default();
        c.limits.insert("Charge Now".into(), 90);
        c.min_soc_pct = 30.0;
        c
    }

    fn at_twc(offered: f64, actual: f64) -> CarView {
        CarView {
            vin: "5YJ3E1EA7KF000001".into(),
            slave: Some(SlaveView {
                id: TwcId([0x12, 0x34]),
                offered_a: offered,
                actual_a: actual,
                offer_age_secs: 120.0,
                min_amps: 6.0,
            }),
            fresh: true,
            soc_pct: Some(50.0),
            limit_pct: Some(80.0),
            charging_state: Some("Stopped".into()),
            can_command: true,
            ..CarView::default()
        }
    }

    #[test]
    fn a_policy_limit_is_set_on_entry_remembering_the_cars_own() {
        let a = plan(&at_twc(16.0, 16.0), "Charge Now", &cfg());
        assert_eq!(
            a,
            vec![Action::SetLimit {
                vin: "5YJ3E1EA7KF000001".into(),
                pct: 90,
                own: Some(80)
            }]
        );
        // Already at the policy's limit: nothing.
        let mut c = at_twc(16.0, 16.0);
        c.limit_pct = Some(90.0);
        c.policy_limit_pct = Some(90);
        c.own_limit_pct = Some(80);
        assert!(plan(&c, "Charge Now", &cfg()).is_empty());
    }

    #[test]
    fn the_own_limit_is_restored_on_departure_and_under_a_policy_without_one() {
        let mut c = at_twc(16.0, 16.0);
        c.limit_pct = Some(90.0);
        c.policy_limit_pct = Some(90);
        c.own_limit_pct = Some(80);
        let restore = Action::RestoreLimit {
            vin: c.vin.clone(),
            pct: 80,
        };
        assert_eq!(
            plan(&c, "Track Green Energy", &cfg()),
            vec![restore.clone()]
        );
        c.slave = None;
        assert_eq!(plan(&c, "Charge Now", &cfg()), vec![restore]);
    }

    #[test]
    fn a_car_that_keeps_drawing_at_0_a_is_stopped_through_its_api_once_per_interval() {
        let a = plan(&at_twc(0.0, 10.0), "Stop", &cfg());
        assert!(matches!(a.as_slice(), [Action::Stop { .. }]), "{a:?}");
        let mut c = at_twc(0.0, 10.0);
        c.since_start_stop_secs = Some(30.0);
        assert!(plan(&c, "Stop", &cfg()).is_empty());
        let mut c = at_twc(0.0, 10.0);
        c.slave.as_mut().unwrap().offer_age_secs = 20.0;
        assert!(plan(&c, "Stop", &cfg()).is_empty());
    }

    #[test]
    fn a_car_that_does_not_draw_when_offered_is_started_unless_full_or_complete() {
        let a = plan(&at_twc(10.0, 0.0), "Track Green Energy", &cfg());
        assert!(matches!(a.as_slice(), [Action::Start { .. }]), "{a:?}");
        let mut c = at_twc(10.0, 0.0);
        c.soc_pct = Some(80.0);
        assert!(plan(&c, "Track Green Energy", &cfg()).is_empty());
        let mut c = at_twc(10.0, 0.0);
        c.charging_state = Some("Complete".into());
        assert!(plan(&c, "Track Green Energy", &cfg()).is_empty());
        let mut c = at_twc(10.0, 0.0);
        c.can_command = false;
        assert!(plan(&c, "Track Green Energy", &cfg()).is_empty());
    }

    #[test]
    fn below_min_soc_needs_a_twc_fresh_data_and_a_threshold() {
        let mut c = at_twc(0.0, 0.0);
        c.soc_pct = Some(20.0);
        assert!(below_min_soc(&c, &cfg()));
        c.fresh = false;
        assert!(!below_min_soc(&c, &cfg()), "stale data never boosts");
        c.fresh = true;
        c.slave = None;
        assert!(!below_min_soc(&c, &cfg()));
        let mut c = at_twc(0.0, 0.0);
        c.soc_pct = None;
        assert!(!below_min_soc(&c, &cfg()), "an unknown SoC is not 0 %");
        let mut off = cfg();
        off.min_soc_pct = 0.0;
        let mut c = at_twc(0.0, 0.0);
        c.soc_pct = Some(5.0);
        assert!(!below_min_soc(&c, &off));
    }
}
