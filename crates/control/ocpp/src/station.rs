//! The charge point as the central system sees it: one connector per TWC, its status, its
//! transactions and meter values, and the limits its charging profiles set. No I/O: the session
//! loop (`session.rs`) feeds it the engine's status and the central system's messages, and sends
//! what it queues.

use crate::OcppConfig;
use crate::profile;
use crate::store::{OpenTx, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::{info, warn};
use twc_core::engine::Command;
use twc_core::model::{SlaveStatus, Status};
use twc_core::protocol::{SlaveState, TwcId};

/// The source name of our limits in the engine.
pub const LIMIT_SOURCE: &str = "ocpp";

/// What an outgoing CALL was, to act on its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// BootNotification.
    Boot,
    /// A message whose answer needs no action (Heartbeat, StatusNotification, Authorize, …).
    Plain,
    /// A queued transaction message, by sequence number.
    Queued(u64),
}

/// A CALL waiting to be sent.
#[derive(Debug, Clone)]
pub struct Out {
    /// Order.
    pub seq: u64,
    /// Action.
    pub action: String,
    /// Payload.
    pub payload: Value,
    /// What it is.
    pub what: What,
}

/// OCPP timestamps: RFC 3339 UTC with milliseconds.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The charge point's state.
pub struct Station {
    pub(crate) cfg: OcppConfig,
    pub(crate) store: Store,
    /// Non-transactional CALLs waiting (lost on a disconnect: they are sent afresh).
    pub(crate) outbox: VecDeque<Out>,
    /// True once the central system accepted our BootNotification on this connection.
    pub(crate) booted: bool,
    /// The status last sent per connector.
    pub(crate) sent_status: BTreeMap<u32, String>,
    /// idTags given by RemoteStartTransaction for the next transaction on a connector.
    pub(crate) pending_tag: BTreeMap<u32, String>,
    /// Connectors stopped by RemoteStopTransaction (or a refused idTag), held at 0 A until the car
    /// is unplugged or a remote start comes.
    pub(crate) held: BTreeSet<u32>,
    /// The session energy each connector last showed, kWh (to advance its register).
    last_session_kwh: BTreeMap<u32, f64>,
    /// Limits last sent to the engine, by slave (`None` = the site), amps.
    limits_sent: BTreeMap<Option<TwcId>, Option<f64>>,
    /// The heartbeat interval the central system asked for, seconds.
    pub(crate) heartbeat_secs: u64,
    /// A Reset was accepted: close the connection after answering.
    pub(crate) reset: bool,
}

/// Connector status from a slave (OCPP 1.6 `ChargePointStatus`) and its error code.
pub fn slave_status(
    s: &SlaveStatus,
    tx: bool,
    held: bool,
    inoperative: bool,
) -> (&'static str, &'static str) {
    let car = SlaveState(s.state).car_connected() || s.actual.0 >= 100;
    if s.timed_out {
        return ("Unavailable", "NoError");
    }
    if s.state == SlaveState::ERROR.0 {
        return ("Faulted", "OtherError");
    }
    if inoperative && !tx {
        return ("Unavailable", "NoError");
    }
    let status = match (car, tx) {
        (false, false) => "Available",
        (false, true) => "Finishing",
        (true, false) if held => "Finishing",
        (true, false) => "Preparing",
        (true, true) if s.charging => "Charging",
        (true, true) if s.offered.0 < 600 => "SuspendedEVSE",
        (true, true) => "SuspendedEV",
    };
    (status, "NoError")
}

impl Station {
    /// A station over its persisted state.
    pub fn new(cfg: OcppConfig, store: Store) -> Station {
        let heartbeat_secs = store
            .state
            .config
            .get("HeartbeatInterval")
            .and_then(|v| v.parse().ok())
            .unwrap_or(cfg.heartbeat_interval_secs);
        Station {
            cfg,
            store,
            outbox: VecDeque::new(),
            booted: false,
            sent_status: BTreeMap::new(),
            pending_tag: BTreeMap::new(),
            held: BTreeSet::new(),
            last_session_kwh: BTreeMap::new(),
            limits_sent: BTreeMap::new(),
            heartbeat_secs,
            reset: false,
        }
    }

    /// Persist; a failure is logged (the queue stays in memory and is written next time).
    pub(crate) fn save(&self) {
        if let Err(e) = self.store.save() {
            warn!(plugin = "ocpp", error = %e, "Cannot save the OCPP state: transactions queued now may be lost at a restart");
        }
    }

    /// The meter-values interval, seconds (MeterValueSampleInterval; 0 = none).
    pub fn meter_secs(&self) -> u64 {
        self.store
            .state
            .config
            .get("MeterValueSampleInterval")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.cfg.meter_interval_secs)
    }

    /// Queue a non-transactional CALL.
    pub fn send(&mut self, action: &str, payload: Value) {
        let seq = self.store.state.seq();
        self.outbox.push_back(Out {
            seq,
            action: action.into(),
            payload,
            what: What::Plain,
        });
    }

    /// A new connection: BootNotification first, nothing else until it is accepted.
    pub fn connected(&mut self) {
        self.outbox.clear();
        self.booted = false;
        self.sent_status.clear();
        let seq = self.store.state.seq();
        self.outbox.push_back(Out {
            seq,
            action: "BootNotification".into(),
            payload: json!({
                "chargePointVendor": self.cfg.vendor,
                "chargePointModel": self.cfg.model,
                "firmwareVersion": env!("CARGO_PKG_VERSION"),
            }),
            what: What::Boot,
        });
    }

    /// The next CALL to send: the oldest of the outbox and the transaction queue (only the
    /// BootNotification before it is accepted).
    pub fn next_out(&mut self) -> Option<Out> {
        if !self.booted {
            let i = self.outbox.iter().position(|o| o.what == What::Boot)?;
            return self.outbox.remove(i);
        }
        let q_seq = self.store.state.queue.front().map(|q| q.seq);
        let o_seq = self.outbox.front().map(|o| o.seq);
        match (o_seq, q_seq) {
            (Some(o), Some(q)) if o < q => self.outbox.pop_front(),
            (Some(_), None) => self.outbox.pop_front(),
            (_, Some(_)) => {
                let q = self.store.state.queue.front()?.clone();
                let mut payload = q.payload.clone();
                if q.action != "StartTransaction" {
                    match self.store.state.tx_ids.get(&q.local_tx) {
                        Some(id) => payload["transactionId"] = json!(id),
                        None => {
                            // Its StartTransaction was dropped: the central system cannot place it.
                            warn!(plugin = "ocpp", action = %q.action, "Dropping a transaction message whose transaction the central system never numbered");
                            self.store.state.queue.pop_front();
                            self.save();
                            return self.next_out();
                        }
                    }
                }
                Some(Out {
                    seq: q.seq,
                    action: q.action,
                    payload,
                    what: What::Queued(q.seq),
                })
            }
            (None, None) => None,
        }
    }

    /// The answer to one of our CALLs. Returns engine commands to run.
    pub fn on_result(&mut self, what: &What, payload: &Value) -> Vec<Command> {
        match what {
            What::Boot => {
                let status = payload["status"].as_str().unwrap_or("");
                if let Some(i) = payload["interval"].as_u64().filter(|i| *i > 0) {
                    self.heartbeat_secs = i;
                }
                if status == "Accepted" {
                    info!(
                        plugin = "ocpp",
                        "The central system accepted our BootNotification"
                    );
                    self.booted = true;
                } else {
                    warn!(
                        plugin = "ocpp",
                        status, "BootNotification not accepted; retrying after the interval"
                    );
                }
                Vec::new()
            }
            What::Plain => Vec::new(),
            What::Queued(seq) => {
                let Some(q) = self
                    .store
                    .state
                    .queue
                    .front()
                    .filter(|q| q.seq == *seq)
                    .cloned()
                else {
                    return Vec::new();
                };
                self.store.state.queue.pop_front();
                let mut cmds = Vec::new();
                if q.action == "StartTransaction" {
                    match payload["transactionId"].as_i64() {
                        Some(id) => {
                            self.store.state.tx_ids.insert(q.local_tx, id);
                        }
                        None => warn!(
                            plugin = "ocpp",
                            "StartTransaction answer without transactionId"
                        ),
                    }
                    let tag_ok = payload["idTagInfo"]["status"].as_str() == Some("Accepted");
                    let conn = self
                        .store
                        .state
                        .open
                        .iter()
                        .find(|(_, t)| t.local == q.local_tx)
                        .map(|(c, _)| *c);
                    if !tag_ok && let Some(c) = conn {
                        warn!(
                            plugin = "ocpp",
                            connector = c,
                            "The central system refused the idTag: stopping the transaction"
                        );
                        cmds.extend(self.stop_tx(c, "DeAuthorized", Utc::now()));
                    }
                }
                if q.action == "StopTransaction" {
                    self.store.state.tx_ids.remove(&q.local_tx);
                }
                self.save();
                cmds
            }
        }
    }

    /// A CALLERROR (or no answer) to one of our CALLs.
    pub fn on_error(&mut self, what: &What, code: &str) {
        if let What::Queued(seq) = what
            && let Some(q) = self.store.state.queue.front_mut().filter(|q| q.seq == *seq)
        {
            q.errors += 1;
            if q.errors >= 3 {
                warn!(plugin = "ocpp", action = %q.action, code, "The central system refused a transaction message 3 times: dropped");
                self.store.state.queue.pop_front();
            }
            self.save();
        }
    }

    fn slave_of(&self, connector: u32) -> Option<TwcId> {
        self.store
            .state
            .connectors
            .iter()
            .find(|(_, c)| **c == connector)
            .and_then(|(t, _)| t.parse().ok())
    }

    /// End the open transaction on `connector`; the engine command stops the car.
    pub fn stop_tx(&mut self, connector: u32, reason: &str, now: DateTime<Utc>) -> Vec<Command> {
        let Some(tx) = self.store.state.open.remove(&connector) else {
            return Vec::new();
        };
        let meter = self
            .store
            .state
            .registers_wh
            .get(&connector)
            .copied()
            .unwrap_or(tx.meter_start_wh as f64)
            .round() as i64;
        info!(plugin = "ocpp", connector, reason, "Transaction ended");
        self.store.state.push(
            "StopTransaction",
            json!({
                "idTag": tx.id_tag,
                "meterStop": meter.max(tx.meter_start_wh),
                "timestamp": ts(now),
                "reason": reason,
            }),
            tx.local,
        );
        profile::end_transaction(&mut self.store.state.profiles, connector);
        self.save();
        let mut cmds = Vec::new();
        // A remote stop or a refused idTag holds the car at 0 A until it is unplugged; a Reset
        // ends the transaction only (a car still charging afterwards starts a new one).
        if matches!(reason, "Remote" | "DeAuthorized") {
            self.held.insert(connector);
            if let Some(slave) = self.slave_of(connector) {
                cmds.push(Command::StopCharging { slave: Some(slave) });
            }
        }
        cmds
    }

    /// A new engine status: start and end transactions, advance energy registers, queue status
    /// notifications for changes.
    pub fn observe(&mut self, status: &Status, now: DateTime<Utc>) -> Vec<Command> {
        let mut cmds = Vec::new();
        let mut seen = BTreeSet::new();
        for s in &status.slaves {
            let c = self.store.state.connector_of(&s.id.to_string());
            seen.insert(c);
            // Energy register: advance by the session's growth (a new session starts from 0).
            let last = self
                .last_session_kwh
                .insert(c, s.session_kwh)
                .unwrap_or(s.session_kwh);
            let delta = if s.session_kwh >= last {
                s.session_kwh - last
            } else {
                s.session_kwh
            };
            let reg =
                self.store.state.registers_wh.entry(c).or_insert_with(|| {
                    s.lifetime_kwh.map(|k| f64::from(k) * 1000.0).unwrap_or(0.0)
                });
            *reg += delta * 1000.0;
            let reg = *reg;
            let car = SlaveState(s.state).car_connected() || s.actual.0 >= 100;
            let open = self.store.state.open.contains_key(&c);
            if !car && !s.charging {
                self.held.remove(&c);
                if open {
                    cmds.extend(self.stop_tx(c, "EVDisconnected", now));
                }
            } else if s.charging && !open && !self.held.contains(&c) && !self.inoperative(c) {
                let id_tag = self.pending_tag.remove(&c).unwrap_or_else(|| {
                    s.vin
                        .as_deref()
                        .filter(|v| self.cfg.vin_as_id_tag && !v.is_empty())
                        .unwrap_or(&self.cfg.id_tag)
                        .chars()
                        .take(20)
                        .collect()
                });
                let local = self.store.state.seq();
                if self.cfg.authorize {
                    self.send("Authorize", json!({ "idTag": id_tag }));
                }
                info!(plugin = "ocpp", connector = c, id_tag = %id_tag, "Transaction started");
                self.store.state.push(
                    "StartTransaction",
                    json!({
                        "connectorId": c,
                        "idTag": id_tag,
                        "meterStart": reg.round() as i64,
                        "timestamp": ts(now),
                    }),
                    local,
                );
                self.store.state.open.insert(
                    c,
                    OpenTx {
                        local,
                        id_tag,
                        started_at: now,
                        meter_start_wh: reg.round() as i64,
                    },
                );
                self.save();
            }
        }
        if self.booted {
            let conns: Vec<u32> = self.store.state.connectors.values().copied().collect();
            for c in conns {
                let (st, err) = self.connector_status(status, c, seen.contains(&c));
                if self.sent_status.get(&c).map(String::as_str) != Some(st) {
                    self.sent_status.insert(c, st.to_string());
                    self.send(
                        "StatusNotification",
                        json!({"connectorId": c, "status": st, "errorCode": err, "timestamp": ts(now)}),
                    );
                }
            }
        }
        cmds
    }

    fn inoperative(&self, c: u32) -> bool {
        let inop = &self.store.state.inoperative;
        inop.contains(&c) || inop.contains(&0)
    }

    /// The status of connector `c` now.
    pub fn connector_status(
        &self,
        status: &Status,
        c: u32,
        linked: bool,
    ) -> (&'static str, &'static str) {
        let slave = self.slave_of(c);
        match status.slaves.iter().find(|s| Some(s.id) == slave) {
            Some(s) if linked => slave_status(
                s,
                self.store.state.open.contains_key(&c),
                self.held.contains(&c),
                self.inoperative(c),
            ),
            _ => ("Unavailable", "NoError"),
        }
    }

    /// StatusNotification for connector 0 and every connector (after a boot or a trigger).
    pub fn all_status(&mut self, status: &Status, only: Option<u32>, now: DateTime<Utc>) {
        let linked: BTreeSet<u32> = status
            .slaves
            .iter()
            .filter_map(|s| self.store.state.connectors.get(&s.id.to_string()).copied())
            .collect();
        if only.is_none_or(|c| c == 0) {
            let st = if self.store.state.inoperative.contains(&0) {
                "Unavailable"
            } else {
                "Available"
            };
            self.send("StatusNotification", json!({"connectorId": 0, "status": st, "errorCode": "NoError", "timestamp": ts(now)}));
        }
        let conns: Vec<u32> = self.store.state.connectors.values().copied().collect();
        for c in conns.into_iter().filter(|c| only.is_none_or(|o| o == *c)) {
            let (st, err) = self.connector_status(status, c, linked.contains(&c));
            self.sent_status.insert(c, st.to_string());
            self.send(
                "StatusNotification",
                json!({"connectorId": c, "status": st, "errorCode": err, "timestamp": ts(now)}),
            );
        }
    }

    /// Meter values of connector `c` now.
    pub fn meter_value(&self, status: &Status, c: u32, now: DateTime<Utc>) -> Option<Value> {
        let slave = self.slave_of(c)?;
        let s = status.slaves.iter().find(|s| s.id == slave)?;
        let reg = self
            .store
            .state
            .registers_wh
            .get(&c)
            .copied()
            .unwrap_or(0.0);
        let a = s.actual.amps();
        let mut sampled = vec![
            json!({"value": format!("{:.0}", reg), "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"}),
            json!({"value": format!("{:.0}", s.power_w), "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic"}),
            json!({"value": format!("{:.2}", s.offered.amps()), "measurand": "Current.Offered", "unit": "A", "context": "Sample.Periodic"}),
        ];
        for (i, phase) in ["L1", "L2", "L3"]
            .iter()
            .enumerate()
            .take(usize::from(status.site.phases.clamp(1, 3)))
        {
            sampled.push(json!({"value": format!("{a:.2}"), "measurand": "Current.Import", "phase": phase, "unit": "A", "context": "Sample.Periodic"}));
            if s.volts[i] > 0 {
                sampled.push(json!({"value": s.volts[i].to_string(), "measurand": "Voltage", "phase": phase, "unit": "V", "context": "Sample.Periodic"}));
            }
        }
        Some(json!({"timestamp": ts(now), "sampledValue": sampled}))
    }

    /// Queue MeterValues for every open transaction (persisted, sent in order).
    pub fn sample(&mut self, status: &Status, now: DateTime<Utc>) {
        let open: Vec<(u32, u64)> = self
            .store
            .state
            .open
            .iter()
            .map(|(c, t)| (*c, t.local))
            .collect();
        for (c, local) in open {
            if let Some(mv) = self.meter_value(status, c, now) {
                self.store.state.push(
                    "MeterValues",
                    json!({"connectorId": c, "meterValue": [mv]}),
                    local,
                );
            }
        }
        self.save();
    }

    /// The limits the profiles, holds and availability set now, as engine commands for those
    /// that changed.
    pub fn limits(&mut self, status: &Status, now: DateTime<Utc>) -> Vec<Command> {
        let st = &self.store.state;
        let (volts, phases) = (status.site.voltage, status.site.phases);
        let mut want: BTreeMap<Option<TwcId>, Option<f64>> = BTreeMap::new();
        let site = if st.inoperative.contains(&0) {
            Some(0.0)
        } else {
            profile::site_limit(&st.profiles, now, volts, phases)
        };
        want.insert(None, site);
        for (twc, c) in &st.connectors {
            let Ok(id) = twc.parse::<TwcId>() else {
                continue;
            };
            let tx = st
                .open
                .get(c)
                .map(|t| (st.tx_ids.get(&t.local).copied().unwrap_or(-1), t.started_at));
            let l = if self.held.contains(c) || st.inoperative.contains(c) {
                Some(0.0)
            } else {
                profile::connector_limit(&st.profiles, *c, tx, now, volts, phases)
            };
            want.insert(Some(id), l);
        }
        let mut cmds = Vec::new();
        for (slave, amps) in want {
            if self.limits_sent.get(&slave) != Some(&amps) {
                self.limits_sent.insert(slave, amps);
                cmds.push(Command::SetExternalLimit {
                    source: LIMIT_SOURCE.into(),
                    slave,
                    amps,
                });
            }
        }
        cmds
    }

    /// Forget what was sent to the engine (it is sent again on the next evaluation).
    pub fn resend_limits(&mut self) {
        self.limits_sent.clear();
    }
}
