//! One charger as the central system knows it: its connectors (status, latest meter reading,
//! transaction, the limit we sent) and the answers to what it sends (OCPP 1.6 Core).

use super::{CentralConfig, Limits};
use crate::calls::read;
use crate::rpc::{CallError, ErrorCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};
use twc_core::model::{CentiAmps, LoadPointMeasurement, LoadPointState};

/// Most connectors per charger (connector ids 1..=this).
pub(crate) const MAX_CONNECTORS: u32 = 16;

/// One reading from MeterValues.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    /// Current.Import per phase (L1, L2, L3) or overall (index 0).
    pub currents: [Option<f64>; 3],
    pub power_w: Option<f64>,
    pub energy_wh: Option<f64>,
    pub voltage: Option<f64>,
    /// The highest phase current (from power when no current was sent).
    pub draw: Option<f64>,
}

/// An open transaction.
#[derive(Debug, Clone)]
pub(crate) struct Tx {
    pub id: i64,
    pub id_tag: String,
    pub meter_start: i64,
    pub started: String,
}

/// One connector.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connector {
    pub status: Option<String>,
    pub error_code: String,
    /// The latest reading with a current or power, and when it was measured (engine clock).
    pub reading: Option<(Reading, Instant)>,
    pub energy_wh: Option<f64>,
    pub tx: Option<Tx>,
    pub last_tx: Option<Value>,
    /// Since when it draws more than it was given.
    pub over_since: Option<Instant>,
    pub problem: Option<String>,
}

/// One charger.
#[derive(Debug)]
pub(crate) struct Charger {
    pub id: String,
    pub limits: Limits,
    pub boot: Option<Value>,
    pub connectors: BTreeMap<u32, Connector>,
    /// When it disconnected (`None` while connected).
    pub gone_since: Option<Instant>,
    /// A refused profile, shown on every connector.
    pub profile_problem: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Boot {
    charge_point_vendor: String,
    charge_point_model: String,
    firmware_version: Option<String>,
    charge_point_serial_number: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusN {
    connector_id: u32,
    error_code: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Authorize {
    id_tag: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start {
    connector_id: u32,
    id_tag: String,
    meter_start: i64,
    timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stop {
    transaction_id: i64,
    meter_stop: i64,
    timestamp: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Sampled {
    value: String,
    measurand: Option<String>,
    phase: Option<String>,
    unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeterValue {
    timestamp: String,
    sampled_value: Vec<Sampled>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meter {
    connector_id: u32,
    meter_value: Vec<MeterValue>,
}

const STATUSES: [&str; 9] = [
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
];

fn state_of(status: Option<&str>) -> LoadPointState {
    match status {
        Some("Charging") => LoadPointState::Charging,
        Some("Preparing" | "SuspendedEVSE" | "SuspendedEV" | "Finishing") => {
            LoadPointState::Connected
        }
        Some("Available" | "Reserved" | "Unavailable") => LoadPointState::Idle,
        Some("Faulted") => LoadPointState::Error,
        _ => LoadPointState::Unknown,
    }
}

/// Read one MeterValue's samples; `None` when it holds nothing usable.
fn reading(mv: &MeterValue, volts: f64, phases: u8) -> Reading {
    let mut r = Reading::default();
    let mut power = 0.0;
    let mut has_power = false;
    for s in &mv.sampled_value {
        let Ok(v) = s.value.trim().parse::<f64>() else {
            continue;
        };
        if !v.is_finite() || v < 0.0 {
            continue;
        }
        let k = matches!(s.unit.as_deref(), Some("kW" | "kWh"));
        let v = if k { v * 1000.0 } else { v };
        let phase = match s.phase.as_deref() {
            Some(p) if p.starts_with("L2") => 1,
            Some(p) if p.starts_with("L3") => 2,
            _ => 0,
        };
        match s
            .measurand
            .as_deref()
            .unwrap_or("Energy.Active.Import.Register")
        {
            "Current.Import" => {
                let c = &mut r.currents[phase];
                *c = Some(c.unwrap_or(0.0).max(v));
            }
            "Power.Active.Import" => {
                power += v;
                has_power = true;
            }
            "Energy.Active.Import.Register" if s.phase.is_none() => r.energy_wh = Some(v),
            "Voltage" => r.voltage = Some(r.voltage.unwrap_or(0.0).max(v)),
            _ => {}
        }
    }
    r.power_w = has_power.then_some(power);
    r.draw = r
        .currents
        .iter()
        .flatten()
        .copied()
        .reduce(f64::max)
        .or_else(|| r.power_w.map(|p| p / (volts * f64::from(phases))));
    r
}

impl Charger {
    pub(crate) fn new(id: String, limits: Limits) -> Self {
        Charger {
            id,
            limits,
            boot: None,
            connectors: BTreeMap::new(),
            gone_since: None,
            profile_problem: None,
        }
    }

    fn connector(&mut self, c: u32) -> Result<&mut Connector, CallError> {
        if c == 0 || c > MAX_CONNECTORS {
            return Err(CallError::new(
                ErrorCode::PropertyConstraintViolation,
                format!("connectorId must be 1 to {MAX_CONNECTORS}, got {c}"),
            ));
        }
        Ok(self.connectors.entry(c).or_default())
    }

    /// Answer one CALL. `changed` gets the connectors whose report changed.
    pub(crate) fn handle(
        &mut self,
        cfg: &CentralConfig,
        action: &str,
        payload: &Value,
        next_tx: &mut i64,
        changed: &mut Vec<u32>,
    ) -> Result<Value, CallError> {
        let now_s = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let tag_status = |t: &str| {
            if cfg.id_tags.is_empty() || cfg.id_tags.iter().any(|x| x == t) {
                "Accepted"
            } else {
                "Invalid"
            }
        };
        match action {
            "BootNotification" => {
                let b: Boot = read(action, payload)?;
                info!(plugin = "ocpp", charger = %self.id, vendor = %b.charge_point_vendor, model = %b.charge_point_model, "Charger booted");
                self.boot = Some(json!({
                    "vendor": b.charge_point_vendor, "model": b.charge_point_model,
                    "firmware": b.firmware_version, "serial": b.charge_point_serial_number,
                }));
                Ok(json!({"status": "Accepted", "currentTime": now_s,
                    "interval": cfg.heartbeat_interval_secs}))
            }
            "Heartbeat" => Ok(json!({ "currentTime": now_s })),
            "StatusNotification" => {
                let s: StatusN = read(action, payload)?;
                if !STATUSES.contains(&s.status.as_str()) {
                    return Err(CallError::new(
                        ErrorCode::PropertyConstraintViolation,
                        format!("status {:?} is not an OCPP 1.6 ChargePointStatus", s.status),
                    ));
                }
                if s.connector_id == 0 {
                    // The whole charger: a fault holds every connector.
                    if s.status == "Faulted" || s.status == "Unavailable" {
                        for (c, x) in self.connectors.iter_mut() {
                            x.status = Some(s.status.clone());
                            x.error_code = s.error_code.clone();
                            changed.push(*c);
                        }
                    }
                    return Ok(json!({}));
                }
                let x = self.connector(s.connector_id)?;
                x.status = Some(s.status);
                x.error_code = s.error_code;
                changed.push(s.connector_id);
                Ok(json!({}))
            }
            "Authorize" => {
                let a: Authorize = read(action, payload)?;
                Ok(json!({"idTagInfo": {"status": tag_status(&a.id_tag)}}))
            }
            "StartTransaction" => {
                let s: Start = read(action, payload)?;
                let st = tag_status(&s.id_tag);
                *next_tx += 1;
                let id = *next_tx;
                let cid = self.id.clone();
                let x = self.connector(s.connector_id)?;
                info!(plugin = "ocpp", charger = %cid, connector = s.connector_id, transaction = id, id_tag = %s.id_tag, status = st, "Transaction started");
                x.tx = Some(Tx {
                    id,
                    id_tag: s.id_tag,
                    meter_start: s.meter_start,
                    started: s.timestamp,
                });
                changed.push(s.connector_id);
                Ok(json!({"transactionId": id, "idTagInfo": {"status": st}}))
            }
            "StopTransaction" => {
                let s: Stop = read(action, payload)?;
                // Always accepted (OCPP 1.6 §4.10), also for a transaction we do not know.
                for (c, x) in self.connectors.iter_mut() {
                    if let Some(t) = x.tx.take_if(|t| t.id == s.transaction_id) {
                        info!(plugin = "ocpp", charger = %self.id, connector = *c, transaction = t.id, "Transaction stopped");
                        x.last_tx = Some(json!({
                            "transaction_id": t.id, "id_tag": t.id_tag, "started": t.started,
                            "stopped": s.timestamp, "reason": s.reason,
                            "energy_wh": (s.meter_stop - t.meter_start).max(0),
                        }));
                        changed.push(*c);
                    }
                }
                Ok(json!({}))
            }
            "MeterValues" => {
                let m: Meter = read(action, payload)?;
                let (volts, phases) = (cfg.volts, self.limits.phases);
                let stale = Duration::from_secs_f64(cfg.stale_after_secs);
                let c = m.connector_id;
                if c == 0 {
                    return Ok(json!({}));
                }
                let x = self.connector(c)?;
                for mv in &m.meter_value {
                    let r = reading(mv, volts, phases);
                    if r.energy_wh.is_some() {
                        x.energy_wh = r.energy_wh;
                    }
                    if r.draw.is_none() {
                        continue;
                    }
                    // Freshness is when it was measured: an old (queued) value is no reading.
                    let age = DateTime::parse_from_rfc3339(&mv.timestamp)
                        .map(|t| {
                            (Utc::now() - t.with_timezone(&Utc))
                                .to_std()
                                .unwrap_or_default()
                        })
                        .unwrap_or(Duration::ZERO);
                    if age <= stale {
                        let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                        if x.reading.as_ref().is_none_or(|(_, t)| at >= *t) {
                            x.reading = Some((r, at));
                        }
                    }
                }
                changed.push(c);
                Ok(json!({}))
            }
            "DataTransfer" => Ok(json!({"status": "UnknownVendorId"})),
            "DiagnosticsStatusNotification" | "FirmwareStatusNotification" => Ok(json!({})),
            other => Err(CallError::new(
                ErrorCode::NotImplemented,
                format!(
                    "unknown action {:?}",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }

    /// The measurement of a connector for the engine; `None` when its draw is not known
    /// (disconnected, no status yet, or charging without a fresh current).
    pub(crate) fn measurement(
        &self,
        c: u32,
        cfg: &CentralConfig,
        sent: Option<f64>,
        now: Instant,
    ) -> Option<LoadPointMeasurement> {
        let x = self.connectors.get(&c)?;
        if self.gone_since.is_some() {
            return None;
        }
        let stale = Duration::from_secs_f64(cfg.stale_after_secs);
        let fresh = x
            .reading
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) <= stale)
            .map(|(r, _)| r);
        let state = state_of(x.status.as_deref());
        let draw = match (fresh.and_then(|r| r.draw), state) {
            (Some(d), _) => d,
            // Charging (or not known) without a fresh current: the engine counts it at max.
            (None, LoadPointState::Charging | LoadPointState::Unknown) => return None,
            // Its status says it delivers no energy.
            (None, _) => 0.0,
        };
        let details = json!({
            "charge_point_id": self.id,
            "connector_id": c,
            "ocpp_status": x.status,
            "error_code": x.error_code,
            "boot": self.boot,
            "currents_a": fresh.map(|r| r.currents),
            "power_w": fresh.and_then(|r| r.power_w),
            "voltage_v": fresh.and_then(|r| r.voltage),
            "energy_wh": x.energy_wh,
            "transaction": x.tx.as_ref().map(|t| json!({
                "transaction_id": t.id, "id_tag": t.id_tag, "started": t.started,
                "energy_wh": x.energy_wh.map(|e| (e - t.meter_start as f64).max(0.0)),
            })),
            "last_transaction": x.last_tx,
            "profile_limit_a": sent,
        });
        Some(LoadPointMeasurement {
            draw: CentiAmps::from_f64(draw),
            state,
            details,
        })
    }

    /// Check that connector `c` follows what it was given; its problem, if any.
    pub(crate) fn follow(
        &mut self,
        c: u32,
        cfg: &CentralConfig,
        draw: Option<CentiAmps>,
        given: CentiAmps,
        now: Instant,
    ) -> Option<String> {
        let id = self.id.clone();
        let x = self.connectors.get_mut(&c)?;
        match draw {
            Some(d) if d.amps() > given.amps() + cfg.follow_margin_amps => {
                let since = *x.over_since.get_or_insert(now);
                if now.duration_since(since).as_secs_f64() >= cfg.follow_grace_secs {
                    let p = format!(
                        "does not follow its charging profile: draws {d}, given {given}; check \
                         that it supports SmartCharging ({} at stack level {})",
                        cfg.profile.as_str(),
                        cfg.stack_level
                    );
                    if x.problem.as_deref() != Some(p.as_str()) {
                        warn!(plugin = "ocpp", charger = %id, connector = c, "{p}");
                    }
                    x.problem = Some(p);
                }
            }
            _ => {
                x.over_since = None;
                x.problem = None;
            }
        }
        x.problem.clone().or_else(|| self.profile_problem.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(samples: Value) -> MeterValue {
        serde_json::from_value(
            json!({"timestamp": "2026-01-01T00:00:00Z", "sampledValue": samples}),
        )
        .unwrap()
    }

    #[test]
    fn readings() {
        let r = reading(
            &mv(json!([
                {"value": "10.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "12", "measurand": "Current.Import", "phase": "L2"},
                {"value": "11", "measurand": "Current.Import", "phase": "L3"},
                {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "1234"},
                {"value": "nan", "measurand": "Current.Import", "phase": "L1"},
                {"value": "-5", "measurand": "Current.Import", "phase": "L1"},
            ])),
            230.0,
            3,
        );
        assert_eq!(r.draw, Some(12.0));
        assert_eq!(r.power_w, Some(7400.0));
        assert_eq!(r.energy_wh, Some(1234.0));
        // Power only: per phase at the charger's phases.
        let r = reading(
            &mv(json!([{"value": "6900", "measurand": "Power.Active.Import", "unit": "W"}])),
            230.0,
            1,
        );
        assert_eq!(r.draw, Some(30.0));
        // Energy only: no draw.
        let r = reading(&mv(json!([{"value": "1", "unit": "kWh"}])), 230.0, 1);
        assert_eq!((r.draw, r.energy_wh), (None, Some(1000.0)));
    }

    #[test]
    fn states() {
        assert_eq!(state_of(Some("Charging")), LoadPointState::Charging);
        assert_eq!(state_of(Some("SuspendedEV")), LoadPointState::Connected);
        assert_eq!(state_of(Some("Available")), LoadPointState::Idle);
        assert_eq!(state_of(Some("Faulted")), LoadPointState::Error);
        assert_eq!(state_of(None), LoadPointState::Unknown);
    }
}
