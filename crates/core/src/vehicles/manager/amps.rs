//! The car's charging amps as the engine asks for them ([`crate::vehicles::CarCurrent`]):
//! lowered below the TWC's minimum, set back to the car's own maximum afterwards, and (for a
//! charger controlled through the car) started and stopped. Every command is rate limited per
//! car (`[vehicles] amps_interval_secs`, `command_interval_secs`) to keep within the vehicle
//! API's budget, and recorded like every other command.

use super::Manager;
use crate::model::Status;
use crate::vehicles::{CarAction, LowCurrentCar};
use std::time::Duration;
use tokio::time::Instant;

/// Set back to when the car's own maximum is not known and it is at no TWC, A.
const FALLBACK_MAX_A: u8 = 32;

impl Manager {
    /// Whether each car may be told to charge below its TWC's minimum (`[vehicles]
    /// low_current`, and an API that can command it): the engine reads it from the cars.
    pub(super) fn mark_low_current(&mut self) {
        for c in self.cars.values_mut() {
            c.status.low_current =
                (self.cfg.low_current && c.can_command).then_some(LowCurrentCar {
                    min_amps: self.cfg.low_current_min_amps,
                    grace_secs: self.cfg.low_current_grace_secs,
                });
        }
    }

    /// Sends what the engine asks of each car, at most one amps command per
    /// `amps_interval_secs` and one start/stop per `command_interval_secs`.
    pub(super) async fn car_amps(&mut self, status: &Status, now: Instant) {
        let vins: Vec<String> = self.cars.keys().cloned().collect();
        for vin in vins {
            let car = &self.cars[&vin];
            if !car.can_command {
                continue;
            }
            let req = status
                .car_currents
                .iter()
                .find(|r| r.vin.eq_ignore_ascii_case(&vin))
                .cloned();
            let told = car.status.told_amps;
            let want = req.as_ref().and_then(|r| r.amps);
            // Lowering (below what it was told, or from its own maximum) may come sooner.
            let lowers = want.is_some_and(|a| told.is_none_or(|t| a < t));
            let interval = if lowers {
                self.cfg
                    .amps_lower_interval_secs
                    .min(self.cfg.amps_interval_secs)
            } else {
                self.cfg.amps_interval_secs
            };
            let may_amps = car
                .amps_at
                .is_none_or(|t| now - t >= Duration::from_secs(interval));
            let amps = match (want, told) {
                (Some(a), Some(t)) if a == t => None,
                (Some(a), _) => Some((a, format!("engine: draw {a} A at {}", at(&req)))),
                (None, Some(_)) => {
                    let max = self.restore_amps(&vin, status);
                    Some((max, "back to the car's own maximum".to_string()))
                }
                (None, None) => None,
            };
            if let Some((a, reason)) = amps
                && may_amps
            {
                if let Some(c) = self.cars.get_mut(&vin) {
                    c.amps_at = Some(now);
                }
                if self
                    .send(&vin, CarAction::SetAmps(a), &reason, status)
                    .await
                    .is_ok()
                    && let Some(c) = self.cars.get_mut(&vin)
                {
                    c.status.told_amps = want;
                }
            }
            if let Some(charge) = req.as_ref().and_then(|r| r.charge) {
                // A car that a charger is controlled through is read as if at a TWC.
                if let Some(c) = self.cars.get_mut(&vin)
                    && c.polled_at
                        .is_none_or(|t| now - t >= Duration::from_secs(self.cfg.poll_secs))
                {
                    c.force_poll = true;
                }
                self.charge_via_car(&vin, charge, &at(&req), status, now)
                    .await;
            }
        }
    }

    /// Starts or stops a car whose charger is controlled through it, when its charging state
    /// says it does otherwise; once per `command_interval_secs`.
    async fn charge_via_car(
        &mut self,
        vin: &str,
        charge: bool,
        at: &str,
        status: &Status,
        now: Instant,
    ) {
        let Some(car) = self.cars.get(vin) else {
            return;
        };
        let state = car.status.charging_state.as_deref().unwrap_or("");
        let needed = if charge {
            matches!(state, "Stopped")
        } else {
            matches!(state, "Charging" | "Starting")
        };
        let may = car
            .start_stop_at
            .is_none_or(|t| now - t >= Duration::from_secs(self.cfg.command_interval_secs));
        if !(needed && may) {
            return;
        }
        let (action, reason) = if charge {
            (CarAction::Start, format!("engine: charge at {at}"))
        } else {
            (CarAction::Stop, format!("engine: no current for {at}"))
        };
        self.start_stop(vin, action, &reason, status, now).await;
        // Read it again soon, to see whether it followed.
        if let Some(c) = self.cars.get_mut(vin) {
            c.force_poll = true;
        }
    }

    /// The amps a car is set back to: its own maximum, else its TWC's cap, else 32 A.
    fn restore_amps(&self, vin: &str, status: &Status) -> u8 {
        let car = &self.cars[vin];
        let twc = car
            .status
            .slave
            .and_then(|id| status.slaves.iter().find(|s| s.id == id))
            .map(|s| s.cap_amps.amps());
        car.status
            .max_amps
            .or(twc)
            .map_or(FALLBACK_MAX_A, |a| a.round().clamp(1.0, 48.0) as u8)
    }
}

fn at(req: &Option<crate::vehicles::CarCurrent>) -> String {
    req.as_ref().map_or_else(String::new, |r| r.at.clone())
}
