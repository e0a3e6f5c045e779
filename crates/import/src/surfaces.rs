//! `config.json`'s `control`, `status` and `logging` sections: the surfaces and sinks.

use crate::config::{mqtt_url, skip_all};
use crate::out::{Out, boolean, http_url, int, num, take_obj, text};
use serde_json::{Map, Value};

const F: &str = "config.json";

pub(crate) fn control(mut c: Map<String, Value>, settings_path: Option<&str>, out: &mut Out) {
    let mut http = take_obj(&mut c, "HTTP");
    if let Some(on) = http.remove("enabled").as_ref().and_then(boolean) {
        out.set("control.http.enabled", on.into());
        out.mapped_with(F, "control.HTTP.enabled", "[control.http] enabled",
            "TWCManager's web UI had no login; ours asks clients on other machines to log in (auth = \"remote\"): set [control.http] password, or auth = \"off\" on a trusted network");
    }
    if let Some(p) = http.remove("listenPort").as_ref().and_then(num) {
        out.set("control.http.port", int(p));
        out.set("control.http.fallback_ports", 10.into());
        out.mapped_with(
            F,
            "control.HTTP.listenPort",
            "[control.http] port",
            "fallback_ports = 10 keeps TWCManager's \"try the next port\" behaviour",
        );
    }
    out.unknown(F, "control.HTTP.", http);

    let mut mqtt = take_obj(&mut c, "MQTT");
    if !mqtt.is_empty() {
        module_mqtt(&mut mqtt, "control.MQTT.", "control.mqtt", out);
        out.unknown(F, "control.MQTT.", mqtt);
    }

    let mut ipc = take_obj(&mut c, "IPC");
    if let Some(on) = ipc.remove("enabled").as_ref().and_then(boolean) {
        out.set("control.webipc.enabled", on.into());
        out.mapped(F, "control.IPC.enabled", "[control.webipc] enabled");
        out.set(
            "control.webipc.key_path",
            settings_path.unwrap_or("/etc/twcmanager").into(),
        );
    }
    out.unknown(F, "control.IPC.", ipc);

    if let Some(v) = c.remove("OCPP") {
        skip_all(
            out,
            "control.OCPP",
            &v,
            "OCPP exists only on a TWCManager branch and is not implemented here",
        );
    }
    out.unknown(F, "control.", c);
}

/// The MQTT keys shared by control.MQTT and status.MQTT.
fn module_mqtt(m: &mut Map<String, Value>, from: &str, to: &str, out: &mut Out) {
    if let Some(on) = m.remove("enabled").as_ref().and_then(boolean) {
        out.set(&format!("{to}.enabled"), on.into());
        out.mapped(F, &format!("{from}enabled"), &format!("[{to}] enabled"));
    }
    let had: Vec<&str> = ["brokerIP", "brokerPort", "brokerTLS"]
        .into_iter()
        .filter(|k| m.contains_key(*k))
        .collect();
    if let Some(url) = mqtt_url(m) {
        out.set(&format!("{to}.url"), url.into());
        for k in had {
            out.mapped(F, &format!("{from}{k}"), &format!("[{to}] url"));
        }
    }
    for (theirs, ours) in [
        ("topicPrefix", "topic_prefix"),
        ("username", "username"),
        ("password", "password"),
        ("discoveryPrefix", "discovery_prefix"),
        ("deviceNamePrefix", "device_name_prefix"),
    ] {
        if let Some(v) = m.remove(theirs).as_ref().and_then(text) {
            out.set(&format!("{to}.{ours}"), v.into());
            out.mapped(F, &format!("{from}{theirs}"), &format!("[{to}] {ours}"));
        }
    }
    if let Some(v) = m
        .remove("homeassistantDiscovery")
        .as_ref()
        .and_then(boolean)
    {
        out.set(&format!("{to}.homeassistant_discovery"), v.into());
        out.mapped(
            F,
            &format!("{from}homeassistantDiscovery"),
            &format!("[{to}] homeassistant_discovery"),
        );
    }
    if let Some(v) = m.remove("ratelimit").as_ref().and_then(num) {
        out.set(&format!("{to}.rate_limit_secs"), int(v));
        out.mapped_with(
            F,
            &format!("{from}ratelimit"),
            &format!("[{to}] rate_limit_secs"),
            "a change inside the window is published when the window ends, not dropped",
        );
    }
}

pub(crate) fn status(mut s: Map<String, Value>, out: &mut Out) {
    let mut mqtt = take_obj(&mut s, "MQTT");
    if !mqtt.is_empty() {
        module_mqtt(&mut mqtt, "status.MQTT.", "status.mqtt", out);
        out.unknown(F, "status.MQTT.", mqtt);
    }
    let mut h = take_obj(&mut s, "HASS");
    if !h.is_empty() {
        if let Some(on) = h.remove("enabled").as_ref().and_then(boolean) {
            out.set("status.hass.enabled", on.into());
            out.mapped_with(
                F,
                "status.HASS.enabled",
                "[status.hass] enabled",
                "deprecated upstream; [status.mqtt] with discovery is the better choice",
            );
        }
        let https = h
            .remove("useHttps")
            .as_ref()
            .and_then(boolean)
            .unwrap_or(false);
        let port = h.remove("serverPort");
        if let Some(ip) = h.remove("serverIP").as_ref().and_then(text) {
            out.set(
                "status.hass.url",
                http_url(&ip, port.as_ref(), https).into(),
            );
            out.mapped(F, "status.HASS.serverIP", "[status.hass] url");
            if port.is_some() {
                out.mapped(F, "status.HASS.serverPort", "[status.hass] url");
            }
            out.mapped(F, "status.HASS.useHttps", "[status.hass] url (scheme)");
        }
        for (theirs, ours) in [
            ("msgRateInSeconds", "batch_secs"),
            ("resendRateInSeconds", "resend_secs"),
            ("retryRateInSeconds", "retry_secs"),
        ] {
            if let Some(v) = h.remove(theirs).as_ref().and_then(num) {
                out.set(&format!("status.hass.{ours}"), int(v));
                out.mapped(
                    F,
                    &format!("status.HASS.{theirs}"),
                    &format!("[status.hass] {ours}"),
                );
            }
        }
        if let Some(v) = h.remove("apiKey").as_ref().and_then(text) {
            out.set("status.hass.token", v.into());
            out.mapped(F, "status.HASS.apiKey", "[status.hass] token");
        }
        out.unknown(F, "status.HASS.", h);
    }
    out.unknown(F, "status.", s);
}

const MUTES: [(&str, &str); 4] = [
    ("ChargeSessions", "charge_sessions"),
    ("GreenEnergy", "green_energy"),
    ("SlavePower", "slave_power"),
    ("SlaveStatus", "slave_status"),
];

pub(crate) fn logging(mut l: Map<String, Value>, out: &mut Out) {
    if l.remove("use_icons").is_some() {
        out.skip(F, "logging.use_icons", "our console has no icons");
    }
    let mut console = take_obj(&mut l, "Console");
    if let Some(on) = console.remove("enabled").as_ref().and_then(boolean) {
        out.set("logging.console.enabled", on.into());
        out.mapped(F, "logging.Console.enabled", "[logging.console] enabled");
    }
    if let Some(simple) = console.remove("simple").as_ref().and_then(boolean) {
        out.set("logging.console.ansi", (!simple).into());
        out.mapped_with(
            F,
            "logging.Console.simple",
            "[logging.console] ansi",
            "turns colours off; the time stays on each line",
        );
    }
    out.unknown(F, "logging.Console.", console);
    for (theirs, ours) in [
        ("FileLogger", "files"),
        ("CSV", "csv"),
        ("SQLite", "sqlite"),
        ("MySQL", "mysql"),
        ("Sentry", "sentry"),
    ] {
        let mut m = take_obj(&mut l, theirs);
        if m.is_empty() {
            continue;
        }
        let from = format!("logging.{theirs}.");
        let to = format!("logging.{ours}");
        let mut on = m.remove("enabled").as_ref().and_then(boolean);
        if let Some(v) = m.remove("path").as_ref().and_then(text) {
            let v = if ours == "files" {
                out.set(&format!("{to}.rotate"), "hourly".into());
                out.set(&format!("{to}.keep"), 24.into());
                out.set(&format!("{to}.file_name"), "logfile".into());
                v
            } else {
                v
            };
            out.set(&format!("{to}.path"), v.into());
            out.mapped(F, &format!("{from}path"), &format!("[{to}] path"));
        }
        for k in ["host", "database", "username", "password"] {
            if let Some(v) = m.remove(k).as_ref().and_then(text) {
                out.set(&format!("{to}.{k}"), v.into());
                out.mapped(F, &format!("{from}{k}"), &format!("[{to}] {k}"));
            }
        }
        if let Some(p) = m.remove("port").as_ref().and_then(num) {
            out.set(&format!("{to}.port"), int(p));
            out.mapped(F, &format!("{from}port"), &format!("[{to}] port"));
        }
        if let Some(dsn) = m.remove("DSN").as_ref().and_then(text) {
            if dsn.is_empty() {
                if on == Some(true) {
                    on = Some(false);
                    out.skip(F, &format!("{from}DSN"), "empty: Sentry cannot send anywhere, so [logging.sentry] is written disabled (set dsn, or SENTRY_DSN, and enable it)");
                } else {
                    out.skip(F, &format!("{from}DSN"), "empty");
                }
            } else {
                out.set(&format!("{to}.dsn"), dsn.into());
                out.mapped(F, &format!("{from}DSN"), &format!("[{to}] dsn"));
            }
        }
        if let Some(on) = on {
            out.set(&format!("{to}.enabled"), on.into());
            out.mapped(F, &format!("{from}enabled"), &format!("[{to}] enabled"));
        }
        let mut mute = take_obj(&mut m, "mute");
        for (theirs_m, ours_m) in MUTES {
            if let Some(v) = mute.remove(theirs_m).as_ref().and_then(boolean) {
                out.set(&format!("{to}.mute.{ours_m}"), v.into());
                out.mapped(
                    F,
                    &format!("{from}mute.{theirs_m}"),
                    &format!("[{to}.mute] {ours_m}"),
                );
            }
        }
        if mute.remove("DebugLogLevelGreaterThan").is_some() {
            out.skip(F, &format!("{from}mute.DebugLogLevelGreaterThan"), "event sinks here record events, not log lines; log lines go to the console (journald)");
        }
        out.unknown(F, &format!("{from}mute."), mute);
        out.unknown(F, &from, m);
    }
    out.unknown(F, "logging.", l);
}
