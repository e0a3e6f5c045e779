//! The web UI: one page (dashboard, schedule, settings, vehicles, debug) whose assets are
//! embedded in the binary, so it works without internet access.

use crate::AppState;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");
pub(crate) const APP_JS: &str = include_str!("../assets/app.js");
pub(crate) const APP_CSS: &str = include_str!("../assets/app.css");
pub(crate) const FAVICON: &str = include_str!("../assets/favicon.svg");
pub(crate) const LOGIN_HTML: &str = include_str!("../assets/login.html");
pub(crate) const LOGIN_FAILED_HTML: &str = include_str!("../assets/login-failed.html");

pub(crate) fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

fn asset(ct: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    page(INDEX_HTML)
}

pub(crate) fn router() -> Router<AppState> {
    let mut r = Router::new();
    for p in [
        "/",
        "/policy",
        "/schedule",
        "/settings",
        "/vehicles",
        "/debug",
        "/graphs",
    ] {
        r = r.route(p, get(index));
    }
    r.route(
        "/static/app.js",
        get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
    )
    .route(
        "/static/app.css",
        get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
    )
    .route(
        "/favicon.svg",
        get(|| async { asset("image/svg+xml", FAVICON) }),
    )
}
