//! Conditions on custom policies and restrictions: checking, describing and evaluating them.

use super::*;

/// Check a condition's shape (known value name, comparable value).
pub fn check_condition(c: &Condition) -> Result<(), String> {
    let known = VALUE_NAMES.contains(&c.what.as_str())
        || c.what
            .strip_prefix("settings.")
            .is_some_and(|k| !k.is_empty());
    if !known {
        return Err(format!(
            "condition on {:?}: unknown value; expected one of: {}",
            c.what,
            VALUE_NAMES.join(", ")
        ));
    }
    if !matches!(
        c.value,
        Value::Number(_) | Value::String(_) | Value::Bool(_)
    ) {
        return Err(format!(
            "condition on {:?}: value must be a number, string or boolean",
            c.what
        ));
    }
    Ok(())
}

pub(super) fn describe_conditions(cs: &[Condition]) -> String {
    if cs.is_empty() {
        return "no conditions".into();
    }
    cs.iter()
        .map(|c| format!("{} {:?} {}", c.what, c.op, c.value))
        .collect::<Vec<_>>()
        .join(" and ")
}

pub(super) fn values(
    what: &str,
    ctx: &Context<'_>,
    local: &DateTime<FixedOffset>,
    surplus: Option<f64>,
) -> Vec<String> {
    let num = |v: Option<f64>| v.map(|x| x.to_string()).into_iter().collect::<Vec<_>>();
    let r = ctx.reading;
    match what {
        "time.hour" => num(Some(local.hour() as f64 + local.minute() as f64 / 60.0)),
        "time.minute_of_day" => num(Some((local.hour() * 60 + local.minute()) as f64)),
        "time.weekday" => num(Some(local.weekday().number_from_monday() as f64)),
        "sun.up" => ctx
            .settings
            .home
            .map(|h| {
                if sun::is_up(ctx.now, local.date_naive(), h.lat, h.lon) {
                    "1".to_string()
                } else {
                    "0".to_string()
                }
            })
            .into_iter()
            .collect(),
        "vehicle.connected" => num(Some(ctx.cars_connected as f64)),
        "vehicle.charging" => num(Some(ctx.cars_charging as f64)),
        "vehicle.vin" => ctx.vins.to_vec(),
        "battery.soc" => num(r.and_then(|r| r.battery_soc_pct)),
        "battery.w" => num(r.and_then(|r| r.battery_w)),
        "grid.w" => num(grid_now_w(ctx)),
        "generation.w" => num(r.and_then(|r| r.generation_w)),
        "consumption.w" => num(r.and_then(|r| r.consumption_w)),
        "surplus.w" => num(surplus),
        // Unknown (no tariff, no slot for now) is no value: every comparison is false.
        "price.per_kwh" => num(ctx.price_per_kwh),
        "price.co2_g_per_kwh" => num(ctx.co2_g_per_kwh),
        other => {
            let key = other.strip_prefix("settings.").unwrap_or(other);
            let s = ctx.settings;
            match key {
                "non_scheduled_action" => vec![s.non_scheduled_action.clone()],
                "non_scheduled_amps" => num(Some(s.non_scheduled_amps)),
                "flex_amps" => num(Some(s.flex_amps)),
                "charge_now" => vec![if s.charge_now.is_some() { "1" } else { "0" }.into()],
                k => s.extra.get(k).cloned().into_iter().collect(),
            }
        }
    }
}

pub(super) fn eval_condition(
    c: &Condition,
    ctx: &Context<'_>,
    local: &DateTime<FixedOffset>,
    surplus: Option<f64>,
) -> bool {
    let vals = values(&c.what, ctx, local, surplus);
    let want = match &c.value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        v => v.to_string(),
    };
    let cmp = |v: &str| -> Option<std::cmp::Ordering> {
        match (v.trim().parse::<f64>(), want.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => Some(v.cmp(want.as_str())),
        }
    };
    let numeric = |v: &str| v.trim().parse::<f64>().is_ok() && want.trim().parse::<f64>().is_ok();
    use std::cmp::Ordering::*;
    match c.op {
        Op::Eq => vals.iter().any(|v| cmp(v) == Some(Equal)),
        Op::Ne => !vals.is_empty() && vals.iter().all(|v| cmp(v) != Some(Equal)),
        Op::Gt => vals.iter().any(|v| numeric(v) && cmp(v) == Some(Greater)),
        Op::Gte => vals
            .iter()
            .any(|v| numeric(v) && matches!(cmp(v), Some(Greater | Equal))),
        Op::Lt => vals.iter().any(|v| numeric(v) && cmp(v) == Some(Less)),
        Op::Lte => vals
            .iter()
            .any(|v| numeric(v) && matches!(cmp(v), Some(Less | Equal))),
    }
}
