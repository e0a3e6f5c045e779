use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// What one energy source measured at one moment. Every field is optional: a source fills what it
/// measures. See the module docs for sign conventions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyReading {
    /// PV generation, W, ≥ 0.
    pub generation_w: Option<f64>,
    /// House consumption, W, ≥ 0 (may or may not include the chargers; see `[site]`).
    pub consumption_w: Option<f64>,
    /// Grid power, W: positive = import, negative = export.
    pub grid_w: Option<f64>,
    /// Home battery power, W: positive = discharging, negative = charging.
    pub battery_w: Option<f64>,
    /// Home battery state of charge, %.
    pub battery_soc_pct: Option<f64>,
    /// Grid voltage per phase, V.
    pub phase_voltages: Option<Vec<f64>>,
    /// Grid current per phase, A (positive = import).
    pub phase_currents_a: Option<Vec<f64>>,
    /// Whether the site is connected to the grid (`false` = islanded on a home battery), when
    /// the source knows (e.g. a Powerwall gateway).
    #[serde(default)]
    pub grid_connected: Option<bool>,
    /// True when the values are an **estimate**, not a measurement (e.g. generation guessed from
    /// a weather forecast). Surfaces show it as such; it is never presented as a meter reading.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
    /// When the value was measured, on tokio's clock (so paused time works). Set by the source or
    /// its kit when the response arrived.
    #[serde(skip, default = "Instant::now")]
    pub measured_at: Instant,
}

impl EnergyReading {
    /// An empty reading measured now.
    pub fn now() -> Self {
        EnergyReading::default()
    }

    /// Seconds since the reading was measured.
    pub fn age_secs(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.measured_at)
            .as_secs_f64()
    }

    /// Grid power if measured, else reconstructed as consumption − generation (+/- battery) when
    /// both are known. Consumption here must include everything on the meter.
    pub fn grid_or_derived_w(&self) -> Option<f64> {
        if let Some(g) = self.grid_w {
            return Some(g);
        }
        let (c, g) = (self.consumption_w?, self.generation_w?);
        Some(c - g - self.battery_w.unwrap_or(0.0))
    }
}

impl Default for EnergyReading {
    fn default() -> Self {
        EnergyReading {
            generation_w: None,
            consumption_w: None,
            grid_w: None,
            battery_w: None,
            battery_soc_pct: None,
            phase_voltages: None,
            phase_currents_a: None,
            grid_connected: None,
            estimated: false,
            measured_at: Instant::now(),
        }
    }
}

/// The quantities a source can provide, for the combining rules of `[site.sources]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// PV generation.
    Generation,
    /// House consumption.
    Consumption,
    /// Grid import/export.
    Grid,
    /// Home battery power and SOC.
    Battery,
}
