//! `/offsets`: named consumption offsets.

use super::units::{UnitView, value_per_unit};
use super::{ErrorBody, body, try_resp};
use crate::AppState;
use crate::ops;
use crate::util::{command_error, error};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use twc_core::engine::{Command, CommandError};
use twc_core::model::{ConsumptionOffset, OffsetUnit, Settings, bounds};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_offsets))
        .routes(routes!(put_offset, delete_offset))
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
/// ±400 A or ±100000 W (`bounds::MAX_OFFSET_A`, `bounds::MAX_OFFSET_W`; the engine checks). Its schema is written out (see
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
            (bounds::MAX_OFFSET_A, bounds::MAX_OFFSET_W),
            true,
        )
    }
}

impl ToSchema for OffsetRequest {}

/// Named consumption offsets.
#[utoipa::path(get, path = "/offsets", tag = "offsets",
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
#[utoipa::path(put, path = "/offsets/{name}", tag = "offsets", request_body = OffsetRequest,
    params(("name" = String, Path, description = "offset name: 1 to 31 characters, not only spaces, none of `@#$%^&*\"+<>;/` nor control characters", pattern = r#"^[^\s@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f][^@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f]{0,30}$"#, min_length = 1, max_length = 31)),
    responses((status = 204, description = "stored"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn put_offset(
    State(st): State<AppState>,
    Path(name): Path<String>,
    r: Result<Json<OffsetRequest>, JsonRejection>,
) -> Response {
    let v = try_resp!(body(r));
    let unit = match v.unit {
        UnitView::A => OffsetUnit::A,
        UnitView::W => OffsetUnit::W,
    };
    let o = ConsumptionOffset {
        value: v.value,
        unit,
    };
    match store(&st, name, o).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Add or replace the offset `name`; the engine's validator decides (name, value, how many).
pub(crate) async fn store(
    st: &AppState,
    name: String,
    o: ConsumptionOffset,
) -> Result<Settings, Response> {
    ops::apply(
        st,
        Command::SetOffset {
            name,
            offset: Some(o),
        },
    )
    .await
}

/// Delete an offset.
#[utoipa::path(delete, path = "/offsets/{name}", tag = "offsets",
    params(("name" = String, Path, description = "offset name: 1 to 31 characters, not only spaces, none of `@#$%^&*\"+<>;/` nor control characters", pattern = r#"^[^\s@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f][^@#$%^&*"+<>;/\x00-\x1f\x7f-\x9f]{0,30}$"#, min_length = 1, max_length = 31)),
    responses((status = 204, description = "deleted"), (status = 404, description = "not found", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn delete_offset(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    let missing = move |_| error(StatusCode::NOT_FOUND, format!("no offset named {n:?}"));
    match remove(&st, name, missing).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Why an offset to delete is not there.
pub(crate) enum Missing {
    /// No offset is stored at all.
    NoOffsets,
    /// Others are, this name is not.
    NoSuchName,
}

/// Delete the offset `name`; `missing` answers when it is not there. The engine refuses to
/// delete an offset it does not have; which answer that is comes from its settings then.
pub(crate) async fn remove(
    st: &AppState,
    name: String,
    missing: impl FnOnce(Missing) -> Response,
) -> Result<Settings, Response> {
    match st
        .engine
        .command(Command::SetOffset {
            name: name.clone(),
            offset: None,
        })
        .await
    {
        Ok(s) => Ok(s),
        Err(e @ CommandError::Invalid(_)) => {
            let offsets = st.engine.status().settings.consumption_offsets;
            if offsets.is_empty() {
                Err(missing(Missing::NoOffsets))
            } else if !offsets.contains_key(&name) {
                Err(missing(Missing::NoSuchName))
            } else {
                Err(command_error(e))
            }
        }
        Err(e) => Err(command_error(e)),
    }
}
