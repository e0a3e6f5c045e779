//! `/slaves`: the linked slaves, one slave, and start/stop (`FC B1`/`FC B2`) for one or all.

use super::{ErrorBody, try_resp};
use crate::AppState;
use crate::util::{bad, command_error, error};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use twc_core::engine::{Command, CommandError};
use twc_core::model::Status;
use twc_core::protocol::TwcId;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_slaves))
        .routes(routes!(all_start))
        .routes(routes!(all_stop))
        .routes(routes!(get_slave))
        .routes(routes!(slave_start))
        .routes(routes!(slave_stop))
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
    /// State of charge of the car at this TWC, %, from a vehicle plugin (matched by VIN);
    /// absent without one or while its data is stale.
    soc_pct: Option<f64>,
}

pub(crate) fn slave_view(x: &twc_core::model::SlaveStatus, status: &Status) -> SlaveView {
    let soc_pct = status
        .vehicles
        .iter()
        .find(|v| v.slave == Some(x.id) && !v.stale)
        .and_then(|v| v.soc_pct);
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
        soc_pct,
    }
}

/// Linked slaves.
#[utoipa::path(get, path = "/slaves", tag = "slaves", responses((status = 200, body = Vec<SlaveView>)))]
async fn get_slaves(State(st): State<AppState>) -> Json<Vec<SlaveView>> {
    let s = st.engine.status();
    Json(s.slaves.iter().map(|x| slave_view(x, &s)).collect())
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
#[utoipa::path(get, path = "/slaves/{id}", tag = "slaves",
    params(("id" = String, Path, description = "TWCID, 4 hex digits", pattern = r"^[0-9A-Fa-f]{4}$", min_length = 4, max_length = 4)),
    responses((status = 200, body = SlaveView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody)))]
async fn get_slave(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = try_resp!(parse_id(&id));
    let s = st.engine.status();
    match s.slaves.iter().find(|x| x.id == id) {
        Some(x) => Json(slave_view(x, &s)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no slave {id} is linked")),
    }
}

async fn start_stop(st: &AppState, id: Option<TwcId>, start: bool) -> Response {
    if let Some(id) = id
        && !st.engine.status().slaves.iter().any(|x| x.id == id)
    {
        return error(StatusCode::NOT_FOUND, format!("no slave {id} is linked"));
    }
    match send_start_stop(st, id, start).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => command_error(e),
    }
}

/// Send start (`FC B1`) or stop (`FC B2`) to one slave, or to every slave with `None`.
pub(crate) async fn send_start_stop(
    st: &AppState,
    id: Option<TwcId>,
    start: bool,
) -> Result<(), CommandError> {
    let cmd = if start {
        Command::StartCharging { slave: id }
    } else {
        Command::StopCharging { slave: id }
    };
    st.engine.command(cmd).await.map(|_| ())
}

/// Send start (`FC B1`) to one slave.
#[utoipa::path(post, path = "/slaves/{id}/start", tag = "slaves",
    params(("id" = String, Path, description = "TWCID, 4 hex digits", pattern = r"^[0-9A-Fa-f]{4}$", min_length = 4, max_length = 4)),
    responses((status = 204, description = "sent"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn slave_start(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = try_resp!(parse_id(&id));
    start_stop(&st, Some(id), true).await
}

/// Send stop (`FC B2`) to one slave. Teslas stay stopped until re-plugged.
#[utoipa::path(post, path = "/slaves/{id}/stop", tag = "slaves",
    params(("id" = String, Path, description = "TWCID, 4 hex digits", pattern = r"^[0-9A-Fa-f]{4}$", min_length = 4, max_length = 4)),
    responses((status = 204, description = "sent"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn slave_stop(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = try_resp!(parse_id(&id));
    start_stop(&st, Some(id), false).await
}

/// Send start to every slave.
#[utoipa::path(post, path = "/slaves/start", tag = "slaves",
    responses((status = 204, description = "sent"), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn all_start(State(st): State<AppState>) -> Response {
    start_stop(&st, None, true).await
}

/// Send stop to every slave.
#[utoipa::path(post, path = "/slaves/stop", tag = "slaves",
    responses((status = 204, description = "sent"), (status = 409, description = "cannot be done now (no slave is linked, …)", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn all_stop(State(st): State<AppState>) -> Response {
    start_stop(&st, None, false).await
}
