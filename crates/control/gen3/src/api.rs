//! The Gen3's local HTTP API (`/api/1/vitals`, `/lifetime`, `/version`, `/wifi_status`, no
//! auth) decoded into what the engine and the surfaces need.

use serde::Deserialize;
use twc_core::model::LoadPointState;
use twc_core::plugin::{ErrorKind, PluginError};

/// `/api/1/vitals`, the fields we use (others are ignored; missing numbers are unknown).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Vitals {
    /// The state as an integer (see [`state_name`]); firmware sends a number, not a string.
    pub evse_state: i64,
    /// Whether a car is plugged in (some firmware says true with no car: trust `evse_state`).
    #[serde(default)]
    pub vehicle_connected: bool,
    /// Whether the contactor (relay) is closed.
    #[serde(default)]
    pub contactor_closed: bool,
    /// The car's current, A.
    pub vehicle_current_a: f64,
    /// Line voltage, V.
    pub grid_v: f64,
    /// Line frequency, Hz.
    #[serde(default)]
    pub grid_hz: Option<f64>,
    /// Per-phase currents, A.
    #[serde(rename = "currentA_a", default)]
    pub current_a: Option<f64>,
    /// Phase B current.
    #[serde(rename = "currentB_a", default)]
    pub current_b: Option<f64>,
    /// Phase C current.
    #[serde(rename = "currentC_a", default)]
    pub current_c: Option<f64>,
    /// Per-phase voltages, V.
    #[serde(rename = "voltageA_v", default)]
    pub voltage_a: Option<f64>,
    /// Phase B voltage.
    #[serde(rename = "voltageB_v", default)]
    pub voltage_b: Option<f64>,
    /// Phase C voltage.
    #[serde(rename = "voltageC_v", default)]
    pub voltage_c: Option<f64>,
    /// Session length, s.
    #[serde(default)]
    pub session_s: Option<f64>,
    /// Session energy, Wh.
    #[serde(default)]
    pub session_energy_wh: Option<f64>,
    /// Temperatures, °C.
    #[serde(default)]
    pub pcba_temp_c: Option<f64>,
    /// Handle temperature.
    #[serde(default)]
    pub handle_temp_c: Option<f64>,
    /// MCU temperature.
    #[serde(default)]
    pub mcu_temp_c: Option<f64>,
    /// Uptime, s.
    #[serde(default)]
    pub uptime_s: Option<f64>,
    /// Alerts in force.
    #[serde(default)]
    pub current_alerts: Vec<serde_json::Value>,
}

/// `/api/1/lifetime`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Lifetime {
    /// Energy delivered, Wh.
    pub energy_wh: Option<f64>,
    /// Charge starts.
    pub charge_starts: Option<u64>,
    /// Contactor cycles.
    pub contactor_cycles: Option<u64>,
    /// Connector (plug) cycles.
    pub connector_cycles: Option<u64>,
    /// Alerts so far.
    pub alert_count: Option<u64>,
    /// Thermal foldbacks.
    pub thermal_foldbacks: Option<u64>,
    /// Time spent charging, s.
    pub charging_time_s: Option<u64>,
    /// Uptime, s.
    pub uptime_s: Option<u64>,
}

/// `/api/1/version`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Version {
    /// Firmware version.
    pub firmware_version: Option<String>,
    /// Part number.
    pub part_number: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
}

/// `/api/1/wifi_status`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Wifi {
    /// SSID; newer firmware sends it base64-encoded.
    pub wifi_ssid: Option<String>,
    /// Signal strength, %.
    pub wifi_signal_strength: Option<f64>,
    /// RSSI, dBm.
    pub wifi_rssi: Option<f64>,
    /// Connected.
    pub wifi_connected: Option<bool>,
    /// Internet reachable.
    pub internet: Option<bool>,
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, PluginError> {
    serde_json::from_slice(body).map_err(|e| {
        PluginError::new(
            ErrorKind::Protocol,
            crate::NAME,
            format!("{what}: undecodable reply ({e})"),
        )
    })
}

/// Decode `/api/1/vitals`. Garbage, a string `evse_state` or a non-finite current is a
/// `Protocol` error, never a reading.
pub fn parse_vitals(body: &[u8]) -> Result<Vitals, PluginError> {
    let v: Vitals = decode("/api/1/vitals", body)?;
    if !(v.vehicle_current_a.is_finite() && v.vehicle_current_a >= 0.0 && v.grid_v.is_finite()) {
        return Err(PluginError::new(
            ErrorKind::Protocol,
            crate::NAME,
            format!(
                "/api/1/vitals: implausible vehicle_current_a {} or grid_v {}",
                v.vehicle_current_a, v.grid_v
            ),
        ));
    }
    Ok(v)
}

/// Decode `/api/1/lifetime`.
pub fn parse_lifetime(body: &[u8]) -> Result<Lifetime, PluginError> {
    decode("/api/1/lifetime", body)
}

/// Decode `/api/1/version`.
pub fn parse_version(body: &[u8]) -> Result<Version, PluginError> {
    decode("/api/1/version", body)
}

/// Decode `/api/1/wifi_status`; a base64 SSID is decoded when it is valid base64 of UTF-8.
pub fn parse_wifi(body: &[u8]) -> Result<Wifi, PluginError> {
    let mut w: Wifi = decode("/api/1/wifi_status", body)?;
    if let Some(s) = &w.wifi_ssid
        && let Some(d) = base64_utf8(s)
    {
        w.wifi_ssid = Some(d);
    }
    Ok(w)
}

/// The name of an `evse_state` code (Home Assistant's table).
pub fn state_name(code: i64) -> &'static str {
    match code {
        0 => "booting",
        1 => "not_connected",
        2 => "connected",
        4 => "ready",
        6 => "negotiating",
        7 => "error",
        8 => "charging_finished",
        9 => "waiting_car",
        10 => "charging_reduced",
        11 => "charging",
        _ => "unknown",
    }
}

/// The engine's state for an `evse_state` code.
pub fn load_point_state(code: i64) -> LoadPointState {
    match code {
        1 => LoadPointState::Idle,
        2 | 4 | 6 | 8 | 9 => LoadPointState::Connected,
        10 | 11 => LoadPointState::Charging,
        7 => LoadPointState::Error,
        _ => LoadPointState::Unknown,
    }
}

/// How the unit is wired, from its phase voltages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wiring {
    /// North-American split phase: two legs of one 240 V circuit (phase C ≈ half the line
    /// voltage); power = current × line voltage.
    SplitPhase,
    /// One phase.
    SinglePhase,
    /// Three phases.
    ThreePhase,
}

impl Vitals {
    /// Split phase when phase C sits near half the line voltage; three phases when phase C is
    /// near the line voltage and carries current like A (or nothing draws and all three are
    /// live); otherwise one phase.
    pub fn wiring(&self) -> Wiring {
        let g = self.grid_v;
        let vc = self.voltage_c.unwrap_or(0.0);
        if g > 0.0 && vc > 0.35 * g && vc < 0.65 * g {
            return Wiring::SplitPhase;
        }
        let live = |v: Option<f64>| v.is_some_and(|v| g > 0.0 && (v - g).abs() < 0.15 * g);
        let all_live = live(self.voltage_a) && live(self.voltage_b) && live(self.voltage_c);
        let drawing = |a: Option<f64>| a.unwrap_or(0.0) >= 1.0;
        let all_drawing = drawing(self.current_b) && drawing(self.current_c);
        if all_live && (all_drawing || self.vehicle_current_a < 1.0) {
            Wiring::ThreePhase
        } else {
            Wiring::SinglePhase
        }
    }

    /// Phases that carry the car's current (split phase counts as one at the line voltage).
    pub fn phases(&self) -> u8 {
        match self.wiring() {
            Wiring::ThreePhase => 3,
            _ => 1,
        }
    }

    /// Charging power, W: current × line voltage × phases.
    pub fn power_w(&self) -> f64 {
        self.vehicle_current_a * self.grid_v * f64::from(self.phases())
    }
}

fn base64_utf8(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    let d = String::from_utf8(bytes).ok()?;
    (!d.is_empty() && d.chars().all(|c| !c.is_control())).then_some(d)
}
