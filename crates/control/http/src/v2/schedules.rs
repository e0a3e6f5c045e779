//! `/schedules`: scheduled charging.

use super::{ErrorBody, MAX_WIRING_AMPS, body, try_resp, whole};
use crate::AppState;
use crate::ops;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use twc_core::engine::Command;
use twc_core::model::{Schedule, ScheduleWindow, Settings};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_schedules, put_schedules))
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
#[utoipa::path(get, path = "/schedules", tag = "schedules",
    responses((status = 200, body = ScheduleView)))]
async fn get_schedules(State(st): State<AppState>) -> Response {
    let s = st.engine.settings();
    Json(schedule_view(&s.schedule)).into_response()
}

/// Replace the schedule.
#[utoipa::path(put, path = "/schedules", tag = "schedules", request_body = ScheduleView,
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
    match replace(&st, s).await {
        Ok(x) => Json(schedule_view(&x.schedule)).into_response(),
        Err(r) => r,
    }
}

/// Replace the schedule; the engine's validator decides (amps within the wiring limit, one
/// window per weekday, …).
pub(crate) async fn replace(st: &AppState, s: Schedule) -> Result<Settings, Response> {
    ops::apply(st, Command::SetSchedule(Box::new(s))).await
}
