//! [`Status`] rendered as TWCManager's status keys: `<ident>/<camelKey>` = text value, where
//! `<ident>` is a slave's TWCID (4 hex digits), `all` or `config`. The MQTT and HASS status
//! publishers both render this list, so their names and values agree.

use twc_core::model::{CentiAmps, LoadPointStatus, SlaveStatus, Status};

/// One status value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatValue {
    /// `all`, `config` or a TWCID such as `7777`.
    pub ident: String,
    /// TWCManager's key, e.g. `ampsInUse`.
    pub key: &'static str,
    /// Its snake-case form for Home Assistant, e.g. `amps_in_use`.
    pub snake: &'static str,
    /// The value as text, e.g. `16.5`.
    pub value: String,
    /// Unit of measurement, if any.
    pub unit: Option<&'static str>,
}

impl CompatValue {
    /// Home Assistant device class for the unit (W/kW → power, Wh/kWh → energy, A → current,
    /// V → voltage).
    pub fn device_class(&self) -> Option<&'static str> {
        match self.unit? {
            "W" | "kW" => Some("power"),
            "Wh" | "kWh" | "MWh" => Some("energy"),
            "A" => Some("current"),
            "V" => Some("voltage"),
            "°C" => Some("temperature"),
            _ => None,
        }
    }
    /// Home Assistant state class: `total_increasing` for energy, `measurement` for other units.
    pub fn state_class(&self) -> Option<&'static str> {
        match self.device_class()? {
            "energy" => Some("total_increasing"),
            _ => Some("measurement"),
        }
    }
    /// The name TWCManager gives the entity: the snake key as capitalised words.
    pub fn title(&self) -> String {
        let words = self.snake.replace('_', " ");
        let mut c = words.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect(),
            None => String::new(),
        }
    }
}

/// Amps as Python prints a float (TWCManager's text): `16.0`, `16.5`, `16.25`.
pub fn fmt_amps(a: CentiAmps) -> String {
    fmt_float(a.amps())
}

/// A float as Python prints it, rounded to 2 decimals.
pub fn fmt_float(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        let s = format!("{r:.2}");
        s.trim_end_matches('0').to_string()
    }
}

/// A configured number: whole values without decimals (`6`), others as floats.
fn fmt_setting(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        fmt_float(v)
    }
}

fn push(
    out: &mut Vec<CompatValue>,
    ident: &str,
    key: &'static str,
    snake: &'static str,
    value: String,
    unit: Option<&'static str>,
) {
    out.push(CompatValue {
        ident: ident.to_string(),
        key,
        snake,
        value,
        unit,
    });
}

/// Every status value TWCManager publishes, from one snapshot, plus `config/nonScheduledAmpsMax`
/// and `config/nonScheduledAction` (state for Home Assistant's controls).
pub fn status_values(status: &Status) -> Vec<CompatValue> {
    let mut out = Vec::new();
    push(
        &mut out,
        "all",
        "totalAmpsInUse",
        "total_amps_in_use",
        fmt_amps(status.total_actual()),
        Some("A"),
    );
    push(
        &mut out,
        "all",
        "maxAmpsForSlaves",
        "max_amps_for_slaves",
        fmt_amps(status.policy.budget),
        Some("A"),
    );
    push(
        &mut out,
        "all",
        "currentPolicy",
        "current_policy",
        status.policy.name.clone(),
        None,
    );
    push(
        &mut out,
        "config",
        "minAmpsPerTWC",
        "min_amps_per_twc",
        fmt_setting(status.min_amps_per_twc.amps()),
        Some("A"),
    );
    push(
        &mut out,
        "config",
        "nonScheduledAmpsMax",
        "non_scheduled_amps_max",
        fmt_setting(status.settings.non_scheduled_amps),
        Some("A"),
    );
    push(
        &mut out,
        "config",
        "nonScheduledAction",
        "non_scheduled_action",
        status.settings.non_scheduled_action.clone(),
        None,
    );
    outlook_values(&mut out, status);
    for s in &status.slaves {
        slave_values(&mut out, s);
    }
    for l in &status.load_points {
        load_point_values(&mut out, l);
    }
    out
}

/// The values of an external load point (a Gen3, an OCPP charger) under its
/// [`LoadPointStatus::ident`] (`gen3_garage`): TWCManager's per-TWC keys where they mean the
/// same (`ampsMax` is its maximum, `ampsOffered` what the policy gives it), plus what such a
/// charger tells (`chargerState`, per-phase currents, session energy, temperatures, alerts,
/// firmware, Wi-Fi, `problem`). Values from a stale measurement read `unknown`, never 0.
pub fn load_point_values(out: &mut Vec<CompatValue>, l: &LoadPointStatus) {
    let id = l.ident();
    let v = l.view();
    let fresh = |x: Option<f64>, f: fn(f64) -> String| {
        x.filter(|_| !l.stale)
            .map_or_else(|| "unknown".to_string(), f)
    };
    let whole = |x: f64| format!("{}", x.round() as i64);
    push(out, &id, "ampsMax", "amps_max", fmt_amps(l.max), Some("A"));
    push(
        out,
        &id,
        "ampsInUse",
        "amps_in_use",
        fresh(l.draw.map(CentiAmps::amps), fmt_float),
        Some("A"),
    );
    push(
        out,
        &id,
        "ampsOffered",
        "amps_offered",
        fmt_amps(l.allocated),
        Some("A"),
    );
    let state = if l.stale {
        "unknown".to_string()
    } else {
        v.state_name
            .clone()
            .unwrap_or_else(|| l.state.as_str().to_string())
    };
    push(out, &id, "chargerState", "charger_state", state, None);
    push(
        out,
        &id,
        "carsCharging",
        "cars_charging",
        if l.charging() { "1" } else { "0" }.into(),
        None,
    );
    push(
        out,
        &id,
        "chargerLoadInW",
        "charger_load_w",
        fresh(l.power_w(), whole),
        Some("W"),
    );
    for (i, (vk, vs, ck, cs)) in [
        (
            "voltagePhaseA",
            "voltage_phase_a",
            "currentPhaseA",
            "current_phase_a",
        ),
        (
            "voltagePhaseB",
            "voltage_phase_b",
            "currentPhaseB",
            "current_phase_b",
        ),
        (
            "voltagePhaseC",
            "voltage_phase_c",
            "currentPhaseC",
            "current_phase_c",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if v.voltages_v[i].is_some() {
            push(out, &id, vk, vs, fresh(v.voltages_v[i], whole), Some("V"));
        }
        if v.currents_a[i].is_some() {
            push(
                out,
                &id,
                ck,
                cs,
                fresh(v.currents_a[i], fmt_float),
                Some("A"),
            );
        }
    }
    if v.session_energy_wh.is_some() {
        push(
            out,
            &id,
            "sessionEnergyWh",
            "session_energy_wh",
            fresh(v.session_energy_wh, whole),
            Some("Wh"),
        );
    }
    if let Some(wh) = v.lifetime_energy_wh {
        push(
            out,
            &id,
            "lifetimekWh",
            "lifetime_kwh",
            fmt_float(wh / 1000.0),
            Some("kWh"),
        );
    }
    for (name, t) in &v.temperatures_c {
        let (key, snake) = match name.as_str() {
            "handle" => ("handleTempC", "handle_temp_c"),
            "pcba" => ("pcbaTempC", "pcba_temp_c"),
            "mcu" => ("mcuTempC", "mcu_temp_c"),
            _ => continue,
        };
        push(out, &id, key, snake, fresh(Some(*t), fmt_float), Some("°C"));
    }
    push(out, &id, "alerts", "alerts", v.alerts.join(", "), None);
    if let Some(fw) = &v.firmware {
        push(out, &id, "firmware", "firmware", fw.clone(), None);
    }
    if v.wifi_signal_pct.is_some() {
        push(
            out,
            &id,
            "wifiSignalPct",
            "wifi_signal_pct",
            fresh(v.wifi_signal_pct, whole),
            Some("%"),
        );
    }
    push(
        out,
        &id,
        "problem",
        "problem",
        l.problem.clone().unwrap_or_default(),
        None,
    );
}

/// `all/gridPrice` (per kWh, in `all/gridPriceCurrency`) and `all/gridCo2` (g/kWh) while a
/// tariff plugin has given prices: the current slot's values, `unknown` when none covers now.
/// Nothing without a tariff (not TWCManager's keys; an addition).
fn outlook_values(out: &mut Vec<CompatValue>, status: &Status) {
    let Some(prices) = &status.outlook.prices else {
        return;
    };
    let now = status
        .updated_at
        .map_or_else(|| chrono::Utc::now().timestamp(), |t| t.timestamp());
    let slot = prices.at(now);
    let num = |v: Option<f64>, digits: usize| {
        v.map_or_else(
            || "unknown".to_string(),
            |x| {
                let s = format!("{x:.digits$}");
                let s = s.trim_end_matches('0');
                s.strip_suffix('.').unwrap_or(s).to_string()
            },
        )
    };
    push(
        out,
        "all",
        "gridPrice",
        "grid_price",
        num(slot.map(|s| s.price_per_kwh), 4),
        None,
    );
    push(
        out,
        "all",
        "gridPriceCurrency",
        "grid_price_currency",
        prices.currency.clone(),
        None,
    );
    push(
        out,
        "all",
        "gridCo2",
        "grid_co2",
        num(slot.and_then(|s| s.co2_g_per_kwh), 0),
        None,
    );
}

fn slave_values(out: &mut Vec<CompatValue>, s: &SlaveStatus) {
    let id = s.id.to_string();
    push(
        out,
        &id,
        "ampsMax",
        "amps_max",
        fmt_amps(s.reported_limit),
        Some("A"),
    );
    push(
        out,
        &id,
        "ampsInUse",
        "amps_in_use",
        fmt_amps(s.actual),
        Some("A"),
    );
    push(out, &id, "state", "state", s.state.to_string(), None);
    push(
        out,
        &id,
        "carsCharging",
        "cars_charging",
        if s.charging { "1" } else { "0" }.into(),
        None,
    );
    push(
        out,
        &id,
        "currentVehicleVIN",
        "current_vehicle_vin",
        s.vin.clone().unwrap_or_default(),
        None,
    );
    push(
        out,
        &id,
        "lastVehicleVIN",
        "last_vehicle_vin",
        s.last_vin.clone().unwrap_or_default(),
        None,
    );
    if let Some(kwh) = s.lifetime_kwh {
        push(
            out,
            &id,
            "lifetimekWh",
            "lifetime_kwh",
            kwh.to_string(),
            Some("kWh"),
        );
    }
    if s.lifetime_kwh.is_some() || s.volts != [0; 3] {
        for (key, snake, v) in [
            ("voltagePhaseA", "voltage_phase_a", s.volts[0]),
            ("voltagePhaseB", "voltage_phase_b", s.volts[1]),
            ("voltagePhaseC", "voltage_phase_c", s.volts[2]),
        ] {
            push(out, &id, key, snake, v.to_string(), Some("V"));
        }
    }
    // Only phases that report a real voltage count; without any, the load is unknown, not 0 W.
    let volts: u32 = s
        .volts
        .iter()
        .filter(|&&v| v >= 100)
        .map(|&v| u32::from(v))
        .sum();
    if volts > 0 {
        let w = (s.actual.amps() * f64::from(volts)).round() as i64;
        push(
            out,
            &id,
            "chargerLoadInW",
            "charger_load_w",
            w.to_string(),
            Some("W"),
        );
    }
    push(
        out,
        &id,
        "ampsOffered",
        "amps_offered",
        fmt_amps(s.offered),
        Some("A"),
    );
    push(
        out,
        &id,
        "ampsDesired",
        "amps_desired",
        fmt_amps(s.target),
        Some("A"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_floats() {
        assert_eq!(fmt_float(16.0), "16.0");
        assert_eq!(fmt_float(16.5), "16.5");
        assert_eq!(fmt_float(16.25), "16.25");
        assert_eq!(fmt_float(0.0), "0.0");
        assert_eq!(fmt_amps(CentiAmps(1234)), "12.34");
        assert_eq!(fmt_setting(6.0), "6");
        assert_eq!(fmt_setting(6.5), "6.5");
    }

    #[test]
    fn classes_follow_units() {
        let v = |unit| CompatValue {
            ident: "all".into(),
            key: "k",
            snake: "lifetime_kwh",
            value: "1".into(),
            unit,
        };
        assert_eq!(v(Some("kWh")).device_class(), Some("energy"));
        assert_eq!(v(Some("kWh")).state_class(), Some("total_increasing"));
        assert_eq!(v(Some("A")).state_class(), Some("measurement"));
        assert_eq!(v(None).device_class(), None);
        assert_eq!(v(None).title(), "Lifetime kwh");
    }
}
