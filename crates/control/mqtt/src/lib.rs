#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tracing::{debug, info, warn};
use twc_core::engine::{Command, CommandError, EngineHandle};
use twc_core::plugin::{
    BuildError, ControlPlugin, ControlSurface, ErrorKind, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::mqtt_link::{Link, LinkEvent, LinkSettings, Prepared, Protocol};

mod topics;

pub use topics::{Action, clip, parse, parse_action, parse_charge_now};

const PLUGIN: &str = "mqtt";

/// `[control.mqtt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttControlConfig {
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
    /// Client id; empty = `twcmanager-control-<topic_prefix>`.
    pub client_id: String,
    /// Keep-alive, seconds.
    pub keep_alive_secs: u64,
    /// Commands are read from `<topic_prefix>/control/…` (TWCManager's `topicPrefix`).
    pub topic_prefix: String,
    /// Act on `<topic_prefix>/control/stop` (stops twcmanager). Off unless you want it.
    pub allow_stop: bool,
    /// Seconds the broker keeps our session (and QoS 1 commands sent meanwhile) across a short
    /// disconnect; 0 = clean session.
    pub session_expiry_secs: u64,
}

impl Default for MqttControlConfig {
    fn default() -> Self {
        MqttControlConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            username: String::new(),
            password: Secret::default(),
            ca_file: String::new(),
            protocol: "auto".into(),
            client_id: String::new(),
            keep_alive_secs: 30,
            topic_prefix: "TWC".into(),
            allow_stop: false,
            session_expiry_secs: 300,
        }
    }
}

/// The control surface.
pub struct MqttControl {
    cfg: MqttControlConfig,
    prepared: Prepared,
}

impl MqttControl {
    /// Build from a parsed config (`section` names it in errors).
    pub fn new(section: &str, cfg: MqttControlConfig) -> Result<Self, BuildError> {
        if cfg.topic_prefix.is_empty() || cfg.topic_prefix.contains(['+', '#']) {
            return Err(BuildError::new(
                section,
                format!(
                    "topic_prefix must be non-empty without + or #, got {:?}",
                    cfg.topic_prefix
                ),
            ));
        }
        let client_id = if cfg.client_id.is_empty() {
            let id: String = cfg
                .topic_prefix
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("twcmanager-control-{id}")
        } else {
            cfg.client_id.clone()
        };
        let mut s = LinkSettings::new(cfg.url.clone(), client_id);
        s.username = (!cfg.username.is_empty()).then(|| cfg.username.clone());
        s.password = (!cfg.password.is_empty()).then(|| cfg.password.clone());
        s.ca_file = (!cfg.ca_file.is_empty()).then(|| PathBuf::from(&cfg.ca_file));
        s.protocol = Protocol::parse(section, &cfg.protocol)?;
        s.keep_alive = Duration::from_secs(cfg.keep_alive_secs.max(5));
        s.subscriptions = vec![
            format!("{}/control/+", cfg.topic_prefix),
            format!("{}/control/consumptionOffset/+", cfg.topic_prefix),
            format!("{}/control/priority/+", cfg.topic_prefix),
        ];
        s.session_expiry =
            (cfg.session_expiry_secs > 0).then(|| Duration::from_secs(cfg.session_expiry_secs));
        let prepared = twc_plugin_kit::mqtt_link::prepare(section, section, s)?;
        Ok(MqttControl { cfg, prepared })
    }
}

/// `<prefix>/control/result`: the outcome of every control message (not retained).
pub fn result_topic(prefix: &str) -> String {
    format!("{prefix}/control/result")
}

/// Characters of the payload echoed in a reply and in logs.
pub const PAYLOAD_ECHO_CHARS: usize = 200;
/// Characters of a refusal's reason, at most.
pub const MESSAGE_CHARS: usize = 300;

/// The reply on the result topic: the topic, the payload cut to [`PAYLOAD_ECHO_CHARS`] (once),
/// its full size, the outcome and a reason of at most [`MESSAGE_CHARS`].
pub fn reply(name: &str, payload: &str, ok: bool, message: &str) -> Value {
    json!({
        "topic": clip(name, PAYLOAD_ECHO_CHARS),
        "payload": clip(payload, PAYLOAD_ECHO_CHARS),
        "payload_bytes": payload.len(),
        "ok": ok,
        "message": clip(message, MESSAGE_CHARS),
    })
}

async fn handle(
    engine: &EngineHandle,
    cfg: &MqttControlConfig,
    name: &str,
    payload: &str,
    retain: bool,
) -> Result<String, String> {
    if retain {
        return Err(
            "a retained control message replayed by the broker is ignored; publish commands without retain"
                .into(),
        );
    }
    let current = engine.status().settings;
    let action = parse(name, payload, &current, cfg.allow_stop)?;
    let cmd = match action {
        Action::Command(c) => c,
        Action::Settings(_, patch) => Command::PatchSettings(patch),
    };
    let shutdown = matches!(cmd, Command::Shutdown);
    match engine.command(cmd).await {
        Ok(_) if shutdown => Ok("stopping twcmanager".into()),
        Ok(_) => Ok("applied".into()),
        Err(CommandError::Invalid(m)) | Err(CommandError::Unavailable(m)) => Err(m),
        Err(e) => Err(e.to_string()),
    }
}

#[twc_core::async_trait]
impl ControlSurface for MqttControl {
    async fn serve(self: Box<Self>, engine: EngineHandle) -> Result<(), PluginError> {
        let prefix = format!("{}/control/", self.cfg.topic_prefix);
        let result = result_topic(&self.cfg.topic_prefix);
        let (link, mut events) = Link::start(self.prepared.clone());
        while let Some(ev) = events.recv().await {
            let LinkEvent::Message {
                topic,
                payload,
                retain,
            } = ev
            else {
                continue;
            };
            let Some(name) = topic.strip_prefix(&prefix) else {
                continue;
            };
            if name == "result" {
                continue;
            }
            let text = String::from_utf8_lossy(&payload).into_owned();
            if text.trim().is_empty() {
                // How people clear a retained topic; never a command (it used to mean "every
                // TWC" for stopCharging).
                debug!(plugin = PLUGIN, topic = ?topic, "Empty MQTT control message ignored");
                continue;
            }
            let outcome = handle(&engine, &self.cfg, name, &text, retain).await;
            let shown = clip(&text, PAYLOAD_ECHO_CHARS);
            let (ok, message) = match outcome {
                Ok(m) => {
                    info!(plugin = PLUGIN, topic = ?topic, payload = ?shown, "MQTT control applied");
                    (true, m)
                }
                Err(m) => {
                    let m = clip(&m, MESSAGE_CHARS);
                    warn!(plugin = PLUGIN, topic = ?topic, payload = ?shown, reason = ?m, "MQTT control refused");
                    (false, m)
                }
            };
            let body = reply(name, &text, ok, &message);
            if let Err(e) = link.publish(&result, body.to_string(), false) {
                warn!(plugin = PLUGIN, error = %e, "Cannot publish the control result");
            }
        }
        Err(PluginError::new(
            ErrorKind::Transient,
            PLUGIN,
            "the MQTT link task ended",
        ))
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn ControlSurface>, BuildError> {
    let c: MqttControlConfig = cfg.parse()?;
    Ok(Box::new(MqttControl::new(&cfg.section, c)?))
}

inventory::submit! {
    ControlPlugin {
        name: PLUGIN,
        summary: "MQTT control: TWCManager's control topics plus schedule, offsets, grid limit, start/stop",
        example: include_str!("../example.toml"),
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twc_core::model::Settings;

    #[test]
    fn charge_now_payloads() {
        assert!(matches!(
            parse_charge_now("8,3600"),
            Ok(Command::ChargeNow { amps, duration }) if amps == 8.0 && duration == Duration::from_secs(3600)
        ));
        for bad in ["", "8", "8,", ",3600", "x,3600", "8,x", "8,-5"] {
            assert!(parse_charge_now(bad).is_err(), "{bad:?} accepted");
        }
        // Well-formed but out of bounds: the engine refuses these (tests/control.rs).
        for engine_refuses in ["0,3600", "-1,3600", "8,0", "NaN,10", "inf,10"] {
            assert!(
                parse_charge_now(engine_refuses).is_ok(),
                "{engine_refuses:?} is the engine's to refuse"
            );
        }
    }

    #[test]
    fn r13_an_empty_payload_is_never_a_command() {
        let s = Settings::default();
        for name in [
            "chargeNow",
            "chargeNowEnd",
            "nonScheduledAmpsMax",
            "nonScheduledAction",
            "stop",
            "startCharging",
            "stopCharging",
            "schedule",
            "gridLimit",
            "flexAmps",
            "vinAllow",
            "vinDeny",
            "consumptionOffset/heat",
            "priority/7777",
            "settings",
        ] {
            for p in ["", " ", "\n"] {
                assert!(parse(name, p, &s, true).is_err(), "{name} {p:?} acted");
            }
        }
    }

    #[test]
    fn r13_replies_are_bounded_whatever_was_sent() {
        let s = Settings::default();
        let big = "x".repeat(1_000_000);
        for (name, payload) in [
            ("chargeNow", big.clone()),
            ("schedule", format!(r#"{{"amps": "{big}"}}"#)),
            ("noSuchTopic", big.clone()),
            ("priority/7777", big.clone()),
            ("gridLimit", format!("{big} A")),
        ] {
            let m = parse(name, &payload, &s, false).unwrap_err();
            let v = reply(name, &payload, false, &m);
            let r = v.to_string();
            assert!(r.len() < 1024, "{name}: {} bytes", r.len());
            // The payload once (cut), and at most a short quote of it in the reason.
            let echoed = v["payload"].as_str().unwrap();
            assert!(echoed.chars().count() <= PAYLOAD_ECHO_CHARS + 1, "{r}");
            assert!(payload.starts_with(echoed.trim_end_matches('…')), "{r}");
            let quoted = v["message"].as_str().unwrap().matches('x').count();
            assert!(quoted <= 90, "{name}: the reason repeats the payload: {r}");
            assert_eq!(v["payload_bytes"], payload.len());
        }
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hé", 2), "hé");
    }

    #[test]
    fn actions() {
        assert_eq!(parse_action("1"), Ok("charge"));
        assert_eq!(parse_action(" 2 "), Ok("stop"));
        assert_eq!(parse_action("green"), Ok("green"));
        assert!(parse_action("4").is_err());
    }

    #[test]
    fn stop_needs_opt_in() {
        let s = Settings::default();
        assert!(parse("stop", "now", &s, false).is_err());
        assert!(matches!(
            parse("stop", "now", &s, true),
            Ok(Action::Command(Command::Shutdown))
        ));
    }

    #[test]
    fn settings_patch_rejects_unknown_keys() {
        let s = Settings::default();
        let e = parse("settings", r#"{"non_scheduled_ampz": 5}"#, &s, false).unwrap_err();
        assert!(e.contains("non_scheduled_ampz"), "{e}");
        match parse("settings", r#"{"non_scheduled_amps": 5}"#, &s, false) {
            Ok(Action::Settings(n, _)) => assert_eq!(n.non_scheduled_amps, 5.0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn grid_limit_and_offsets() {
        let s = Settings::default();
        match parse("gridLimit", "16 A", &s, false) {
            Ok(Action::Command(Command::SetGridLimit(Some(g)))) => assert_eq!(g.value, 16.0),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("gridLimit", "none", &s, false),
            Ok(Action::Command(Command::SetGridLimit(None)))
        ));
        assert!(parse("gridLimit", "16", &s, false).is_err());
        match parse("consumptionOffset/heatpump", "-300 W", &s, false) {
            Ok(Action::Command(Command::SetOffset {
                name,
                offset: Some(o),
            })) => {
                assert_eq!((name.as_str(), o.value), ("heatpump", -300.0))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("consumptionOffset/heatpump", "delete", &s, false),
            Ok(Action::Command(Command::SetOffset { offset: None, .. }))
        ));
        assert!(parse("priority/7777", "high", &s, false).is_err());
        assert!(parse("vinDeny", "\"x\"", &s, false).is_err());
        assert!(parse("whatever", "1", &s, false).is_err());
    }

    #[test]
    fn plans_are_set_and_deleted_with_reasons() {
        let s = Settings::default();
        let ok = r#"{"twc": "1111", "target": {"kind": "energy", "kwh": 20},
            "departure": {"kind": "weekly", "weekdays": [1,2,3,4,5], "minute": 420}}"#;
        match parse("plan/weekday", ok, &s, false) {
            Ok(Action::Command(Command::SetPlan(p))) => {
                assert_eq!(p.id, "weekday");
                assert_eq!(p.twc.as_deref(), Some("1111"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("plan/weekday", "delete", &s, false),
            Ok(Action::Command(Command::DeletePlan(id))) if id == "weekday"
        ));
        let soc = ok.replace(
            r#""kind": "energy", "kwh": 20"#,
            r#""kind": "soc", "pct": 80"#,
        );
        let e = parse("plan/weekday", &soc, &s, false).unwrap_err();
        assert!(e.contains("vin"), "{e}");
        assert!(parse("plan/weekday", "[1]", &s, false).is_err());
        assert!(parse("plan/bad id", ok, &s, false).is_err());
    }
}
