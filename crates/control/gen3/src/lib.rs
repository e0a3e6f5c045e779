#![doc = include_str!("../README.md")]

pub mod api;
pub mod meter;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};
use twc_core::engine::{Command, EngineHandle};
use twc_core::model::{CentiAmps, LoadPointMeasurement, LoadPointReport};
use twc_core::plugin::{BuildError, ControlPlugin, ControlSurface, PluginConfig, PluginError};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};

/// The registry name: the section is `[control.gen3]`, the bin's feature `control-gen3`.
pub const NAME: &str = "gen3";
const SECTION: &str = "control.gen3";

/// How a unit is controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Monitored only: its draw counts in the budgets (at its maximum when unknown).
    None,
    /// Through the emulated meter on `[control.gen3.meter] port`.
    #[default]
    Meter,
    /// Through the car at it (`vin`), with the vehicle API (`[vehicle.teslaapi]`): start,
    /// stop and charging amps. The unit itself gives the car up to `max_amps`.
    Car,
}

/// One Gen3, `[[control.gen3.units]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    /// A short name (`garage`): the load point is `gen3.<name>`.
    pub name: String,
    /// Its local API, `http://<address>` (no auth).
    pub url: String,
    /// The current its circuit was commissioned for (its rotary/app setting), A per phase.
    pub max_amps: f64,
    /// The least worth giving it (a car stops below 6 A).
    #[serde(default = "default_min")]
    pub min_amps: f64,
    /// `meter`, `car` or `none`.
    #[serde(default)]
    pub control: Control,
    /// With `control = "car"`: the VIN of the car that charges at it.
    #[serde(default)]
    pub vin: Option<String>,
    /// Poll interval for `/api/1/vitals`, seconds.
    #[serde(default = "default_interval")]
    pub interval_secs: f64,
    /// A measurement older than this is stale (the unit then counts at `max_amps`).
    #[serde(default = "default_stale")]
    pub stale_after_secs: f64,
    /// How long it may draw above what it was given before it is reported as not following.
    #[serde(default = "default_grace")]
    pub follow_grace_secs: f64,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_min() -> f64 {
    6.0
}
fn default_interval() -> f64 {
    5.0
}
fn default_stale() -> f64 {
    30.0
}
fn default_grace() -> f64 {
    30.0
}
fn default_baud() -> u32 {
    115_200
}
fn default_unit_id() -> u8 {
    1
}
fn default_volts() -> f64 {
    240.0
}
fn default_phases() -> u8 {
    1
}

/// `[control.gen3.meter]`: the emulated meter on a second RS-485 adapter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterConfig {
    /// The serial device wired to the Gen3s' meter terminals; empty = no meter.
    #[serde(default)]
    pub port: String,
    /// Baud rate (the Gen3 polls at 115200, 8N1).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The Modbus unit id the Gen3 asks for.
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    /// Volts per phase the meter's power registers are computed with.
    #[serde(default = "default_volts")]
    pub volts: f64,
    /// Phases the meter shows.
    #[serde(default = "default_phases")]
    pub phases: u8,
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            port: String::new(),
            baud: default_baud(),
            unit_id: default_unit_id(),
            volts: default_volts(),
            phases: default_phases(),
        }
    }
}

/// `[control.gen3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gen3Config {
    /// The units.
    #[serde(default)]
    pub units: Vec<UnitConfig>,
    /// The emulated meter.
    #[serde(default)]
    pub meter: MeterConfig,
}

impl Gen3Config {
    /// Every problem with the section, naming the key and the fix.
    pub fn check(&self) -> Result<(), BuildError> {
        let err = |m: String| Err(BuildError::new(SECTION, m));
        let mut names = std::collections::BTreeSet::new();
        for (i, u) in self.units.iter().enumerate() {
            let k = format!("units[{i}]");
            if u.name.trim().is_empty() || !names.insert(u.name.clone()) {
                return err(format!("{k}.name must be set and unique, got {:?}", u.name));
            }
            check_url(SECTION, &format!("{k}.url"), &u.url)?;
            if !(u.max_amps.is_finite() && u.max_amps > 0.0 && u.max_amps <= 80.0) {
                return err(format!(
                    "{k}.max_amps must be the unit's circuit setting, between 0 and 80 A, got {}",
                    u.max_amps
                ));
            }
            if !(u.min_amps.is_finite() && u.min_amps >= 0.0 && u.min_amps <= u.max_amps) {
                return err(format!(
                    "{k}.min_amps must be between 0 and max_amps ({}), got {}",
                    u.max_amps, u.min_amps
                ));
            }
            for (key, v) in [
                ("interval_secs", u.interval_secs),
                ("stale_after_secs", u.stale_after_secs),
                ("follow_grace_secs", u.follow_grace_secs),
            ] {
                if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
                    return err(format!("{k}.{key} must be between 0 and 3600 s, got {v}"));
                }
            }
            if u.stale_after_secs < u.interval_secs {
                return err(format!(
                    "{k}.stale_after_secs ({}) must be at least interval_secs ({})",
                    u.stale_after_secs, u.interval_secs
                ));
            }
            match (&u.control, &u.vin) {
                (Control::Car, None) => {
                    return err(format!(
                        "{k}.control = \"car\" needs {k}.vin, the 17-character VIN of the car \
                         that charges at it"
                    ));
                }
                (Control::Car, Some(v)) if v.len() != 17 => {
                    return err(format!("{k}.vin must be 17 characters, got {v:?}"));
                }
                (Control::Meter | Control::None, Some(_)) => {
                    return err(format!("{k}.vin is only used with control = \"car\""));
                }
                _ => {}
            }
            if u.control == Control::Meter && self.meter.port.trim().is_empty() {
                return err(format!(
                    "{k}.control = \"meter\" needs meter.port (the RS-485 adapter wired to the \
                     Gen3's meter terminals), or set control = \"none\" to only monitor it"
                ));
            }
        }
        if !(self.meter.volts.is_finite() && self.meter.volts > 50.0 && self.meter.volts < 500.0) {
            return err(format!(
                "meter.volts must be between 50 and 500, got {}",
                self.meter.volts
            ));
        }
        if !(1..=3).contains(&self.meter.phases) {
            return err(format!(
                "meter.phases must be 1, 2 or 3, got {}",
                self.meter.phases
            ));
        }
        if self.meter.baud == 0 {
            return err("meter.baud must be > 0 (the Gen3 uses 115200)".into());
        }
        Ok(())
    }
}

/// The plugin.
pub struct Gen3 {
    config: Gen3Config,
    clients: Vec<HttpClient>,
}

/// What a poll of one unit gives.
#[derive(Debug, Clone)]
pub struct Poll {
    /// Vitals.
    pub vitals: api::Vitals,
    /// Lifetime counters, version and Wi-Fi, when read (every minute).
    pub extra: serde_json::Value,
}

impl Gen3 {
    /// Build from a checked config.
    pub fn new(config: Gen3Config) -> Result<Self, BuildError> {
        config.check()?;
        let clients = config
            .units
            .iter()
            .map(|u| HttpClient::new(NAME, SECTION, &u.http))
            .collect::<Result<_, _>>()?;
        Ok(Gen3 { config, clients })
    }
}

/// Read `/api/1/vitals` from a unit.
pub async fn read_vitals(client: &HttpClient, url: &str) -> Result<api::Vitals, PluginError> {
    let body = client
        .get_bytes(&Request::get(join(url, "/api/1/vitals")))
        .await?;
    api::parse_vitals(&body)
}

/// Read `/lifetime`, `/version` and `/wifi_status` into one JSON object; a failure of one of
/// them leaves its key out.
pub async fn read_extra(client: &HttpClient, url: &str) -> serde_json::Value {
    let get = |p: &'static str| {
        let r = Request::get(join(url, p));
        async move { client.get_bytes(&r).await }
    };
    let mut o = serde_json::Map::new();
    if let Ok(l) = get("/api/1/lifetime")
        .await
        .and_then(|b| api::parse_lifetime(&b))
    {
        o.insert(
            "lifetime".into(),
            serde_json::json!({
                "energy_wh": l.energy_wh, "charge_starts": l.charge_starts,
                "contactor_cycles": l.contactor_cycles, "connector_cycles": l.connector_cycles,
                "alert_count": l.alert_count, "thermal_foldbacks": l.thermal_foldbacks,
                "charging_time_s": l.charging_time_s, "uptime_s": l.uptime_s,
            }),
        );
    }
    if let Ok(v) = get("/api/1/version")
        .await
        .and_then(|b| api::parse_version(&b))
    {
        o.insert("firmware".into(), serde_json::json!(v.firmware_version));
        o.insert("part_number".into(), serde_json::json!(v.part_number));
        o.insert("serial_number".into(), serde_json::json!(v.serial_number));
    }
    if let Ok(w) = get("/api/1/wifi_status")
        .await
        .and_then(|b| api::parse_wifi(&b))
    {
        o.insert(
            "wifi".into(),
            serde_json::json!({
                "ssid": w.wifi_ssid, "signal_pct": w.wifi_signal_strength, "rssi_dbm": w.wifi_rssi,
                "connected": w.wifi_connected, "internet": w.internet,
            }),
        );
    }
    serde_json::Value::Object(o)
}

/// The measurement the engine gets from vitals (and the extra counters).
pub fn measurement(v: &api::Vitals, extra: &serde_json::Value) -> LoadPointMeasurement {
    let mut d = serde_json::json!({
        "evse_state": v.evse_state,
        "state_name": api::state_name(v.evse_state),
        "wiring": v.wiring(),
        "phases": v.phases(),
        // An open contactor delivers nothing: what it measures then is noise (0.4 A idle).
        "power_w": if v.contactor_closed { v.power_w() } else { 0.0 },
        "vehicle_current_a": v.vehicle_current_a,
        "currents_a": [v.current_a, v.current_b, v.current_c],
        "voltages_v": [v.voltage_a, v.voltage_b, v.voltage_c],
        "grid_v": v.grid_v,
        "grid_hz": v.grid_hz,
        "session_energy_wh": v.session_energy_wh,
        "session_s": v.session_s,
        "temperatures_c": {"pcba": v.pcba_temp_c, "handle": v.handle_temp_c, "mcu": v.mcu_temp_c},
        "alerts": v.current_alerts,
        "contactor_closed": v.contactor_closed,
        "vehicle_connected": v.vehicle_connected,
        "uptime_s": v.uptime_s,
    });
    if let (Some(o), Some(e)) = (d.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    // The car's draw; below 1 A a unit with no car still shows noise (0.4 A idle).
    let state = api::load_point_state(v.evse_state);
    LoadPointMeasurement {
        draw: CentiAmps::from_f64(v.vehicle_current_a),
        state,
        details: d,
    }
}

/// Follows or not: a unit that draws more than it was given (plus 1.5 A) for longer than its
/// grace does not follow the meter.
#[derive(Debug, Default)]
pub struct FollowCheck {
    since: Option<Instant>,
}

impl FollowCheck {
    /// The problem to report, if any (`via_car`: controlled through the car).
    pub fn check(
        &mut self,
        draw: CentiAmps,
        given: CentiAmps,
        grace: Duration,
        now: Instant,
        via_car: bool,
    ) -> Option<String> {
        if draw.amps() <= given.amps() + 1.5 {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        (now - since >= grace).then(|| {
            if via_car {
                return format!(
                    "the car does not follow its commands: draws {draw}, given {given}; it \
                     counts at the unit's max_amps (check the vehicle API's last command)"
                );
            }
            format!(
                "does not follow the emulated meter: draws {draw}, given {given}; check that it \
                 was commissioned with an external meter on this port and that its firmware \
                 honours the meter while charging"
            )
        })
    }
}

fn report(u: &UnitConfig, m: Option<LoadPointMeasurement>, problem: Option<String>) -> Command {
    Command::ReportLoadPoint(Box::new(LoadPointReport {
        name: format!("{NAME}.{}", u.name),
        kind: NAME.into(),
        max: CentiAmps::from_f64(u.max_amps),
        min: CentiAmps::from_f64(u.min_amps),
        controllable: u.control != Control::None,
        stale_after_secs: u.stale_after_secs,
        measured: m,
        problem,
        via_car: (u.control == Control::Car).then(|| u.vin.clone()).flatten(),
    }))
}

/// Poll one unit forever, reporting to the engine.
pub async fn poll_unit(u: UnitConfig, client: HttpClient, engine: EngineHandle) {
    let name = format!("{NAME}.{}", u.name);
    let mut extra = serde_json::Value::Null;
    let mut extra_at: Option<Instant> = None;
    let mut follow = FollowCheck::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(u.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let cmd = match read_vitals(&client, &u.url).await {
            Ok(v) => {
                if extra_at.is_none_or(|t| now - t >= Duration::from_secs(60)) {
                    extra = read_extra(&client, &u.url).await;
                    extra_at = Some(now);
                }
                let m = measurement(&v, &extra);
                let st = engine.status();
                let given = st
                    .load_points
                    .iter()
                    .find(|l| l.name == name)
                    .map(|l| l.allocated)
                    .unwrap_or_default();
                // Through the car: what the car last accepted counts too (its amps change only
                // as often as the vehicle API's budget allows).
                let told = st
                    .vehicles
                    .iter()
                    .find(|v| u.control == Control::Car && u.vin.as_deref() == Some(&v.vin))
                    .and_then(|v| v.told_amps)
                    .map_or(CentiAmps::ZERO, |a| CentiAmps::from_amps(u16::from(a)));
                let given = if given > CentiAmps::ZERO {
                    given.max(told)
                } else {
                    given
                };
                let problem = (u.control != Control::None)
                    .then(|| {
                        follow.check(
                            m.draw,
                            given,
                            Duration::from_secs_f64(u.follow_grace_secs),
                            now,
                            u.control == Control::Car,
                        )
                    })
                    .flatten();
                if let Some(p) = &problem {
                    warn!(load_point = %name, "{p}");
                }
                report(&u, Some(m), problem)
            }
            Err(e) => {
                warn!(load_point = %name, error = %e, "Gen3 did not answer: it counts at its maximum");
                report(&u, None, Some(format!("not reachable: {e}")))
            }
        };
        if let Err(twc_core::engine::CommandError::Stopped) = engine.command(cmd).await {
            return;
        }
    }
}

/// The house load (A per phase) the meter shows for the engine's allocations: every Gen3 on
/// the port reads the same value, so the smallest allocation of the meter-controlled units
/// rules (and the whole circuit, which stops them, when any has none).
pub fn meter_house(units: &[UnitConfig], status: &twc_core::model::Status) -> f64 {
    let given: BTreeMap<&str, CentiAmps> = status
        .load_points
        .iter()
        .map(|l| (l.name.as_str(), l.allocated))
        .collect();
    let metered: Vec<&UnitConfig> = units
        .iter()
        .filter(|u| u.control == Control::Meter)
        .collect();
    let circuit = metered.iter().map(|u| u.max_amps).fold(0.0, f64::max);
    let target = metered
        .iter()
        .map(|u| {
            given
                .get(format!("{NAME}.{}", u.name).as_str())
                .map_or(0.0, |a| a.amps())
        })
        .fold(f64::INFINITY, f64::min);
    let target = if target.is_finite() { target } else { 0.0 };
    meter::house_amps(circuit, target)
}

/// Serve the meter on its port, re-opening it after a failure.
fn spawn_meter(cfg: MeterConfig, meter: meter::Meter) {
    std::thread::Builder::new()
        .name("twc-gen3-meter".into())
        .spawn(move || {
            loop {
                match meter::open_port(&cfg.port, cfg.baud) {
                    Ok(mut p) => {
                        info!(port = %cfg.port, "Gen3 emulated meter serving");
                        if let Err(e) = meter.serve(&mut p, cfg.unit_id) {
                            warn!(port = %cfg.port, error = %e, "Gen3 emulated meter port failed; re-opening");
                        } else {
                            return;
                        }
                    }
                    Err(e) => warn!(port = %cfg.port, error = %e, "cannot open the Gen3 meter port; retrying"),
                }
                std::thread::sleep(Duration::from_secs(5));
            }
        })
        .ok();
}

#[twc_core::async_trait]
impl ControlSurface for Gen3 {
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        let Gen3 { config, clients } = *self;
        let units = Arc::new(config.units.clone());
        let uses_meter = units.iter().any(|u| u.control == Control::Meter);
        let meter = meter::Meter::new();
        if uses_meter {
            // Until the engine gives a unit current, the meter shows the whole circuit: stop.
            let st = engine.status();
            meter.set_house(
                meter_house(&units, &st),
                config.meter.phases,
                config.meter.volts,
            );
            spawn_meter(config.meter.clone(), meter.clone());
        }
        for (u, c) in config.units.iter().cloned().zip(clients) {
            twc_core::plugin::spawn(poll_unit(u, c, engine.clone()));
        }
        let mut rx = engine.watch_status();
        while rx.changed().await.is_ok() {
            if uses_meter {
                let st = rx.borrow_and_update().clone();
                meter.set_house(
                    meter_house(&units, &st),
                    config.meter.phases,
                    config.meter.volts,
                );
            }
        }
        // The engine has stopped: show the whole circuit so the Gen3s stop.
        if uses_meter {
            meter.set_house(
                meter_house(&units, &Default::default()),
                config.meter.phases,
                config.meter.volts,
            );
        }
        meter.stop();
        Ok(())
    }
}

/// Build from the section.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn ControlSurface>, BuildError> {
    Ok(Box::new(Gen3::new(cfg.parse()?)?))
}

inventory::submit! {
    ControlPlugin {
        name: NAME,
        summary: "Tesla Wall Connector Gen3: monitoring over its local API, control through an emulated meter",
        example: include_str!("../example.toml"),
        build,
    }
}
