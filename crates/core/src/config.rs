//! Core's own configuration sections — `[master]`, `[wiring]`, `[site]`, `[engine]`,
//! `[settings]`, `[plans]` (and, through [`crate::policy::PolicyConfig::from_sections`], `[policy]`,
//! `[green]`, `[grid]`) — read from the merged configuration and validated here, where the
//! settings they fill are defined. Every problem is reported at once, naming the key.

use crate::engine::EngineConfig;
use crate::master::MasterConfig;
use crate::model::CentiAmps;
use crate::protocol::TwcId;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// Sections core reads itself; every other top-level section must be a plugin kind.
pub const CORE_SECTIONS: &[&str] = &[
    "master", "wiring", "site", "engine", "settings", "policy", "green", "grid", "vehicles",
    "plans",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterSection {
    twcid: String,
    sign: String,
    heartbeat_interval_ms: u64,
    frame_gap_ms: u64,
    slave_timeout_secs: u64,
    kwh_interval_secs: u64,
    link_ready_bursts: bool,
    max_slaves: usize,
    foreign_master_hold_secs: u64,
    query_vin: bool,
    follow_grace_secs: u64,
    escalate_stop_secs: u64,
    max_pending_commands: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WiringSection {
    max_amps_all_twcs: f64,
    max_amps_per_twc: f64,
    min_amps_per_twc: f64,
    offer_step_amps: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    voltage: f64,
    phases: u8,
    consumption_includes_chargers: bool,
    #[serde(default)]
    sources: crate::combine::SourcesConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSection {
    tick_ms: u64,
    slave_status_interval_secs: u64,
    shutdown_timeout_secs: u64,
    sink_queue_capacity: usize,
    sink_spill_dir: String,
}

/// `[plans]`: how the charge planner weighs the solar forecast.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlansSection {
    solar_confidence: f64,
}

/// `[settings]`: where runtime settings live and their initial values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsSection {
    /// Settings file (runtime changes from the UI and APIs).
    pub path: String,
    /// Initial non-scheduled action.
    pub non_scheduled_action: String,
    /// Initial non-scheduled amps.
    pub non_scheduled_amps: f64,
    /// The home location (`home = { lat = …, lon = … }`), for sunrise and sunset: used while
    /// the saved settings have none (the UI and the API set it too).
    #[serde(default)]
    pub home: Option<crate::model::HomeLocation>,
}

/// Core's sections, resolved.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Engine settings (master, wiring, site, engine, policy).
    pub engine: EngineConfig,
    /// `[settings]`.
    pub settings: SettingsSection,
    /// Events each logging sink holds in memory before spilling to disk.
    pub sink_queue_capacity: usize,
    /// Where logging sinks spill events they cannot write yet.
    pub sink_spill_dir: String,
}

impl CoreConfig {
    /// Read and validate core's sections of the merged configuration `root`. On error, every
    /// problem found (plugin sections are not looked at).
    pub fn from_sections(root: &Value) -> Result<CoreConfig, Vec<String>> {
        let mut errors = Vec::new();
        let master: Option<MasterSection> = section(root, "master", &mut errors);
        let wiring: Option<WiringSection> = section(root, "wiring", &mut errors);
        let site: Option<SiteSection> = section(root, "site", &mut errors);
        let eng: Option<EngineSection> = section(root, "engine", &mut errors);
        let settings: Option<SettingsSection> = section(root, "settings", &mut errors);
        let plans: Option<PlansSection> = section(root, "plans", &mut errors);

        let mut engine = EngineConfig::default();
        if let Some(m) = &master {
            let mut mc = MasterConfig::default();
            if !m.twcid.is_empty() {
                match m.twcid.parse::<TwcId>() {
                    Ok(id) if id.0 != [0, 0] && id.0 != [0xFF, 0xFF] => mc.id = Some(id),
                    Ok(_) => {
                        errors.push("[master] twcid: 0000 and FFFF are not valid TWCIDs".into())
                    }
                    Err(e) => errors.push(format!("[master] twcid: {e}, or \"\" for a random one")),
                }
            }
            if !m.sign.is_empty() {
                match u8::from_str_radix(&m.sign, 16) {
                    Ok(s) if m.sign.len() == 2 => mc.sign = Some(s),
                    _ => errors.push(format!(
                        "[master] sign = {:?}: expected 2 hex digits such as \"77\", or \"\" for a random one",
                        m.sign
                    )),
                }
            }
            if !(200..=5000).contains(&m.heartbeat_interval_ms) {
                errors.push(format!(
                    "[master] heartbeat_interval_ms = {}: expected 200..=5000 (slaves stop a car after ~30 s without heartbeats)",
                    m.heartbeat_interval_ms
                ));
            }
            if !(20..=1000).contains(&m.frame_gap_ms) {
                errors.push(format!(
                    "[master] frame_gap_ms = {}: expected 20..=1000",
                    m.frame_gap_ms
                ));
            }
            if !(5..=120).contains(&m.slave_timeout_secs) {
                errors.push(format!(
                    "[master] slave_timeout_secs = {}: expected 5..=120",
                    m.slave_timeout_secs
                ));
            }
            if !(1..=3).contains(&m.max_slaves) {
                errors.push(format!(
                    "[master] max_slaves = {}: expected 1..=3 (the protocol allows three slaves per master)",
                    m.max_slaves
                ));
            }
            mc.heartbeat_interval = Duration::from_millis(m.heartbeat_interval_ms);
            mc.frame_gap = Duration::from_millis(m.frame_gap_ms);
            mc.slave_timeout = Duration::from_secs(m.slave_timeout_secs);
            mc.kwh_interval = Duration::from_secs(m.kwh_interval_secs.max(10));
            mc.link_ready_bursts = m.link_ready_bursts;
            mc.max_slaves = m.max_slaves;
            mc.foreign_master_hold = Duration::from_secs(m.foreign_master_hold_secs);
            mc.query_vin = m.query_vin;
            if !(1..=60).contains(&m.follow_grace_secs) {
                errors.push(format!(
                    "[master] follow_grace_secs = {}: expected 1..=60",
                    m.follow_grace_secs
                ));
            }
            if m.escalate_stop_secs != 0 && m.escalate_stop_secs < m.follow_grace_secs {
                errors.push(format!(
                    "[master] escalate_stop_secs = {}: expected 0 (never) or at least follow_grace_secs ({})",
                    m.escalate_stop_secs, m.follow_grace_secs
                ));
            }
            if !(1..=256).contains(&m.max_pending_commands) {
                errors.push(format!(
                    "[master] max_pending_commands = {}: expected 1..=256",
                    m.max_pending_commands
                ));
            }
            mc.follow_grace = Duration::from_secs(m.follow_grace_secs);
            mc.escalate_stop_after =
                (m.escalate_stop_secs > 0).then(|| Duration::from_secs(m.escalate_stop_secs));
            mc.max_pending_commands = m.max_pending_commands;
            engine.master = mc;
        }
        if let Some(w) = &wiring {
            engine.master.wiring_max_all = amps(
                &mut errors,
                "[wiring] max_amps_all_twcs",
                w.max_amps_all_twcs,
                240.0,
            );
            engine.master.wiring_max_per_twc = amps(
                &mut errors,
                "[wiring] max_amps_per_twc",
                w.max_amps_per_twc,
                80.0,
            );
            engine.min_amps_per_twc = amps(
                &mut errors,
                "[wiring] min_amps_per_twc",
                w.min_amps_per_twc,
                80.0,
            );
            if !(0.01..=1.0).contains(&w.offer_step_amps) || !w.offer_step_amps.is_finite() {
                errors.push(format!(
                    "[wiring] offer_step_amps = {}: expected 0.01..=1 (the protocol's centiamps up to whole amps)",
                    w.offer_step_amps
                ));
            } else {
                engine.master.offer_step =
                    CentiAmps(((w.offer_step_amps * 100.0).round() as u16).max(1));
            }
            if w.min_amps_per_twc > w.max_amps_per_twc {
                errors.push(format!(
                    "[wiring] min_amps_per_twc = {} is above max_amps_per_twc = {}: no car could ever charge",
                    w.min_amps_per_twc, w.max_amps_per_twc
                ));
            }
        }
        if let Some(s) = &site {
            if !(100.0..=480.0).contains(&s.voltage) {
                errors.push(format!(
                    "[site] voltage = {}: expected volts per phase, 100..=480",
                    s.voltage
                ));
            }
            if s.phases != 1 && s.phases != 3 {
                errors.push(format!("[site] phases = {}: expected 1 or 3", s.phases));
            }
            engine.voltage = s.voltage;
            engine.phases = s.phases;
            engine.consumption_includes_chargers = s.consumption_includes_chargers;
            engine.sources = s.sources.clone();
        }
        if let Some(e) = &eng {
            if !(100..=10_000).contains(&e.tick_ms) {
                errors.push(format!(
                    "[engine] tick_ms = {}: expected 100..=10000",
                    e.tick_ms
                ));
            }
            engine.tick = Duration::from_millis(e.tick_ms);
            engine.slave_status_interval = Duration::from_secs(e.slave_status_interval_secs.max(1));
            engine.shutdown_timeout = Duration::from_secs(e.shutdown_timeout_secs);
            if e.sink_queue_capacity < 100 {
                errors.push(format!(
                    "[engine] sink_queue_capacity = {}: expected at least 100 events",
                    e.sink_queue_capacity
                ));
            }
        }
        if let Some(s) = &settings {
            if !matches!(s.non_scheduled_action.as_str(), "charge" | "stop" | "green") {
                errors.push(format!(
                    "[settings] non_scheduled_action = {:?}: expected \"charge\", \"stop\" or \"green\"",
                    s.non_scheduled_action
                ));
            }
            if let Some(w) = &wiring
                && (s.non_scheduled_amps > w.max_amps_all_twcs || s.non_scheduled_amps < 0.0)
            {
                errors.push(format!(
                        "[settings] non_scheduled_amps = {}: expected 0..={} (the wiring limit for all TWCs)",
                        s.non_scheduled_amps, w.max_amps_all_twcs
                    ));
            }
            if let Some(h) = &s.home
                && !h.is_valid()
            {
                errors.push(format!(
                    "[settings] home = {{ lat = {}, lon = {} }}: expected lat in -90..=90 and lon in -180..=180 (degrees, north and east positive)",
                    h.lat, h.lon
                ));
            }
        }

        if let Some(p) = &plans {
            match crate::planner::PlansConfig::new(p.solar_confidence) {
                Ok(c) => engine.plans = c,
                Err(e) => errors.push(format!(
                    "[plans] {e} (1 = count the forecast solar in full)"
                )),
            }
        }

        // [policy], [green], [grid]: the policy engine's own sections, validated by twc-core.
        match crate::policy::PolicyConfig::from_sections(root, engine.master.wiring_max_all.amps())
        {
            Ok(p) => engine.policy = p,
            Err(e) => errors.extend(e),
        }

        match (errors.is_empty(), eng, settings, site, plans) {
            (true, Some(eng), Some(settings), Some(_), Some(_)) => Ok(CoreConfig {
                engine,
                settings,
                sink_queue_capacity: eng.sink_queue_capacity,
                sink_spill_dir: eng.sink_spill_dir,
            }),
            _ => Err(errors),
        }
    }
}

/// `[site.sources]` alone, when `[site]` parses: checked against the enabled sources also when
/// other sections have problems, so that every problem is reported at once.
pub fn site_sources(root: &Value) -> Option<crate::combine::SourcesConfig> {
    section::<SiteSection>(root, "site", &mut Vec::new()).map(|s| s.sources)
}

fn section<T: for<'de> Deserialize<'de>>(
    root: &Value,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let v = root.get(name).cloned().unwrap_or(Value::Object(Map::new()));
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(format!("[{name}] {e}"));
            None
        }
    }
}

fn amps(errors: &mut Vec<String>, key: &str, v: f64, max: f64) -> CentiAmps {
    if !v.is_finite() || v < 0.0 || v > max {
        errors.push(format!(
            "{key} = {v}: expected a number of amps between 0 and {max}"
        ));
        CentiAmps::ZERO
    } else {
        CentiAmps::from_f64(v)
    }
}
