//! A car's cloud API over twc-sim's cars, for replays with `[vehicles] low_current`
//! (`--low-current`): `set_charging_amps` becomes the simulated car's own current limit, so a car
//! that `follows` draws what it was told while its TWC offers the 6 A minimum. One that does not
//! answers "done" and keeps drawing what its TWC offers (the grace check must catch it).

use std::sync::{Arc, Mutex};
use twc_core::async_trait;
use twc_core::model::CentiAmps;
use twc_core::plugin::{AccountStatus, ChargeState, ErrorKind, PluginError, Vehicle, VehicleApi};
use twc_sim::{CarConfig, SimHandle};

/// The simulated cars of a bus, by VIN, behind one account.
#[derive(Clone)]
pub struct SimCars {
    sim: SimHandle,
    /// Slave index, VIN and the car as it was plugged in (its own limits).
    cars: Vec<(usize, String, CarConfig)>,
    follows: bool,
    sent: Arc<Mutex<Vec<String>>>,
}

impl SimCars {
    /// The cars plugged into `sim`'s slaves (those with a VIN); `follows`: whether they obey
    /// `set_charging_amps`.
    pub fn new(sim: SimHandle, follows: bool) -> Self {
        let cars = sim
            .slaves()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.car.vin.clone().map(|v| (i, v, s.car.clone())))
            .collect();
        SimCars {
            sim,
            cars,
            follows,
            sent: Arc::default(),
        }
    }

    /// Every command sent so far (`set_amps VIN A`, `start VIN`, `stop VIN`).
    pub fn sent(&self) -> Arc<Mutex<Vec<String>>> {
        self.sent.clone()
    }

    fn car(&self, vin: &str) -> Result<&(usize, String, CarConfig), PluginError> {
        self.cars
            .iter()
            .find(|(_, v, _)| v == vin)
            .ok_or_else(|| err(format!("no simulated car with VIN {vin}")))
    }

    fn log(&self, line: String) {
        if let Ok(mut v) = self.sent.lock() {
            v.push(line);
        }
    }
}

#[async_trait]
impl VehicleApi for SimCars {
    fn name(&self) -> &str {
        "simcar"
    }

    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        Ok(self
            .cars
            .iter()
            .map(|(i, vin, _)| Vehicle {
                id: i.to_string(),
                vin: vin.clone(),
                name: None,
            })
            .collect())
    }

    async fn charge_state(&self, vin: &str) -> Result<ChargeState, PluginError> {
        let s = self
            .sim
            .slave(self.car(vin)?.0)
            .map_err(|e| err(e.to_string()))?;
        let state = if s.actual.0 >= 100 {
            "Charging"
        } else {
            "Stopped"
        };
        Ok(ChargeState {
            soc_pct: Some(50.0),
            limit_pct: Some(90.0),
            charging_state: Some(state.into()),
            plugged_in: Some(s.car.plugged_in),
            at_home: Some(true),
            state: Some("online".into()),
            max_amps: Some(32.0),
            ..ChargeState::default()
        })
    }

    async fn set_amps(&self, vin: &str, amps: u8) -> Result<(), PluginError> {
        let (i, _, own) = self.car(vin)?;
        self.log(format!("set_amps {vin} {amps}"));
        if self.follows {
            // The car's own limits, capped at what it was told.
            let a = CentiAmps::from_amps(u16::from(amps));
            let mut c = own.clone();
            c.max_amps = c.max_amps.min(a);
            c.min_amps = c.min_amps.min(a);
            self.sim.set_car(*i, c).map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }

    async fn start(&self, vin: &str) -> Result<(), PluginError> {
        self.log(format!("start {vin}"));
        Ok(())
    }

    async fn stop(&self, vin: &str) -> Result<(), PluginError> {
        self.log(format!("stop {vin}"));
        Ok(())
    }

    fn account(&self) -> AccountStatus {
        AccountStatus {
            plugin: "simcar".into(),
            logged_in: true,
            can_command: true,
            ..Default::default()
        }
    }
}

fn err(context: String) -> PluginError {
    PluginError::new(ErrorKind::Protocol, "simcar", context)
}
