//! What the central system may ask of a charge point (OCPP 1.6 Core and Smart Charging, plus
//! TriggerMessage), answered from the station's state.

use crate::profile::{self, Profile, Purpose};
use crate::rpc::{CallError, ErrorCode};
use crate::station::Station;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::info;
use twc_core::engine::Command;
use twc_core::model::Status;

/// Read a payload, naming the field that is wrong.
pub(crate) fn read<T: DeserializeOwned>(action: &str, payload: &Value) -> Result<T, CallError> {
    serde_json::from_value(payload.clone()).map_err(|e| {
        let m = e.to_string();
        let code = if m.contains("missing field") || m.contains("unknown variant") {
            ErrorCode::FormationViolation
        } else {
            ErrorCode::TypeConstraintViolation
        };
        CallError::new(code, format!("{action}: {m}"))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteStart {
    connector_id: Option<u32>,
    id_tag: String,
    charging_profile: Option<Profile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteStop {
    transaction_id: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetProfile {
    connector_id: u32,
    cs_charging_profiles: Profile,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClearProfile {
    id: Option<i64>,
    connector_id: Option<u32>,
    charging_profile_purpose: Option<Purpose>,
    stack_level: Option<u32>,
}

#[derive(Deserialize)]
enum Availability {
    Inoperative,
    Operative,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeAvailability {
    connector_id: u32,
    #[serde(rename = "type")]
    kind: Availability,
}

#[derive(Deserialize)]
enum ResetKind {
    Soft,
    Hard,
}

#[derive(Deserialize)]
struct Reset {
    #[serde(rename = "type")]
    kind: ResetKind,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Trigger {
    requested_message: String,
    connector_id: Option<u32>,
}

#[derive(Deserialize)]
struct GetConfig {
    key: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ChangeConfig {
    key: String,
    value: String,
}

/// Configuration keys we report: (key, read-only).
const KEYS: &[(&str, bool)] = &[
    ("HeartbeatInterval", false),
    ("MeterValueSampleInterval", false),
    ("NumberOfConnectors", true),
    ("SupportedFeatureProfiles", true),
    ("ChargeProfileMaxStackLevel", true),
    ("ChargingScheduleAllowedChargingRateUnit", true),
    ("ChargingScheduleMaxPeriods", true),
    ("MaxChargingProfilesInstalled", true),
    ("MeterValuesSampledData", true),
    ("AuthorizeRemoteTxRequests", true),
    ("LocalAuthorizeOffline", true),
    ("StopTransactionOnEVSideDisconnect", true),
    ("StopTransactionOnInvalidId", true),
    ("TransactionMessageAttempts", true),
];

impl Station {
    fn config_value(&self, key: &str) -> String {
        match key {
            "HeartbeatInterval" => self.heartbeat_secs.to_string(),
            "MeterValueSampleInterval" => self.meter_secs().to_string(),
            "NumberOfConnectors" => self.store.state.connectors.len().to_string(),
            "SupportedFeatureProfiles" => "Core,SmartCharging,RemoteTrigger".into(),
            "ChargeProfileMaxStackLevel" => profile::MAX_STACK_LEVEL.to_string(),
            "ChargingScheduleAllowedChargingRateUnit" => "Current,Power".into(),
            "ChargingScheduleMaxPeriods" => profile::MAX_PERIODS.to_string(),
            "MaxChargingProfilesInstalled" => profile::MAX_PROFILES.to_string(),
            "MeterValuesSampledData" => {
                "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered,Voltage".into()
            }
            "AuthorizeRemoteTxRequests" => "false".into(),
            "LocalAuthorizeOffline" | "StopTransactionOnEVSideDisconnect" | "StopTransactionOnInvalidId" => {
                "true".into()
            }
            "TransactionMessageAttempts" => "3".into(),
            _ => String::new(),
        }
    }

    fn connector_exists(&self, c: u32) -> bool {
        self.store.state.connectors.values().any(|x| *x == c)
    }

    fn slave(&self, c: u32) -> Option<twc_core::protocol::TwcId> {
        self.store
            .state
            .connectors
            .iter()
            .find(|(_, x)| **x == c)
            .and_then(|(t, _)| t.parse().ok())
    }

    /// Answer one CALL. Engine commands to run go to `cmds`.
    pub fn handle(
        &mut self,
        action: &str,
        payload: &Value,
        status: &Status,
        now: DateTime<Utc>,
        cmds: &mut Vec<Command>,
    ) -> Result<Value, CallError> {
        let st = |s: &str| Ok(json!({ "status": s }));
        match action {
            "RemoteStartTransaction" => {
                let r: RemoteStart = read(action, payload)?;
                if r.id_tag.is_empty() || r.id_tag.len() > 20 {
                    return Err(CallError::new(
                        ErrorCode::PropertyConstraintViolation,
                        "idTag must be 1 to 20 characters",
                    ));
                }
                // The connector named, or the first with a car and no transaction.
                let c = match r.connector_id {
                    Some(c) if self.connector_exists(c) => Some(c),
                    Some(_) => None,
                    None => {
                        let conns: Vec<u32> =
                            self.store.state.connectors.values().copied().collect();
                        conns.into_iter().find(|c| {
                            !self.store.state.open.contains_key(c)
                                && matches!(
                                    self.connector_status(status, *c, true).0,
                                    "Preparing" | "Finishing"
                                )
                        })
                    }
                };
                let Some(c) = c.filter(|c| {
                    !self.store.state.open.contains_key(c)
                        && !self.store.state.inoperative.contains(c)
                        && !self.store.state.inoperative.contains(&0)
                }) else {
                    return st("Rejected");
                };
                if let Some(p) = r.charging_profile {
                    if p.charging_profile_purpose != Purpose::TxProfile
                        || profile::check(c, &p, Some(p.transaction_id.unwrap_or(-1))).is_err()
                    {
                        return st("Rejected");
                    }
                    profile::install(&mut self.store.state.profiles, c, p, now);
                }
                info!(plugin = "ocpp", connector = c, id_tag = %r.id_tag, "Remote start");
                self.pending_tag.insert(c, r.id_tag);
                self.held.remove(&c);
                self.save();
                self.resend_limits();
                if let Some(slave) = self.slave(c) {
                    cmds.push(Command::StartCharging { slave: Some(slave) });
                }
                st("Accepted")
            }
            "RemoteStopTransaction" => {
                let r: RemoteStop = read(action, payload)?;
                match self.store.state.open_by_remote(r.transaction_id) {
                    Some(c) => {
                        info!(plugin = "ocpp", connector = c, "Remote stop");
                        cmds.extend(self.stop_tx(c, "Remote", now));
                        st("Accepted")
                    }
                    None => st("Rejected"),
                }
            }
            "SetChargingProfile" => {
                let r: SetProfile = read(action, payload)?;
                if r.connector_id != 0 && !self.connector_exists(r.connector_id) {
                    return st("Rejected");
                }
                let tx = self
                    .store
                    .state
                    .open
                    .get(&r.connector_id)
                    .and_then(|t| self.store.state.tx_ids.get(&t.local).copied());
                if let Err(why) = profile::check(r.connector_id, &r.cs_charging_profiles, tx) {
                    info!(plugin = "ocpp", reason = %why, "SetChargingProfile rejected");
                    return st("Rejected");
                }
                profile::install(
                    &mut self.store.state.profiles,
                    r.connector_id,
                    r.cs_charging_profiles,
                    now,
                );
                self.save();
                st("Accepted")
            }
            "ClearChargingProfile" => {
                let r: ClearProfile = read(action, payload)?;
                let n = profile::clear(
                    &mut self.store.state.profiles,
                    r.id,
                    r.connector_id,
                    r.charging_profile_purpose,
                    r.stack_level,
                );
                self.save();
                st(if n > 0 { "Accepted" } else { "Unknown" })
            }
            "ChangeAvailability" => {
                let r: ChangeAvailability = read(action, payload)?;
                if r.connector_id != 0 && !self.connector_exists(r.connector_id) {
                    return st("Rejected");
                }
                let inop = &mut self.store.state.inoperative;
                match r.kind {
                    Availability::Inoperative => inop.insert(r.connector_id),
                    Availability::Operative => inop.remove(&r.connector_id),
                };
                self.save();
                // A running transaction goes on; the connector is held at 0 A once it ends.
                let busy = if r.connector_id == 0 {
                    !self.store.state.open.is_empty()
                } else {
                    self.store.state.open.contains_key(&r.connector_id)
                };
                st(if busy && matches!(r.kind, Availability::Inoperative) {
                    "Scheduled"
                } else {
                    "Accepted"
                })
            }
            "Reset" => {
                let r: Reset = read(action, payload)?;
                let reason = match r.kind {
                    ResetKind::Soft => "SoftReset",
                    ResetKind::Hard => "HardReset",
                };
                let open: Vec<u32> = self.store.state.open.keys().copied().collect();
                for c in open {
                    cmds.extend(self.stop_tx(c, reason, now));
                }
                self.held.clear();
                self.reset = true;
                st("Accepted")
            }
            "TriggerMessage" => {
                let r: Trigger = read(action, payload)?;
                if let Some(c) = r
                    .connector_id
                    .filter(|c| *c != 0 && !self.connector_exists(*c))
                {
                    return Err(CallError::new(
                        ErrorCode::PropertyConstraintViolation,
                        format!("there is no connector {c}"),
                    ));
                }
                match r.requested_message.as_str() {
                    "BootNotification" => {
                        let p = json!({"chargePointVendor": self.cfg.vendor, "chargePointModel": self.cfg.model,
                            "firmwareVersion": env!("CARGO_PKG_VERSION")});
                        self.send("BootNotification", p);
                    }
                    "Heartbeat" => self.send("Heartbeat", json!({})),
                    "StatusNotification" => self.all_status(status, r.connector_id, now),
                    "MeterValues" => {
                        let conns: Vec<u32> =
                            self.store.state.connectors.values().copied().collect();
                        for c in conns
                            .into_iter()
                            .filter(|c| r.connector_id.is_none_or(|o| o == *c))
                        {
                            if let Some(mv) = self.meter_value(status, c, now) {
                                let mut p = json!({"connectorId": c, "meterValue": [mv]});
                                let tx = self
                                    .store
                                    .state
                                    .open
                                    .get(&c)
                                    .and_then(|t| self.store.state.tx_ids.get(&t.local));
                                if let Some(id) = tx {
                                    p["transactionId"] = json!(id);
                                }
                                self.send("MeterValues", p);
                            }
                        }
                    }
                    "DiagnosticsStatusNotification" | "FirmwareStatusNotification" => {
                        return st("NotImplemented");
                    }
                    _ => return st("Rejected"),
                }
                st("Accepted")
            }
            "GetConfiguration" => {
                let r: GetConfig = read(action, payload)?;
                let (mut known, mut unknown) = (Vec::new(), Vec::new());
                let wanted: Vec<String> = match r.key {
                    Some(k) if !k.is_empty() => k,
                    _ => KEYS.iter().map(|(k, _)| k.to_string()).collect(),
                };
                for k in wanted {
                    match KEYS.iter().find(|(n, _)| *n == k) {
                        Some((n, ro)) => known
                            .push(json!({"key": n, "readonly": ro, "value": self.config_value(n)})),
                        None => unknown.push(k),
                    }
                }
                let mut out = json!({ "configurationKey": known });
                if !unknown.is_empty() {
                    out["unknownKey"] = json!(unknown);
                }
                Ok(out)
            }
            "ChangeConfiguration" => {
                let r: ChangeConfig = read(action, payload)?;
                match KEYS.iter().find(|(n, _)| *n == r.key) {
                    None => st("NotSupported"),
                    Some((_, true)) => st("Rejected"),
                    Some((n, false)) => match r.value.trim().parse::<u64>() {
                        Ok(v) if *n == "HeartbeatInterval" && v > 0 => {
                            self.heartbeat_secs = v;
                            self.store.state.config.insert(r.key, v.to_string());
                            self.save();
                            st("Accepted")
                        }
                        Ok(v) if *n == "MeterValueSampleInterval" => {
                            self.store.state.config.insert(r.key, v.to_string());
                            self.save();
                            st("Accepted")
                        }
                        _ => st("Rejected"),
                    },
                }
            }
            "GetCompositeSchedule" | "ClearCache" | "UnlockConnector" | "DataTransfer" => {
                Err(CallError::new(
                    ErrorCode::NotSupported,
                    format!("{action} is not supported by twcmanager"),
                ))
            }
            other => Err(CallError::new(
                ErrorCode::NotImplemented,
                format!(
                    "unknown action {:?}",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }
}
