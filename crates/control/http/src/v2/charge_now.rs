//! `/charge-now`: Charge Now, started, read and cancelled.

use super::settings::{SettingsView, settings_view};
use super::{ErrorBody, body, try_resp, whole};
use crate::AppState;
use crate::util::{bad, command_error};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use twc_core::engine::Command;
use twc_core::model::Settings;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_charge_now, post_charge_now, delete_charge_now))
}

/// Charge Now, while active.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChargeNowView {
    /// Amps for the whole site.
    pub(super) amps: f64,
    /// Unix time it ends.
    pub(super) until_unix: i64,
    /// Seconds left.
    pub(super) remaining_secs: i64,
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
#[utoipa::path(get, path = "/charge-now", tag = "charge-now",
    responses((status = 200, body = Option<ChargeNowView>)))]
async fn get_charge_now(State(st): State<AppState>) -> Json<Option<ChargeNowView>> {
    Json(settings_view(&st.engine.status().settings).charge_now)
}

/// Start Charge Now.
#[utoipa::path(post, path = "/charge-now", tag = "charge-now", request_body = ChargeNowRequest,
    responses((status = 200, body = SettingsView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn post_charge_now(
    State(st): State<AppState>,
    r: Result<Json<ChargeNowRequest>, JsonRejection>,
) -> Response {
    let c = try_resp!(body(r));
    if c.duration_secs == 0 || c.duration_secs > MAX_CHARGE_NOW_SECS {
        return bad(format!("duration_secs must be 1 … {MAX_CHARGE_NOW_SECS}"));
    }
    match start(&st, c.amps, Duration::from_secs(c.duration_secs)).await {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(r) => r,
    }
}

/// Cancel Charge Now.
#[utoipa::path(delete, path = "/charge-now", tag = "charge-now",
    responses((status = 200, body = SettingsView), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn delete_charge_now(State(st): State<AppState>) -> Response {
    match cancel(&st).await {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(r) => r,
    }
}

/// Start Charge Now: `amps` for the whole site for `duration` (the engine checks the amps).
pub(crate) async fn start(
    st: &AppState,
    amps: f64,
    duration: Duration,
) -> Result<Settings, Response> {
    st.engine
        .command(Command::ChargeNow { amps, duration })
        .await
        .map_err(command_error)
}

/// End Charge Now.
pub(crate) async fn cancel(st: &AppState) -> Result<Settings, Response> {
    st.engine
        .command(Command::CancelChargeNow)
        .await
        .map_err(command_error)
}
