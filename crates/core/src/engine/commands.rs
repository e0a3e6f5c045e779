//! Applying control commands to the settings (validated as a whole, saved off the loop).

use super::*;

impl Core {
    /// Publish the settings to the handle and the writer task (which saves the latest, off the
    /// engine loop: an fsync on an SD card must not delay a heartbeat).
    pub(super) fn save_settings(&self) {
        if let Some(tx) = &self.settings_tx {
            tx.send_replace(self.settings.clone());
        }
    }

    pub(super) fn on_command(
        &mut self,
        cmd: Command,
        now: Instant,
    ) -> Result<Settings, CommandError> {
        let wiring = self.cfg.master.wiring_max_all.amps();
        let mut next = self.settings.clone();
        match cmd {
            Command::ChargeNow { amps, duration } => {
                // Amps within the wiring limit: `Settings::validate` below (`charge_now.amps`).
                if amps <= 0.0 {
                    return Err(CommandError::Invalid("amps must be greater than 0".into()));
                }
                if duration.is_zero() {
                    return Err(CommandError::Invalid(
                        "duration must be greater than 0".into(),
                    ));
                }
                if duration > MAX_CHARGE_NOW {
                    return Err(CommandError::Invalid(format!(
                        "duration = {} s is longer than a year; use the non-scheduled action for \"always\"",
                        duration.as_secs()
                    )));
                }
                let until = self
                    .wall(now)
                    .timestamp()
                    .saturating_add(duration.as_secs() as i64);
                info!(amps, seconds = duration.as_secs(), "Charge Now requested");
                next.charge_now = Some(ChargeNow {
                    amps,
                    until_unix: until,
                });
            }
            Command::CancelChargeNow => {
                info!("Charge Now cancelled");
                next.charge_now = None;
            }
            Command::SetNonScheduled { action, amps } => {
                // Both are checked by `Settings::validate` below, as from every other surface.
                if let Some(a) = action {
                    next.non_scheduled_action = a;
                }
                if let Some(a) = amps {
                    next.non_scheduled_amps = a;
                }
            }
            Command::DebugQuery { slave, code } => {
                let ids: Vec<TwcId> = match slave {
                    Some(id) => vec![id],
                    None => self.master.slaves().map(|s| s.id).collect(),
                };
                if ids.is_empty() {
                    return Err(CommandError::Unavailable("no slave is linked".into()));
                }
                for id in ids {
                    self.master.request_query(id, code).map_err(|e| match e {
                        RequestError::Busy(_) => CommandError::Busy(e.to_string()),
                        _ => CommandError::Invalid(e.to_string()),
                    })?;
                }
                return Ok(self.settings.clone());
            }
            Command::StartCharging { slave } | Command::StopCharging { slave } => {
                let start = matches!(cmd, Command::StartCharging { .. });
                let ids: Vec<TwcId> = match slave {
                    Some(id) => vec![id],
                    None => self.master.slaves().map(|s| s.id).collect(),
                };
                if ids.is_empty() {
                    return Err(CommandError::Unavailable("no slave is linked".into()));
                }
                for id in ids {
                    let r = if start {
                        self.master.request_start(id)
                    } else {
                        self.master.request_stop(id)
                    };
                    r.map_err(|e| match e {
                        RequestError::Busy(_) => CommandError::Busy(e.to_string()),
                        _ => CommandError::Unavailable(e.to_string()),
                    })?;
                }
                return Ok(self.settings.clone());
            }
            Command::SetVehicles(v) => {
                self.vehicles = v;
                self.note_vehicles();
                self.recompute(now);
                return Ok(self.settings.clone());
            }
            Command::SetPrices(prices) => {
                if let Some(p) = &prices {
                    p.validate().map_err(|e| {
                        CommandError::Invalid(format!("prices from {:?}: {e}", p.source))
                    })?;
                }
                self.outlook.prices = prices;
                self.plans.outlook_gen += 1;
                self.recompute(now);
                return Ok(self.settings.clone());
            }
            Command::SetForecast(forecast) => {
                if let Some(f) = &forecast {
                    f.validate().map_err(|e| {
                        CommandError::Invalid(format!("forecast from {:?}: {e}", f.source))
                    })?;
                }
                self.outlook.forecast = forecast;
                self.plans.outlook_gen += 1;
                self.recompute(now);
                return Ok(self.settings.clone());
            }
            Command::ReportLoadPoint(r) => {
                self.report_load_point(*r, now)?;
                return Ok(self.settings.clone());
            }
            Command::RemoveLoadPoint { name } => {
                if self.load_points.remove(&name).is_none() {
                    return Err(CommandError::Invalid(format!(
                        "no load point named {name:?}"
                    )));
                }
                self.recompute(now);
                return Ok(self.settings.clone());
            }
            Command::SetExternalLimit {
                source,
                slave,
                amps,
            } => {
                if source.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "external limit source must not be empty".into(),
                    ));
                }
                match amps {
                    Some(a) if !(a.is_finite() && a >= 0.0) => {
                        return Err(CommandError::Invalid(format!(
                            "external limit amps must be a number ≥ 0, got {a}"
                        )));
                    }
                    Some(a) => {
                        self.external_limits
                            .insert((source, slave), CentiAmps::from_f64(a));
                    }
                    None => {
                        self.external_limits.remove(&(source, slave));
                    }
                }
                self.recompute(now);
                return Ok(self.settings.clone());
            }
            Command::ReplaceSettings(s) => next = *s,
            Command::PatchSettings(patch) => next = patch_settings(&self.settings, patch)?,
            Command::SetSchedule(s) => next.schedule = *s,
            Command::SetOffset { name, offset } => {
                if name.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "offset name must not be empty".into(),
                    ));
                }
                match offset {
                    Some(o) => {
                        next.consumption_offsets.insert(name, o);
                    }
                    None => {
                        if next.consumption_offsets.remove(&name).is_none() {
                            return Err(CommandError::Invalid(format!(
                                "there is no consumption offset named {name:?}"
                            )));
                        }
                    }
                }
            }
            Command::SetGridLimit(l) => next.max_grid_import = l,
            Command::SetFlexAmps(a) => next.flex_amps = a,
            Command::SetVinLists { allow, deny } => {
                if let Some(a) = allow {
                    next.vin_allow = a;
                }
                if let Some(d) = deny {
                    next.vin_deny = d;
                }
            }
            Command::SetPriority { key, priority } => {
                if key.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "priority key must be a VIN or a TWCID".into(),
                    ));
                }
                match priority {
                    Some(p) => {
                        next.priorities.insert(key, p);
                    }
                    None => {
                        next.priorities.remove(&key);
                    }
                }
            }
            Command::SetHome(h) => next.home = h,
            Command::SetSetting { key, value } => {
                if key.trim().is_empty() {
                    return Err(CommandError::Invalid(
                        "setting key must not be empty".into(),
                    ));
                }
                match value {
                    Some(v) => {
                        next.extra.insert(key, v);
                    }
                    None => {
                        next.extra.remove(&key);
                    }
                }
            }
            Command::SetPlan(plan) => {
                plan.validate().map_err(CommandError::Invalid)?;
                match next.plans.iter_mut().find(|p| p.id == plan.id) {
                    Some(p) => *p = *plan,
                    None => next.plans.push(*plan),
                }
            }
            Command::DeletePlan(id) => {
                let before = next.plans.len();
                next.plans.retain(|p| p.id != id);
                if next.plans.len() == before {
                    return Err(CommandError::Invalid(format!("no plan with id {id:?}")));
                }
            }
            Command::Shutdown => unreachable!("handled by the loop"),
        }
        validate_settings(&next, wiring, &self.cfg.policy)?;
        if next.charge_now != self.settings.charge_now
            && let Some(cn) = next.charge_now
        {
            validate_charge_now(&cn, self.wall(now).timestamp())?;
        }
        if next != self.settings {
            self.settings = next;
            self.save_settings();
        }
        self.recompute(now);
        Ok(self.settings.clone())
    }
}

/// Longest Charge Now (a year): longer is what the non-scheduled action is for.
pub(super) const MAX_CHARGE_NOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// A Charge Now set through any surface (a whole-settings replace or patch included): amps
/// above 0 and an end time from now to a year ahead.
pub(super) fn validate_charge_now(cn: &ChargeNow, now_unix: i64) -> Result<(), CommandError> {
    if !(cn.amps.is_finite() && cn.amps > 0.0) {
        return Err(CommandError::Invalid(format!(
            "charge_now.amps must be greater than 0, got {}",
            cn.amps
        )));
    }
    let max = now_unix.saturating_add(MAX_CHARGE_NOW.as_secs() as i64);
    if cn.until_unix > max {
        return Err(CommandError::Invalid(format!(
            "charge_now.until_unix = {} is more than a year ahead (now {now_unix}); use the non-scheduled action for \"always\"",
            cn.until_unix
        )));
    }
    Ok(())
}

/// Apply a JSON merge patch to the settings; every top-level key must be a settings key. What
/// [`Command::PatchSettings`] does (surfaces may call it first for an early error).
pub fn patch_settings(
    current: &Settings,
    patch: serde_json::Value,
) -> Result<Settings, CommandError> {
    let serde_json::Value::Object(p) = patch else {
        return Err(CommandError::Invalid(
            "settings patch must be a JSON object".into(),
        ));
    };
    let mut base = serde_json::to_value(current)
        .map_err(|e| CommandError::Invalid(format!("settings: {e}")))?;
    let obj = base
        .as_object_mut()
        .ok_or_else(|| CommandError::Invalid("settings are not an object".into()))?;
    for (k, v) in p {
        let Some(slot) = obj.get_mut(&k) else {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            return Err(CommandError::Invalid(format!(
                "settings: unknown key {k:?}; expected one of: {}",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        merge_patch(slot, &v);
    }
    serde_json::from_value(base).map_err(|e| CommandError::Invalid(format!("settings: {e}")))
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}
