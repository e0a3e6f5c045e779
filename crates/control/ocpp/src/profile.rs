//! OCPP 1.6 smart charging (§3.13): charging profiles as sent by the central system and the limit
//! they set at a given time. Pure: the caller gives the time and the site's volts and phases.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Most stack levels we accept (`ChargeProfileMaxStackLevel`).
pub const MAX_STACK_LEVEL: u32 = 10;
/// Most periods in one schedule (`ChargingScheduleMaxPeriods`).
pub const MAX_PERIODS: usize = 48;
/// Most profiles installed at once (`MaxChargingProfilesInstalled`).
pub const MAX_PROFILES: usize = 32;

/// `ChargingProfilePurposeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// The whole charge point (connector 0).
    ChargePointMaxProfile,
    /// The default for new transactions.
    TxDefaultProfile,
    /// One transaction.
    TxProfile,
}

/// `ChargingProfileKindType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// The schedule starts at `startSchedule`.
    Absolute,
    /// Repeats from `startSchedule` every day or week.
    Recurring,
    /// The schedule starts with the transaction.
    Relative,
}

/// `RecurrencyKindType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recurrency {
    /// Every 24 h.
    Daily,
    /// Every 7 days.
    Weekly,
}

/// `ChargingRateUnitType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Amps per phase.
    A,
    /// Watts for the whole connector.
    W,
}

/// `ChargingSchedulePeriod`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// Seconds from the schedule's start.
    pub start_period: i64,
    /// The limit, in the schedule's unit.
    pub limit: f64,
    /// Phases the limit assumes (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_phases: Option<u8>,
}

/// `ChargingSchedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Seconds the schedule lasts; none = until the next profile or forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// When it starts (absolute and recurring profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_schedule: Option<DateTime<Utc>>,
    /// A or W.
    pub charging_rate_unit: Unit,
    /// The periods, in increasing `startPeriod`, the first at 0.
    pub charging_schedule_period: Vec<Period>,
    /// Ignored (the TWC has its own minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_charging_rate: Option<f64>,
}

/// `ChargingProfile` (`csChargingProfiles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Id; a new profile with the same id replaces the old one.
    pub charging_profile_id: i64,
    /// Only for `TxProfile`: the transaction it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i64>,
    /// Higher wins.
    pub stack_level: u32,
    /// What it limits.
    pub charging_profile_purpose: Purpose,
    /// How its schedule starts.
    pub charging_profile_kind: Kind,
    /// For recurring profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrency_kind: Option<Recurrency>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Not after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
    /// The schedule.
    pub charging_schedule: Schedule,
}

/// An installed profile: on which connector (0 = the whole charge point) and when it came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    /// Connector id.
    pub connector: u32,
    /// The profile.
    pub profile: Profile,
    /// When it was installed (a relative profile without transaction starts here).
    pub installed_at: DateTime<Utc>,
}

/// Check a profile sent for `connector`; the reason is sent back to the central system.
pub fn check(connector: u32, p: &Profile, has_tx: Option<i64>) -> Result<(), String> {
    let s = &p.charging_schedule;
    if p.stack_level > MAX_STACK_LEVEL {
        return Err(format!(
            "stackLevel {} is above ChargeProfileMaxStackLevel {MAX_STACK_LEVEL}",
            p.stack_level
        ));
    }
    if s.charging_schedule_period.is_empty() || s.charging_schedule_period.len() > MAX_PERIODS {
        return Err(format!(
            "chargingSchedulePeriod needs 1 to {MAX_PERIODS} periods"
        ));
    }
    if s.charging_schedule_period[0].start_period != 0 {
        return Err("the first chargingSchedulePeriod must have startPeriod 0".into());
    }
    if s.charging_schedule_period
        .windows(2)
        .any(|w| w[1].start_period <= w[0].start_period)
    {
        return Err("chargingSchedulePeriod startPeriod values must increase".into());
    }
    if let Some(bad) = s
        .charging_schedule_period
        .iter()
        .find(|p| !(p.limit.is_finite() && p.limit >= 0.0))
    {
        return Err(format!("limit {} must be a number ≥ 0", bad.limit));
    }
    if s.duration.is_some_and(|d| d < 0) {
        return Err("duration must be ≥ 0".into());
    }
    match p.charging_profile_kind {
        Kind::Recurring if p.recurrency_kind.is_none() || s.start_schedule.is_none() => {
            return Err("a Recurring profile needs recurrencyKind and startSchedule".into());
        }
        _ => {}
    }
    match p.charging_profile_purpose {
        Purpose::ChargePointMaxProfile if connector != 0 => {
            Err("a ChargePointMaxProfile goes on connectorId 0".into())
        }
        Purpose::TxProfile if connector == 0 => {
            Err("a TxProfile goes on the connector of its transaction, not 0".into())
        }
        Purpose::TxProfile if has_tx.is_none() => {
            Err("no transaction is active on this connector".into())
        }
        Purpose::TxProfile if p.transaction_id.is_some() && p.transaction_id != has_tx => {
            Err(format!(
                "transactionId {:?} is not the transaction on this connector",
                p.transaction_id
            ))
        }
        _ => Ok(()),
    }
}

/// The limit a profile's schedule sets at `now`, in its unit with the phases it assumes, or `None`
/// when the profile is not in force then (not valid, not started, or its duration is over).
pub fn limit_at(
    i: &Installed,
    now: DateTime<Utc>,
    tx_start: Option<DateTime<Utc>>,
) -> Option<(f64, Unit, Option<u8>)> {
    let p = &i.profile;
    if p.valid_from.is_some_and(|f| now < f) || p.valid_to.is_some_and(|t| now >= t) {
        return None;
    }
    let s = &p.charging_schedule;
    let start = match p.charging_profile_kind {
        Kind::Absolute => s.start_schedule.unwrap_or(i.installed_at),
        Kind::Relative => tx_start.unwrap_or(i.installed_at),
        Kind::Recurring => {
            let first = s.start_schedule?;
            let every = match p.recurrency_kind? {
                Recurrency::Daily => Duration::days(1),
                Recurrency::Weekly => Duration::weeks(1),
            };
            if now < first {
                first - every
            } else {
                let n = (now - first).num_seconds() / every.num_seconds();
                first + every * (n as i32)
            }
        }
    };
    let offset = (now - start).num_seconds();
    if offset < 0 || s.duration.is_some_and(|d| offset >= d) {
        return None;
    }
    let period = s
        .charging_schedule_period
        .iter()
        .rev()
        .find(|per| per.start_period <= offset)?;
    Some((period.limit, s.charging_rate_unit, period.number_phases))
}

/// Amps per phase for a limit: watts are divided by volts × phases (the period's phases, at most
/// the site's).
pub fn to_amps(limit: f64, unit: Unit, phases: Option<u8>, volts: f64, site_phases: u8) -> f64 {
    match unit {
        Unit::A => limit,
        Unit::W => {
            let ph = f64::from(phases.unwrap_or(3).clamp(1, 3).min(site_phases.max(1)));
            let v = if volts > 50.0 { volts } else { 230.0 };
            limit / (v * ph)
        }
    }
}

/// The highest stack level in force among `candidates`, as amps.
fn top(
    candidates: impl Iterator<Item = (u32, (f64, Unit, Option<u8>))>,
    volts: f64,
    phases: u8,
) -> Option<f64> {
    candidates
        .max_by_key(|(level, _)| *level)
        .map(|(_, (l, u, p))| to_amps(l, u, p, volts, phases))
}

/// The limit for `connector` at `now`: its TxProfile when it has one in force (for the open
/// transaction `tx`), else its TxDefaultProfile, else connector 0's TxDefaultProfile; in amps.
pub fn connector_limit(
    all: &[Installed],
    connector: u32,
    tx: Option<(i64, DateTime<Utc>)>,
    now: DateTime<Utc>,
    volts: f64,
    phases: u8,
) -> Option<f64> {
    let tx_start = tx.map(|(_, t)| t);
    let of = |purpose: Purpose, conn: u32| {
        top(
            all.iter()
                .filter(|i| i.connector == conn && i.profile.charging_profile_purpose == purpose)
                .filter(|i| {
                    purpose != Purpose::TxProfile
                        || i.profile.transaction_id.is_none()
                        || i.profile.transaction_id == tx.map(|(id, _)| id)
                })
                .filter_map(|i| limit_at(i, now, tx_start).map(|l| (i.profile.stack_level, l))),
            volts,
            phases,
        )
    };
    (if tx.is_some() {
        of(Purpose::TxProfile, connector)
    } else {
        None
    })
    .or_else(|| of(Purpose::TxDefaultProfile, connector))
    .or_else(|| of(Purpose::TxDefaultProfile, 0))
}

/// The ChargePointMaxProfile's limit for the whole site at `now`, in amps.
pub fn site_limit(all: &[Installed], now: DateTime<Utc>, volts: f64, phases: u8) -> Option<f64> {
    top(
        all.iter()
            .filter(|i| i.profile.charging_profile_purpose == Purpose::ChargePointMaxProfile)
            .filter_map(|i| limit_at(i, now, None).map(|l| (i.profile.stack_level, l))),
        volts,
        phases,
    )
}

/// Install `p` on `connector`: it replaces a profile with the same id, and one with the same
/// purpose, stack level and connector (OCPP 1.6 §3.13.2).
pub fn install(all: &mut Vec<Installed>, connector: u32, p: Profile, now: DateTime<Utc>) {
    all.retain(|i| {
        i.profile.charging_profile_id != p.charging_profile_id
            && !(i.connector == connector
                && i.profile.stack_level == p.stack_level
                && i.profile.charging_profile_purpose == p.charging_profile_purpose)
    });
    all.push(Installed {
        connector,
        profile: p,
        installed_at: now,
    });
    if all.len() > MAX_PROFILES {
        all.remove(0);
    }
}

/// `ClearChargingProfile`: remove those matching every given criterion; how many went.
pub fn clear(
    all: &mut Vec<Installed>,
    id: Option<i64>,
    connector: Option<u32>,
    purpose: Option<Purpose>,
    stack_level: Option<u32>,
) -> usize {
    let before = all.len();
    all.retain(|i| {
        let hit = if let Some(id) = id {
            i.profile.charging_profile_id == id
        } else {
            connector.is_none_or(|c| i.connector == c)
                && purpose.is_none_or(|p| i.profile.charging_profile_purpose == p)
                && stack_level.is_none_or(|l| i.profile.stack_level == l)
        };
        !hit
    });
    before - all.len()
}

/// Drop TxProfiles of a transaction that ended (§3.13.1: they end with it).
pub fn end_transaction(all: &mut Vec<Installed>, connector: u32) {
    all.retain(|i| {
        !(i.connector == connector && i.profile.charging_profile_purpose == Purpose::TxProfile)
    });
}
