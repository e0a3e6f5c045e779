#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod config;
mod lenient;
mod out;
mod policy;
mod settings;
mod sources;
mod surfaces;

pub use lenient::parse_lenient;

use serde_json::Value;
use std::fmt;

/// Why an import could not be done at all (a key that cannot be mapped is not an error: it is a
/// [`Note`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The input is not TWCManager JSON (with `#` or `//` comments and trailing commas).
    #[error("{file}: not valid JSON (TWCManager's format, comments allowed): {message}")]
    Parse {
        /// Which input.
        file: String,
        /// What the JSON parser said, with line and column.
        message: String,
    },
    /// A key without which no safe configuration can be written.
    #[error("{file}: {message}")]
    Required {
        /// Which input.
        file: String,
        /// What is missing and how to fix it.
        message: String,
    },
}

/// What happened to one TWCManager key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written to this key of ours (e.g. `[wiring] max_amps_all_twcs`), with a remark on what
    /// differs when something does.
    Mapped {
        /// Where it went.
        to: String,
        /// What differs, if anything.
        remark: Option<String>,
    },
    /// Not written, and why.
    Skipped {
        /// Why.
        why: String,
    },
}

/// One TWCManager key and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `config.json` or `settings.json`.
    pub file: &'static str,
    /// The key's path, e.g. `config.wiringMaxAmpsAllTWCs` or `sources.Fronius.serverIP`.
    pub key: String,
    /// What became of it.
    pub outcome: Outcome,
}

impl Note {
    /// True when the key was written somewhere.
    pub fn is_mapped(&self) -> bool {
        matches!(self.outcome, Outcome::Mapped { .. })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Mapped { to, remark: None } => write!(f, "{} {} -> {to}", self.file, self.key),
            Outcome::Mapped {
                to,
                remark: Some(r),
            } => write!(f, "{} {} -> {to} ({r})", self.file, self.key),
            Outcome::Skipped { why } => write!(f, "{} {}: not mapped: {why}", self.file, self.key),
        }
    }
}

/// Where the imported files go, as paths written into the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// `[settings] path`: where the converted runtime settings are written.
    pub settings_path: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings_path: "/var/lib/twcmanager/settings.json".into(),
        }
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Our configuration file (TOML), with a header listing what was not mapped.
    pub config_toml: String,
    /// Our runtime settings (JSON) when `settings.json` was given or the config carried runtime
    /// values (TWCManager's `greenEnergyFlexAmps`, `greenEnergyAmpsOffset`).
    pub settings_json: Option<String>,
    /// Every key of the inputs, and what became of it.
    pub notes: Vec<Note>,
}

impl Imported {
    /// The notes of keys that were not mapped.
    pub fn skipped(&self) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(|n| !n.is_mapped())
    }
}

/// Convert TWCManager's `config.json` text (and optionally its `settings.json` text).
///
/// Every key of both inputs gets a [`Note`]: mapped (where to, and what differs) or skipped
/// (why). Fails only when the input is not JSON or when `config.wiringMaxAmpsAllTWCs`, the one
/// key TWCManager itself requires, is missing.
pub fn import(
    config_json: &str,
    settings_json: Option<&str>,
    opts: &Options,
) -> Result<Imported, ImportError> {
    let config = parse_lenient(config_json).map_err(|message| ImportError::Parse {
        file: "config.json".into(),
        message,
    })?;
    let settings = settings_json
        .map(|t| {
            parse_lenient(t).map_err(|message| ImportError::Parse {
                file: "settings.json".into(),
                message,
            })
        })
        .transpose()?;
    let Value::Object(config) = config else {
        return Err(ImportError::Parse {
            file: "config.json".into(),
            message: "the top level must be an object { … }".into(),
        });
    };
    let mut out = out::Out::default();
    out.set("settings.path", opts.settings_path.clone().into());
    config::import_config(config, &mut out)?;
    if let Some(s) = settings {
        let Value::Object(s) = s else {
            return Err(ImportError::Parse {
                file: "settings.json".into(),
                message: "the top level must be an object { … }".into(),
            });
        };
        settings::import_settings(s, &mut out);
    }
    out.finish()
}
