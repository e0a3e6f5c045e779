//! `GET /vehicles`: cars seen since start.

use crate::AppState;
use crate::recorder::VehicleSeen;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use twc_core::vehicles::{CarAction, VehicleRequest};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_vehicles))
        .routes(routes!(get_cars))
        .routes(routes!(car_command))
}

/// What the vehicle plugins know: accounts (logged in, can command; never a token) and every
/// car with its state of charge, limit, where it is, its TWC and the last command and result.
#[utoipa::path(get, path = "/vehicles/cars", tag = "vehicles",
    responses((status = 200, description = "`{accounts, vehicles}`; both empty when no vehicle plugin is enabled", body = Object)))]
async fn get_cars(State(st): State<AppState>) -> Response {
    match &st.vehicles {
        Some(h) => Json(h.overview()).into_response(),
        None => Json(twc_core::vehicles::VehicleOverview::default()).into_response(),
    }
}

/// A command to a car.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CarCommand {
    /// `start`, `stop`, `set_limit` (value = %, 50–100), `set_amps` (value = A, 1–48) or `wake`.
    command: String,
    /// The percent or amps.
    value: Option<u8>,
}

/// Send a command to one car (`vin`), or `all` for every car at home, through its vehicle API.
#[utoipa::path(post, path = "/vehicles/{vin}/command", tag = "vehicles",
    params(("vin" = String, Path, description = "VIN, or `all`", min_length = 1, max_length = 17)),
    request_body = CarCommand,
    responses((status = 200, description = "done: `{result}`", body = Object), (status = 400, description = "refused: the reason is in `error`", body = super::ErrorBody), (status = 404, description = "no such car", body = super::ErrorBody), (status = 409, description = "no vehicle plugin is enabled", body = super::ErrorBody), (status = 413, description = "body too large", body = super::ErrorBody), (status = 415, description = "not JSON", body = super::ErrorBody), (status = 502, description = "the car or its API failed: the reason is in `error`", body = super::ErrorBody), (status = 503, description = "the vehicles task has stopped", body = super::ErrorBody)))]
async fn car_command(
    State(st): State<AppState>,
    Path(vin): Path<String>,
    body: Result<Json<CarCommand>, JsonRejection>,
) -> Response {
    let c = match super::body(body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let action = match (c.command.as_str(), c.value) {
        ("start", None) => CarAction::Start,
        ("stop", None) => CarAction::Stop,
        ("wake", None) => CarAction::Wake,
        ("set_limit", Some(v)) => CarAction::SetLimit(v),
        ("set_amps", Some(v)) => CarAction::SetAmps(v),
        ("set_limit" | "set_amps", None) => {
            return crate::util::bad(format!("{} needs `value`", c.command));
        }
        ("start" | "stop" | "wake", Some(_)) => {
            return crate::util::bad(format!("{} takes no `value`", c.command));
        }
        (other, _) => {
            return crate::util::bad(format!(
                "unknown command {other:?}: use start, stop, set_limit, set_amps or wake"
            ));
        }
    };
    let h = match crate::vehicle_login::handle(&st) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let vin = (!vin.eq_ignore_ascii_case("all")).then_some(vin);
    match h.request(VehicleRequest::Command { vin, action }).await {
        Ok(result) => Json(serde_json::json!({ "result": result })).into_response(),
        Err(e) => crate::vehicle_login::vehicle_error(e),
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
#[utoipa::path(get, path = "/vehicles", tag = "vehicles", responses((status = 200, body = Vec<VehicleView>)))]
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
