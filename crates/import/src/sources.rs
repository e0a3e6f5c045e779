//! `config.json`'s `sources`: every EMS module TWCManager knows, into our `[ems.<name>]`
//! sections. A module that is enabled but lacks a key our plugin requires (and TWCManager's
//! module looked up by itself) is written disabled, with the key to fill in named.

use crate::config::{mqtt_url, skip_all};
use crate::out::{Out, boolean, http_url, int, num, take_obj, text};
use serde_json::{Map, Value};

const F: &str = "config.json";

/// One TWCManager module section being mapped into one of ours.
struct Src<'a> {
    m: Map<String, Value>,
    from: String,
    to: String,
    out: &'a mut Out,
    enabled: bool,
    /// Keys our plugin needs that could not be filled: the section is written disabled.
    missing: Vec<String>,
}

impl<'a> Src<'a> {
    fn new(m: Map<String, Value>, theirs: &str, ours: &str, out: &'a mut Out) -> Self {
        let mut s = Src {
            m,
            from: format!("sources.{theirs}."),
            to: format!("ems.{ours}"),
            out,
            enabled: false,
            missing: Vec::new(),
        };
        if let Some(on) = s.m.remove("enabled").as_ref().and_then(boolean) {
            s.enabled = on;
            let (from, to) = (s.from.clone(), s.to.clone());
            s.out
                .mapped(F, &format!("{from}enabled"), &format!("[{to}] enabled"));
        }
        s
    }
    fn put(&mut self, ours: &str, v: toml::Value) {
        self.out.set(&format!("{}.{ours}", self.to), v);
    }
    fn noted(&mut self, theirs: &str, ours: &str) {
        let (from, to) = (self.from.clone(), self.to.clone());
        self.out
            .mapped(F, &format!("{from}{theirs}"), &format!("[{to}] {ours}"));
    }
    fn take(&mut self, theirs: &str) -> Option<Value> {
        self.m.remove(theirs)
    }
    /// A string key; empty strings are left out (TWCManager's "leave blank to not read it").
    fn str(&mut self, theirs: &str, ours: &str) -> bool {
        match self.take(theirs).as_ref().and_then(text) {
            Some(v) if !v.is_empty() => {
                self.put(ours, v.into());
                self.noted(theirs, ours);
                true
            }
            Some(_) => {
                self.skip(theirs, "empty: not read (as in TWCManager)");
                false
            }
            None => false,
        }
    }
    fn float(&mut self, theirs: &str, ours: &str) {
        if let Some(v) = self.take(theirs).as_ref().and_then(num) {
            self.put(ours, v.into());
            self.noted(theirs, ours);
        }
    }
    fn integer(&mut self, theirs: &str, ours: &str) {
        if let Some(v) = self.take(theirs).as_ref().and_then(num) {
            self.put(ours, int(v));
            self.noted(theirs, ours);
        }
    }
    /// `serverIP` (+ `serverPort`, `useHttps`) into `url`.
    fn url(&mut self, host: &str, port: &str, suffix: &str) {
        let https = self.take("useHttps").as_ref().and_then(boolean);
        let p = self.take(port);
        if let Some(h) = self.take(host).as_ref().and_then(text) {
            let u = format!(
                "{}{suffix}",
                http_url(&h, p.as_ref(), https.unwrap_or(false))
            );
            self.put("url", u.into());
            self.noted(host, "url");
            if p.is_some() {
                self.noted(port, "url");
            }
            if https.is_some() {
                self.noted("useHttps", "url (scheme)");
            }
        } else if p.is_some() {
            self.skip(port, "a port without serverIP");
        }
    }
    /// `host:port` for Modbus TCP.
    fn modbus(&mut self, host: &str, port: &str, default: u16) {
        let p = self.take(port).as_ref().and_then(num);
        let had_port = p.is_some();
        match self.take(host).as_ref().and_then(text) {
            Some(h) if !h.is_empty() => {
                let p = p.map(|p| p as u16).unwrap_or(default);
                self.put("modbus", format!("{h}:{p}").into());
                self.noted(host, "modbus");
                if had_port {
                    self.noted(port, "modbus");
                }
            }
            _ => self.missing.push("modbus".into()),
        }
    }
    fn skip(&mut self, theirs: &str, why: &str) {
        let from = self.from.clone();
        self.out.skip(F, &format!("{from}{theirs}"), why);
    }
    fn require(&mut self, ours: &str) {
        if self.out.get(&format!("{}.{ours}", self.to)).is_none() {
            self.missing.push(ours.to_string());
        }
    }
    /// At least one of `keys` must be set (our plugin refuses a source that reads nothing).
    fn require_any(&mut self, keys: &[&str]) {
        if !keys
            .iter()
            .any(|k| self.out.get(&format!("{}.{k}", self.to)).is_some())
        {
            self.missing.push(keys.join(" or "));
        }
    }
    fn done(mut self) {
        let on = self.enabled && self.missing.is_empty();
        if self.enabled && !on {
            let from = self.from.clone();
            let why = format!(
                "written disabled: [{}] needs {} (TWCManager's module found it by itself or did without); set it and enable the section",
                self.to,
                self.missing.join(", ")
            );
            self.out.skip(F, &format!("{from}enabled"), &why);
        }
        self.put("enabled", on.into());
        let (from, m) = (self.from.clone(), std::mem::take(&mut self.m));
        self.out.unknown(F, &from, m);
    }
}

pub(crate) fn import_sources(mut s: Map<String, Value>, out: &mut Out) {
    let names: Vec<String> = s.keys().cloned().collect();
    for name in names {
        let m = take_obj(&mut s, &name);
        source(&name, m, out);
    }
}

fn source(name: &str, m: Map<String, Value>, out: &mut Out) {
    let ours = match name {
        "DSMRreader" => "dsmrreader",
        "Efergy" => "efergy",
        "EmonCMS" => "emoncms",
        "Enphase" => "enphase",
        "Fronius" => "fronius",
        "Growatt" => "growatt",
        "HASS" => "hass",
        "IotaWatt" => "iotawatt",
        "Kostal" => "kostal",
        "MQTT" => "mqtt",
        "openHAB" => "openhab",
        "OpenWeatherMap" => "openweathermap",
        "P1Monitor" => "p1monitor",
        "Powerwall2" => "powerwall",
        "SmartMe" => "smartme",
        "SmartPi" => "smartpi",
        "SolarEdge" => "solaredge",
        "SolarLog" => "solarlog",
        "TED" => "ted",
        "URL" => "url",
        "Volkszahler" => "volkszaehler",
        "Victron" => "victron",
        "DSMR" => "dsmr",
        "SCT013" => "sct013",
        "ScenarioEMS" => {
            skip_all(
                out,
                "sources.ScenarioEMS",
                &Value::Object(m),
                "TWCManager's scenario replay is `cargo xtask sim` and [ems.sim] here",
            );
            return;
        }
        other => {
            skip_all(
                out,
                &format!("sources.{other}"),
                &Value::Object(m),
                "not an EMS module TWCManager has; left out",
            );
            return;
        }
    };
    let mut s = Src::new(m, name, ours, out);
    match name {
        "DSMRreader" => {
            mqtt(&mut s);
            s.str("topic", "topic");
        }
        "Efergy" => {
            s.str("token", "token");
            s.require("token");
        }
        "EmonCMS" => {
            let path = s
                .take("serverPath")
                .as_ref()
                .and_then(text)
                .unwrap_or_default();
            let path = if path.is_empty() || path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            s.url("serverIP", "serverPort", path.trim_end_matches('/'));
            s.noted("serverPath", "url (path)");
            s.str("apiKey", "api_key");
            s.integer("consumptionFeed", "consumption_feed");
            s.integer("generationFeed", "generation_feed");
            s.require("url");
        }
        "Enphase" => {
            s.str("apiKey", "api_key");
            s.str("systemID", "system_id");
            s.str("userID", "user_id");
            s.url("serverIP", "serverPort", "");
            s.str("token", "token");
            let local = s.out.get("ems.enphase.url").is_some();
            let cloud = s.out.get("ems.enphase.api_key").is_some();
            if local && cloud {
                s.out.remove("ems.enphase.api_key");
                s.out.remove("ems.enphase.system_id");
                s.out.remove("ems.enphase.user_id");
                s.skip("apiKey", "both local and cloud were set; TWCManager's Enphase is either/or and the local gateway is kept");
            }
        }
        "Fronius" => {
            let port = s.take("serverPort");
            let ips: Vec<String> = match s.take("serverIP") {
                Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
                Some(v) => text(&v).into_iter().collect(),
                None => Vec::new(),
            };
            if !ips.is_empty() {
                let urls: Vec<toml::Value> = ips
                    .iter()
                    .map(|h| http_url(h, port.as_ref(), false).into())
                    .collect();
                s.put("urls", toml::Value::Array(urls));
                s.noted("serverIP", "urls");
                if port.is_some() {
                    s.noted("serverPort", "urls");
                }
            }
            s.require("urls");
        }
        "Growatt" => {
            s.str("username", "username");
            s.str("password", "password");
            for k in [
                "useBatteryAt",
                "useBatteryTill",
                "batteryMaxOutput",
                "useBatteryBefore",
            ] {
                if s.take(k).is_some() {
                    s.skip(k, "battery budgeting by hour and SOC is not copied: see [green] battery_priority and battery_first_below_soc");
                }
            }
            s.require("plant_id");
            s.require("mix_sn");
        }
        "HASS" => {
            s.url("serverIP", "serverPort", "");
            s.str("apiKey", "token");
            s.str("hassEntityConsumption", "consumption_entity");
            s.str("hassEntityGeneration", "generation_entity");
            s.require_any(&["consumption_entity", "generation_entity"]);
            s.require("url");
        }
        "IotaWatt" => {
            s.url("serverIP", "serverPort", "");
            s.str("outputConsumption", "consumption_output");
            s.str("outputGeneration", "generation_output");
            s.require_any(&["consumption_output", "generation_output"]);
            s.require("url");
        }
        "Kostal" => {
            s.modbus("serverIP", "modbusPort", 1502);
            s.integer("unitID", "unit");
        }
        "MQTT" => {
            mqtt(&mut s);
            for (theirs, ours) in [
                ("topicConsumption", "consumption"),
                ("topicGeneration", "generation"),
            ] {
                match s.take(theirs).as_ref().and_then(text) {
                    Some(t) if !t.is_empty() => {
                        let mut tbl = toml::Table::new();
                        tbl.insert("topic".into(), t.into());
                        s.put(ours, toml::Value::Table(tbl));
                        s.noted(theirs, &format!("{ours}.topic"));
                    }
                    Some(_) => s.skip(theirs, "empty: not read (as in TWCManager)"),
                    None => {}
                }
            }
            s.require_any(&["consumption", "generation"]);
        }
        "openHAB" => {
            s.url("serverIP", "serverPort", "");
            s.str("consumptionItem", "consumption_item");
            s.str("generationItem", "generation_item");
            s.require_any(&["consumption_item", "generation_item"]);
            s.require("url");
        }
        "OpenWeatherMap" => {
            s.float("Latitude", "latitude");
            s.float("Longitude", "longitude");
            s.str("APIKey", "api_key");
            if let Some(Value::Array(a)) = s.take("PeakKW") {
                let kw: Vec<toml::Value> = a.iter().filter_map(num).map(Into::into).collect();
                s.put("peak_kw", toml::Value::Array(kw));
                s.noted("PeakKW", "peak_kw");
            }
            s.require("api_key");
        }
        "P1Monitor" => {
            s.url("serverIP", "serverPort", "");
            s.integer("samples", "samples");
            s.require("url");
        }
        "Powerwall2" => {
            let port = s.take("serverPort");
            if let Some(h) = s.take("serverIP").as_ref().and_then(text) {
                s.put("url", http_url(&h, port.as_ref(), true).into());
                s.noted("serverIP", "url (https: the gateway's API)");
            }
            let mut http = toml::Table::new();
            http.insert("accept_invalid_certs".into(), true.into());
            s.put("http", toml::Value::Table(http));
            s.str("password", "password");
            if let Some(level) = s.take("minBatteryLevel").as_ref().and_then(num) {
                s.out.set("green.battery_priority", "battery_first".into());
                s.out.set("green.battery_first_below_soc", level.into());
                s.out.mapped_with(F, "sources.Powerwall2.minBatteryLevel", "[green] battery_priority = \"battery_first\", battery_first_below_soc",
                    "below this SOC the battery keeps its share of the surplus; TWCManager gave the car nothing at all");
            }
            if s.take("cloudID").is_some() {
                s.skip(
                    "cloudID",
                    "the local gateway is read; Tesla's cloud is not used",
                );
            }
            s.require("url");
        }
        "SmartMe" => {
            s.str("username", "username");
            s.str("password", "password");
            s.str("serialNumber", "serial");
            s.require("serial");
        }
        "SmartPi" => {
            s.url("serverIP", "serverPort", "");
            if s.take("showConsumption").is_some() {
                s.skip("showConsumption", "SmartPi measures the grid connection; consumption comes from another source or is computed");
            }
            s.require("url");
        }
        "SolarEdge" => {
            s.str("apiKey", "api_key");
            s.str("siteID", "site_id");
            let port = s
                .take("inverterPort")
                .as_ref()
                .and_then(num)
                .unwrap_or(1502.0);
            if let Some(h) = s
                .take("inverterHost")
                .as_ref()
                .and_then(text)
                .filter(|h| !h.is_empty())
            {
                s.put("modbus", format!("{h}:{port}").into());
                s.noted("inverterHost", "modbus");
                s.out.remove("ems.solaredge.api_key");
                s.out.remove("ems.solaredge.site_id");
            }
            if let Some(Value::Array(meters)) = s.take("smartMeters") {
                for (i, m) in meters.iter().enumerate() {
                    let n = m.get("name").and_then(text).unwrap_or_default();
                    let kind = m.get("type").and_then(text).unwrap_or_default();
                    let key = format!("smartMeters[{i}]");
                    match (n.strip_prefix("Meter").and_then(|d| d.parse::<i64>().ok()), kind.as_str()) {
                        (Some(d), "export") => {
                            s.put("meter", d.into());
                            s.noted(&key, "meter (the grid-connection meter)");
                        }
                        _ => s.skip(&key, "only the export (grid connection) meter is read; consumption is computed from it and the inverter"),
                    }
                }
            }
            for k in ["debugMode", "pollMode"] {
                if s.take(k).is_some() {
                    s.skip(k, "documented by TWCManager but never read by it");
                }
            }
            if s.out.get("ems.solaredge.modbus").is_none() {
                s.require("api_key");
                s.require("site_id");
            }
        }
        "SolarLog" => {
            s.url("serverIP", "serverPort", "");
            if let Some(Value::Array(a)) = s.take("excludeConsumptionInverters") {
                s.put(
                    "exclude_inverters",
                    toml::Value::Array(a.iter().filter_map(num).map(int).collect()),
                );
                s.noted("excludeConsumptionInverters", "exclude_inverters");
            }
            s.require("url");
        }
        "TED" => {
            s.url("serverIP", "serverPort", "");
            s.require("url");
        }
        "URL" => {
            let base = s.take("url").as_ref().and_then(text).unwrap_or_default();
            for (theirs, ours) in [
                ("consumptionItem", "consumption"),
                ("generationItem", "generation"),
            ] {
                match s.take(theirs).as_ref().and_then(text) {
                    Some(item) if !item.is_empty() && !base.is_empty() => {
                        let mut t = toml::Table::new();
                        t.insert(
                            "url".into(),
                            format!("{}/{item}", base.trim_end_matches('/')).into(),
                        );
                        s.put(ours, toml::Value::Table(t));
                        s.noted(theirs, &format!("{ours}.url (url + \"/\" + item)"));
                    }
                    Some(_) => s.skip(theirs, "empty, or no url: not read"),
                    None => {}
                }
            }
            if !base.is_empty() {
                s.noted("url", "generation.url / consumption.url (base)");
            }
            s.require_any(&["consumption", "generation"]);
        }
        "Volkszahler" => {
            s.url("serverIP", "serverPort", "/middleware.php");
            s.str("uuidPhotovoltaikW", "generation_uuid");
            s.str("uuidTotalGridW", "grid_uuid");
            s.require("url");
        }
        "Victron" => {
            s.modbus("serverIP", "serverPort", 502);
            s.integer("unitID", "unit");
            if let Some(t) = s.take("timeout").as_ref().and_then(num) {
                s.put("modbus_timeout_secs", int(t.max(1.0)));
                s.noted("timeout", "modbus_timeout_secs");
            }
            for k in ["consumptionRegisters", "generationRegisters"] {
                if s.take(k).is_some() {
                    s.skip(k, "registers are fixed by the GX's com.victronenergy.system map; choose PV inputs with pv_sources");
                }
            }
        }
        "DSMR" => {
            s.str("serialPort", "port");
            s.integer("baudrate", "baud");
            s.require("port");
        }
        "SCT013" => {
            s.str("arduinoPort", "port");
            if let Some(ip) = s
                .take("arduinoIP")
                .as_ref()
                .and_then(text)
                .filter(|i| !i.is_empty())
            {
                s.put("url", http_url(&ip, None, false).into());
                s.noted("arduinoIP", "url");
            }
            for k in ["consumption", "generation"] {
                if let Some(b) = s.take(k).as_ref().and_then(boolean) {
                    s.put(k, b.into());
                    s.noted(k, k);
                }
            }
            if s.out.get("ems.sct013.port").is_none() && s.out.get("ems.sct013.url").is_none() {
                s.missing.push("port or url".into());
            }
        }
        _ => unreachable!("every name above has a branch"),
    }
    s.done();
}

fn mqtt(s: &mut Src<'_>) {
    let had: Vec<&str> = ["brokerIP", "brokerPort", "brokerTLS"]
        .into_iter()
        .filter(|k| s.m.contains_key(*k))
        .collect();
    match mqtt_url(&mut s.m) {
        Some(u) => {
            s.put("url", u.into());
            for k in had {
                s.noted(k, "url");
            }
        }
        None => s.missing.push("url".into()),
    }
    s.str("username", "username");
    s.str("password", "password");
}
