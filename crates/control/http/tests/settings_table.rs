//! HTTP accepts and refuses settings exactly as the shared table says (`twc_testkit::settings`),
//! as the engine and MQTT do: the HTTP layer only parses, the engine's one validator decides, and
//! a refusal reaches the client as a 400 (or 422) carrying the engine's reason, never a 500.
//!
//! Each case goes through every route that can express it: `PATCH /api/v2/settings`, `POST
//! /api/v2/charge-now` and `/api/chargeNow`, `PUT /api/v2/schedules`, `PUT /api/v2/offsets/{name}`
//! and `/api/addConsumptionOffset`, `/api/setLatLon`, `/api/setSetting`. Sharing priorities have
//! no HTTP route; those cases are the only ones skipped.

use serde_json::{Value, json};
use std::time::Duration;
use twc_control_http::HttpConfig;
use twc_core::engine::{Command, EngineHandle, patch_settings};
use twc_core::model::Settings;
use twc_testkit::settings::{SettingsCase, check_outcome, engine_for_cases, settings_cases};

/// Top-level settings keys no HTTP route changes.
const NO_HTTP_ROUTE: &[&str] = &["priorities"];

/// Keys `PATCH /api/v2/settings` takes as they are in `Settings`.
const V2_PATCH_KEYS: &[&str] = &[
    "non_scheduled_amps",
    "non_scheduled_action",
    "flex_amps",
    "home",
    "max_grid_import",
    "vin_allow",
    "vin_deny",
];

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// Send one request: `Ok` on 2xx, `Err(reason)` on 400/422, a panic-worthy `Err` otherwise.
    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Result<(), String> {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        if status.is_success() {
            return Ok(());
        }
        let text = r.text().await.unwrap_or_default();
        if status == 400 || status == 422 {
            let reason = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(reason);
        }
        Err(format!(
            "UNEXPECTED STATUS {status} from {method} {path}: {text}"
        ))
    }
}

/// Percent-encode a path segment (every byte but letters and digits).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every route that expresses `case`, each with the outcome it gave; empty when none does.
async fn run(
    api: &Api,
    h: &EngineHandle,
    case: &SettingsCase,
) -> Vec<(String, Result<(), String>)> {
    use reqwest::Method;
    let mut out = Vec::new();
    let m = case.patch.as_object().expect("a case is a JSON object");
    let Some((key, value)) = m.iter().next() else {
        out.push((
            "PATCH /api/v2/settings".into(),
            api.send(Method::PATCH, "/api/v2/settings", &json!({}))
                .await,
        ));
        return out;
    };
    assert_eq!(m.len(), 1, "{}: one key per case", case.name);
    let reset = || async {
        h.command(Command::ReplaceSettings(Box::default()))
            .await
            .unwrap();
    };
    match key.as_str() {
        k if V2_PATCH_KEYS.contains(&k) => {
            out.push((
                "PATCH /api/v2/settings".into(),
                api.send(Method::PATCH, "/api/v2/settings", &case.patch)
                    .await,
            ));
            if k == "home" {
                reset().await;
                out.push((
                    "POST /api/setLatLon".into(),
                    api.send(Method::POST, "/api/setLatLon", value).await,
                ));
            }
        }
        "charge_now" => {
            let amps = value["amps"].as_f64().unwrap();
            let body = json!({"amps": amps, "duration_secs": 3600});
            out.push((
                "POST /api/v2/charge-now".into(),
                api.send(Method::POST, "/api/v2/charge-now", &body).await,
            ));
            reset().await;
            let body = json!({"chargeNowRate": amps, "chargeNowDuration": 3600});
            out.push((
                "POST /api/chargeNow".into(),
                api.send(Method::POST, "/api/chargeNow", &body).await,
            ));
        }
        "schedule" => {
            // The route replaces the whole schedule: the case's patch over the default one.
            let whole = patch_settings(&Settings::default(), case.patch.clone()).unwrap();
            let body = serde_json::to_value(&whole.schedule).unwrap();
            out.push((
                "PUT /api/v2/schedules".into(),
                api.send(Method::PUT, "/api/v2/schedules", &body).await,
            ));
        }
        "consumption_offsets" => {
            let offsets = value.as_object().unwrap();
            let mut got = Ok(());
            for (name, o) in offsets {
                let path = format!("/api/v2/offsets/{}", segment(name));
                got = api.send(Method::PUT, &path, o).await;
                if got.is_err() {
                    break;
                }
            }
            out.push(("PUT /api/v2/offsets/{name}".into(), got));
            reset().await;
            let mut got = Ok(());
            for (name, o) in offsets {
                let body =
                    json!({"offsetName": name, "offsetValue": o["value"], "offsetUnit": o["unit"]});
                got = api
                    .send(Method::POST, "/api/addConsumptionOffset", &body)
                    .await;
                if got.is_err() {
                    break;
                }
            }
            out.push(("POST /api/addConsumptionOffset".into(), got));
        }
        "extra" => {
            let mut got = Ok(());
            for (k, v) in value.as_object().unwrap() {
                let body = json!({"setting": k, "value": v});
                got = api.send(Method::POST, "/api/setSetting", &body).await;
                if got.is_err() {
                    break;
                }
            }
            out.push(("POST /api/setSetting".into(), got));
        }
        k if NO_HTTP_ROUTE.contains(&k) => {}
        k => panic!(
            "{}: no HTTP route is mapped for {k:?}; add one here",
            case.name
        ),
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_follows_the_shared_settings_table() {
    let eng = engine_for_cases().await;
    let h = eng.handle.clone();
    let cfg = HttpConfig {
        listen: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..HttpConfig::default()
    };
    let listener = twc_control_http::bind(&cfg).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(twc_control_http::serve_on(listener, cfg, h.clone()));
    let api = Api {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    };

    let mut wrong = Vec::new();
    let mut skipped = Vec::new();
    for case in settings_cases() {
        let outcomes = run(&api, &h, &case).await;
        if outcomes.is_empty() {
            skipped.push(case.name);
        }
        for (route, got) in outcomes {
            if let Err(e) = &got
                && e.starts_with("UNEXPECTED STATUS")
            {
                wrong.push(format!("{route}: {}: {e}", case.name));
            } else if let Err(e) = check_outcome(&case, got) {
                wrong.push(format!("{route}: {e}"));
            }
        }
        h.command(Command::ReplaceSettings(Box::default()))
            .await
            .unwrap();
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        skipped,
        ["a priority by TWCID", "a priority without a key"],
        "only the cases HTTP has no route for are skipped"
    );
    server.abort();
    h.command(Command::Shutdown).await.unwrap();
}
