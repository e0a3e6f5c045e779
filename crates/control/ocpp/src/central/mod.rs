//! Central-system mode: OCPP 1.6J chargers connect to twcmanager
//! (`ws://<listen>/<chargePointId>`, subprotocol `ocpp1.6`) and each of their connectors becomes
//! an external load point of the engine (`ocpp.<chargePointId>.<connectorId>`, kind `ocpp`),
//! controlled with SetChargingProfile.

mod charger;
mod conn;
mod hub;

use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use twc_core::plugin::{BuildError, Secret};

/// Which purpose the profiles we send carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum ProfileKind {
    /// One profile per connector (connectorId = the connector): its allocation.
    #[default]
    TxDefaultProfile,
    /// One profile for the charger (connectorId 0): the sum of its connectors' allocations.
    ChargePointMaxProfile,
}

impl ProfileKind {
    fn as_str(self) -> &'static str {
        match self {
            ProfileKind::TxDefaultProfile => "TxDefaultProfile",
            ProfileKind::ChargePointMaxProfile => "ChargePointMaxProfile",
        }
    }
}

/// One known charger, `[[control.ocpp.central.chargers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargerConfig {
    /// Its charge point id (the last segment of the URL it connects to).
    pub id: String,
    /// HTTP basic-auth password it must send (user = its id); empty = none.
    #[serde(default)]
    pub password: Secret,
    /// The most one connector may draw, A per phase (its circuit breaker rating × 0.8).
    pub max_amps: f64,
    /// The least worth giving a connector; empty = `central.min_amps`.
    #[serde(default)]
    pub min_amps: Option<f64>,
    /// Phases it charges on (turns Power.Active.Import into A when it sends no current).
    #[serde(default = "one")]
    pub phases: u8,
}

fn one() -> u8 {
    1
}

/// `[control.ocpp.central]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CentralConfig {
    /// Address and port to listen on for chargers (`ws://`).
    pub listen: String,
    /// Let chargers that are not listed in `chargers` connect (with `max_amps`, `min_amps`).
    pub allow_unknown: bool,
    /// The most a connector of an unlisted charger may draw, A per phase.
    pub max_amps: f64,
    /// The least worth giving a connector (a car stops below 6 A).
    pub min_amps: f64,
    /// Volts per phase, to turn Power.Active.Import into A when a charger sends no current.
    pub volts: f64,
    /// `TxDefaultProfile` (one per connector) or `ChargePointMaxProfile` (connector 0).
    pub profile: ProfileKind,
    /// The stack level of our profiles.
    pub stack_level: u32,
    /// Our profiles' chargingProfileId: this + the connector id (0 for ChargePointMaxProfile).
    pub profile_id: i64,
    /// idTags accepted by Authorize and StartTransaction; empty = every idTag.
    pub id_tags: Vec<String>,
    /// Heartbeat interval given in the BootNotification answer, seconds.
    pub heartbeat_interval_secs: u64,
    /// MeterValueSampleInterval set on every charger after its boot, seconds.
    pub meter_interval_secs: u64,
    /// A charging connector whose latest current is older than this is stale (counted at max).
    pub stale_after_secs: f64,
    /// A charger disconnected this long is removed from the engine, seconds.
    pub remove_after_secs: u64,
    /// A connector that draws more than its allocation plus this …
    pub follow_margin_amps: f64,
    /// … for this long is reported as not following its profile.
    pub follow_grace_secs: f64,
    /// How long to wait for a charger's answer, seconds.
    pub call_timeout_secs: u64,
    /// Most chargers connected at once.
    pub max_chargers: usize,
    /// Most messages a charger may send per second (bursts of 4× are allowed); beyond, CALLERROR.
    pub max_messages_per_sec: u32,
    /// The known chargers.
    pub chargers: Vec<ChargerConfig>,
}

impl Default for CentralConfig {
    fn default() -> Self {
        CentralConfig {
            listen: "0.0.0.0:9000".into(),
            allow_unknown: false,
            max_amps: 16.0,
            min_amps: 6.0,
            volts: 230.0,
            profile: ProfileKind::default(),
            stack_level: 1,
            profile_id: 1000,
            id_tags: Vec::new(),
            heartbeat_interval_secs: 60,
            meter_interval_secs: 10,
            stale_after_secs: 35.0,
            remove_after_secs: 900,
            follow_margin_amps: 1.5,
            follow_grace_secs: 60.0,
            call_timeout_secs: 30,
            max_chargers: 16,
            max_messages_per_sec: 20,
            chargers: Vec::new(),
        }
    }
}

/// The limits of one charger's connectors.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max: f64,
    pub min: f64,
    pub phases: u8,
    pub password: String,
}

/// A valid charge point id: what OCPP-J allows in the URL and we use in load point names.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 48
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

impl CentralConfig {
    /// Every problem, naming the key (`section` is `control.ocpp`).
    pub fn check(&self, section: &str) -> Result<SocketAddr, BuildError> {
        let err = |m: String| Err(BuildError::new(section, m));
        let Ok(addr) = self.listen.parse::<SocketAddr>() else {
            return err(format!(
                "central.listen must be address:port, such as \"0.0.0.0:9000\", got {:?}",
                self.listen
            ));
        };
        let amps_ok = |v: f64| v.is_finite() && v > 0.0 && v <= 80.0;
        if !amps_ok(self.max_amps) {
            return err(format!(
                "central.max_amps must be between 0 and 80 A, got {}",
                self.max_amps
            ));
        }
        if !(self.min_amps.is_finite() && self.min_amps >= 0.0 && self.min_amps <= self.max_amps) {
            return err(format!(
                "central.min_amps must be between 0 and max_amps ({}), got {}",
                self.max_amps, self.min_amps
            ));
        }
        if !(self.volts.is_finite() && self.volts > 50.0 && self.volts < 500.0) {
            return err(format!(
                "central.volts must be between 50 and 500, got {}",
                self.volts
            ));
        }
        for (k, v) in [
            ("stale_after_secs", self.stale_after_secs),
            ("follow_grace_secs", self.follow_grace_secs),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
                return err(format!("central.{k} must be between 0 and 3600 s, got {v}"));
            }
        }
        if !(self.follow_margin_amps.is_finite() && self.follow_margin_amps >= 0.0) {
            return err(format!(
                "central.follow_margin_amps must be a number ≥ 0, got {}",
                self.follow_margin_amps
            ));
        }
        for (k, v) in [
            ("heartbeat_interval_secs", self.heartbeat_interval_secs),
            ("call_timeout_secs", self.call_timeout_secs),
            ("remove_after_secs", self.remove_after_secs),
            ("max_chargers", self.max_chargers as u64),
            ("max_messages_per_sec", u64::from(self.max_messages_per_sec)),
        ] {
            if v == 0 {
                return err(format!("central.{k} must be at least 1"));
            }
        }
        if self.meter_interval_secs as f64 >= self.stale_after_secs {
            return err(format!(
                "central.stale_after_secs ({}) must be more than meter_interval_secs ({})",
                self.stale_after_secs, self.meter_interval_secs
            ));
        }
        if self.profile_id < 1 {
            return err(format!(
                "central.profile_id must be at least 1, got {}",
                self.profile_id
            ));
        }
        for (i, t) in self.id_tags.iter().enumerate() {
            if t.is_empty() || t.len() > 20 {
                return err(format!(
                    "central.id_tags[{i}] must be 1 to 20 characters, got {t:?}"
                ));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, c) in self.chargers.iter().enumerate() {
            let k = format!("central.chargers[{i}]");
            if !valid_id(&c.id) || !ids.insert(c.id.clone()) {
                return err(format!(
                    "{k}.id must be unique, 1 to 48 letters, digits, - _ . :, got {:?}",
                    c.id
                ));
            }
            if !amps_ok(c.max_amps) {
                return err(format!(
                    "{k}.max_amps must be between 0 and 80 A, got {}",
                    c.max_amps
                ));
            }
            let min = c.min_amps.unwrap_or(self.min_amps);
            if !(min.is_finite() && min >= 0.0 && min <= c.max_amps) {
                return err(format!(
                    "{k}.min_amps must be between 0 and max_amps ({}), got {min}",
                    c.max_amps
                ));
            }
            if !(1..=3).contains(&c.phases) {
                return err(format!("{k}.phases must be 1, 2 or 3, got {}", c.phases));
            }
        }
        if self.chargers.is_empty() && !self.allow_unknown {
            return err(
                "central needs chargers ([[control.ocpp.central.chargers]] with id and max_amps) \
                 or allow_unknown = true"
                    .into(),
            );
        }
        Ok(addr)
    }

    /// The limits of a charger, `None` when it may not connect.
    pub(crate) fn limits(&self, id: &str) -> Option<Limits> {
        match self.chargers.iter().find(|c| c.id == id) {
            Some(c) => Some(Limits {
                max: c.max_amps,
                min: c.min_amps.unwrap_or(self.min_amps),
                phases: c.phases,
                password: c.password.expose().to_string(),
            }),
            None if self.allow_unknown => Some(Limits {
                max: self.max_amps,
                min: self.min_amps,
                phases: 1,
                password: String::new(),
            }),
            None => None,
        }
    }
}

pub(crate) use hub::run;
