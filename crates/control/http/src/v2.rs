//! The typed, versioned API under `/api/v2`, its OpenAPI document (generated from these types
//! and handlers by utoipa) and the live event stream (Server-Sent Events).

use crate::AppState;
use crate::ops;
use crate::recorder::{DayTotals, FaultSeen, Sample, VehicleSeen};
use crate::util::{bad, command_error, error};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use twc_core::engine::Command;
use twc_core::model::{
    ConsumptionOffset, GridLimit, HomeLocation, OffsetUnit, Schedule, ScheduleWindow, Status,
};
use twc_core::protocol::TwcId;
use utoipa::{OpenApi, ToSchema};

/// An error: always a JSON object with a reason.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)] // for the document: exactly one key
pub(crate) struct ErrorBody {
    /// What was wrong.
    error: String,
}

/// Site power as measured.
#[derive(Serialize, ToSchema)]
pub(crate) struct SiteView {
    /// PV generation, W; absent when no fresh reading has it.
    generation_w: Option<f64>,
    /// House consumption, W.
    consumption_w: Option<f64>,
    /// Grid power, W: positive = import, negative = export.
    grid_w: Option<f64>,
    /// Home battery power, W: positive = discharging.
    battery_w: Option<f64>,
    /// Home battery state of charge, %.
    battery_soc_pct: Option<f64>,
    /// Green surplus for the chargers as the policy computed it (after offsets and battery), else
    /// generation − consumption, W, when known.
    surplus_w: Option<f64>,
    /// What the chargers draw, W.
    charger_w: f64,
    /// What the cars draw, A (sum over slaves).
    charger_amps: f64,
    /// Age of the combined reading, s.
    reading_age_secs: Option<f64>,
    /// True when there is no fresh reading (policies that need one fall back to safe values).
    stale: bool,
}

/// The active policy and the budget it produced.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyView {
    /// Name (TWCManager's names).
    name: String,
    /// Why it matched.
    reason: String,
    /// True when following green energy.
    is_green: bool,
    /// Amps the whole site may give the cars now, after every limit.
    budget_amps: f64,
    /// Amps the policy asked for before limits.
    policy_amps: Option<f64>,
    /// Which limit bound the budget (`wiring`, `grid`, `stale`), if any.
    limited_by: Option<String>,
    /// TWCManager's action code: 1 fixed rate, 2 don't charge, 3 green.
    action: Option<u8>,
}

/// One slave.
#[derive(Serialize, ToSchema)]
pub(crate) struct SlaveView {
    /// TWCID, 4 hex digits.
    id: String,
    /// Protocol version (1 or 2).
    protocol: u8,
    /// State code of its last heartbeat.
    state: u8,
    /// State in words.
    state_name: String,
    /// Rated maximum, A.
    max_amps: f64,
    /// The most we may offer it, A.
    cap_amps: f64,
    /// What we offer now, A.
    offered_amps: f64,
    /// What the engine wants to offer, A.
    target_amps: f64,
    /// The limit it reported, A.
    reported_limit_amps: f64,
    /// What the car draws, A.
    actual_amps: f64,
    /// What the car draws, W.
    power_w: f64,
    /// Energy of the current or last session, kWh.
    session_kwh: f64,
    /// Seconds since the session started, while charging.
    session_secs: Option<f64>,
    /// Lifetime energy counter, kWh.
    lifetime_kwh: Option<u32>,
    /// Phase voltages, V.
    volts: Vec<u16>,
    /// VIN of the car charging now.
    vin: Option<String>,
    /// VIN of the previous session.
    last_vin: Option<String>,
    /// Seconds since its last heartbeat reply.
    last_heartbeat_secs: f64,
    /// True once it has been silent longer than the timeout.
    timed_out: bool,
    /// True while the car draws ≥ 1 A.
    charging: bool,
    /// Firmware version, when known.
    firmware: Option<String>,
    /// True when the car draws more than the limit.
    overdraw: bool,
}

/// The bus.
#[derive(Serialize, ToSchema)]
pub(crate) struct BusView {
    /// Our TWCID.
    master_id: String,
    /// True while we transmit.
    transmitting: bool,
    /// Another master heard on the bus (rotary switch not at F).
    foreign_master: Option<String>,
    /// True while the comms link is up.
    link_up: bool,
    /// Last comms error.
    last_error: Option<String>,
    /// Frames sent.
    frames_tx: u64,
    /// Frames received with a good checksum.
    frames_rx: u64,
    /// Frames dropped for a bad checksum.
    bad_checksum: u64,
    /// Frames dropped for other framing errors.
    framing_errors: u64,
    /// Valid frames with an unknown code.
    unknown_messages: u64,
    /// Valid frames with a bad length for their code.
    malformed_messages: u64,
}

/// One energy source.
#[derive(Serialize, ToSchema)]
pub(crate) struct SourceView {
    /// Registry name.
    name: String,
    /// Age of its last reading, s.
    age_secs: Option<f64>,
    /// True when its last reading is too old (or missing).
    stale: bool,
    /// Last error.
    last_error: Option<String>,
    /// Errors so far.
    errors: u64,
}

/// Charge Now, while active.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChargeNowView {
    /// Amps for the whole site.
    amps: f64,
    /// Unix time it ends.
    until_unix: i64,
    /// Seconds left.
    remaining_secs: i64,
}

/// Home location.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct HomeView {
    /// Latitude (−90..90).
    #[schema(minimum = -90.0, maximum = 90.0)]
    lat: f64,
    /// Longitude (−180..180).
    #[schema(minimum = -180.0, maximum = 180.0)]
    lon: f64,
}

/// Runtime settings the UI changes.
#[derive(Serialize, ToSchema)]
pub(crate) struct SettingsView {
    /// `charge`, `stop` or `green`.
    non_scheduled_action: String,
    /// Amps for `charge`.
    non_scheduled_amps: f64,
    /// Charge Now, when active.
    charge_now: Option<ChargeNowView>,
    /// Home location.
    home: Option<HomeView>,
    /// Green tracking: amps a charging car may draw from the grid to keep charging.
    flex_amps: f64,
    /// Runtime grid-import limit (never above the configuration's `[grid]` limit).
    max_grid_import: Option<GridLimitView>,
    /// VINs allowed to charge (empty = every car not denied).
    vin_allow: Vec<String>,
    /// VINs never allowed to charge.
    vin_deny: Vec<String>,
}

/// A grid-import limit. Its schema is written out (see [`value_per_unit`]) because the bound on
/// `value` depends on `unit`.
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct GridLimitView {
    /// Value in `unit`, ≥ 0: at most 1000 A or 1000000 W, and never above the configuration's
    /// `[grid]` limit in the same unit.
    value: f64,
    /// `A` (per phase) or `W` (total).
    unit: UnitView,
}

/// Largest runtime grid-import limit the API takes, A and W.
const MAX_GRID_IMPORT: (f64, f64) = (1000.0, 1_000_000.0);

impl utoipa::PartialSchema for GridLimitView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        value_per_unit(
            "A grid-import limit: `value` ≥ 0 in `unit`, `A` (per phase, at most 1000) or `W` \
             (total, at most 1000000), and never above the configuration's `[grid]` limit in the \
             same unit.",
            MAX_GRID_IMPORT,
            false,
        )
    }
}

impl ToSchema for GridLimitView {}

/// `{"value": number, "unit": "A" | "W"}` with one alternative per unit, since the bound on
/// `value` depends on the unit: `0 ..= max`, or with `signed` within `±max` and not 0.
fn value_per_unit(
    description: &str,
    (max_a, max_w): (f64, f64),
    signed: bool,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{
        AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type,
    };
    let number = || ObjectBuilder::new().schema_type(Type::Number);
    let alt = |unit: &str, max: f64| -> Schema {
        let value: Schema = if signed {
            OneOfBuilder::new()
                .item(number().exclusive_minimum(Some(0.0)).maximum(Some(max)))
                .item(number().minimum(Some(-max)).exclusive_maximum(Some(0.0)))
                .into()
        } else {
            number().minimum(Some(0.0)).maximum(Some(max)).into()
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("value", value)
            .property(
                "unit",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([unit])),
            )
            .required("value")
            .required("unit")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    };
    OneOfBuilder::new()
        .description(Some(description))
        .item(alt("A", max_a))
        .item(alt("W", max_w))
        .into()
}

/// `A` or `W`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitView {
    /// Amps.
    A,
    /// Watts.
    W,
}

/// Something the user should look at.
#[derive(Serialize, ToSchema)]
pub(crate) struct Trouble {
    /// `bus`, `slave`, `source`, `plugin`.
    component: String,
    /// What is wrong.
    message: String,
}

/// One snapshot of everything.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// When the snapshot was made (RFC 3339).
    updated_at: Option<String>,
    /// Site power.
    site: SiteView,
    /// Active policy and budget.
    policy: PolicyView,
    /// Linked slaves.
    slaves: Vec<SlaveView>,
    /// The bus.
    bus: BusView,
    /// Energy sources.
    sources: Vec<SourceView>,
    /// Runtime settings.
    settings: SettingsView,
    /// Wiring limit for all TWCs, A.
    wiring_max_all_amps: f64,
    /// Wiring limit per TWC, A.
    wiring_max_per_twc_amps: f64,
    /// Problems to show.
    trouble: Vec<Trouble>,
}

pub(crate) fn slave_view(x: &twc_core::model::SlaveStatus) -> SlaveView {
    SlaveView {
        id: x.id.to_string(),
        protocol: x.version.number(),
        state: x.state,
        state_name: x.state_name.clone(),
        max_amps: x.max_amps.amps(),
        cap_amps: x.cap_amps.amps(),
        offered_amps: x.offered.amps(),
        target_amps: x.target.amps(),
        reported_limit_amps: x.reported_limit.amps(),
        actual_amps: x.actual.amps(),
        power_w: crate::util::r2(x.power_w),
        session_kwh: x.session_kwh,
        session_secs: x.session_secs,
        lifetime_kwh: x.lifetime_kwh,
        volts: x.volts.to_vec(),
        vin: x.vin.clone(),
        last_vin: x.last_vin.clone(),
        last_heartbeat_secs: x.last_heartbeat_secs,
        timed_out: x.timed_out,
        charging: x.charging,
        firmware: x.firmware.clone(),
        overdraw: x.overdraw,
    }
}

fn policy_view(s: &Status) -> PolicyView {
    PolicyView {
        name: s.policy.name.clone(),
        reason: s.policy.reason.clone(),
        is_green: s.policy.is_green,
        budget_amps: s.policy.budget.amps(),
        policy_amps: s.policy.policy_amps,
        limited_by: s.policy.limited_by.clone(),
        action: crate::compat::policy_action(s).as_u64().map(|v| v as u8),
    }
}

fn settings_view(s: &twc_core::model::Settings) -> SettingsView {
    let now = chrono::Utc::now().timestamp();
    SettingsView {
        non_scheduled_action: s.non_scheduled_action.clone(),
        non_scheduled_amps: s.non_scheduled_amps,
        charge_now: s
            .charge_now
            .filter(|c| c.until_unix > now)
            .map(|c| ChargeNowView {
                amps: c.amps,
                until_unix: c.until_unix,
                remaining_secs: c.until_unix - now,
            }),
        home: s.home.map(|h| HomeView {
            lat: h.lat,
            lon: h.lon,
        }),
        flex_amps: s.flex_amps,
        max_grid_import: s.max_grid_import.map(|g| GridLimitView {
            value: g.value,
            unit: if g.unit == OffsetUnit::A {
                UnitView::A
            } else {
                UnitView::W
            },
        }),
        vin_allow: s.vin_allow.clone(),
        vin_deny: s.vin_deny.clone(),
    }
}

pub(crate) fn status_view(st: &AppState, s: &Status) -> StatusView {
    let r = s.reading.as_ref();
    let now = tokio::time::Instant::now();
    let mut trouble = Vec::new();
    if let Some(f) = s.bus.foreign_master {
        trouble.push(Trouble {
            component: "bus".into(),
            message: format!("another master ({f}) is on the bus: set every TWC's rotary switch to F; not transmitting"),
        });
    }
    if !s.bus.link_up {
        trouble.push(Trouble {
            component: "bus".into(),
            message: format!(
                "the bus link is down: {}",
                s.bus.last_error.clone().unwrap_or_default()
            ),
        });
    }
    for x in &s.slaves {
        if x.timed_out {
            trouble.push(Trouble {
                component: "slave".into(),
                message: format!("slave {} timed out (no heartbeat reply)", x.id),
            });
        }
        if x.overdraw {
            trouble.push(Trouble {
                component: "slave".into(),
                message: format!("the car on slave {} draws more than its limit", x.id),
            });
        }
    }
    for src in &s.sources {
        if src.stale {
            let why = src
                .last_error
                .clone()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            trouble.push(Trouble {
                component: "source".into(),
                message: format!("{} has no fresh reading{why}", src.name),
            });
        }
    }
    let (_, recent, _) = st.recorder.faults();
    let cutoff = chrono::Utc::now() - chrono::Duration::minutes(10);
    for f in recent.iter().rev().take(3) {
        if chrono::DateTime::parse_from_rfc3339(&f.at).is_ok_and(|t| t > cutoff)
            && f.component != "bus"
        {
            trouble.push(Trouble {
                component: "plugin".into(),
                message: format!("{}: {}", f.component, f.message),
            });
        }
    }
    StatusView {
        updated_at: s.updated_at.map(|t| t.to_rfc3339()),
        site: SiteView {
            generation_w: r.and_then(|r| r.generation_w),
            consumption_w: r.and_then(|r| r.consumption_w),
            grid_w: s.site.grid_w,
            battery_w: r.and_then(|r| r.battery_w),
            battery_soc_pct: r.and_then(|r| r.battery_soc_pct),
            surplus_w: s
                .policy
                .surplus_w
                .or_else(|| r.and_then(|r| Some(r.generation_w? - r.consumption_w?))),
            charger_w: crate::util::r2(s.site.charger_w),
            charger_amps: s.total_actual().amps(),
            reading_age_secs: r.map(|r| crate::util::r2(r.age_secs(now))),
            stale: r.is_none(),
        },
        policy: policy_view(s),
        slaves: s.slaves.iter().map(slave_view).collect(),
        bus: BusView {
            master_id: s.bus.master_id.to_string(),
            transmitting: s.bus.transmitting,
            foreign_master: s.bus.foreign_master.map(|f| f.to_string()),
            link_up: s.bus.link_up,
            last_error: s.bus.last_error.clone(),
            frames_tx: s.bus.frames_tx,
            frames_rx: s.bus.decode.frames_ok,
            bad_checksum: s.bus.decode.bad_checksum,
            framing_errors: s.bus.decode.bad_escape
                + s.bus.decode.bad_length
                + s.bus.decode.too_long
                + s.bus.decode.timed_out,
            unknown_messages: s.bus.unknown_messages,
            malformed_messages: s.bus.malformed_messages,
        },
        sources: s
            .sources
            .iter()
            .map(|x| SourceView {
                name: x.name.clone(),
                age_secs: x.age_secs.map(crate::util::r2),
                stale: x.stale,
                last_error: x.last_error.clone(),
                errors: x.errors,
            })
            .collect(),
        settings: settings_view(&s.settings),
        wiring_max_all_amps: s.wiring_max_all.amps(),
        wiring_max_per_twc_amps: s.wiring_max_per_twc.amps(),
        trouble,
    }
}

/// A whole number as JSON Schema's `integer` means it: `270` and `270.0` alike (serde's own
/// unsigned integers refuse `270.0`, which schema-driven clients may send).
fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let v = match (n.as_u64(), n.as_f64()) {
        (Some(v), _) => Some(v),
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 2f64.powi(53) => Some(f as u64),
        _ => None,
    };
    v.and_then(|v| T::try_from(v).ok()).ok_or_else(|| {
        D::Error::custom(format!(
            "invalid value: {n}, expected a whole number in range"
        ))
    })
}

/// Turn a JSON extractor rejection into 400/413/415 with a reason.
fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, Response> {
    match r {
        Ok(Json(v)) => Ok(v),
        Err(e) => {
            // 413 (too large) and 415 (not JSON) stay; a body that does not fit the type is 400.
            let status = match e.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                _ => StatusCode::BAD_REQUEST,
            };
            Err(error(status, e.body_text()))
        }
    }
}

macro_rules! try_resp {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// Everything at once.
#[utoipa::path(get, path = "/api/v2/status", tag = "status", responses((status = 200, body = StatusView)))]
async fn get_status(State(st): State<AppState>) -> Json<StatusView> {
    Json(status_view(&st, &st.engine.status()))
}

/// Linked slaves.
#[utoipa::path(get, path = "/api/v2/slaves", tag = "slaves", responses((status = 200, body = Vec<SlaveView>)))]
async fn get_slaves(State(st): State<AppState>) -> Json<Vec<SlaveView>> {
    Json(st.engine.status().slaves.iter().map(slave_view).collect())
}

/// A TWCID in a path: exactly 4 hex digits, as the document's pattern says (`TwcId`'s own
/// parser also takes surrounding spaces and a sign).
fn parse_id(id: &str) -> Result<TwcId, Response> {
    let refuse = || bad(format!("{id:?} is not a TWCID (4 hex digits)"));
    if id.len() != 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse());
    }
    id.parse::<TwcId>().map_err(|_| refuse())
}

/// One slave.
#[utoipa::path(get, path = "/api/v2/slaves/{id}", tag = "slaves",
    params(("id" = String, Path, description = "TWCID, 4 hex digits", pattern = r"^[0-9A-Fa-f]{4}$", min_length = 4, max_length = 4)),
    responses((status = 200, body = SlaveView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody)))]
async fn get_slave(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = try_resp!(parse_id(&id));
    match st.engine.status().slaves.iter().find(|x| x.id == id) {
        Some(x) => Json(slave_view(x)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no slave {id} is linked")),
    }
}

async fn start_stop(st: &AppState, id: Option<TwcId>, start: bool) -> Response {
    if let Some(id) = id
        && !st.engine.status().slaves.iter().any(|x| x.id == id)
    {
        return error(StatusCode::NOT_FOUND, format!("no slave {id} is linked"));
    }
    let cmd = if start {
        Command::StartCharging { slave: id }
    } else {
        Command::StopCharging { slave: id }
    };
    match st.engine.command(cmd).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => command_error(e),
    }
}

/// Send start (`FC B1`) to one slave.
#[utoipa::path(post, path = "/api/v2/slaves/{id}/start", tag = "slaves",
    params(("id" = String, Path, description = "TWCID, 4 hex digits", pattern = r"^[0-9A-Fa-f]{4}$", min_length = 4, max_length = 4)),
    responses((status = 204, description = "sent"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn slave_start(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = try_resp!(parse_id(&id));
    start_stop(&st, Some(id), true).await
}

/// Send stop (`FC B2`) to one slave. Teslas stay stopped until re-plugged.
#[utoipa::path(post, path = "/api/v2/slaves/{id}/stop", tag = "slaves",
    params(("id" = String, Path, description = "TWCID, 4 hex digits", pattern = r"^[0-9A-Fa-f]{4}$", min_length = 4, max_length = 4)),
    responses((status = 204, description = "sent"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn slave_stop(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = try_resp!(parse_id(&id));
    start_stop(&st, Some(id), false).await
}

/// Send start to every slave.
#[utoipa::path(post, path = "/api/v2/slaves/start", tag = "slaves",
    responses((status = 204, description = "sent"), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn all_start(State(st): State<AppState>) -> Response {
    start_stop(&st, None, true).await
}

/// Send stop to every slave.
#[utoipa::path(post, path = "/api/v2/slaves/stop", tag = "slaves",
    responses((status = 204, description = "sent"), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn all_stop(State(st): State<AppState>) -> Response {
    start_stop(&st, None, false).await
}

/// A rule of the policy list.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyRule {
    /// Name.
    name: String,
    /// True when it is the one active now.
    active: bool,
}

/// The active policy and the list it was chosen from.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyDoc {
    /// What is active and why.
    active: PolicyView,
    /// The ordered list; the first that matches wins.
    rules: Vec<PolicyRule>,
}

/// The active policy, why it matched, and the ordered list.
#[utoipa::path(get, path = "/api/v2/policy", tag = "policy", responses((status = 200, body = PolicyDoc)))]
async fn get_policy(State(st): State<AppState>) -> Json<PolicyDoc> {
    let s = st.engine.status();
    let rules = crate::compat::policy_list()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["name"].as_str())
                .map(|n| PolicyRule {
                    name: n.to_string(),
                    active: n == s.policy.name,
                })
                .collect()
        })
        .unwrap_or_default();
    Json(PolicyDoc {
        active: policy_view(&s),
        rules,
    })
}

/// Runtime settings.
#[utoipa::path(get, path = "/api/v2/settings", tag = "settings",
    responses((status = 200, body = SettingsView), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn get_settings(State(st): State<AppState>) -> Response {
    match ops::current_settings(&st).await {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(r) => r,
    }
}

/// A partial settings change: absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsPatch {
    /// `charge`, `stop` or `green`.
    #[schema(value_type = Option<NonScheduledAction>)]
    non_scheduled_action: Option<String>,
    /// Amps for `charge` (0 … the wiring limit for all TWCs).
    #[schema(minimum = 0.0, maximum = 240.0)]
    non_scheduled_amps: Option<f64>,
    /// Home location; `null` leaves it, use DELETE-like `clear_home` to unset.
    home: Option<HomeView>,
    /// True to forget the home location.
    #[serde(default)]
    clear_home: bool,
    /// Green-tracking flex amps (0 … the wiring limit for all TWCs).
    #[schema(minimum = 0.0, maximum = 240.0)]
    flex_amps: Option<f64>,
    /// Runtime grid-import limit.
    max_grid_import: Option<GridLimitView>,
    /// True to remove the runtime grid-import limit (the configuration's still applies).
    #[serde(default)]
    clear_max_grid_import: bool,
    /// New VIN allow list (at most 100 VINs of 1 to 17 letters and digits).
    #[schema(schema_with = vin_list)]
    vin_allow: Option<Vec<String>>,
    /// New VIN deny list (at most 100 VINs of 1 to 17 letters and digits).
    #[schema(schema_with = vin_list)]
    vin_deny: Option<Vec<String>>,
}

/// What to do outside a schedule: TWCManager's non-scheduled action.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used; the value travels as a string to the engine
pub(crate) enum NonScheduledAction {
    /// Charge at `non_scheduled_amps`.
    Charge,
    /// Do not charge.
    Stop,
    /// Follow the green surplus.
    Green,
}

/// The upper bound the static document gives every amps field: the largest wiring limit a
/// configuration may set (`[wiring] max_amps_all_twcs`). The served document narrows it to the
/// running server's own limit (see [`narrow_to_wiring`]).
pub(crate) const MAX_WIRING_AMPS: f64 = 240.0;

/// Largest VIN list `check_vins` accepts.
const MAX_VINS: usize = 100;

/// A VIN list: what `check_vins` (and the engine's `validate_settings`) accept.
fn vin_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(17))
                .pattern(Some("^[A-Za-z0-9]{1,17}$")),
        )
        .max_items(Some(MAX_VINS))
        .build()
}

fn check_vins(key: &str, v: &Option<Vec<String>>) -> Result<(), String> {
    let Some(v) = v else { return Ok(()) };
    if v.len() > MAX_VINS {
        return Err(format!("{key} holds at most {MAX_VINS} VINs"));
    }
    for vin in v {
        if vin.is_empty() || vin.len() > 17 || !vin.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "{key}: {vin:?} is not a VIN (1 to 17 letters and digits)"
            ));
        }
    }
    Ok(())
}

/// Change settings. The engine validates; a refused value changes nothing.
#[utoipa::path(patch, path = "/api/v2/settings", tag = "settings", request_body = SettingsPatch,
    responses((status = 200, body = SettingsView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn patch_settings(
    State(st): State<AppState>,
    r: Result<Json<SettingsPatch>, JsonRejection>,
) -> Response {
    let p = try_resp!(body(r));
    if let Some(h) = p.home
        && !(h.lat.is_finite()
            && h.lon.is_finite()
            && (-90.0..=90.0).contains(&h.lat)
            && (-180.0..=180.0).contains(&h.lon))
    {
        return bad("home.lat must be within −90..90 and home.lon within −180..180");
    }
    if let Some(g) = p.max_grid_import
        && !(g.value.is_finite()
            && g.value >= 0.0
            && g.value
                <= if g.unit == UnitView::A {
                    MAX_GRID_IMPORT.0
                } else {
                    MAX_GRID_IMPORT.1
                })
    {
        return bad("max_grid_import.value must be a number ≥ 0 (at most 1000 A or 1000000 W)");
    }
    if let Err(e) =
        check_vins("vin_allow", &p.vin_allow).and_then(|_| check_vins("vin_deny", &p.vin_deny))
    {
        return bad(e);
    }
    // One merge patch the engine applies to its settings as they are then: a concurrent change
    // (another PATCH, MQTT, TWCManager's API) is never overwritten by a stale copy.
    let r = st
        .engine
        .command(Command::PatchSettings(settings_merge_patch(p)))
        .await
        .map_err(command_error);
    match r {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(r) => r,
    }
}

/// The RFC 7386 merge patch (`Command::PatchSettings`) of a checked [`SettingsPatch`]: only the
/// fields it names; `clear_*` win over a value given with them.
fn settings_merge_patch(p: SettingsPatch) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_string(), v);
    };
    if let Some(a) = p.flex_amps {
        put("flex_amps", serde_json::json!(a));
    }
    if p.clear_max_grid_import {
        put("max_grid_import", serde_json::Value::Null);
    } else if let Some(g) = p.max_grid_import {
        let unit = if g.unit == UnitView::A {
            OffsetUnit::A
        } else {
            OffsetUnit::W
        };
        put(
            "max_grid_import",
            serde_json::json!(GridLimit {
                value: g.value,
                unit
            }),
        );
    }
    let upper =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|x| x.to_ascii_uppercase()).collect() };
    if let Some(v) = p.vin_allow {
        put("vin_allow", serde_json::json!(upper(v)));
    }
    if let Some(v) = p.vin_deny {
        put("vin_deny", serde_json::json!(upper(v)));
    }
    if let Some(a) = p.non_scheduled_action {
        put("non_scheduled_action", serde_json::json!(a));
    }
    if let Some(a) = p.non_scheduled_amps {
        put("non_scheduled_amps", serde_json::json!(a));
    }
    if p.clear_home {
        put("home", serde_json::Value::Null);
    } else if let Some(h) = p.home {
        put(
            "home",
            serde_json::json!(HomeLocation {
                lat: h.lat,
                lon: h.lon
            }),
        );
    }
    serde_json::Value::Object(m)
}

/// A Charge Now request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChargeNowRequest {
    /// Amps for the whole site (> 0, ≤ the wiring limit for all TWCs).
    #[schema(exclusive_minimum = 0.0, maximum = 240.0)]
    amps: f64,
    /// How long, s (1 … 604800, one week).
    #[schema(minimum = 1, maximum = 604800)]
    #[serde(deserialize_with = "whole")]
    duration_secs: u64,
}

/// Longest Charge Now through the HTTP API, s (one week; TWCManager's `chargeNowDuration` has
/// the same limit).
const MAX_CHARGE_NOW_SECS: u64 = 7 * 24 * 3600;

/// Charge Now, if active.
#[utoipa::path(get, path = "/api/v2/charge-now", tag = "charge-now",
    responses((status = 200, body = Option<ChargeNowView>)))]
async fn get_charge_now(State(st): State<AppState>) -> Json<Option<ChargeNowView>> {
    Json(settings_view(&st.engine.status().settings).charge_now)
}

/// Start Charge Now.
#[utoipa::path(post, path = "/api/v2/charge-now", tag = "charge-now", request_body = ChargeNowRequest,
    responses((status = 200, body = SettingsView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn post_charge_now(
    State(st): State<AppState>,
    r: Result<Json<ChargeNowRequest>, JsonRejection>,
) -> Response {
    let c = try_resp!(body(r));
    if c.duration_secs == 0 || c.duration_secs > MAX_CHARGE_NOW_SECS {
        return bad(format!("duration_secs must be 1 … {MAX_CHARGE_NOW_SECS}"));
    }
    match st
        .engine
        .command(Command::ChargeNow {
            amps: c.amps,
            duration: Duration::from_secs(c.duration_secs),
        })
        .await
    {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(e) => command_error(e),
    }
}

/// Cancel Charge Now.
#[utoipa::path(delete, path = "/api/v2/charge-now", tag = "charge-now",
    responses((status = 200, body = SettingsView), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn delete_charge_now(State(st): State<AppState>) -> Response {
    match st.engine.command(Command::CancelChargeNow).await {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(e) => command_error(e),
    }
}

/// One weekday window.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowView {
    /// 1 = Monday … 7 = Sunday.
    #[schema(minimum = 1, maximum = 7)]
    #[serde(deserialize_with = "whole")]
    weekday: u8,
    /// Minutes after local midnight, 0..=1439.
    #[schema(minimum = 0, maximum = 1439)]
    #[serde(deserialize_with = "whole")]
    start_minute: u16,
    /// Minutes after local midnight, 0..=1439, not equal to `start_minute` (before it = past
    /// midnight).
    #[schema(minimum = 0, maximum = 1439)]
    #[serde(deserialize_with = "whole")]
    end_minute: u16,
}

/// Scheduled charging.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleView {
    /// True when the schedule applies.
    enabled: bool,
    /// Amps for the whole site inside a window (0 … the wiring limit for all TWCs; above 0 when
    /// `enabled`).
    #[schema(minimum = 0.0, maximum = 240.0)]
    amps: f64,
    /// At most one window per weekday.
    #[schema(max_items = 7)]
    windows: Vec<WindowView>,
    /// TWCManager's flex start.
    #[serde(default)]
    flex_start: bool,
    /// Battery size for flex start, kWh (0 … 1000).
    #[serde(default = "default_battery")]
    #[schema(minimum = 0.0, maximum = 1000.0)]
    flex_battery_kwh: f64,
    /// Amps per weekday (`"1"` = Monday … `"7"` = Sunday) overriding `amps` for that day's
    /// window (0 … the wiring limit for all TWCs).
    #[serde(default)]
    #[schema(schema_with = day_amps)]
    day_amps: BTreeMap<u8, f64>,
}

/// `day_amps`: keys are weekdays written as JSON object keys, `"1"` … `"7"`.
fn day_amps() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-7]$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Double,
                )))
                .minimum(Some(0.0))
                .maximum(Some(MAX_WIRING_AMPS)),
        ))
        .max_properties(Some(7))
        .build()
}

fn default_battery() -> f64 {
    100.0
}

fn schedule_view(s: &Schedule) -> ScheduleView {
    ScheduleView {
        enabled: s.enabled,
        amps: s.amps,
        windows: s
            .windows
            .iter()
            .map(|w| WindowView {
                weekday: w.weekday,
                start_minute: w.start_minute,
                end_minute: w.end_minute,
            })
            .collect(),
        flex_start: s.flex_start,
        flex_battery_kwh: s.flex_battery_kwh,
        day_amps: s.day_amps.clone(),
    }
}

/// The schedule.
#[utoipa::path(get, path = "/api/v2/schedules", tag = "schedules",
    responses((status = 200, body = ScheduleView), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn get_schedules(State(st): State<AppState>) -> Response {
    match ops::current_settings(&st).await {
        Ok(s) => Json(schedule_view(&s.schedule)).into_response(),
        Err(r) => r,
    }
}

/// Replace the schedule.
#[utoipa::path(put, path = "/api/v2/schedules", tag = "schedules", request_body = ScheduleView,
    responses((status = 200, body = ScheduleView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn put_schedules(
    State(st): State<AppState>,
    r: Result<Json<ScheduleView>, JsonRejection>,
) -> Response {
    let v = try_resp!(body(r));
    let mut windows: Vec<ScheduleWindow> = v
        .windows
        .iter()
        .map(|w| ScheduleWindow {
            weekday: w.weekday,
            start_minute: w.start_minute,
            end_minute: w.end_minute,
        })
        .collect();
    windows.sort_by_key(|w| w.weekday);
    let s = Schedule {
        enabled: v.enabled,
        amps: v.amps,
        windows,
        flex_start: v.flex_start,
        flex_battery_kwh: v.flex_battery_kwh,
        day_amps: v.day_amps,
    };
    if let Err(e) = ops::validate_schedule(&s, ops::wiring_max_all(&st)) {
        return bad(e);
    }
    match ops::apply(&st, |_| Ok(()), Command::SetSchedule(Box::new(s))).await {
        Ok(x) => Json(schedule_view(&x.schedule)).into_response(),
        Err(r) => r,
    }
}

/// A named consumption offset.
#[derive(Serialize, ToSchema)]
pub(crate) struct OffsetView {
    /// Value in `unit` (positive adds consumption).
    value: f64,
    /// `A` or `W`.
    unit: UnitView,
}

/// A consumption offset to store: `value` in `unit`, not 0 (positive adds consumption), within
/// ±400 A or ±100000 W (`ops::validate_offset`). Its schema is written out (see
/// [`value_per_unit`]) because the bound depends on the unit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OffsetRequest {
    value: f64,
    unit: UnitView,
}

impl utoipa::PartialSchema for OffsetRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        value_per_unit(
            "A consumption offset: `value` in `unit`, not 0 (positive adds consumption), within \
             ±400 A or ±100000 W.",
            (ops::MAX_OFFSET_A, ops::MAX_OFFSET_W),
            true,
        )
    }
}

impl ToSchema for OffsetRequest {}

/// Named consumption offsets.
#[utoipa::path(get, path = "/api/v2/offsets", tag = "offsets",
    responses((status = 200, body = BTreeMap<String, OffsetView>)))]
async fn get_offsets(State(st): State<AppState>) -> Json<BTreeMap<String, OffsetView>> {
    Json(
        st.engine
            .status()
            .settings
            .consumption_offsets
            .iter()
            .map(|(k, o)| {
                (
                    k.clone(),
                    OffsetView {
                        value: o.value,
                        unit: if o.unit == OffsetUnit::A {
                            UnitView::A
                        } else {
                            UnitView::W
                        },
                    },
                )
            })
            .collect(),
    )
}

/// Add or replace an offset.
#[utoipa::path(put, path = "/api/v2/offsets/{name}", tag = "offsets", request_body = OffsetRequest,
    params(("name" = String, Path, description = "offset name: 1 to 31 characters, not only spaces, none of `@#$%^&*\"+<>;/` nor control characters", pattern = r#"^[^\s@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f][^@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f]{0,30}$"#, min_length = 1, max_length = 31)),
    responses((status = 204, description = "stored"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn put_offset(
    State(st): State<AppState>,
    Path(name): Path<String>,
    r: Result<Json<OffsetRequest>, JsonRejection>,
) -> Response {
    let v = try_resp!(body(r));
    if let Err(e) = ops::validate_offset_name(&name) {
        return bad(e);
    }
    let unit = match v.unit {
        UnitView::A => OffsetUnit::A,
        UnitView::W => OffsetUnit::W,
    };
    let o = ConsumptionOffset {
        value: v.value,
        unit,
    };
    if let Err(e) = ops::validate_offset(&o) {
        return bad(e);
    }
    let n = name.clone();
    let check = move |s: &twc_core::model::Settings| {
        if !s.consumption_offsets.contains_key(&n)
            && s.consumption_offsets.len() >= ops::MAX_OFFSETS
        {
            return Err(ops::too_many_offsets());
        }
        Ok(())
    };
    match ops::apply(
        &st,
        check,
        Command::SetOffset {
            name,
            offset: Some(o),
        },
    )
    .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Delete an offset.
#[utoipa::path(delete, path = "/api/v2/offsets/{name}", tag = "offsets",
    params(("name" = String, Path, description = "offset name: 1 to 31 characters, not only spaces, none of `@#$%^&*\"+<>;/` nor control characters", pattern = r#"^[^\s@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f][^@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f]{0,30}$"#, min_length = 1, max_length = 31)),
    responses((status = 204, description = "deleted"), (status = 404, description = "not found", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn delete_offset(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    let check = move |s: &twc_core::model::Settings| {
        if s.consumption_offsets.contains_key(&n) {
            Ok(())
        } else {
            Err(error(
                StatusCode::NOT_FOUND,
                format!("no offset named {n:?}"),
            ))
        }
    };
    match ops::apply(&st, check, Command::SetOffset { name, offset: None }).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// A car: seen since start, or charging now.
#[derive(Serialize, ToSchema)]
pub(crate) struct VehicleView {
    /// VIN.
    vin: String,
    /// Finished sessions since start.
    sessions: u64,
    /// Energy of those sessions, kWh.
    energy_kwh: f64,
    /// When last seen (RFC 3339).
    last_seen: Option<String>,
    /// Slave it was last seen on.
    last_slave: Option<String>,
    /// The slave it is plugged into now, if any.
    plugged_into: Option<String>,
}

/// Cars seen since start (VINs from the slaves, with sessions and kWh).
#[utoipa::path(get, path = "/api/v2/vehicles", tag = "vehicles", responses((status = 200, body = Vec<VehicleView>)))]
async fn get_vehicles(State(st): State<AppState>) -> Json<Vec<VehicleView>> {
    let s = st.engine.status();
    let mut seen: BTreeMap<String, VehicleSeen> = st
        .recorder
        .vehicles()
        .into_iter()
        .map(|v| (v.vin.clone(), v))
        .collect();
    for x in &s.slaves {
        if let Some(v) = x
            .vin
            .as_ref()
            .or(x.last_vin.as_ref())
            .filter(|v| !v.is_empty())
        {
            seen.entry(v.clone()).or_insert_with(|| VehicleSeen {
                vin: v.clone(),
                last_slave: Some(x.id.to_string()),
                ..Default::default()
            });
        }
    }
    Json(
        seen.into_values()
            .map(|v| {
                let plugged = s
                    .slaves
                    .iter()
                    .find(|x| x.vin.as_deref() == Some(v.vin.as_str()))
                    .map(|x| x.id.to_string());
                VehicleView {
                    vin: v.vin,
                    sessions: v.sessions,
                    energy_kwh: v.energy_kwh,
                    last_seen: v.last_seen,
                    last_slave: v.last_slave,
                    plugged_into: plugged,
                }
            })
            .collect(),
    )
}

/// History query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// Only samples at or after this Unix time.
    since: Option<i64>,
    /// Days of stored energy per day (1 … 366, default 14), when a database logger is present.
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
    /// Hours of stored power points (1 … 168, default `chart_hours`), when a database logger is present.
    #[param(minimum = 1, maximum = 168)]
    hours: Option<u32>,
}

/// A stored power point.
#[derive(Serialize, ToSchema)]
pub(crate) struct PowerPointView {
    /// Unix time, seconds.
    t: i64,
    /// PV generation, W.
    generation_w: Option<f64>,
    /// House consumption, W.
    consumption_w: Option<f64>,
    /// Chargers, W.
    charger_w: Option<f64>,
    /// Grid, W (positive = import).
    grid_w: Option<f64>,
}

/// Energy charged on one stored day.
#[derive(Serialize, ToSchema)]
pub(crate) struct DailyView {
    /// Local date, `YYYY-MM-DD`.
    date: String,
    /// kWh charged in sessions that started that day.
    energy_kwh: f64,
    /// Sessions that started that day.
    sessions: u32,
}

/// History from a database logger (`logging.sqlite`, `logging.mysql`).
#[derive(Serialize, ToSchema)]
pub(crate) struct StoredHistory {
    /// Power points, oldest first (at most 1000).
    power: Vec<PowerPointView>,
    /// Energy per local day, oldest first, every day present.
    days: Vec<DailyView>,
    /// Why a query failed, if one did (the rest is still served).
    error: Option<String>,
}

/// History kept since start.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryView {
    /// Live-chart samples, oldest first.
    samples: Vec<Sample>,
    /// Energy per local day.
    days: Vec<DayTotals>,
    /// Recent faults.
    faults: Vec<FaultSeen>,
    /// The long history from a database logger, when one is configured.
    stored: Option<StoredHistory>,
}

/// Chart samples, energy per day and recent faults (kept in memory since start).
#[utoipa::path(get, path = "/api/v2/history", tag = "history", params(HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody)))]
async fn get_history(
    State(st): State<AppState>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
    let days = q.days.unwrap_or(14);
    let hours = q.hours.unwrap_or(st.cfg.chart_hours.min(168) as u32);
    if !(1..=366).contains(&days) || !(1..=168).contains(&hours) {
        return bad("days must be 1 … 366 and hours 1 … 168");
    }
    let stored = match &st.history {
        Some(h) => Some(stored_history(h.as_ref(), days, hours).await),
        None => None,
    };
    let (_, faults, _) = st.recorder.faults();
    Json(HistoryView {
        samples: st.recorder.samples(q.since),
        days: st.recorder.days(),
        faults,
        stored,
    })
    .into_response()
}

async fn stored_history(
    h: &dyn twc_core::history::HistoryQuery,
    days: u32,
    hours: u32,
) -> StoredHistory {
    let now = chrono::Utc::now();
    let limit = Duration::from_secs(5);
    let mut error = None;
    let power = match tokio::time::timeout(
        limit,
        h.power(now - chrono::Duration::hours(i64::from(hours)), now, 1000),
    )
    .await
    {
        Ok(Ok(p)) => p
            .into_iter()
            .map(|p| PowerPointView {
                t: p.at.timestamp(),
                generation_w: p.generation_w,
                consumption_w: p.consumption_w,
                charger_w: p.charger_w,
                grid_w: p.grid_w,
            })
            .collect(),
        Ok(Err(e)) => {
            error = Some(format!("power history: {}", e.chain()));
            Vec::new()
        }
        Err(_) => {
            error = Some("power history: no answer within 5 s".into());
            Vec::new()
        }
    };
    let local = chrono::Local::now();
    let offset = *local.offset();
    let to = local.date_naive();
    let from = to - chrono::Duration::days(i64::from(days) - 1);
    let days = match tokio::time::timeout(limit, h.energy_per_day(from, to, offset)).await {
        Ok(Ok(d)) => d
            .into_iter()
            .map(|d| DailyView {
                date: d.day.format("%Y-%m-%d").to_string(),
                energy_kwh: d.energy_kwh,
                sessions: d.sessions,
            })
            .collect(),
        Ok(Err(e)) => {
            error.get_or_insert(format!("energy per day: {}", e.chain()));
            Vec::new()
        }
        Err(_) => {
            error.get_or_insert("energy per day: no answer within 5 s".into());
            Vec::new()
        }
    };
    StoredHistory { power, days, error }
}

/// Live updates: `status` events carry a [`StatusView`] (at most 4 a second, and at least every
/// 5 s), `event` events carry the engine's events (slave linked, offer changed, session, fault, …).
#[utoipa::path(get, path = "/api/v2/events", tag = "events",
    responses((status = 200, description = "text/event-stream of `status` and `event` messages", content_type = "text/event-stream"),
        (status = 429, description = "too many event streams are open", body = ErrorBody)))]
async fn events(State(st): State<AppState>) -> Response {
    let Ok(permit) = st.sse_slots.clone().try_acquire_owned() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "at most {MAX_EVENT_STREAMS} event streams may be open at once; close a page and retry"
            ),
        );
    };
    let stream = event_stream(st).map(move |e| {
        // The slot is released when the client goes away and the stream is dropped.
        let _slot = &permit;
        e
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Concurrent `/api/v2/events` streams allowed.
pub(crate) const MAX_EVENT_STREAMS: usize = 64;

fn event_stream(st: AppState) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let watch = st.engine.watch_status();
    let ev = st.engine.subscribe();
    let first = status_event(&st, &st.engine.status());
    futures::stream::unfold(
        (st, watch, ev, Some(first), tokio::time::Instant::now()),
        |(st, mut watch, mut ev, pending, mut last)| async move {
            if let Some(e) = pending {
                return Some((Ok(e), (st, watch, ev, None, last)));
            }
            loop {
                let wait = tokio::time::sleep_until(last + Duration::from_millis(250));
                tokio::select! {
                    r = async { wait.await; tokio::time::timeout(Duration::from_secs(5), watch.changed()).await } => {
                        match r {
                            Ok(Err(_)) => return None,
                            _ => {
                                last = tokio::time::Instant::now();
                                let s = watch.borrow_and_update().clone();
                                let e = status_event(&st, &s);
                                return Some((Ok(e), (st, watch, ev, None, last)));
                            }
                        }
                    }
                    r = ev.recv() => match r {
                        Ok(e) => {
                            if matches!(e, twc_core::model::Event::Reading { .. } | twc_core::model::Event::SlaveStatus { .. }) {
                                continue;
                            }
                            let data = serde_json::to_string(&e).unwrap_or_else(|_| "{}".into());
                            return Some((Ok(SseEvent::default().event("event").data(data)), (st, watch, ev, None, last)));
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                }
            }
        },
    )
}

fn status_event(st: &AppState, s: &Status) -> SseEvent {
    let data = serde_json::to_string(&status_view(st, s)).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event("status").data(data)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "twcmanager API", version = "2", description = "Typed API of twcmanager. Errors are `{\"error\": reason}` with a 4xx status. State-changing requests from a logged-in browser need the `X-CSRF-Token` header; scripts use `Authorization: Bearer <token>`."),
    paths(get_status, get_slaves, get_slave, slave_start, slave_stop, all_start, all_stop, get_policy,
        get_settings, patch_settings, get_charge_now, post_charge_now, delete_charge_now, get_schedules,
        put_schedules, get_offsets, put_offset, delete_offset, get_vehicles, get_history, events,
        crate::auth::session_info),
    components(schemas(ErrorBody)),
    tags((name = "status"), (name = "slaves"), (name = "policy"), (name = "settings"), (name = "charge-now"),
        (name = "schedules"), (name = "offsets"), (name = "vehicles"), (name = "history"), (name = "events"), (name = "access"))
)]
pub(crate) struct ApiDoc;

/// The amps fields whose static `maximum` ([`MAX_WIRING_AMPS`]) the served document replaces by
/// the running server's wiring limit for all TWCs: the bound the engine enforces
/// (`validate_amps`), which depends on the configuration.
pub(crate) const WIRING_BOUNDED: &[&str] = &[
    "/components/schemas/ChargeNowRequest/properties/amps",
    "/components/schemas/SettingsPatch/properties/non_scheduled_amps",
    "/components/schemas/SettingsPatch/properties/flex_amps",
    "/components/schemas/ScheduleView/properties/amps",
    "/components/schemas/ScheduleView/properties/day_amps/additionalProperties",
];

/// The document as generated, as JSON.
pub(crate) fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// Narrow every [`WIRING_BOUNDED`] field's `maximum` to `wiring`, A.
pub(crate) fn narrow_to_wiring(doc: &mut serde_json::Value, wiring: f64) {
    for p in WIRING_BOUNDED {
        if let Some(serde_json::Value::Object(s)) = doc.pointer_mut(p) {
            s.insert("maximum".into(), serde_json::json!(wiring));
        }
    }
}

async fn openapi(State(st): State<AppState>) -> Json<serde_json::Value> {
    let mut doc = document();
    narrow_to_wiring(&mut doc, ops::wiring_max_all(&st));
    Json(doc)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such route in /api/v2; see /api/v2/openapi.json",
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route; see /api/v2/openapi.json",
    )
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/status", get(get_status))
        .route("/slaves", get(get_slaves))
        .route("/slaves/start", post(all_start))
        .route("/slaves/stop", post(all_stop))
        .route("/slaves/{id}", get(get_slave))
        .route("/slaves/{id}/start", post(slave_start))
        .route("/slaves/{id}/stop", post(slave_stop))
        .route("/policy", get(get_policy))
        .route("/settings", get(get_settings).patch(patch_settings))
        .route(
            "/charge-now",
            get(get_charge_now)
                .post(post_charge_now)
                .delete(delete_charge_now),
        )
        .route("/schedules", get(get_schedules).put(put_schedules))
        .route("/offsets", get(get_offsets))
        .route("/offsets/{name}", put(put_offset).delete(delete_offset))
        .route("/vehicles", get(get_vehicles))
        .route("/history", get(get_history))
        .route("/events", get(events))
        .route("/session", get(crate::auth::session_info))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn collect_max(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("maximum").and_then(Value::as_f64) == Some(MAX_WIRING_AMPS) {
                    out.push(at.to_string());
                }
                for (k, x) in m {
                    collect_max(x, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    collect_max(x, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// Every amps field bounded by the wiring limit is narrowed in the served document, and
    /// nothing else is: a new amps field that forgets to join `WIRING_BOUNDED` fails here.
    #[test]
    fn wiring_bounded_fields_are_exactly_the_amps_fields() {
        let doc = document();
        let mut found = Vec::new();
        collect_max(&doc, "", &mut found);
        found.sort();
        let mut listed: Vec<String> = WIRING_BOUNDED.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
        let mut doc = doc;
        narrow_to_wiring(&mut doc, 32.0);
        for p in WIRING_BOUNDED {
            assert_eq!(doc.pointer(p).unwrap()["maximum"], 32.0, "{p}");
        }
    }
}
