//! The typed, versioned API under `/api/v2`, its OpenAPI document (generated from these types
//! and handlers by utoipa) and the live event stream (Server-Sent Events).
//!
//! One module per resource. Each registers its routes with `utoipa_axum::routes!`, which adds
//! the axum route and its OpenAPI operation in one step, so neither can be forgotten. Paths in
//! `#[utoipa::path]` are relative to `/api/v2`.

pub(crate) mod charge_now;
mod energy;
mod events;
mod history;
pub(crate) mod load_points;
pub(crate) mod offsets;
mod outlook;
mod plans;
mod policy;
pub(crate) mod schedules;
mod sessions;
pub(crate) mod settings;
pub(crate) mod slaves;
mod status;
mod units;
mod vehicles;

pub(crate) use events::MAX_EVENT_STREAMS;
pub(crate) use policy::policy_action;

use crate::AppState;
use crate::ops;
use crate::util::error;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An error: always a JSON object with a reason.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)] // for the document: exactly one key
pub(crate) struct ErrorBody {
    /// What was wrong.
    error: String,
}

/// The upper bound the static document gives every amps field: the largest wiring limit a
/// configuration may set (`[wiring] max_amps_all_twcs`). The served document narrows it to the
/// running server's own limit (see [`narrow_to_wiring`]).
pub(crate) const MAX_WIRING_AMPS: f64 = 240.0;

#[derive(OpenApi)]
#[openapi(
    info(title = "twcmanager API", version = "2", description = "Typed API of twcmanager. Errors are `{\"error\": reason}` with a 4xx status. State-changing requests from a logged-in browser need the `X-CSRF-Token` header; scripts use `Authorization: Bearer <token>`."),
    components(schemas(ErrorBody)),
    tags((name = "status"), (name = "slaves"), (name = "load-points"), (name = "policy"), (name = "settings"), (name = "charge-now"),
        (name = "schedules"), (name = "offsets"), (name = "plans"), (name = "vehicles"), (name = "history"), (name = "events"), (name = "access"))
)]
pub(crate) struct ApiDoc;

/// Every documented route of `/api/v2` (paths relative to it), each with its operation.
fn resources() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(status::routes())
        .merge(slaves::routes())
        .merge(load_points::routes())
        .merge(policy::routes())
        .merge(settings::routes())
        .merge(charge_now::routes())
        .merge(schedules::routes())
        .merge(offsets::routes())
        .merge(plans::routes())
        .merge(vehicles::routes())
        .merge(history::routes())
        .merge(sessions::routes())
        .merge(events::routes())
        .routes(routes!(crate::auth::session_info))
}

/// A whole number as JSON Schema's `integer` means it: `270` and `270.0` alike (serde's own
/// unsigned integers refuse `270.0`, which schema-driven clients may send).
pub(super) fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
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
pub(super) fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, Response> {
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

pub(crate) use try_resp;

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
    let api = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v2", resources())
        .into_openapi();
    serde_json::to_value(api).unwrap_or_default()
}

/// Narrow every [`WIRING_BOUNDED`] field's `maximum` to `wiring`, A.
pub(crate) fn narrow_to_wiring(doc: &mut serde_json::Value, wiring: f64) {
    for p in WIRING_BOUNDED {
        if let Some(serde_json::Value::Object(s)) = doc.pointer_mut(p) {
            s.insert("maximum".into(), serde_json::json!(wiring));
        }
    }
}

/// The document with the running server's wiring limit.
fn openapi(st: &AppState, doc: &serde_json::Value) -> Json<serde_json::Value> {
    let mut doc = doc.clone();
    narrow_to_wiring(&mut doc, ops::wiring_max_all(st));
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

/// The `/api/v2` routes (the caller nests them there), `openapi.json`, and JSON 404/405s.
pub(crate) fn router() -> Router<AppState> {
    let (routes, _) = resources().split_for_parts();
    let doc = Arc::new(document());
    routes
        .route(
            "/openapi.json",
            get(move |State(st): State<AppState>| {
                let doc = doc.clone();
                async move { openapi(&st, &doc) }
            }),
        )
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
