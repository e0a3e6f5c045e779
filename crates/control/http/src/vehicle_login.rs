//! "Log in with Tesla" from the Vehicles page: `/vehicles/login` sends the browser to the
//! provider with a PKCE challenge, `/vehicles/callback` takes the code back. Both sit behind the
//! web UI's own login like every page; no token ever reaches the browser.

use crate::AppState;
use crate::util::error;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use twc_core::vehicles::{VehicleError, VehicleHandle, VehicleRequest};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/vehicles/login", get(login))
        .route("/vehicles/callback", get(callback))
        .route("/static/vehicles.js", get(vehicles_js))
}

/// The Vehicles page's cars card, kept apart from `app.js`.
const VEHICLES_JS: &str = include_str!("../assets/vehicles.js");

async fn vehicles_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        VEHICLES_JS,
    )
        .into_response()
}

/// A vehicle-task refusal as an HTTP answer.
pub(crate) fn vehicle_error(e: VehicleError) -> Response {
    let status = match e {
        VehicleError::Invalid(_) => StatusCode::BAD_REQUEST,
        VehicleError::NotFound(_) => StatusCode::NOT_FOUND,
        VehicleError::Failed(_) => StatusCode::BAD_GATEWAY,
        VehicleError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

/// The vehicles task, or 409 naming the section to enable.
pub(crate) fn handle(st: &AppState) -> Result<&VehicleHandle, Response> {
    st.vehicles.as_ref().ok_or_else(|| {
        error(
            StatusCode::CONFLICT,
            "no vehicle plugin is enabled: enable [vehicle.teslaapi] (or [vehicle.teslamate])",
        )
    })
}

#[derive(Deserialize)]
struct LoginQuery {
    plugin: Option<String>,
}

/// Where the provider sends the browser back: this server as the browser reached it.
fn callback_url(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return None;
    }
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    Some(format!("{proto}://{host}/vehicles/callback"))
}

async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let h = match handle(&st) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let Some(redirect_uri) = callback_url(&headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the request has no usable Host header",
        );
    };
    match h
        .request(VehicleRequest::LoginUrl {
            plugin: q.plugin,
            redirect_uri,
        })
        .await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => vehicle_error(e),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    plugin: Option<String>,
}

async fn callback(State(st): State<AppState>, Query(q): Query<CallbackQuery>) -> Response {
    let h = match handle(&st) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if let Some(e) = q.error {
        let d = q.error_description.unwrap_or_default();
        tracing::warn!(kind = "control", plugin = "http", error = %e, "Tesla login refused");
        return error(
            StatusCode::BAD_REQUEST,
            format!("the login was refused: {e} {d}; start it again from the Vehicles page"),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the callback needs `code` and `state` (open it only through \"Log in with Tesla\")",
        );
    };
    match h
        .request(VehicleRequest::FinishLogin {
            plugin: q.plugin,
            code,
            state,
        })
        .await
    {
        Ok(_) => Redirect::to("/vehicles?login=ok").into_response(),
        Err(e) => vehicle_error(e),
    }
}
