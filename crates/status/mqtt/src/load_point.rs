//! Home Assistant discovery for external load points (a Gen3, an OCPP charger): one device per
//! load point, under the site, with its values from [`twc_plugin_kit::compat::load_point_values`].

use super::{MqttStatusConfig, sensor_config, twc_device};
use serde_json::{Value, json};
use twc_core::model::LoadPointStatus;
use twc_plugin_kit::compat::CompatValue;

/// The device of a load point.
fn device(cfg: &MqttStatusConfig, l: &LoadPointStatus) -> Value {
    let mut d = twc_device(cfg, &l.ident(), l.view().firmware.as_deref());
    d["model"] = json!(match l.kind.as_str() {
        "gen3" => "Wall Connector Gen3".to_string(),
        "ocpp" => "OCPP charge point".to_string(),
        k => k.to_string(),
    });
    d["name"] = json!(format!("{} {}", cfg.device_name_prefix, l.name));
    d
}

/// The discovery config of one of its values.
pub(super) fn sensor(
    cfg: &MqttStatusConfig,
    v: &CompatValue,
    l: &LoadPointStatus,
) -> (String, Value) {
    let (topic, mut payload) = sensor_config(cfg, v, &device(cfg, l));
    if v.unit.is_some() {
        // A stale measurement publishes `unknown`: Home Assistant then shows it as unknown.
        payload["value_template"] = json!("{{ none if value == 'unknown' else value }}");
    }
    (topic, payload)
}
