//! `config.json`'s `policy` section: extensions (emergency / before / after), restrictions,
//! webhooks and override, translated into `[policy]` custom policies, restrictions and webhooks.
//! A rule that uses something we cannot express (a Python call, a module attribute, a value
//! computed at run time) is left out whole, with the reason: half a rule could charge when the
//! user's rule would not.

use crate::out::{Out, boolean, num, take_obj, text};
use serde_json::{Map, Value};

const F: &str = "config.json";

pub(crate) fn import_policy(mut p: Map<String, Value>, out: &mut Out) {
    if p.remove("alwaysPollEMS").is_some() {
        out.mapped_with(
            F,
            "policy.alwaysPollEMS",
            "(always)",
            "every enabled source is polled at its own interval_secs, whatever the policy",
        );
    }
    let mut engine = take_obj(&mut p, "engine");
    if engine.remove("policyCheckInterval").is_some() {
        out.mapped_with(F, "policy.engine.policyCheckInterval", "[engine] tick_ms", "not copied: the policy is re-evaluated on every meter reading and at least every tick_ms (1 s), so TWCManager's 30 s is not needed");
    }
    out.unknown(F, "policy.engine.", engine);
    let mut extend = take_obj(&mut p, "extend");
    for position in ["emergency", "before", "after"] {
        if let Some(Value::Array(rules)) = extend.remove(position) {
            if rules.is_empty() {
                out.mapped_with(
                    F,
                    &format!("policy.extend.{position}"),
                    "[[policy.custom]]",
                    "empty: nothing to add",
                );
            }
            for (i, rule) in rules.iter().enumerate() {
                let key = format!("policy.extend.{position}[{i}]");
                custom(rule, position, &key, out);
            }
        }
    }
    let restrictions = take_obj(&mut extend, "restrictions");
    if restrictions.is_empty() {
        out.mapped_with(
            F,
            "policy.extend.restrictions",
            "[policy.restrictions]",
            "empty: nothing to add",
        );
    }
    for (name, r) in restrictions {
        let key = format!("policy.extend.restrictions.{name}");
        match conditions(&r) {
            Ok(conds) if conds.is_empty() => out.skip(F, &key, "no conditions"),
            Ok(conds) => {
                out.set(
                    &format!("policy.restrictions.{name}"),
                    toml::Value::Array(conds),
                );
                out.mapped(F, &key, &format!("[policy.restrictions] \"{name}\""));
            }
            Err(e) => out.skip(F, &key, &e),
        }
    }
    let webhooks = take_obj(&mut extend, "webhooks");
    if webhooks.is_empty() {
        out.mapped_with(
            F,
            "policy.extend.webhooks",
            "[[policy.webhooks]]",
            "empty: nothing to add",
        );
    }
    let method = out.webhook_method.clone().unwrap_or_else(|| "POST".into());
    for (policy, events) in webhooks {
        let Value::Object(events) = events else {
            out.skip(
                F,
                &format!("policy.extend.webhooks.{policy}"),
                "expected { enter, start, stop, exit } URLs",
            );
            continue;
        };
        for (event, url) in events {
            let key = format!("policy.extend.webhooks.{policy}.{event}");
            match (event.as_str(), text(&url)) {
                ("enter" | "exit", Some(url)) => {
                    let mut t = toml::Table::new();
                    t.insert("policy".into(), policy.clone().into());
                    t.insert("event".into(), event.clone().into());
                    t.insert("url".into(), url.into());
                    t.insert("method".into(), method.clone().into());
                    out.push("policy.webhooks", toml::Value::Table(t));
                    out.mapped(F, &key, "[[policy.webhooks]]");
                }
                ("start" | "stop", _) => out.skip(F, &key, "webhooks on a car starting or stopping are not implemented; enter/exit of a policy are"),
                _ => out.skip(F, &key, "expected a URL for enter, start, stop or exit"),
            }
        }
    }
    out.unknown(F, "policy.extend.", extend);
    match p.remove("override") {
        Some(Value::Array(rules)) if rules.is_empty() => {
            out.mapped_with(
                F,
                "policy.override",
                "[policy] replace_builtin",
                "empty: the built-in list stays",
            );
        }
        Some(Value::Array(rules)) => {
            let before = out.get("policy.custom").cloned();
            let mut all_ok = true;
            for (i, rule) in rules.iter().enumerate() {
                all_ok &= custom(rule, "before", &format!("policy.override[{i}]"), out);
            }
            if all_ok {
                out.set("policy.replace_builtin", true.into());
            } else {
                // Replacing the built-in list with only part of the user's list could charge
                // when theirs would not: keep the built-in list instead.
                match before {
                    Some(b) => out.set("policy.custom", b),
                    None => out.remove("policy.custom"),
                }
                out.skip(F, "policy.override", "one of its rules cannot be expressed (see above), so the built-in policy list stays; write the whole list as [[policy.custom]] with replace_builtin = true");
            }
        }
        Some(_) => out.skip(F, "policy.override", "expected a list of rules"),
        None => {}
    }
    out.unknown(F, "policy.", p);
}

/// One TWCManager rule into a `[[policy.custom]]` entry. False when it was left out.
fn custom(rule: &Value, position: &str, key: &str, out: &mut Out) -> bool {
    let Value::Object(r) = rule else {
        out.skip(F, key, "expected a rule object");
        return false;
    };
    let name = r
        .get("name")
        .and_then(text)
        .unwrap_or_else(|| key.to_string());
    let key = format!("{key} ({name:?})");
    let task = r.get("background_task").and_then(text);
    let amps_src = r.get("charge_amps").and_then(text);
    if task.as_deref() == Some("checkMaxPowerFromGrid")
        && matches!(
            amps_src.as_deref(),
            Some("settings.chargeNowAmps" | "settings.scheduledAmpsMax")
        )
    {
        out.mapped_with(F, &key, "[grid] max_import_amps", "not needed as a rule: our grid-import limit applies under every policy, Charge Now and Scheduled Charging included");
        return true;
    }
    let conds = match conditions(rule) {
        Ok(c) => c,
        Err(e) => {
            out.skip(F, &key, &e);
            return false;
        }
    };
    let mut t = toml::Table::new();
    t.insert("name".into(), name.clone().into());
    t.insert("position".into(), position.into());
    t.insert("conditions".into(), toml::Value::Array(conds));
    match r.get("charge_amps") {
        None => {}
        Some(v) => match (num(v), text(v).as_deref()) {
            (Some(a), _) => {
                t.insert("amps".into(), a.into());
            }
            (None, Some("getMaxAmpsToDivideGreenEnergy()")) => {}
            (None, Some("config.wiringMaxAmpsAllTWCs")) => {
                let w = out
                    .get("wiring.max_amps_all_twcs")
                    .cloned()
                    .unwrap_or(6.0.into());
                t.insert("amps".into(), w);
            }
            (None, other) => {
                out.skip(F, &key, &format!("charge_amps {other:?} is computed at run time by TWCManager; ours takes a number, or none to follow green energy"));
                return false;
            }
        },
    }
    if let Some(l) = r.get("latch_period").and_then(num) {
        t.insert("latch_minutes".into(), l.into());
    }
    if let Some(f) = r.get("allowed_flex").and_then(num) {
        t.insert("flex_amps".into(), f.into());
    }
    for k in r.keys() {
        if !matches!(
            k.as_str(),
            "name"
                | "match"
                | "condition"
                | "value"
                | "charge_amps"
                | "latch_period"
                | "allowed_flex"
                | "charge_limit"
                | "background_task"
        ) {
            out.skip(
                F,
                &format!("{key}.{k}"),
                "not a rule key TWCManager reads; left out",
            );
        }
    }
    if r.contains_key("charge_limit") {
        out.skip(
            F,
            &format!("{key}.charge_limit"),
            "car charge limits need a vehicle API, which twcmanager does not have yet",
        );
    }
    out.push("policy.custom", toml::Value::Table(t));
    out.mapped(
        F,
        &key,
        &format!("[[policy.custom]] {name:?}, position {position:?}"),
    );
    true
}

/// TWCManager's parallel lists `match`, `condition`, `value` into our conditions.
fn conditions(rule: &Value) -> Result<Vec<toml::Value>, String> {
    let list = |k: &str| -> Vec<Value> {
        match rule.get(k) {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        }
    };
    let (m, c, v) = (list("match"), list("condition"), list("value"));
    if m.len() != c.len() || m.len() != v.len() {
        return Err(format!(
            "match, condition and value have different lengths ({}, {}, {}); TWCManager pairs them up",
            m.len(),
            c.len(),
            v.len()
        ));
    }
    let mut out = Vec::new();
    for ((m, c), v) in m.iter().zip(&c).zip(&v) {
        let (m, c) = (text(m).unwrap_or_default(), text(c).unwrap_or_default());
        if c == "none" {
            continue;
        }
        let op = match c.as_str() {
            "gt" | "gte" | "lt" | "lte" | "eq" | "ne" => c.clone(),
            "false" => return Err("a condition \"false\" never matches; the rule is inert".into()),
            other => {
                return Err(format!(
                    "condition {other:?} is not one of gt, gte, lt, lte, eq, ne"
                ));
            }
        };
        let (what, value) = match m.as_str() {
            "tm_hour" => ("time.hour".to_string(), v.clone()),
            "tm_wday" => (
                "time.weekday".to_string(),
                num(v)
                    .map(|d| Value::from(d + 1.0))
                    .ok_or("tm_wday needs a number")?,
            ),
            s if s.starts_with("settings.") => (s.to_string(), v.clone()),
            other => {
                return Err(format!(
                    "match {other:?} has no equivalent (ours: {})",
                    twc_core::policy::VALUE_NAMES.join(", ")
                ));
            }
        };
        if let Some(s) = value.as_str()
            && (s == "now" || s.contains('.') || s.starts_with("tm_") || s.ends_with("()"))
        {
            return Err(format!(
                "value {s:?} is computed at run time by TWCManager; ours compares with a fixed number, string or boolean"
            ));
        }
        let value = match value {
            Value::Bool(b) => toml::Value::Boolean(b),
            Value::Number(n) if n.is_i64() => toml::Value::Integer(n.as_i64().unwrap_or(0)),
            Value::Number(n) => toml::Value::Float(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => match boolean(&Value::String(s.clone())) {
                Some(b) if s == "true" || s == "false" => toml::Value::Boolean(b),
                _ => toml::Value::String(s),
            },
            other => return Err(format!("value {other} must be a number, string or boolean")),
        };
        let mut t = toml::Table::new();
        t.insert("match".into(), what.into());
        t.insert("op".into(), op.into());
        t.insert("value".into(), value);
        out.push(toml::Value::Table(t));
    }
    Ok(out)
}
