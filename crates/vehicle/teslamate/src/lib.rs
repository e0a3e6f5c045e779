#![doc = include_str!("../README.md")]

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;
use twc_core::plugin::{
    BuildError, ChargeState, ErrorKind, PluginConfig, PluginError, Secret, Vehicle, VehicleApi,
    VehiclePlugin,
};
use twc_plugin_kit::mqtt_link::{LinkSettings, Protocol, Subscription};

/// Registry name.
pub const NAME: &str = "teslamate";

/// The per-car topics read (`<prefix>/cars/<id>/<field>`), TWCManager's set plus `plugged_in`
/// and `geofence`.
pub const FIELDS: &[&str] = &[
    "battery_level",
    "charge_limit_soc",
    "display_name",
    "latitude",
    "longitude",
    "state",
    "plugged_in",
    "geofence",
    "time_to_full_charge",
    "charger_pilot_current",
    "charger_actual_current",
    "charger_phases",
    "charger_voltage",
    "charging_state",
];

/// The `[vehicle.teslamate]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeslaMateConfig {
    /// The broker TeslaMate publishes to.
    pub url: String,
    /// TeslaMate's `MQTT_NAMESPACE` prefix.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// TeslaMate car id → VIN (TeslaMate's topics carry no VIN; the TWCs match by VIN).
    pub cars: BTreeMap<String, String>,
    /// The TeslaMate geofence name that is home.
    #[serde(default)]
    pub home_geofence: Option<String>,
    /// Values older than this are stale (TWCManager: 1 h).
    #[serde(default = "default_stale")]
    pub stale_after_secs: u64,
    /// Broker user.
    #[serde(default)]
    pub username: Option<String>,
    /// Broker password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// CA file for `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `auto`, `v4` or `v5`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Client id (default: random).
    #[serde(default)]
    pub client_id: Option<String>,
}

fn default_prefix() -> String {
    "teslamate".into()
}
fn default_stale() -> u64 {
    3600
}

/// A car's state from its latest payloads (field → payload), pure. Unknown or unreadable
/// values stay unknown (never 0 %); `charger_actual_current` may be a float ("2.05").
pub fn charge_state_from(
    values: &HashMap<String, String>,
    home_geofence: Option<&str>,
) -> ChargeState {
    let num = |k: &str| {
        values
            .get(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|x| x.is_finite())
    };
    let text = |k: &str| {
        values
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let plugged = values.get("plugged_in").and_then(|v| match v.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    });
    let charging_state = text("charging_state");
    ChargeState {
        soc_pct: num("battery_level"),
        limit_pct: num("charge_limit_soc"),
        charging: charging_state.as_deref().map(|s| s == "Charging"),
        plugged_in: plugged.or_else(|| charging_state.as_deref().map(|s| s != "Disconnected")),
        at_home: home_geofence.and_then(|h| values.get("geofence").map(|g| g.trim() == h)),
        name: text("display_name"),
        state: text("state"),
        charging_state,
        latitude: num("latitude"),
        longitude: num("longitude"),
        actual_amps: num("charger_actual_current"),
        // TeslaMate publishes no `charge_current_request_max` topic.
        max_amps: None,
        age_secs: None,
    }
}

/// The running plugin: one subscription to every car's fields.
pub struct TeslaMate {
    sub: Subscription,
    cfg: TeslaMateConfig,
}

impl TeslaMate {
    fn topic(&self, id: &str, field: &str) -> String {
        format!("{}/cars/{id}/{field}", self.cfg.topic_prefix)
    }
    fn car_id(&self, vin: &str) -> Option<&str> {
        self.cfg
            .cars
            .iter()
            .find(|(_, v)| v.eq_ignore_ascii_case(vin))
            .map(|(k, _)| k.as_str())
    }
}

#[twc_core::async_trait]
impl VehicleApi for TeslaMate {
    fn name(&self) -> &str {
        NAME
    }

    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        self.sub.ensure_started();
        Ok(self
            .cfg
            .cars
            .iter()
            .map(|(id, vin)| Vehicle {
                id: id.clone(),
                vin: vin.clone(),
                name: None,
            })
            .collect())
    }

    async fn charge_state(&self, vin: &str) -> Result<ChargeState, PluginError> {
        self.sub.ensure_started();
        let Some(id) = self.car_id(vin) else {
            return Err(PluginError::new(
                ErrorKind::Config,
                NAME,
                format!("VIN {vin} is not in [vehicle.teslamate] cars"),
            ));
        };
        let mut values = HashMap::new();
        // The oldest value that counts: a retained copy is of unknown age.
        let mut oldest: Option<f64> = None;
        let mut retained_only = false;
        for f in FIELDS {
            if let Some(m) = self.sub.latest(&self.topic(id, f)) {
                values.insert(
                    f.to_string(),
                    String::from_utf8_lossy(&m.payload).into_owned(),
                );
                if matches!(*f, "battery_level" | "charge_limit_soc") {
                    if m.retained {
                        retained_only = true;
                    } else {
                        let age = m.arrived.elapsed().as_secs_f64();
                        oldest = Some(oldest.map_or(age, |o| o.max(age)));
                    }
                }
            }
        }
        if values.is_empty() {
            let why = match self.sub.last_error() {
                Some(e) if !self.sub.is_connected() => format!("broker unreachable: {e}"),
                _ => format!("nothing on {} yet", self.topic(id, "#")),
            };
            return Err(PluginError::new(ErrorKind::Transient, NAME, why));
        }
        let mut cs = charge_state_from(&values, self.cfg.home_geofence.as_deref());
        // Retained values (sent at subscribe time) are shown but count as stale until a live
        // one arrives; live values older than stale_after_secs are stale too.
        cs.age_secs = match (oldest, retained_only) {
            (_, true) => Some(f64::INFINITY),
            (Some(a), false) => Some(a),
            (None, false) => None,
        };
        if cs
            .age_secs
            .is_some_and(|a| a > Duration::from_secs(self.cfg.stale_after_secs).as_secs_f64())
            && cs.state.is_none()
        {
            cs.state = Some("stale".into());
        }
        Ok(cs)
    }
}

/// Build from `[vehicle.teslamate]`. Connects on the first read.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn VehicleApi>, BuildError> {
    Ok(Box::new(build_teslamate(cfg)?))
}

/// Build the concrete type (tests).
pub fn build_teslamate(cfg: &PluginConfig) -> Result<TeslaMate, BuildError> {
    let c: TeslaMateConfig = cfg.parse()?;
    let err = |m: String| BuildError::new(&cfg.section, m);
    if c.cars.is_empty() {
        return Err(err("cars must map TeslaMate car ids to VINs, e.g. cars = { \"1\" = \"5YJ3E1EA7KF000001\" }".into()));
    }
    for (id, vin) in &c.cars {
        if id.is_empty() || id.contains(['+', '#', '/']) {
            return Err(err(format!(
                "cars: {id:?} is not a TeslaMate car id (a number such as \"1\")"
            )));
        }
        if vin.len() != 17 {
            return Err(err(format!(
                "cars.\"{id}\" = {vin:?}: a VIN has 17 characters"
            )));
        }
    }
    if c.topic_prefix.is_empty() || c.topic_prefix.contains(['+', '#']) {
        return Err(err(format!(
            "topic_prefix = {:?}: expected TeslaMate's namespace, such as \"teslamate\"",
            c.topic_prefix
        )));
    }
    if c.stale_after_secs == 0 {
        return Err(err("stale_after_secs must be at least 1".into()));
    }
    let client_id = c
        .client_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("twcmanager-vehicle-{NAME}-{:08x}", rand::random::<u32>()));
    let mut s = LinkSettings::new(c.url.clone(), client_id);
    s.username = c.username.clone().filter(|u| !u.is_empty());
    s.password = c.password.clone().filter(|p| !p.is_empty());
    s.ca_file = c.ca_file.clone().filter(|f| !f.as_os_str().is_empty());
    s.protocol = Protocol::parse(&cfg.section, c.protocol.as_deref().unwrap_or("auto"))?;
    let prefix = c.topic_prefix.as_str();
    s.subscriptions = c
        .cars
        .keys()
        .flat_map(|id| {
            FIELDS
                .iter()
                .map(move |f| format!("{prefix}/cars/{id}/{f}"))
        })
        .collect();
    let sub = Subscription::new(&cfg.section, &cfg.section, s)?;
    Ok(TeslaMate { sub, cfg: c })
}

inventory::submit! {
    VehiclePlugin {
        name: NAME,
        summary: "TeslaMate's MQTT telemetry: state of charge, limit, location, charger (read-only)",
        example: include_str!("../example.toml"),
        build,
    }
}
