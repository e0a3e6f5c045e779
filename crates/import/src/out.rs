//! The import's output being built: our configuration as a TOML table, our runtime settings, and
//! a note per input key. Plus small helpers to read TWCManager's loosely typed values (it often
//! writes numbers and booleans as strings).

use crate::{ImportError, Imported, Note, Outcome};
use serde_json::{Map, Value};
use twc_core::model::{Settings, SettingsLimits};

#[derive(Debug, Default)]
pub(crate) struct Out {
    config: toml::Table,
    settings: Option<Settings>,
    notes: Vec<Note>,
    /// TWCManager's `config.webhookMethod`, applied to every webhook.
    pub(crate) webhook_method: Option<String>,
}

impl Out {
    /// Set a dotted key of our configuration (`wiring.max_amps_all_twcs`), creating tables.
    pub(crate) fn set(&mut self, path: &str, value: toml::Value) {
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().expect("a non-empty path");
        let mut table = &mut self.config;
        for p in parts {
            table = table
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("import paths never cross a non-table");
        }
        table.insert(last.to_string(), value);
    }

    /// Remove a dotted key of our configuration.
    pub(crate) fn remove(&mut self, path: &str) {
        let (parent, last) = match path.rsplit_once('.') {
            Some((p, l)) => (Some(p), l),
            None => (None, path),
        };
        let table = match parent {
            None => Some(&mut self.config),
            Some(p) => {
                let mut t = Some(&mut self.config);
                for part in p.split('.') {
                    t = t
                        .and_then(|t| t.get_mut(part))
                        .and_then(toml::Value::as_table_mut);
                }
                t
            }
        };
        if let Some(t) = table {
            t.remove(last);
        }
    }

    /// A value already set (for keys that depend on others).
    pub(crate) fn get(&self, path: &str) -> Option<&toml::Value> {
        let mut parts = path.split('.');
        let mut v = self.config.get(parts.next()?)?;
        for p in parts {
            v = v.as_table()?.get(p)?;
        }
        Some(v)
    }

    /// Append to an array key (creating it).
    pub(crate) fn push(&mut self, path: &str, value: toml::Value) {
        let mut arr = match self.get(path) {
            Some(toml::Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        arr.push(value);
        self.set(path, toml::Value::Array(arr));
    }

    pub(crate) fn mapped(&mut self, file: &'static str, key: &str, to: &str) {
        self.note(
            file,
            key,
            Outcome::Mapped {
                to: to.to_string(),
                remark: None,
            },
        );
    }

    pub(crate) fn mapped_with(&mut self, file: &'static str, key: &str, to: &str, remark: &str) {
        self.note(
            file,
            key,
            Outcome::Mapped {
                to: to.to_string(),
                remark: Some(remark.to_string()),
            },
        );
    }

    pub(crate) fn skip(&mut self, file: &'static str, key: &str, why: &str) {
        self.note(
            file,
            key,
            Outcome::Skipped {
                why: why.to_string(),
            },
        );
    }

    fn note(&mut self, file: &'static str, key: &str, outcome: Outcome) {
        self.notes.push(Note {
            file,
            key: key.to_string(),
            outcome,
        });
    }

    /// Every key left in `rest` (under `prefix`) is one we do not know: noted, not guessed at.
    pub(crate) fn unknown(&mut self, file: &'static str, prefix: &str, rest: Map<String, Value>) {
        for (k, _) in rest {
            self.skip(
                file,
                &format!("{prefix}{k}"),
                "not a key TWCManager documents or reads (a typo, or from a fork); left out",
            );
        }
    }

    pub(crate) fn settings(&mut self) -> &mut Settings {
        self.settings.get_or_insert_with(Settings::default)
    }

    pub(crate) fn finish(mut self) -> Result<Imported, ImportError> {
        let wiring = self
            .get("wiring.max_amps_all_twcs")
            .and_then(toml::Value::as_float)
            .unwrap_or(6.0);
        let limits = SettingsLimits {
            wiring_max_all: wiring,
            grid_max_import_amps: self
                .get("grid.max_import_amps")
                .and_then(toml::Value::as_float),
            grid_max_import_w: None,
        };
        if let Some(s) = &mut self.settings {
            clamp_settings(s, wiring, &mut self.notes);
            s.validate(&limits).map_err(|e| ImportError::Required {
                file: "settings.json".into(),
                message: format!("the converted settings do not pass our checks: {e}"),
            })?;
        }
        let body = toml::to_string_pretty(&self.config).map_err(|e| ImportError::Required {
            file: "config.json".into(),
            message: format!("cannot write TOML: {e}"),
        })?;
        let mut header = String::from(
            "# Imported from TWCManager by `twcmanager import-config`.\n\
             # Layered over the built-in defaults (`twcmanager default-config` shows every key).\n\
             # Check it with `twcmanager check-config FILE`.\n",
        );
        let skipped: Vec<&Note> = self.notes.iter().filter(|n| !n.is_mapped()).collect();
        if !skipped.is_empty() {
            header.push_str("#\n# Not mapped (and why):\n");
            for n in &skipped {
                header.push_str(&format!("#   {n}\n"));
            }
        }
        let remarks: Vec<&Note> = self
            .notes
            .iter()
            .filter(|n| {
                matches!(
                    n.outcome,
                    Outcome::Mapped {
                        remark: Some(_),
                        ..
                    }
                )
            })
            .collect();
        if !remarks.is_empty() {
            header.push_str("#\n# Mapped, with a difference:\n");
            for n in &remarks {
                header.push_str(&format!("#   {n}\n"));
            }
        }
        let settings_json = self
            .settings
            .as_ref()
            .map(|s| serde_json::to_string_pretty(s).expect("settings serialise"));
        Ok(Imported {
            config_toml: format!("{header}\n{body}"),
            settings_json,
            notes: self.notes,
        })
    }
}

/// Amps settings above the wiring limit are lowered to it (TWCManager let the wiring limit cap
/// them at run time; our settings file refuses them).
fn clamp_settings(s: &mut Settings, wiring: f64, notes: &mut Vec<Note>) {
    let mut clamp = |key: &str, v: &mut f64| {
        if *v > wiring {
            notes.push(Note {
                file: "settings.json",
                key: key.to_string(),
                outcome: Outcome::Mapped {
                    to: format!("{key} = {wiring}"),
                    remark: Some(format!(
                        "{v} A is above the wiring limit for all TWCs; lowered to {wiring} A"
                    )),
                },
            });
            *v = wiring;
        }
    };
    clamp("non_scheduled_amps", &mut s.non_scheduled_amps);
    clamp("schedule.amps", &mut s.schedule.amps);
    if let Some(c) = &mut s.charge_now {
        clamp("charge_now.amps", &mut c.amps);
    }
    for a in s.schedule.day_amps.values_mut() {
        clamp("schedule.day_amps", a);
    }
}

/// A number, also when written as a string ("8123").
pub(crate) fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean, also as 0/1 or "true"/"false".
pub(crate) fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A string; numbers become their text.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Take an object out of `map[key]` (an absent or non-object value gives an empty map).
pub(crate) fn take_obj(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.remove(key) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

/// "host" plus an optional port into "http(s)://host[:port]".
pub(crate) fn http_url(host: &str, port: Option<&Value>, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    let host = host.trim().trim_end_matches('/');
    if host.contains("://") {
        return host.to_string();
    }
    match port.and_then(num) {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// A whole number as a TOML integer.
pub(crate) fn int(f: f64) -> toml::Value {
    toml::Value::Integer(f.round() as i64)
}
