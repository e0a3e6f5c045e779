//! Small helpers: loose number parsing (TWCManager's `int("16")`), error bodies, secret scrubbing.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use twc_core::engine::CommandError;

/// `{"error": msg}` with a status.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// The most of a refused body read to its end before answering 413.
const DRAIN_MAX: u64 = 16 * 1024 * 1024;

/// Refuse a body whose declared length is larger than the route accepts (`/api/…` takes
/// `compat_max_body_bytes`, the rest `max_body_bytes`) with a JSON 413, after reading it to its
/// end: answering while the client is still sending and closing the connection makes the client
/// see a reset instead of the answer. (A chunked body without a length meets the extractors'
/// limit instead.)
pub(crate) async fn refuse_oversized(
    axum::extract::State(st): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let limit = if path.starts_with("/api/") && !path.starts_with("/api/v2") {
        st.cfg.compat_max_body_bytes
    } else {
        st.cfg.max_body_bytes
    } as u64;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => {
            if n <= DRAIN_MAX {
                let _ = axum::body::to_bytes(req.into_body(), n as usize).await;
            }
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body ({n} bytes) is larger than this server accepts here ({limit} bytes)"
                ),
            )
        }
        _ => next.run(req).await,
    }
}

/// Refusals that axum's extractors and layers answer in plain text (413 too large, 415, 400 "failed
/// to buffer the body"…) become `{"error": "<the text>"}` like every other refusal. Responses with
/// an empty body (TWCManager's 404s) and non-text ones are left alone.
pub(crate) async fn json_refusals(resp: Response) -> Response {
    let status = resp.status();
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Rejection texts are short; anything longer is cut.
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let msg = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_string()
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("{text}: the request body is larger than this server accepts")
    } else {
        text
    };
    let mut out = error(status, msg);
    // Keep headers such as Retry-After or WWW-Authenticate, not the old length and type.
    for (k, v) in parts.headers.iter() {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    out
}

/// 400 with a reason.
pub(crate) fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

/// Map an engine refusal: invalid → 400, unavailable → 409, busy → 429, stopped → 503.
pub(crate) fn command_error(e: CommandError) -> Response {
    match e {
        CommandError::Invalid(m) => bad(m),
        CommandError::Unavailable(m) => error(StatusCode::CONFLICT, m),
        CommandError::Busy(m) => error(StatusCode::TOO_MANY_REQUESTS, m),
        CommandError::Stopped => error(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped"),
        other => error(StatusCode::CONFLICT, other.to_string()),
    }
}

/// Parse a POST body as a JSON object, as TWCManager does (Content-Type ignored).
pub(crate) fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("Invalid JSON: the body is empty".into());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("Invalid JSON: the body must be a JSON object".into()),
        Err(e) => Err(format!("Invalid JSON: {e}")),
    }
}

/// Python's `int(x)` for JSON values: integers, floats (truncated), integer strings.
/// Booleans, null, arrays and objects are refused.
pub(crate) fn loose_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Python's `float(x)` for JSON values: numbers and numeric strings (finite only).
pub(crate) fn loose_f64(v: &Value) -> Option<f64> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    f.is_finite().then_some(f)
}

/// A JSON boolean, or 0/1.
pub(crate) fn loose_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// Key name fragments that mark a secret (compared case-insensitively, ignoring `_` and `-`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "dsn",
    "credential",
    "cookie",
    "bearer",
    "private",
    "signature",
    "salt",
];

fn is_secret_key(k: &str) -> bool {
    let norm: String = k
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_WORDS.iter().any(|w| norm.contains(w))
}

fn url_has_credentials(s: &str) -> bool {
    // scheme://user:pass@host or scheme://token@host
    if let Some(rest) = s.split_once("://").map(|(_, r)| r) {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        return authority.contains('@');
    }
    false
}

/// Replace every secret in a configuration tree by `"***"`: values under keys that look like a
/// secret (password, token, secret, key, dsn, …), values already masked as `***` by
/// [`twc_core::plugin::Secret`], and URLs carrying credentials. Empty strings and `null` stay as
/// they are, so a user can see that a secret is not set.
pub fn scrub_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let nv = if is_secret_key(k) {
                        match v {
                            Value::Null => Value::Null,
                            Value::String(s) if s.is_empty() => Value::String(String::new()),
                            Value::Bool(b) => Value::Bool(*b),
                            Value::Object(_) => scrub_secrets(v),
                            Value::Array(a) if a.is_empty() => Value::Array(Vec::new()),
                            _ => Value::String("***".into()),
                        }
                    } else {
                        scrub_secrets(v)
                    };
                    (k.clone(), nv)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub_secrets).collect()),
        Value::String(s) if url_has_credentials(s) => Value::String("***".into()),
        other => other.clone(),
    }
}

/// Python `str(value)` for `setSetting`.
pub(crate) fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Round to 2 decimals.
pub(crate) fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0 + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_catches_every_kind_of_secret() {
        let cfg = json!({
            "control": {"http": {"password": "hunter2", "port": 8080, "tokens": ["abcdefabcdefabcdef"]}},
            "logging": {"sentry": {"DSN": "https://abc@sentry.io/1"}, "mysql": {"url": "mysql://root:pw@db/x"}},
            "vehicle": {"teslaapi": {"refreshToken": "r", "client_secret": "s", "apiKey": "k", "encryption_key": "e"}},
            "status": {"mqtt": {"password": "***", "username": "u", "longLivedToken": "t"}},
            "ems": {"url": {"url": "http://192.168.1.2/api", "pass": ""}},
        });
        let s = scrub_secrets(&cfg);
        let text = s.to_string();
        for leak in [
            "hunter2",
            "abcdefabcdefabcdef",
            "abc@",
            "root:pw",
            "\"r\"",
            "\"s\"",
            "\"k\"",
            "\"e\"",
            "\"t\"",
        ] {
            assert!(!text.contains(leak), "{leak} leaked in {text}");
        }
        assert_eq!(s["control"]["http"]["port"], 8080);
        assert_eq!(s["status"]["mqtt"]["username"], "u");
        assert_eq!(s["ems"]["url"]["url"], "http://192.168.1.2/api");
        assert_eq!(s["ems"]["url"]["pass"], "");
    }

    #[test]
    fn loose_numbers_follow_python() {
        assert_eq!(loose_int(&json!("16")), Some(16));
        assert_eq!(loose_int(&json!(16.7)), Some(16));
        assert_eq!(loose_int(&json!("16.5")), None);
        assert_eq!(loose_int(&json!(null)), None);
        assert_eq!(loose_int(&json!(true)), None);
        assert_eq!(loose_f64(&json!("1e400")), None);
        assert_eq!(loose_f64(&json!(" 2.5 ")), Some(2.5));
    }
}
