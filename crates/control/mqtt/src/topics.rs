//! Parsing control topics and their payloads into engine commands or settings patches.

use serde_json::{Value, json};
use std::time::Duration;
use twc_core::engine::{self, Command, merge_patch};
use twc_core::model::{ConsumptionOffset, GridLimit, Schedule, Settings};
use twc_core::protocol::TwcId;

/// What a control message asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// An engine command.
    Command(Command),
    /// Patch the settings: the patch is checked against the settings as the surface saw them
    /// (`.0`, for early errors), and the engine applies the patch (`.1`) to its settings as they
    /// are then, so a change made meanwhile by another surface is not written back over.
    Settings(Box<Settings>, Value),
}

/// At most `max` characters of `s`, with `…` when cut (on a character boundary).
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A payload quoted in a refusal: Debug-escaped and cut to 40 characters, so a reason stays
/// short whatever was sent (the reply carries the payload itself, cut, once).
fn q(s: &str) -> String {
    format!("{:?}", clip(s, 40))
}

/// A serde error under `key`, cut: serde quotes the offending value, which may be huge.
fn de(key: &str, e: impl std::fmt::Display) -> String {
    format!("{key}: {}", clip(&e.to_string(), 80))
}

/// A number of amps. Only the syntax is checked here: the bounds (≥ 0, the wiring limit, …) are
/// the engine's, which applies the one settings validator to every command.
fn parse_amps(key: &str, s: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{key} must be a number of amps, got {}", q(s)))
}

/// `"1"`/`"charge"`, `"2"`/`"stop"`, `"3"`/`"green"` (TWCManager's numbers or our words).
pub fn parse_action(payload: &str) -> Result<&'static str, String> {
    match payload.trim().to_ascii_lowercase().as_str() {
        "1" | "charge" => Ok("charge"),
        "2" | "stop" => Ok("stop"),
        "3" | "green" => Ok("green"),
        other => Err(format!(
            "nonScheduledAction must be 1 (charge), 2 (stop) or 3 (green), got {}",
            q(other)
        )),
    }
}

/// `"<amps>,<seconds>"`, e.g. `8,3600`.
pub fn parse_charge_now(payload: &str) -> Result<Command, String> {
    let (a, s) = payload.split_once(',').ok_or_else(|| {
        format!(
            "chargeNow must be \"<amps>,<seconds>\" such as \"8,3600\", got {}",
            q(payload)
        )
    })?;
    // Amps > 0 within the wiring limit and a duration above 0 are the engine's checks.
    let amps = parse_amps("chargeNow amps", a)?;
    let secs: u64 = s.trim().parse().map_err(|_| {
        format!(
            "chargeNow seconds must be a whole number, got {}",
            q(s.trim())
        )
    })?;
    Ok(Command::ChargeNow {
        amps,
        duration: Duration::from_secs(secs),
    })
}

fn parse_slave(key: &str, payload: &str) -> Result<Option<TwcId>, String> {
    let p = payload.trim();
    if p.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    p.parse::<TwcId>().map(Some).map_err(|_| {
        format!(
            "{key}: expected 4 hex digits such as \"7777\", or \"all\", got {}",
            q(p)
        )
    })
}

/// An amount with a unit: `"16 A"`, `"3000W"`, `"-300 W"` or `{"value": 16, "unit": "A"}`.
fn parse_value_unit(key: &str, payload: &str) -> Result<Value, String> {
    let p = payload.trim();
    if p.starts_with('{') {
        let v: Value = serde_json::from_str(p).map_err(|e| de(key, format!("bad JSON: {e}")))?;
        return Ok(v);
    }
    let (num, unit) = if let Some(n) = p.strip_suffix(['A', 'a']) {
        (n, "A")
    } else if let Some(n) = p.strip_suffix(['W', 'w']) {
        (n, "W")
    } else {
        return Err(format!(
            "{key} must be a number with a unit, such as \"16 A\" or \"3000 W\", got {}",
            q(p)
        ));
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{key} must be a number with a unit, got {}", q(p)))?;
    if !value.is_finite() {
        return Err(format!("{key} must be a finite number, got {}", q(p)));
    }
    Ok(json!({ "value": value, "unit": unit }))
}

fn unknown_keys(key: &str, target: &Value, patch: &Value) -> Result<(), String> {
    if let (Value::Object(t), Value::Object(p)) = (target, patch) {
        let mut bad: Vec<&str> = p
            .keys()
            .filter(|k| !t.contains_key(*k))
            .map(|k| k.as_str())
            .collect();
        if !bad.is_empty() {
            bad.sort_unstable();
            let mut known: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
            known.sort_unstable();
            return Err(format!(
                "{key}: unknown key(s) {}; known: {}",
                bad.join(", "),
                known.join(", ")
            ));
        }
    }
    Ok(())
}

fn json_payload(key: &str, payload: &str) -> Result<Value, String> {
    serde_json::from_str(payload.trim()).map_err(|e| de(key, format!("bad JSON: {e}")))
}

/// Turn one control message into an action. `name` is the topic after `<prefix>/control/`.
pub fn parse(
    name: &str,
    payload: &str,
    current: &Settings,
    allow_stop: bool,
) -> Result<Action, String> {
    if payload.trim().is_empty() {
        // Publishing an empty retained message is how a retained topic is cleared: it must
        // never act (an empty stopCharging used to stop every TWC).
        return Err("an empty payload is not a command; ignored".into());
    }
    let cmd = |c| Ok(Action::Command(c));
    match name {
        "chargeNow" => cmd(parse_charge_now(payload)?),
        "chargeNowEnd" => cmd(Command::CancelChargeNow),
        "nonScheduledAmpsMax" => cmd(Command::SetNonScheduled {
            action: None,
            amps: Some(parse_amps("nonScheduledAmpsMax", payload)?),
        }),
        "nonScheduledAction" => cmd(Command::SetNonScheduled {
            action: Some(parse_action(payload)?.to_string()),
            amps: None,
        }),
        "stop" => {
            if allow_stop {
                cmd(Command::Shutdown)
            } else {
                Err("stop is disabled; set allow_stop = true in [control.mqtt] to allow it".into())
            }
        }
        "startCharging" => cmd(Command::StartCharging {
            slave: parse_slave("startCharging", payload)?,
        }),
        "stopCharging" => cmd(Command::StopCharging {
            slave: parse_slave("stopCharging", payload)?,
        }),
        "schedule" => {
            let v = json_payload("schedule", payload)?;
            if !v.is_object() {
                return Err("schedule must be a JSON object".into());
            }
            // A merge patch of the current schedule, so `{"enabled": false}` keeps the windows.
            let mut cur = serde_json::to_value(&current.schedule).map_err(|e| de("schedule", e))?;
            unknown_keys("schedule", &cur, &v)?;
            merge_patch(&mut cur, &v);
            let schedule: Schedule = serde_json::from_value(cur).map_err(|e| de("schedule", e))?;
            cmd(Command::SetSchedule(Box::new(schedule)))
        }
        "gridLimit" => {
            let p = payload.trim();
            let limit = if p.eq_ignore_ascii_case("none") || p == "null" {
                None
            } else {
                let v = parse_value_unit("gridLimit", p)?;
                Some(serde_json::from_value::<GridLimit>(v).map_err(|e| de("gridLimit", e))?)
            };
            cmd(Command::SetGridLimit(limit))
        }
        "flexAmps" => cmd(Command::SetFlexAmps(parse_amps("flexAmps", payload)?)),
        "vinAllow" | "vinDeny" => {
            let v = json_payload(name, payload)?;
            let list: Vec<String> = serde_json::from_value(v).map_err(|_| {
                format!("{name} must be a JSON array of VINs, such as [\"5YJ3E1EA0KF000316\"]")
            })?;
            let (allow, deny) = if name == "vinAllow" {
                (Some(list), None)
            } else {
                (None, Some(list))
            };
            cmd(Command::SetVinLists { allow, deny })
        }
        "settings" => {
            let v = json_payload("settings", payload)?;
            if !v.is_object() {
                return Err("settings must be a JSON object".into());
            }
            // Checked here for an early error; the engine applies the patch to its settings as
            // they are then.
            let checked = engine::patch_settings(current, v.clone()).map_err(|e| e.to_string())?;
            Ok(Action::Settings(Box::new(checked), v))
        }
        other => {
            if let Some(id) = other.strip_prefix("plan/") {
                let p = payload.trim();
                if p.eq_ignore_ascii_case("delete") {
                    return cmd(Command::DeletePlan(id.to_string()));
                }
                let mut v = json_payload("plan", p)?;
                let Some(obj) = v.as_object_mut() else {
                    return Err("plan must be a JSON object (see docs/plans.md) or delete".into());
                };
                obj.insert("id".into(), Value::String(id.to_string()));
                let plan: twc_core::planner::ChargePlan =
                    serde_json::from_value(v).map_err(|e| de("plan", e))?;
                plan.validate()?;
                return cmd(Command::SetPlan(Box::new(plan)));
            }
            if let Some(offset) = other.strip_prefix("consumptionOffset/") {
                if offset.is_empty() {
                    return Err("consumptionOffset needs a name: consumptionOffset/<name>".into());
                }
                let p = payload.trim();
                let offset_value = if p.eq_ignore_ascii_case("delete") {
                    None
                } else {
                    let v = parse_value_unit("consumptionOffset", p)?;
                    Some(
                        serde_json::from_value::<ConsumptionOffset>(v)
                            .map_err(|e| de("consumptionOffset", e))?,
                    )
                };
                return cmd(Command::SetOffset {
                    name: offset.to_string(),
                    offset: offset_value,
                });
            }
            if let Some(key) = other.strip_prefix("priority/") {
                if key.is_empty() {
                    return Err("priority needs a VIN or TWCID: priority/<VIN or TWCID>".into());
                }
                let p = payload.trim();
                let priority =
                    if p.eq_ignore_ascii_case("delete") {
                        None
                    } else {
                        Some(p.parse::<i32>().map_err(|_| {
                            format!("priority must be a whole number, got {}", q(p))
                        })?)
                    };
                return cmd(Command::SetPriority {
                    key: key.to_string(),
                    priority,
                });
            }
            Err(format!(
                "unknown control topic {}; known: chargeNow, chargeNowEnd, nonScheduledAmpsMax, \
                 nonScheduledAction, stop, startCharging, stopCharging, schedule, gridLimit, flexAmps, \
                 vinAllow, vinDeny, consumptionOffset/<name>, priority/<VIN or TWCID>, settings",
                q(other)
            ))
        }
    }
}
