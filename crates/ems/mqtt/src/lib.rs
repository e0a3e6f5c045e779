#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use twc_core::model::{EnergyReading, Quantity};
use twc_core::plugin::{
    BuildError, EmsPlugin, EmsSource, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::mqtt_link::{LinkSettings, Protocol, Subscription};
use twc_plugin_kit::{ChannelConfig, channels_from_tables, quantity, set_quantity};

/// Registry name.
pub const NAME: &str = "mqtt";

/// Where one quantity comes from: `{ topic = "...", pointer, scale, invert, timestamp_pointer }`
/// (the kit's quantity channel, addressed by `topic`, an exact topic). With a
/// `timestamp_pointer` a value counts from the time in its JSON payload; without it a value
/// counts from its arrival, and a retained value (of unknown age) does not count until a live
/// message arrives.
pub type TopicChannel = ChannelConfig<quantity::Topic>;

/// `[ems.mqtt]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker: `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: String,
    /// Broker user name.
    pub username: Option<String>,
    /// Broker password.
    pub password: Option<Secret>,
    /// CA certificates (PEM) for `mqtts://`; default (or empty): the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// `"auto"` (v5, falling back to 3.1.1; the default), `"5"` or `"3.1.1"`.
    pub protocol: Option<String>,
    /// Client id (default: `twcmanager-ems-mqtt-<random>`).
    pub client_id: Option<String>,
    /// Keep-alive, seconds (default 30, at least 5).
    pub keep_alive_secs: Option<u64>,
    /// PV generation.
    pub generation: Option<TopicChannel>,
    /// House consumption.
    pub consumption: Option<TopicChannel>,
    /// Grid power, + import / − export.
    pub grid: Option<TopicChannel>,
    /// Battery power, + discharge / − charge.
    pub battery: Option<TopicChannel>,
}

/// Parse one payload with a channel's pointer, scale and sign.
pub fn parse_payload(ch: &TopicChannel, payload: &[u8]) -> Result<f64, twc_plugin_kit::ParseError> {
    ch.value(payload)
}

/// When the payload says the value was measured, if the channel has a `timestamp_pointer`.
pub fn payload_timestamp(
    ch: &TopicChannel,
    payload: &[u8],
) -> Result<Option<tokio::time::Instant>, twc_plugin_kit::ParseError> {
    ch.measured_at(payload)
}

/// The running source: a subscription and the latest payload per topic.
pub struct Mqtt {
    sub: Subscription,
    channels: Vec<(Quantity, TopicChannel)>,
}

#[async_trait]
impl EmsSource for Mqtt {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let mut r = EnergyReading::default();
        let mut oldest = None;
        for (q, ch) in &self.channels {
            let Some(m) = self.sub.latest(&ch.address) else {
                let why = match self.sub.last_error() {
                    Some(e) if !self.sub.is_connected() => format!("broker unreachable: {e}"),
                    _ => "no message yet".to_string(),
                };
                return Err(PluginError::new(
                    ErrorKind::Transient,
                    NAME,
                    format!("topic {}: {why}", ch.address),
                ));
            };
            let what = || format!("topic {}", ch.address);
            let v = parse_payload(ch, &m.payload).map_err(|e| e.into_plugin(NAME, &what()))?;
            let at = match payload_timestamp(ch, &m.payload)
                .map_err(|e| e.into_plugin(NAME, &what()))?
            {
                Some(t) => t.min(m.arrived),
                // Held by the broker since some unknown time: not a measurement we can date.
                None if m.retained => {
                    return Err(PluginError::new(
                        ErrorKind::Transient,
                        NAME,
                        format!(
                            "{}: only a retained message so far, of unknown age; waiting for a live one",
                            what()
                        ),
                    ));
                }
                None => m.arrived,
            };
            set_quantity(&mut r, *q, v);
            oldest = Some(oldest.map_or(at, |o: tokio::time::Instant| o.min(at)));
        }
        if let Some(t) = oldest {
            r.measured_at = t;
        }
        Ok(r)
    }
}

/// Build from `[ems.mqtt]`. Connects on the first read.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: MqttConfig = cfg.parse()?;
    let channels = channels_from_tables(
        &cfg.section,
        [&c.generation, &c.consumption, &c.grid, &c.battery],
    )?;
    // An empty value means "not set", as in [control.mqtt] and [status.mqtt].
    let client_id = c
        .client_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("twcmanager-ems-{NAME}-{:08x}", rand::random::<u32>()));
    let mut s = LinkSettings::new(c.url.clone(), client_id);
    s.username = c.username.clone().filter(|u| !u.is_empty());
    s.password = c.password.clone().filter(|p| !p.is_empty());
    s.ca_file = c.ca_file.clone().filter(|f| !f.as_os_str().is_empty());
    s.protocol = Protocol::parse(&cfg.section, c.protocol.as_deref().unwrap_or("auto"))?;
    s.keep_alive = Duration::from_secs(c.keep_alive_secs.unwrap_or(30).max(5));
    s.subscriptions = channels.iter().map(|(_, ch)| ch.address.clone()).collect();
    let sub = Subscription::new(&cfg.section, &cfg.section, s)?;
    Ok(Box::new(Mqtt { sub, channels }))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "MQTT topics with numeric or JSON payloads",
        example: include_str!("../example.toml"), build }
}
