//! `config.json`: the `config`, `interface`, `control`, `logging`, `status`, `vehicle`,
//! `controller` and `pricing` sections. `policy` is in [`crate::policy`], `sources` in
//! [`crate::sources`].

use crate::out::{Out, boolean, int, num, take_obj, text};
use crate::{ImportError, policy, sources, surfaces};
use serde_json::{Map, Value};

const F: &str = "config.json";

pub(crate) fn import_config(mut c: Map<String, Value>, out: &mut Out) -> Result<(), ImportError> {
    let mut cfg = take_obj(&mut c, "config");
    let settings_path = cfg.get("settingsPath").and_then(text);
    general(&mut cfg, out)?;
    interface(take_obj(&mut c, "interface"), &mut cfg, out);
    out.unknown(F, "config.", cfg);
    surfaces::control(take_obj(&mut c, "control"), settings_path.as_deref(), out);
    policy::import_policy(take_obj(&mut c, "policy"), out);
    surfaces::logging(take_obj(&mut c, "logging"), out);
    surfaces::status(take_obj(&mut c, "status"), out);
    sources::import_sources(take_obj(&mut c, "sources"), out);
    for (section, why) in [
        (
            "vehicle",
            "no vehicle plugin (Tesla API, BLE, TeslaMate, Home Assistant, fleet telemetry) exists in twcmanager yet: cars are seen through the TWCs (VIN, draw), not through their own APIs",
        ),
        (
            "controller",
            "Gen3 Wall Connectors are not controlled: twcmanager drives Gen2 TWCs over RS-485",
        ),
        (
            "pricing",
            "TWCManager never wired its pricing module into a decision either",
        ),
    ] {
        if let Some(v) = c.remove(section) {
            skip_all(out, section, &v, why);
        }
    }
    out.unknown(F, "", c);
    Ok(())
}

/// Note every leaf under `v` as skipped for one reason.
pub(crate) fn skip_all(out: &mut Out, prefix: &str, v: &Value, why: &str) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                skip_all(out, &format!("{prefix}.{k}"), v, why);
            }
        }
        _ => out.skip(F, prefix, why),
    }
}

fn general(c: &mut Map<String, Value>, out: &mut Out) -> Result<(), ImportError> {
    let Some(all) = c.remove("wiringMaxAmpsAllTWCs").as_ref().and_then(num) else {
        return Err(ImportError::Required {
            file: F.into(),
            message: "config.wiringMaxAmpsAllTWCs is missing or not a number; TWCManager requires it too (80 % of the chargers' breaker rating, in amps)".into(),
        });
    };
    out.set("wiring.max_amps_all_twcs", all.into());
    out.mapped(
        F,
        "config.wiringMaxAmpsAllTWCs",
        "[wiring] max_amps_all_twcs",
    );
    let per = match c.remove("wiringMaxAmpsPerTWC").as_ref().and_then(num) {
        Some(p) => {
            out.mapped(F, "config.wiringMaxAmpsPerTWC", "[wiring] max_amps_per_twc");
            p
        }
        None => 6.0,
    };
    out.set("wiring.max_amps_per_twc", per.into());
    if let Some(v) = c.remove("minAmpsPerTWC").as_ref().and_then(num) {
        if v > per {
            out.set("wiring.min_amps_per_twc", per.into());
            out.mapped_with(F, "config.minAmpsPerTWC", "[wiring] min_amps_per_twc",
                &format!("{v} A is above wiringMaxAmpsPerTWC = {per} A, so no car could ever charge at it; lowered to {per} A (raise the wiring limit only if the wiring allows)"));
        } else {
            out.set("wiring.min_amps_per_twc", v.into());
            out.mapped(F, "config.minAmpsPerTWC", "[wiring] min_amps_per_twc");
        }
    }
    if let Some(v) = c.remove("maxAmpsAllowedFromGrid").as_ref().and_then(num) {
        out.set("grid.max_import_amps", v.into());
        out.mapped_with(F, "config.maxAmpsAllowedFromGrid", "[grid] max_import_amps",
            "applies under every policy here, not only to policies that run the checkMaxPowerFromGrid background task");
    }
    if let Some(v) = c.remove("startStopDelay").as_ref().and_then(num) {
        out.set("green.start_delay_secs", v.into());
        out.set("green.stop_delay_secs", v.into());
        out.mapped_with(F, "config.startStopDelay", "[green] start_delay_secs and stop_delay_secs",
            "our stop delay counts short time in proportion to the shortfall, so a passing cloud does not stop the car");
    }
    simple(c, out, "defaultVoltage", "site.voltage", |v| {
        num(v).map(Into::into)
    });
    simple(c, out, "numberOfPhases", "site.phases", |v| num(v).map(int));
    simple(
        c,
        out,
        "useFlexAmpsToStartCharge",
        "green.flex_to_start",
        |v| boolean(v).map(Into::into),
    );
    simple(
        c,
        out,
        "greenEnergyLatch",
        "policy.green_latch_minutes",
        |v| num(v).map(Into::into),
    );
    if let Some(v) = c.remove("subtractChargerLoad").as_ref().and_then(boolean) {
        out.set("site.consumption_includes_chargers", v.into());
        out.mapped(
            F,
            "config.subtractChargerLoad",
            "[site] consumption_includes_chargers",
        );
    }
    if let Some(v) = c.remove("greenEnergyFlexAmps").as_ref().and_then(num) {
        out.settings().flex_amps = v.max(0.0);
        out.mapped_with(
            F,
            "config.greenEnergyFlexAmps",
            "settings flex_amps",
            "a runtime setting here (changed from the UI and APIs), written to the settings file",
        );
    }
    if let Some(v) = c.remove("greenEnergyAmpsOffset").as_ref().and_then(num) {
        if v != 0.0 {
            out.settings().consumption_offsets.insert(
                "greenEnergyAmpsOffset".into(),
                twc_core::model::ConsumptionOffset {
                    value: v,
                    unit: twc_core::model::OffsetUnit::A,
                },
            );
            out.mapped(
                F,
                "config.greenEnergyAmpsOffset",
                "settings consumption_offsets.greenEnergyAmpsOffset (A)",
            );
        } else {
            out.skip(F, "config.greenEnergyAmpsOffset", "0 A: no offset needed");
        }
    }
    log_level(c, out);
    if let Some(v) = c.remove("webhookMethod").as_ref().and_then(text) {
        out.webhook_method = Some(v.to_ascii_uppercase());
        out.mapped(
            F,
            "config.webhookMethod",
            "method of each [[policy.webhooks]] entry",
        );
    }
    if let Some(v) = c.remove("fakeMaster").as_ref().and_then(num) {
        match v as i64 {
            1 => out.mapped_with(
                F,
                "config.fakeMaster",
                "(always)",
                "twcmanager is always the master",
            ),
            0 => out.skip(
                F,
                "config.fakeMaster",
                "0 (pretend to be a slave) is not supported: twcmanager is always the master",
            ),
            _ => out.skip(
                F,
                "config.fakeMaster",
                "2 (listen only): run `twcmanager spy --port DEVICE` for that",
            ),
        }
    }
    if let Some(v) = c.remove("settingsPath").as_ref().and_then(text) {
        out.mapped_with(F, "config.settingsPath", "[settings] path and [control.webipc] key_path",
            &format!("our runtime settings are one JSON file ([settings] path); {v} stays the WebIPC key path"));
    }
    for (key, why) in SKIPPED_GENERAL {
        if c.remove(*key).is_some() {
            out.skip(F, &format!("config.{key}"), why);
        }
    }
    Ok(())
}

const NO_VEHICLE: &str =
    "needs a vehicle API (Tesla cloud/BLE), which twcmanager does not have yet";

const SKIPPED_GENERAL: &[(&str, &str)] = &[
    ("atHomeRadius", NO_VEHICLE),
    (
        "realPowerFactorMinAmps",
        "power-factor correction is not implemented: slaves' reported voltages and the meter's watts are used as they are",
    ),
    (
        "realPowerFactorMaxAmps",
        "power-factor correction is not implemented: slaves' reported voltages and the meter's watts are used as they are",
    ),
    (
        "treatGenerationAsGridDelivery",
        "no such switch: when a source measures export, assign it as the grid in [site.sources] (grid power is used directly)",
    ),
    ("minChargeLevel", NO_VEHICLE),
    ("respectVehicleSchedule", NO_VEHICLE),
    ("teslaApiClientID", NO_VEHICLE),
    ("teslaApiRedirectUri", NO_VEHICLE),
    ("teslaApiClientSecret", NO_VEHICLE),
    ("teslaApiRegion", NO_VEHICLE),
    ("teslaApiScope", NO_VEHICLE),
    ("teslaProxy", NO_VEHICLE),
    ("teslaProxyCert", NO_VEHICLE),
    ("teslaControlPath", NO_VEHICLE),
    ("moduleConfiguration", NO_VEHICLE),
    ("cloudUpdateInterval", NO_VEHICLE),
    ("wakeDelayMins", NO_VEHICLE),
    ("chargeNowLimit", NO_VEHICLE),
    ("scheduledLimit", NO_VEHICLE),
    ("greenEnergyLimit", NO_VEHICLE),
    ("nonScheduledLimit", NO_VEHICLE),
    (
        "displayMilliseconds",
        "the console's time format is fixed; [logging.console] format = \"json\" gives full precision",
    ),
    (
        "maxAmpsPerTWC",
        "TWCManager used it only to check MQTT chargeNow amps; ours are checked against [wiring]",
    ),
    (
        "debugOutputToFile",
        "SolarEdge debug dump: use RUST_LOG=twc_ems_solaredge=trace instead",
    ),
    (
        "debugFile",
        "SolarEdge debug dump: use RUST_LOG=twc_ems_solaredge=trace instead",
    ),
];

fn simple(
    c: &mut Map<String, Value>,
    out: &mut Out,
    key: &str,
    to: &str,
    conv: impl Fn(&Value) -> Option<toml::Value>,
) {
    if let Some(v) = c.remove(key) {
        match conv(&v) {
            Some(t) => {
                out.set(to, t);
                let (section, k) = to.rsplit_once('.').expect("dotted");
                out.mapped(F, &format!("config.{key}"), &format!("[{section}] {k}"));
            }
            None => out.skip(
                F,
                &format!("config.{key}"),
                &format!("value {v} is not of the expected type"),
            ),
        }
    }
}

fn log_level(c: &mut Map<String, Value>, out: &mut Out) {
    let log = c.remove("logLevel").as_ref().and_then(num);
    let debug = c.remove("debugLevel").as_ref().and_then(num);
    let level = match (log, debug) {
        (Some(l), _) => Some(match l as i64 {
            40.. => "error",
            30..=39 => "warn",
            20..=29 => "info",
            13..=19 => "debug",
            _ => "trace",
        }),
        (None, Some(d)) => Some(match d as i64 {
            ..=0 => "error",
            1 => "info",
            2..=8 => "debug",
            _ => "trace",
        }),
        (None, None) => None,
    };
    if let Some(level) = level {
        out.set("logging.console.level", level.into());
        if log.is_some() {
            out.mapped_with(F, "config.logLevel", "[logging.console] level",
                "Python levels: 40+ error, 30 warn, 20 info, 13-19 debug, below trace (raw RS-485 frames)");
        }
        if debug.is_some() {
            out.mapped_with(
                F,
                "config.debugLevel",
                "[logging.console] level",
                if log.is_some() {
                    "deprecated upstream; logLevel wins"
                } else {
                    "0 error, 1 info, 2-8 debug, 9+ trace"
                },
            );
        }
    }
}

/// The bus: TWCManager uses the first enabled of Dummy, RS485, TCP.
fn interface(mut i: Map<String, Value>, cfg: &mut Map<String, Value>, out: &mut Out) {
    let mut chosen = false;
    let mut dummy = take_obj(&mut i, "Dummy");
    let mut rs485 = take_obj(&mut i, "RS485");
    let mut tcp = take_obj(&mut i, "TCP");
    // Legacy keys of old config files.
    if let Some(p) = cfg.remove("rs485adapter") {
        rs485.entry("port").or_insert(p);
        out.mapped(F, "config.rs485adapter", "[comms.rs485] port");
    }
    if let Some(b) = cfg.remove("baud") {
        rs485.entry("baud").or_insert(b);
        out.mapped(F, "config.baud", "[comms.rs485] baud");
    }
    let mut enabled = |m: &mut Map<String, Value>, name: &str, out: &mut Out| -> bool {
        let on = m
            .remove("enabled")
            .as_ref()
            .and_then(boolean)
            .unwrap_or(false);
        let key = format!("interface.{name}.enabled");
        let ours = match name {
            "Dummy" => "comms.dummy",
            "RS485" => "comms.rs485",
            _ => "comms.tcp",
        };
        let on = if on && chosen {
            out.skip(F, &key, "another interface is enabled before it; TWCManager used only the first, and so does this file");
            false
        } else {
            out.mapped(F, &key, &format!("[{ours}] enabled"));
            on
        };
        chosen |= on;
        out.set(&format!("{ours}.enabled"), on.into());
        on
    };
    enabled(&mut dummy, "Dummy", out);
    if let Some(id) = dummy.remove("twcID").as_ref().and_then(text) {
        out.set("comms.dummy.slaves", 1.into());
        out.set("comms.dummy.ids", toml::Value::Array(vec![id.into()]));
        out.mapped(
            F,
            "interface.Dummy.twcID",
            "[comms.dummy] ids (one simulated slave)",
        );
    }
    if dummy.remove("scenario").is_some() {
        out.skip(
            F,
            "interface.Dummy.scenario",
            "TWCManager's test scenarios are replaced by `cargo xtask sim` and [ems.sim]",
        );
    }
    out.unknown(F, "interface.Dummy.", dummy);

    let rs_on = enabled(&mut rs485, "RS485", out);
    let mut socket_on = false;
    if let Some(p) = rs485.remove("port").as_ref().and_then(text) {
        if let Some(addr) = p.strip_prefix("socket://") {
            out.set("comms.tcp.connect", addr.into());
            socket_on = rs_on;
            out.set("comms.rs485.enabled", false.into());
            out.mapped_with(
                F,
                "interface.RS485.port",
                "[comms.tcp] connect",
                "a socket:// port is our TCP transport",
            );
        } else if p.starts_with("rfc2217://") {
            out.set("comms.rs485.enabled", false.into());
            out.skip(F, "interface.RS485.port", "RFC 2217 (Telnet COM port control) is not supported; set the bridge to raw TCP and use [comms.tcp] connect = \"host:port\"");
        } else {
            out.set("comms.rs485.port", p.into());
            out.mapped(F, "interface.RS485.port", "[comms.rs485] port");
        }
    }
    if let Some(b) = rs485.remove("baud").as_ref().and_then(num) {
        out.set("comms.rs485.baud", int(b));
        out.mapped(F, "interface.RS485.baud", "[comms.rs485] baud");
    }
    if let Some(t) = rs485.remove("slaveTimeout").as_ref().and_then(num) {
        out.set("master.slave_timeout_secs", int(t));
        out.mapped(
            F,
            "interface.RS485.slaveTimeout",
            "[master] slave_timeout_secs",
        );
    }
    out.unknown(F, "interface.RS485.", rs485);

    let tcp_on = enabled(&mut tcp, "TCP", out);
    let had_listen = tcp.contains_key("listen");
    let listen = tcp
        .remove("listen")
        .as_ref()
        .and_then(boolean)
        .unwrap_or(false);
    if had_listen && !listen {
        out.mapped_with(
            F,
            "interface.TCP.listen",
            "[comms.tcp] connect",
            "false: twcmanager connects to the bridge",
        );
    }
    let server = tcp.remove("server").as_ref().and_then(text);
    match (listen, server) {
        (true, _) => {
            out.skip(F, "interface.TCP.listen", "set [comms.tcp] listen = \"0.0.0.0:PORT\" with the port your bridge dials (TWCManager's TCP module fixed it in code)");
            if tcp_on {
                out.set("comms.tcp.enabled", false.into());
            }
        }
        (false, Some(s)) if s.contains(':') => {
            out.set("comms.tcp.connect", s.into());
            out.mapped(F, "interface.TCP.server", "[comms.tcp] connect");
        }
        (false, Some(_)) => {
            out.skip(F, "interface.TCP.server", "no port in the address: set [comms.tcp] connect = \"host:port\" with the bridge's TCP port");
            if tcp_on {
                out.set("comms.tcp.enabled", false.into());
            }
        }
        (false, None) => {}
    }
    if socket_on {
        out.set("comms.tcp.enabled", true.into());
    }
    out.unknown(F, "interface.TCP.", tcp);
    out.unknown(F, "interface.", i);
}

/// `mqtt://host:port` from TWCManager's brokerIP / brokerPort / brokerTLS.
pub(crate) fn mqtt_url(m: &mut Map<String, Value>) -> Option<String> {
    let host = m.remove("brokerIP").as_ref().and_then(text)?;
    let tls = m
        .remove("brokerTLS")
        .as_ref()
        .and_then(boolean)
        .unwrap_or(false);
    let port = m.remove("brokerPort").as_ref().and_then(num);
    let (scheme, default) = if tls {
        ("mqtts", 8883.0)
    } else {
        ("mqtt", 1883.0)
    };
    Some(format!("{scheme}://{host}:{}", port.unwrap_or(default)))
}
