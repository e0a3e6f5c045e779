//! TWCManager's read routes: `getStatus`, `getSlaveTWCs`, the policy, configuration, offsets,
//! history and UUID, each a reshaping of the engine's `Status` (the one the typed API renders)
//! into TWCManager's JSON, loose types included.

use super::{f2, text, unit_str};
use crate::AppState;
use crate::util::{r2, scrub_secrets};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};
use twc_core::model::{Schedule, Status};

/// Volts per phase × phases for W ↔ A: the engine's own (`Status.site`), which its policy used.
fn site_volts(s: &Status) -> f64 {
    s.site.voltage * f64::from(s.site.phases.max(1))
}

/// `"0.00"` when zero, a one-element array `["x.xx"]` otherwise (TWCManager's tuple accident),
/// `null` when there is no fresh reading.
fn loose_amps(w: Option<f64>, volts: f64) -> Value {
    match w {
        None => Value::Null,
        // No status yet: no site voltage either.
        Some(_) if volts.is_nan() || volts <= 0.0 => Value::Null,
        Some(w) => {
            let a = (w.max(0.0) / volts).max(0.0);
            if a == 0.0 {
                json!("0.00")
            } else {
                json!([f2(a)])
            }
        }
    }
}

fn schedule_json(s: &Schedule) -> Value {
    let days = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let (start, end) = match s.windows.first() {
        Some(w) if s.enabled => (i64::from(w.start_minute), i64::from(w.end_minute)),
        _ => (-1, -1),
    };
    let mut m = Map::new();
    m.insert("enabled".into(), json!(s.enabled));
    m.insert("amps".into(), json!(s.amps.floor() as i64));
    m.insert("startingMinute".into(), json!(start));
    m.insert("endingMinute".into(), json!(end));
    for (i, d) in days.iter().enumerate() {
        let on = s.windows.is_empty() || s.windows.iter().any(|w| usize::from(w.weekday) == i + 1);
        m.insert((*d).into(), json!(on));
    }
    m.insert("flexStartEnabled".into(), json!(i64::from(s.flex_start)));
    m.insert("flexStartingMinute".into(), json!(-1));
    m.insert("flexEndingMinute".into(), json!(-1));
    for d in days {
        let mut k = String::from("flex");
        k.push_str(&d[..1].to_uppercase());
        k.push_str(&d[1..]);
        m.insert(k, json!(true));
    }
    m.insert(
        "flexBatterySize".into(),
        json!(s.flex_battery_kwh.round() as i64),
    );
    Value::Object(m)
}

pub(super) async fn get_status(State(st): State<AppState>) -> Json<Value> {
    Json(status_json(&st.engine.status()))
}

fn status_json(s: &Status) -> Value {
    let volts = site_volts(s);
    let r = s.reading.as_ref();
    let gen_w = r.and_then(|r| r.generation_w).map(|w| w.max(0.0));
    let cons_w = r.and_then(|r| r.consumption_w).map(|w| w.max(0.0));
    // The slaves and the external load points (a Gen3; TWCManager 1.4 counts Gen2 only).
    let lp = s.load_points.iter().filter(|l| !l.stale);
    let charger_a = s.total_actual().amps()
        + lp.clone()
            .filter_map(|l| l.draw)
            .map(|d| d.amps())
            .sum::<f64>();
    let cars = s.cars_charging() + lp.filter(|l| l.charging()).count();
    let mut m = Map::new();
    m.insert("carsCharging".into(), json!(cars));
    m.insert("chargerLoadWatts".into(), json!(f2(s.site.charger_w)));
    m.insert("chargerLoadAmps".into(), json!([f2(charger_a)]));
    let name = if s.policy.name.is_empty() {
        "None"
    } else {
        s.policy.name.as_str()
    };
    m.insert("currentPolicy".into(), json!(name));
    m.insert(
        "maxAmpsToDivideAmongSlaves".into(),
        json!(f2(s.policy.budget.amps())),
    );
    m.insert("consumptionAmps".into(), loose_amps(cons_w, volts));
    m.insert(
        "consumptionWatts".into(),
        cons_w.map(f2).map_or(Value::Null, Value::from),
    );
    m.insert("generationAmps".into(), loose_amps(gen_w, volts));
    m.insert(
        "generationWatts".into(),
        gen_w.map(f2).map_or(Value::Null, Value::from),
    );
    m.insert(
        "isGreenPolicy".into(),
        json!(if s.policy.is_green { "Yes" } else { "No" }),
    );
    let sch = &s.settings.schedule;
    let first = sch.windows.first().filter(|_| sch.enabled);
    m.insert(
        "scheduledChargingStartHour".into(),
        json!(first.map_or(-1, |w| i64::from(w.start_minute / 60))),
    );
    m.insert("scheduledChargingFlexStart".into(), json!(-1));
    m.insert(
        "scheduledChargingEndHour".into(),
        first.map_or(json!(-1), |w| json!(f64::from(w.end_minute) / 60.0)),
    );
    m.insert("ScheduledCharging".into(), schedule_json(sch));
    if let Some(cn) = s.settings.charge_now {
        let now = chrono::Utc::now().timestamp();
        if cn.until_unix > now {
            m.insert("chargeNowTimeEnd".into(), json!(cn.until_unix as f64));
        }
        if cn.amps > 0.0 {
            m.insert("chargeNowAmps".into(), json!(cn.amps.floor() as i64));
        }
    }
    if s.settings.extra.get("sendServerTime").map(String::as_str) == Some("1") {
        let t = chrono::Local::now()
            .format("%Y-%m-%d, %H:%M&nbsp;|&nbsp;")
            .to_string();
        m.insert("currentServerTime".into(), json!(t));
    }
    Value::Object(m)
}

fn charge_time(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s >= 0.0 => {
            let s = s as u64;
            format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
        }
        _ => "--:--:--".into(),
    }
}

pub(super) async fn get_slave_twcs(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.status();
    let mut m = Map::new();
    let (mut charging, mut offered, mut kwh, mut actual) = (0i64, 0.0, 0i64, 0.0);
    let mut max_amps: Option<f64> = None;
    for x in &s.slaves {
        let id = x.id.to_string();
        let w = x.power_w;
        m.insert(
            id.clone(),
            json!({
                "carsCharging": x.charging,
                "chargerLoadInW": w.round() as i64,
                "currentVIN": x.vin.clone().unwrap_or_default(),
                "lastAmpsOffered": r2(x.offered.amps()),
                "lastHeartbeat": r2(x.last_heartbeat_secs),
                "lastVIN": x.last_vin.clone().unwrap_or_default(),
                "lifetimekWh": x.lifetime_kwh.unwrap_or(0),
                "maxAmps": x.max_amps.amps(),
                "reportedAmpsActual": r2(x.actual.amps()),
                "state": x.state,
                "version": x.version.number(),
                "voltsPhaseA": x.volts[0],
                "voltsPhaseB": x.volts[1],
                "voltsPhaseC": x.volts[2],
                "TWCID": id,
                "chargeTime": charge_time(x.session_secs),
            }),
        );
        charging += i64::from(x.charging);
        offered += x.offered.amps();
        kwh += i64::from(x.lifetime_kwh.unwrap_or(0));
        actual += x.actual.amps();
        let ma = x.max_amps.amps();
        max_amps = Some(max_amps.map_or(ma, |m: f64| m.min(ma)));
    }
    // Not in TWCManager 1.4 (its getSlaveTWCs lists Gen2 slaves only): each external load point
    // under its ident (`gen3_garage`, safe in the UI's element ids) with the same fields, and
    // in the total.
    for l in &s.load_points {
        let id = l.ident();
        let v = l.view();
        let actual_lp = l.draw.filter(|_| !l.stale).map_or(0.0, |d| d.amps());
        let volts = |i: usize| v.voltages_v[i].map_or(0, |x| x.round() as i64);
        let kwh_l = v
            .lifetime_energy_wh
            .map_or(0, |wh| (wh / 1000.0).floor() as i64);
        m.insert(
            id.clone(),
            json!({
                "carsCharging": l.charging(),
                "chargerLoadInW": l.power_w().map_or(0, |w| w.round() as i64),
                "currentVIN": "",
                "lastAmpsOffered": r2(l.allocated.amps()),
                "lastHeartbeat": l.measured_at.map_or(0.0, |t| {
                    r2(((chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0).max(0.0))
                }),
                "lastVIN": "",
                "lifetimekWh": kwh_l,
                "maxAmps": l.max.amps(),
                "reportedAmpsActual": r2(actual_lp),
                "state": l.state.as_str(),
                "version": 3,
                "voltsPhaseA": volts(0),
                "voltsPhaseB": volts(1),
                "voltsPhaseC": volts(2),
                "TWCID": id,
                "chargeTime": charge_time(v.session_s.filter(|_| l.charging())),
                "kind": l.kind,
                "name": l.name,
            }),
        );
        charging += i64::from(l.charging());
        offered += l.allocated.amps();
        kwh += kwh_l;
        actual += actual_lp;
        let ma = l.max.amps();
        max_amps = Some(max_amps.map_or(ma, |m: f64| m.min(ma)));
    }
    m.insert(
        "total".into(),
        json!({
            "carsCharging": charging,
            "lastAmpsOffered": r2(offered),
            "lifetimekWh": kwh,
            "maxAmps": max_amps.unwrap_or(0.0),
            "reportedAmpsActual": r2(actual),
            "TWCID": "total",
        }),
    );
    Json(Value::Object(m))
}

pub(super) async fn get_active_policy_action(State(st): State<AppState>) -> Json<Value> {
    Json(json!(crate::v2::policy_action(&st.engine.status())))
}

/// One policy in TWCManager's rule format: the built-ins as TWCManager writes them, a custom
/// policy (whose conditions TWCManager's format cannot state) with its name and empty lists.
fn policy_rule(name: &str) -> Value {
    match name {
        "Charge Now" => json!({"name": name,
         "match": ["settings.chargeNowAmps", "settings.chargeNowTimeEnd", "settings.chargeNowTimeEnd"],
         "condition": ["gt", "gt", "gt"], "value": [0, 0, "now"],
         "charge_amps": "settings.chargeNowAmps"}),
        "Scheduled Charging" => json!({"name": name,
         "match": ["checkScheduledCharging()"], "condition": ["eq"], "value": [1],
         "charge_amps": "settings.scheduledAmpsMax"}),
        "Track Green Energy" => json!({"name": name,
         "match": ["settings.nonScheduledAction"], "condition": ["eq"], "value": ["green"],
         "background_task": "checkGreenEnergy"}),
        "Non Scheduled Charging" => json!({"name": name,
         "match": ["none"], "condition": ["none"], "value": [0],
         "charge_amps": "settings.nonScheduledAmpsMax"}),
        _ => json!({"name": name, "match": [], "condition": [], "value": []}),
    }
}

/// The engine's policy list (`Status.policy.rules`: the order it tries them, custom policies
/// included), in TWCManager's rule format. Empty before the engine's first evaluation.
fn policy_list(s: &Status) -> Value {
    Value::Array(s.policy.rules.iter().map(|n| policy_rule(n)).collect())
}

pub(super) async fn get_policy(State(st): State<AppState>) -> Json<Value> {
    Json(policy_list(&st.engine.status()))
}

pub(super) async fn get_config(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.status();
    let eff = st.cfg.effective_config.clone().unwrap_or_else(|| json!({}));
    let min = s.min_amps_per_twc.amps();
    let branch = |k: &str| scrub_secrets(eff.get(k).unwrap_or(&json!({})));
    Json(json!({
        "config": {
            "wiringMaxAmpsAllTWCs": s.wiring_max_all.amps(),
            "wiringMaxAmpsPerTWC": s.wiring_max_per_twc.amps(),
            "minAmpsPerTWC": min,
        },
        "interface": branch("comms"),
        "sources": branch("ems"),
        "status": branch("status"),
        "control": branch("control"),
        "logging": branch("logging"),
        "vehicle": branch("vehicle"),
        "twcmanager": scrub_secrets(&eff),
    }))
}

pub(super) async fn get_consumption_offsets(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.status();
    let m: Map<String, Value> = s
        .settings
        .consumption_offsets
        .iter()
        .map(|(k, o)| {
            (
                k.clone(),
                json!({"value": o.value, "unit": unit_str(o.unit)}),
            )
        })
        .collect();
    Json(Value::Object(m))
}

pub(super) async fn get_history(State(st): State<AppState>) -> Json<Value> {
    let b = st.recorder.buckets(chrono::Utc::now());
    Json(Value::Array(
        b.into_iter()
            .map(|(t, w)| {
                json!({
                    "timestamp": t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
                    "charger_power": r2(w.unwrap_or(0.0)),
                })
            })
            .collect(),
    ))
}

pub(super) async fn get_uuid(State(st): State<AppState>) -> Response {
    text(st.compat.uuid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twc_core::model::{EnergyReading, SitePower};

    /// Issue 14: TWCManager's amps come from the engine's volts and phases (`Status.site`), the
    /// numbers its policy used, not from a voltage of the HTTP plugin's own.
    #[test]
    fn r14_amps_use_the_engines_site_volts_and_phases() {
        let mut s = Status {
            reading: Some(EnergyReading {
                consumption_w: Some(7200.0),
                generation_w: Some(0.0),
                ..EnergyReading::default()
            }),
            site: SitePower {
                voltage: 240.0,
                phases: 3,
                ..SitePower::default()
            },
            ..Status::default()
        };
        let j = status_json(&s);
        assert_eq!(j["consumptionAmps"], json!(["10.00"]));
        assert_eq!(j["generationAmps"], json!("0.00"));
        // Without a site voltage (no status yet) the amps are unknown, never infinite.
        s.site = SitePower::default();
        assert_eq!(status_json(&s)["consumptionAmps"], Value::Null);
    }
}
