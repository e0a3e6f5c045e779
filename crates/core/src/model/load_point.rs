//! External load points: chargers the engine budgets and commands that are not Gen2 slaves on
//! the bus (a Tesla Wall Connector Gen3 behind an emulated meter, later OCPP charge points).
//!
//! A plugin (a control surface, which holds an [`crate::engine::EngineHandle`]) reports each of
//! its load points with [`crate::engine::Command::ReportLoadPoint`]; the engine budgets it
//! next to the slaves and shows it in [`crate::model::Status::load_points`], whose
//! `allocated` field is the current the plugin must make the charger follow.
//!
//! Safety: a load point whose draw is unknown or older than its `stale_after_secs` counts at
//! its `max` in the wiring and grid budgets (never at 0); a fresh one counts at
//! `max(draw, allocated)`, since it may rise to what it was given before it is seen to. One
//! controlled through its car counts at `max` until the car's draw confirms it follows what it
//! was told, then at `max(draw, allocated, told)`.

use super::CentiAmps;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a load point is doing, as the plugin reads it from the charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoadPointState {
    /// Not known (booting, unreachable, a code we do not know).
    #[default]
    Unknown,
    /// No car.
    Idle,
    /// A car is connected and not charging.
    Connected,
    /// A car is charging.
    Charging,
    /// The charger reports an error.
    Error,
}

/// What a plugin reports for one load point (on every poll, and when the charger stops
/// answering: `measured = None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPointReport {
    /// Unique name, `<plugin>.<unit>` (`gen3.garage`).
    pub name: String,
    /// What kind of charger (`gen3`, `ocpp`).
    pub kind: String,
    /// The most it can draw per phase: min(its breaker setting, the wiring for it).
    pub max: CentiAmps,
    /// The least worth giving it (below this the car stops).
    pub min: CentiAmps,
    /// True when the plugin makes the charger follow `allocated`; false = monitoring only
    /// (its draw is budgeted, never commanded).
    pub controllable: bool,
    /// A measurement older than this many seconds is stale (budgeted at `max`).
    pub stale_after_secs: f64,
    /// The latest measurement, or `None` when the charger did not answer.
    pub measured: Option<LoadPointMeasurement>,
    /// A plugin's own problem to show (the charger does not follow, the meter port failed).
    pub problem: Option<String>,
    /// Controlled through this car (VIN) instead of the charger: the vehicles task tells the
    /// car to start, stop and draw `allocated`; the load point counts at `max` until the car's
    /// measured draw confirms it follows what it was told.
    #[serde(default)]
    pub via_car: Option<String>,
}

/// One measurement of a load point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPointMeasurement {
    /// The highest current of its phases.
    pub draw: CentiAmps,
    /// Its state.
    pub state: LoadPointState,
    /// Everything else the charger tells (per-phase currents and voltages, temperatures,
    /// alerts, session and lifetime energy, firmware, Wi-Fi), shown as is by every surface.
    pub details: serde_json::Value,
}

/// One load point as every surface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadPointStatus {
    /// Unique name.
    pub name: String,
    /// Kind (`gen3`, …).
    pub kind: String,
    /// The most it can draw.
    pub max: CentiAmps,
    /// The least worth giving it.
    pub min: CentiAmps,
    /// Whether the engine's allocation is followed (false = monitoring only).
    pub controllable: bool,
    /// Its draw when fresh; `None` when unknown or stale.
    pub draw: Option<CentiAmps>,
    /// State from the latest measurement.
    pub state: LoadPointState,
    /// True when the latest measurement is missing or older than its bound.
    pub stale: bool,
    /// When it was last measured.
    pub measured_at: Option<DateTime<Utc>>,
    /// The current the policy gives it: what its plugin makes it follow.
    pub allocated: CentiAmps,
    /// What it counts for in the wiring and grid budgets: `max` when stale or unknown,
    /// otherwise `max(draw, allocated)` (`draw` alone when only monitored).
    pub reserved: CentiAmps,
    /// The plugin's problem, if any (a charger that does not follow, an unreachable unit).
    pub problem: Option<String>,
    /// The car (VIN) it is controlled through, if any.
    #[serde(default)]
    pub via_car: Option<String>,
    /// Everything else the charger tells.
    pub details: serde_json::Value,
}

impl LoadPointState {
    /// Its name in snake case (`charging`), as surfaces show it.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadPointState::Unknown => "unknown",
            LoadPointState::Idle => "idle",
            LoadPointState::Connected => "connected",
            LoadPointState::Charging => "charging",
            LoadPointState::Error => "error",
        }
    }
}

/// The common keys of [`LoadPointMeasurement::details`], read by every surface (web UI,
/// `/api/v2`, MQTT, Home Assistant, loggers), whatever the kind. A plugin fills those it knows
/// and may add its own keys (shown as is in the JSON):
///
/// | key | type |
/// |---|---|
/// | `state_name` | the charger's own state name (`charging`, `waiting_car`) |
/// | `power_w` | charging power, W |
/// | `phases` | phases carrying current |
/// | `currents_a`, `voltages_v` | per-phase arrays (A, B, C), `null` where unknown |
/// | `grid_v`, `grid_hz` | line voltage and frequency |
/// | `session_energy_wh`, `session_s` | the current or last session |
/// | `lifetime.energy_wh` | energy delivered over its life, Wh |
/// | `temperatures_c` | object, name → °C |
/// | `alerts` | array (strings or codes) |
/// | `firmware` | firmware version |
/// | `wifi.signal_pct`, `wifi.rssi_dbm`, `wifi.ssid` | its Wi-Fi link |
/// | `vehicle_connected` | a car is plugged in |
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LoadPointDetails {
    /// The charger's own state name.
    pub state_name: Option<String>,
    /// Charging power, W.
    pub power_w: Option<f64>,
    /// Phases carrying current.
    pub phases: Option<u8>,
    /// Per-phase currents, A.
    pub currents_a: [Option<f64>; 3],
    /// Per-phase voltages, V.
    pub voltages_v: [Option<f64>; 3],
    /// Line voltage, V.
    pub grid_v: Option<f64>,
    /// Session energy, Wh.
    pub session_energy_wh: Option<f64>,
    /// Session length, s.
    pub session_s: Option<f64>,
    /// Lifetime energy, Wh.
    pub lifetime_energy_wh: Option<f64>,
    /// Temperatures by name, °C (name order).
    pub temperatures_c: Vec<(String, f64)>,
    /// Alerts in force, as text.
    pub alerts: Vec<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Wi-Fi signal, %.
    pub wifi_signal_pct: Option<f64>,
    /// Wi-Fi RSSI, dBm.
    pub wifi_rssi_dbm: Option<f64>,
    /// Wi-Fi network name.
    pub wifi_ssid: Option<String>,
    /// A car is plugged in.
    pub vehicle_connected: Option<bool>,
}

impl LoadPointDetails {
    /// The common keys of a `details` object; anything missing or of another type is `None`
    /// (never 0).
    pub fn from_value(d: &serde_json::Value) -> Self {
        let num = |p: &str| d.pointer(p).and_then(serde_json::Value::as_f64);
        let text = |p: &str| {
            d.pointer(p)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let arr = |p: &str| {
            let mut out = [None; 3];
            if let Some(a) = d.pointer(p).and_then(serde_json::Value::as_array) {
                for (o, v) in out.iter_mut().zip(a) {
                    *o = v.as_f64();
                }
            }
            out
        };
        let mut temperatures_c: Vec<(String, f64)> = d
            .get("temperatures_c")
            .and_then(serde_json::Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        temperatures_c.sort_by(|a, b| a.0.cmp(&b.0));
        let alerts = d
            .get("alerts")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        LoadPointDetails {
            state_name: text("/state_name"),
            power_w: num("/power_w"),
            phases: num("/phases").map(|p| p.clamp(0.0, 3.0) as u8),
            currents_a: arr("/currents_a"),
            voltages_v: arr("/voltages_v"),
            grid_v: num("/grid_v"),
            session_energy_wh: num("/session_energy_wh"),
            session_s: num("/session_s"),
            lifetime_energy_wh: num("/lifetime/energy_wh"),
            temperatures_c,
            alerts,
            firmware: text("/firmware"),
            wifi_signal_pct: num("/wifi/signal_pct"),
            wifi_rssi_dbm: num("/wifi/rssi_dbm"),
            wifi_ssid: text("/wifi/ssid"),
            vehicle_connected: d
                .get("vehicle_connected")
                .and_then(serde_json::Value::as_bool),
        }
    }
}

impl LoadPointStatus {
    /// The common keys of its details.
    pub fn view(&self) -> LoadPointDetails {
        LoadPointDetails::from_value(&self.details)
    }

    /// Its name as an identifier for MQTT topics, Home Assistant object ids and HTML ids:
    /// lower case, every character other than `a-z`, `0-9` and `_` replaced by `_`
    /// (`gen3.garage` → `gen3_garage`).
    pub fn ident(&self) -> String {
        ident_of(&self.name)
    }

    /// Its charging power, W, while fresh: the plugin's `power_w`, else draw × line voltage
    /// (230 V when unknown) × phases. `None` when stale or unknown (never 0 W).
    pub fn power_w(&self) -> Option<f64> {
        let draw = self.draw.filter(|_| !self.stale)?;
        let v = self.view();
        Some(v.power_w.unwrap_or_else(|| {
            draw.amps() * v.grid_v.unwrap_or(230.0) * f64::from(v.phases.unwrap_or(1).max(1))
        }))
    }

    /// True while its fresh measurement says it charges.
    pub fn charging(&self) -> bool {
        !self.stale && self.state == LoadPointState::Charging
    }
}

/// See [`LoadPointStatus::ident`].
pub fn ident_of(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_view_reads_common_keys_and_never_invents_zero() {
        let d = serde_json::json!({
            "power_w": 7703.85, "currents_a": [31.9, null, "x"], "voltages_v": [241.5],
            "lifetime": {"energy_wh": 386204}, "temperatures_c": {"handle": 30.1, "pcba": null},
            "alerts": ["a", 7], "wifi": {"signal_pct": 64}, "firmware": "21.29.1"
        });
        let v = LoadPointDetails::from_value(&d);
        assert_eq!(v.power_w, Some(7703.85));
        assert_eq!(v.currents_a, [Some(31.9), None, None]);
        assert_eq!(v.voltages_v, [Some(241.5), None, None]);
        assert_eq!(v.lifetime_energy_wh, Some(386204.0));
        assert_eq!(v.temperatures_c, vec![("handle".to_string(), 30.1)]);
        assert_eq!(v.alerts, vec!["a".to_string(), "7".to_string()]);
        assert_eq!(v.wifi_signal_pct, Some(64.0));
        assert_eq!(v.session_energy_wh, None);
        assert_eq!(
            LoadPointDetails::from_value(&serde_json::Value::Null),
            LoadPointDetails::default()
        );
        assert_eq!(ident_of("gen3.Garage-1"), "gen3_garage_1");
    }
}
