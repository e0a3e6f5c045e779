#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};
use twc_core::model::Status;
use twc_core::plugin::{
    BuildError, ErrorKind, PluginConfig, PluginError, Secret, StatusPlugin, StatusPublisher,
};
use twc_plugin_kit::compat::{CompatValue, status_values};
use twc_plugin_kit::mqtt_link::{
    Link, LinkEvent, LinkSettings, Prepared, Protocol, WeakLink, Will,
};

mod load_point;

const PLUGIN: &str = "mqtt";

/// `[status.mqtt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttStatusConfig {
    /// Broker: `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: String,
    /// Broker user name (empty = none).
    pub username: String,
    /// Broker password.
    pub password: Secret,
    /// CA certificates (PEM) for `mqtts://`; empty = the system's bundle.
    pub ca_file: String,
    /// `"auto"` (v5, falling back to 3.1.1), `"5"` or `"3.1.1"`.
    pub protocol: String,
    /// Client id; empty = `twcmanager-status-<topic_prefix>`.
    pub client_id: String,
    /// Keep-alive, seconds.
    pub keep_alive_secs: u64,
    /// First level of every topic (TWCManager's `topicPrefix`).
    pub topic_prefix: String,
    /// Publish a topic at most once per this many seconds; a value that changes inside the window
    /// is published when the window ends (0 = no limit).
    pub rate_limit_secs: u64,
    /// Publish the whole status as JSON on `<topic_prefix>/status`.
    pub json: bool,
    /// Publish Home Assistant MQTT discovery configs.
    pub homeassistant_discovery: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Device name prefix (TWCManager's `deviceNamePrefix`): devices are `<prefix> <TWCID>` and
    /// `<prefix> site`.
    pub device_name_prefix: String,
    /// Also announce controls (charge-now buttons, non-scheduled amps and action, start/stop per
    /// TWC). They publish to `<topic_prefix>/control/…`, served by `[control.mqtt]` with the
    /// same prefix.
    pub discovery_controls: bool,
    /// Charge-now button: seconds to charge.
    pub charge_now_secs: u64,
    /// Charge-now button: amps for the site; 0 = the wiring limit for all TWCs.
    pub charge_now_amps: f64,
}

impl Default for MqttStatusConfig {
    fn default() -> Self {
        MqttStatusConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            username: String::new(),
            password: Secret::default(),
            ca_file: String::new(),
            protocol: "auto".into(),
            client_id: String::new(),
            keep_alive_secs: 30,
            topic_prefix: "TWC".into(),
            rate_limit_secs: 60,
            json: true,
            homeassistant_discovery: true,
            discovery_prefix: "homeassistant".into(),
            device_name_prefix: "TWC".into(),
            discovery_controls: true,
            charge_now_secs: 3600,
            charge_now_amps: 0.0,
        }
    }
}

/// One retained message to keep on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// True when the rate limit applies (status values); discovery configs are not limited.
    pub limited: bool,
}

/// `<topic_prefix>/availability`: `online` while connected, `offline` (the will) otherwise.
pub fn availability_topic(prefix: &str) -> String {
    format!("{prefix}/availability")
}

fn node_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn site_device(cfg: &MqttStatusConfig) -> Value {
    json!({
        "identifiers": [format!("twcmanager_{}_all", cfg.topic_prefix)],
        "manufacturer": "twcmanager",
        "model": "TWC Gen2 load-sharing master",
        "name": format!("{} site", cfg.device_name_prefix),
    })
}

fn twc_device(cfg: &MqttStatusConfig, ident: &str, firmware: Option<&str>) -> Value {
    let mut d = json!({
        "identifiers": [format!("twcmanager_{}_{ident}", cfg.topic_prefix)],
        "manufacturer": "Tesla",
        "model": "Wall Connector Gen2",
        "name": format!("{} {ident}", cfg.device_name_prefix),
        "via_device": format!("twcmanager_{}_all", cfg.topic_prefix),
    });
    if let Some(fw) = firmware {
        d["sw_version"] = json!(fw);
    }
    d
}

/// What makes this instance's Home Assistant ids unique on a shared broker: its topic prefix
/// (two instances on one broker must use different ones, or their state topics would mix too).
/// With TWCManager's defaults (`TWC` for both prefixes) the ids are TWCManager's.
fn id_base(cfg: &MqttStatusConfig) -> String {
    format!("twcmanager_{}", node_id(&cfg.topic_prefix))
}

/// The entity name Home Assistant shows (the unit is in `unit_of_measurement`, not the name).
pub fn entity_name(v: &CompatValue) -> String {
    match v.snake {
        "total_amps_in_use" => "Total current in use".into(),
        "max_amps_for_slaves" => "Current available to chargers".into(),
        "current_policy" => "Policy".into(),
        "min_amps_per_twc" => "Minimum current per charger".into(),
        "amps_max" => "Maximum current".into(),
        "amps_in_use" => "Current in use".into(),
        "state" => "State".into(),
        "cars_charging" => "Car charging".into(),
        "current_vehicle_vin" => "Current vehicle VIN".into(),
        "last_vehicle_vin" => "Last vehicle VIN".into(),
        "lifetime_kwh" => "Lifetime energy".into(),
        "voltage_phase_a" => "Voltage phase A".into(),
        "voltage_phase_b" => "Voltage phase B".into(),
        "voltage_phase_c" => "Voltage phase C".into(),
        "charger_load_w" => "Charger load".into(),
        "amps_offered" => "Current offered".into(),
        "amps_desired" => "Current desired".into(),
        "charger_state" => "State".into(),
        "session_energy_wh" => "Session energy".into(),
        "handle_temp_c" => "Handle temperature".into(),
        "pcba_temp_c" => "PCBA temperature".into(),
        "mcu_temp_c" => "MCU temperature".into(),
        "wifi_signal_pct" => "Wi-Fi signal".into(),
        _ => v.title(),
    }
}

/// TWC state codes (`<TWCID>/state` carries the number, as TWCManager publishes it) and the name
/// Home Assistant shows for each.
fn state_names() -> Vec<(u8, &'static str)> {
    (0..=0x0Fu8)
        .map(|c| (c, twc_core::protocol::SlaveState(c).name()))
        .collect()
}

/// A template that turns the state code into its name, and the names (an `enum` sensor's options).
fn state_template() -> (String, Vec<&'static str>) {
    let names = state_names();
    let map: Vec<String> = names.iter().map(|(c, n)| format!("'{c}': '{n}'")).collect();
    let template = format!(
        "{{{{ {{{}}}.get(value | trim, 'unknown') }}}}",
        map.join(", ")
    );
    let mut options: Vec<&'static str> = Vec::new();
    for (_, n) in names {
        if !options.contains(&n) {
            options.push(n);
        }
    }
    (template, options)
}

/// Keys that Home Assistant controls show instead of a sensor.
const CONTROL_STATE_KEYS: [&str; 2] = ["nonScheduledAmpsMax", "nonScheduledAction"];

fn sensor_config(cfg: &MqttStatusConfig, v: &CompatValue, device: &Value) -> (String, Value) {
    let p = &cfg.topic_prefix;
    let topic = format!(
        "{}/sensor/{}_{}/{}_{}/config",
        cfg.discovery_prefix,
        node_id(p),
        v.ident,
        v.ident,
        v.snake
    );
    let mut payload = json!({
        "name": entity_name(v),
        "unique_id": format!("{}_{}_{}", id_base(cfg), v.ident, v.snake),
        "state_topic": format!("{p}/{}/{}", v.ident, v.key),
        "availability_topic": availability_topic(p),
        "device": device,
    });
    if let Some(u) = v.unit {
        payload["unit_of_measurement"] = json!(u);
    }
    if let Some(c) = v.device_class() {
        payload["device_class"] = json!(c);
    }
    if let Some(c) = v.state_class() {
        payload["state_class"] = json!(c);
    }
    if v.snake == "state" {
        let (template, options) = state_template();
        payload["value_template"] = json!(template);
        payload["device_class"] = json!("enum");
        payload["options"] = json!(options);
    }
    (topic, payload)
}

fn control_config(
    cfg: &MqttStatusConfig,
    component: &str,
    ident: &str,
    object: &str,
    device: &Value,
    mut payload: Value,
) -> (String, Value) {
    let p = &cfg.topic_prefix;
    let topic = format!(
        "{}/{component}/{}_{ident}/{ident}_{object}/config",
        cfg.discovery_prefix,
        node_id(p)
    );
    payload["unique_id"] = json!(format!("{}_{ident}_{object}", id_base(cfg)));
    payload["availability_topic"] = json!(availability_topic(p));
    payload["device"] = device.clone();
    (topic, payload)
}

/// Everything to keep on the broker for this snapshot: status values, the JSON status, and (when
/// enabled) Home Assistant discovery configs.
pub fn render(cfg: &MqttStatusConfig, status: &Status) -> Vec<Msg> {
    let p = &cfg.topic_prefix;
    let values = status_values(status);
    let mut out: Vec<Msg> = values
        .iter()
        .map(|v| Msg {
            topic: format!("{p}/{}/{}", v.ident, v.key),
            payload: v.value.clone().into_bytes(),
            // Settings change only when someone changes them, and Home Assistant's controls show
            // them: publish at once.
            limited: v.ident != "config",
        })
        .collect();
    if cfg.json {
        out.push(Msg {
            topic: format!("{p}/status"),
            payload: serde_json::to_vec(status).unwrap_or_default(),
            limited: true,
        });
    }
    if !cfg.homeassistant_discovery {
        return out;
    }
    let site = site_device(cfg);
    let mut discovery: Vec<(String, Value)> = Vec::new();
    for v in &values {
        if CONTROL_STATE_KEYS.contains(&v.key) {
            continue;
        }
        let device = if v.ident == "all" || v.ident == "config" {
            site.clone()
        } else if let Some(l) = status.load_points.iter().find(|l| l.ident() == v.ident) {
            discovery.push(load_point::sensor(cfg, v, l));
            continue;
        } else {
            let fw = status
                .slaves
                .iter()
                .find(|s| s.id.to_string() == v.ident)
                .and_then(|s| s.firmware.as_deref());
            twc_device(cfg, &v.ident, fw)
        };
        discovery.push(sensor_config(cfg, v, &device));
    }
    if cfg.discovery_controls {
        let amps = if cfg.charge_now_amps > 0.0 {
            cfg.charge_now_amps
        } else {
            status.wiring_max_all.floor_whole().amps()
        };
        discovery.push(control_config(
            cfg,
            "button",
            "all",
            "charge_now",
            &site,
            json!({
                "name": "Charge now",
                "icon": "mdi:ev-station",
                "command_topic": format!("{p}/control/chargeNow"),
                "payload_press": format!("{amps},{}", cfg.charge_now_secs),
            }),
        ));
        discovery.push(control_config(
            cfg,
            "button",
            "all",
            "charge_now_end",
            &site,
            json!({
                "name": "Cancel charge now",
                "command_topic": format!("{p}/control/chargeNowEnd"),
                "payload_press": "1",
            }),
        ));
        discovery.push(control_config(
            cfg,
            "number",
            "config",
            "non_scheduled_amps_max",
            &site,
            json!({
                "name": "Non-scheduled current",
                "command_topic": format!("{p}/control/nonScheduledAmpsMax"),
                "state_topic": format!("{p}/config/nonScheduledAmpsMax"),
                "min": 0,
                "max": status.wiring_max_all.floor_whole().amps(),
                "step": 1,
                "mode": "box",
                "unit_of_measurement": "A",
                "device_class": "current",
            }),
        ));
        discovery.push(control_config(
            cfg,
            "select",
            "config",
            "non_scheduled_action",
            &site,
            json!({
                "name": "Policy outside schedules",
                "command_topic": format!("{p}/control/nonScheduledAction"),
                "state_topic": format!("{p}/config/nonScheduledAction"),
                "options": ["charge", "stop", "green"],
            }),
        ));
        for s in &status.slaves {
            let id = s.id.to_string();
            let device = twc_device(cfg, &id, s.firmware.as_deref());
            for (object, name, topic) in [
                ("start_charging", "Start charging", "startCharging"),
                ("stop_charging", "Stop charging", "stopCharging"),
            ] {
                discovery.push(control_config(
                    cfg,
                    "button",
                    &id,
                    object,
                    &device,
                    json!({
                        "name": name,
                        "command_topic": format!("{p}/control/{topic}"),
                        "payload_press": id,
                    }),
                ));
            }
        }
    }
    out.extend(discovery.into_iter().map(|(topic, v)| Msg {
        topic,
        payload: v.to_string().into_bytes(),
        limited: false,
    }));
    out
}

struct Shared {
    latest: Mutex<BTreeMap<String, Msg>>,
    notify: Notify,
}

/// The publisher: `publish` renders the snapshot and hands it to its own task, which keeps the
/// broker up to date (rate limit, republish after reconnect). It never waits for the broker.
pub struct MqttStatus {
    cfg: MqttStatusConfig,
    prepared: Prepared,
    shared: Arc<Shared>,
    link: OnceLock<Link>,
}

impl MqttStatus {
    /// Build from a parsed config (`section` names it in errors).
    pub fn new(section: &str, cfg: MqttStatusConfig) -> Result<Self, BuildError> {
        if cfg.topic_prefix.is_empty() || cfg.topic_prefix.contains(['+', '#']) {
            return Err(BuildError::new(
                section,
                format!(
                    "topic_prefix must be non-empty without + or #, got {:?}",
                    cfg.topic_prefix
                ),
            ));
        }
        if cfg.homeassistant_discovery && cfg.discovery_prefix.is_empty() {
            return Err(BuildError::new(
                section,
                "discovery_prefix must not be empty",
            ));
        }
        if !(cfg.charge_now_amps.is_finite() && cfg.charge_now_amps >= 0.0) {
            return Err(BuildError::new(
                section,
                "charge_now_amps must be a number ≥ 0",
            ));
        }
        if cfg.discovery_controls && cfg.charge_now_secs == 0 {
            return Err(BuildError::new(
                section,
                "charge_now_secs must be greater than 0",
            ));
        }
        let client_id = if cfg.client_id.is_empty() {
            format!("twcmanager-status-{}", node_id(&cfg.topic_prefix))
        } else {
            cfg.client_id.clone()
        };
        let mut s = LinkSettings::new(cfg.url.clone(), client_id);
        s.username = (!cfg.username.is_empty()).then(|| cfg.username.clone());
        s.password = (!cfg.password.is_empty()).then(|| cfg.password.clone());
        s.ca_file = (!cfg.ca_file.is_empty()).then(|| PathBuf::from(&cfg.ca_file));
        s.protocol = Protocol::parse(section, &cfg.protocol)?;
        s.keep_alive = Duration::from_secs(cfg.keep_alive_secs.max(5));
        s.will = Some(Will {
            topic: availability_topic(&cfg.topic_prefix),
            payload: b"offline".to_vec(),
            retain: true,
        });
        let prepared = twc_plugin_kit::mqtt_link::prepare(section, section, s)?;
        Ok(MqttStatus {
            cfg,
            prepared,
            shared: Arc::new(Shared {
                latest: Mutex::new(BTreeMap::new()),
                notify: Notify::new(),
            }),
            link: OnceLock::new(),
        })
    }

    /// The link (started on first use; must be inside a tokio runtime).
    pub fn link(&self) -> &Link {
        self.link.get_or_init(|| {
            let (link, events) = Link::start(self.prepared.clone());
            twc_core::plugin::spawn(sender(
                link.downgrade(),
                events,
                self.shared.clone(),
                self.cfg.topic_prefix.clone(),
                Duration::from_secs(self.cfg.rate_limit_secs),
            ));
            link
        })
    }
}

async fn sender(
    link: WeakLink,
    mut events: mpsc::Receiver<LinkEvent>,
    shared: Arc<Shared>,
    prefix: String,
    rate: Duration,
) {
    let availability = availability_topic(&prefix);
    // What the broker has from us in this connection: payload and when it was sent.
    let mut published: HashMap<String, (Vec<u8>, Instant)> = HashMap::new();
    let mut next: Option<Instant> = None;
    loop {
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = events.recv() => match ev {
                Some(LinkEvent::Connected { .. }) => {
                    // A new connection: the broker may have lost everything (restart without
                    // persistence), so everything is published again, now.
                    published.clear();
                    let Some(link) = link.upgrade() else { return };
                    if let Err(e) = link.publish(&availability, "online", true) {
                        warn!(plugin = PLUGIN, error = %e, "Cannot publish availability");
                    }
                }
                Some(_) => {}
                None => return,
            },
            _ = shared.notify.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
        next = None;
        let Some(link) = link.upgrade() else {
            return;
        };
        if !link.is_connected() {
            continue;
        }
        let latest: Vec<Msg> = match shared.latest.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => return,
        };
        let now = Instant::now();
        let mut sent = 0usize;
        for m in latest {
            let due = match published.get(&m.topic) {
                Some((p, _)) if *p == m.payload => continue,
                Some((_, at)) if m.limited && now.duration_since(*at) < rate => Some(*at + rate),
                _ => None,
            };
            if let Some(t) = due {
                next = Some(next.map_or(t, |n| n.min(t)));
                continue;
            }
            match link.publish(&m.topic, m.payload.clone(), true) {
                Ok(()) => {
                    sent += 1;
                    published.insert(m.topic, (m.payload, now));
                }
                Err(e) => {
                    debug!(plugin = PLUGIN, topic = %m.topic, error = %e, "Publish queued later");
                    let t = now + Duration::from_millis(500);
                    next = Some(next.map_or(t, |n| n.min(t)));
                    break;
                }
            }
        }
        if sent > 0 {
            debug!(plugin = PLUGIN, sent, "Published status topics");
        }
    }
}

#[twc_core::async_trait]
impl StatusPublisher for MqttStatus {
    async fn publish(&self, status: &Status) -> Result<(), PluginError> {
        let msgs = render(&self.cfg, status);
        self.link();
        {
            let mut latest = self.shared.latest.lock().map_err(|_| {
                PluginError::new(ErrorKind::Protocol, PLUGIN, "status state lock poisoned")
            })?;
            for m in msgs {
                latest.insert(m.topic.clone(), m);
            }
        }
        self.shared.notify.notify_one();
        // A broker outage is logged once by the link; the latest values go out after the
        // reconnect, so there is nothing to report per snapshot.
        Ok(())
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn StatusPublisher>, BuildError> {
    let c: MqttStatusConfig = cfg.parse()?;
    Ok(Box::new(MqttStatus::new(&cfg.section, c)?))
}

inventory::submit! {
    StatusPlugin {
        name: PLUGIN,
        summary: "MQTT status: TWCManager's retained topics, JSON status, Home Assistant discovery",
        example: include_str!("../example.toml"),
        build,
    }
}
