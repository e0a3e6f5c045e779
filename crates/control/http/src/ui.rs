//! The web UI: one page (dashboard, schedule, settings, vehicles, events, debug) whose assets
//! are embedded in the binary, so it works without internet access. Text assets are served
//! gzip- or brotli-compressed when the browser accepts it.

use crate::AppState;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;

pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");
pub(crate) const FAVICON: &str = include_str!("../assets/favicon.svg");
pub(crate) const LOGIN_HTML: &str = include_str!("../assets/login.html");
pub(crate) const LOGIN_FAILED_HTML: &str = include_str!("../assets/login-failed.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// Static assets: (URL path, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    ("/static/app.js", JS, include_str!("../assets/app.js")),
    ("/static/pages.js", JS, include_str!("../assets/pages.js")),
    ("/static/plans.js", JS, include_str!("../assets/plans.js")),
    (
        "/static/sessions.js",
        JS,
        include_str!("../assets/sessions.js"),
    ),
    (
        "/static/loadpoints.js",
        JS,
        include_str!("../assets/loadpoints.js"),
    ),
    ("/static/charts.js", JS, include_str!("../assets/charts.js")),
    ("/static/i18n.js", JS, include_str!("../assets/i18n.js")),
    ("/static/app.css", CSS, include_str!("../assets/app.css")),
    (
        "/static/i18n/en.json",
        JSON,
        include_str!("../assets/i18n/en.json"),
    ),
    (
        "/static/i18n/de.json",
        JSON,
        include_str!("../assets/i18n/de.json"),
    ),
    (
        "/static/i18n/nl.json",
        JSON,
        include_str!("../assets/i18n/nl.json"),
    ),
    (
        "/static/vendor/uplot/uPlot.iife.min.js",
        JS,
        include_str!("../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "/static/vendor/uplot/uPlot.min.css",
        CSS,
        include_str!("../assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "/static/vendor/uplot/LICENSE",
        "text/plain; charset=utf-8",
        include_str!("../assets/vendor/uplot/LICENSE"),
    ),
    ("/favicon.svg", "image/svg+xml", FAVICON),
];

/// The UI's pages: every one is the same document; the script shows the right section.
pub(crate) const PAGES: &[&str] = &[
    "/",
    "/policy",
    "/schedule",
    "/settings",
    "/vehicles",
    "/plans",
    "/sessions",
    "/events",
    "/debug",
    "/graphs",
];

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
    for p in PAGES {
        r = r.route(p, get(index));
    }
    for &(path, ct, body) in ASSETS {
        r = r.route(path, get(move || async move { asset(ct, body) }));
    }
    r.layer(CompressionLayer::new())
}
