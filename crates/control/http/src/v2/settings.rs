//! `/settings`: the runtime settings, and PATCH as one atomic engine command.

use super::charge_now::ChargeNowView;
use super::units::{GridLimitView, UnitView};
use super::{ErrorBody, body, try_resp};
use crate::AppState;
use crate::ops;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twc_core::engine::Command;
use twc_core::model::{GridLimit, HomeLocation, OffsetUnit, Settings, bounds};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, patch_settings))
}

/// Home location.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct HomeView {
    /// Latitude (−90..90).
    #[schema(minimum = -90.0, maximum = 90.0)]
    lat: f64,
    /// Longitude (−180..180).
    #[schema(minimum = -180.0, maximum = 180.0)]
    lon: f64,
}

/// Runtime settings the UI changes.
#[derive(Serialize, ToSchema)]
pub(crate) struct SettingsView {
    /// `charge`, `stop` or `green`.
    non_scheduled_action: String,
    /// Amps for `charge`.
    non_scheduled_amps: f64,
    /// Charge Now, when active.
    pub(super) charge_now: Option<ChargeNowView>,
    /// Home location.
    home: Option<HomeView>,
    /// Green tracking: amps a charging car may draw from the grid to keep charging.
    flex_amps: f64,
    /// Runtime grid-import limit (never above the configuration's `[grid]` limit).
    max_grid_import: Option<GridLimitView>,
    /// VINs allowed to charge (empty = every car not denied).
    vin_allow: Vec<String>,
    /// VINs never allowed to charge.
    vin_deny: Vec<String>,
}

pub(super) fn settings_view(s: &twc_core::model::Settings) -> SettingsView {
    let now = chrono::Utc::now().timestamp();
    SettingsView {
        non_scheduled_action: s.non_scheduled_action.clone(),
        non_scheduled_amps: s.non_scheduled_amps,
        charge_now: s
            .charge_now
            .filter(|c| c.until_unix > now)
            .map(|c| ChargeNowView {
                amps: c.amps,
                until_unix: c.until_unix,
                remaining_secs: c.until_unix - now,
            }),
        home: s.home.map(|h| HomeView {
            lat: h.lat,
            lon: h.lon,
        }),
        flex_amps: s.flex_amps,
        max_grid_import: s.max_grid_import.map(|g| GridLimitView {
            value: g.value,
            unit: if g.unit == OffsetUnit::A {
                UnitView::A
            } else {
                UnitView::W
            },
        }),
        vin_allow: s.vin_allow.clone(),
        vin_deny: s.vin_deny.clone(),
    }
}

/// Runtime settings.
#[utoipa::path(get, path = "/settings", tag = "settings",
    responses((status = 200, body = SettingsView)))]
async fn get_settings(State(st): State<AppState>) -> Response {
    let s = st.engine.settings();
    Json(settings_view(&s)).into_response()
}

/// A partial settings change: absent fields stay as they are.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsPatch {
    /// `charge`, `stop` or `green`.
    #[schema(value_type = Option<NonScheduledAction>)]
    non_scheduled_action: Option<String>,
    /// Amps for `charge` (0 … the wiring limit for all TWCs).
    #[schema(minimum = 0.0, maximum = 240.0)]
    non_scheduled_amps: Option<f64>,
    /// Home location; `null` leaves it, use DELETE-like `clear_home` to unset.
    home: Option<HomeView>,
    /// True to forget the home location.
    #[serde(default)]
    clear_home: bool,
    /// Green-tracking flex amps (0 … the wiring limit for all TWCs).
    #[schema(minimum = 0.0, maximum = 240.0)]
    flex_amps: Option<f64>,
    /// Runtime grid-import limit.
    max_grid_import: Option<GridLimitView>,
    /// True to remove the runtime grid-import limit (the configuration's still applies).
    #[serde(default)]
    clear_max_grid_import: bool,
    /// New VIN allow list (at most 100 VINs of 1 to 17 letters and digits).
    #[schema(schema_with = vin_list)]
    vin_allow: Option<Vec<String>>,
    /// New VIN deny list (at most 100 VINs of 1 to 17 letters and digits).
    #[schema(schema_with = vin_list)]
    vin_deny: Option<Vec<String>>,
}

impl SettingsPatch {
    /// A change of the home location only.
    pub(crate) fn home(lat: f64, lon: f64) -> Self {
        SettingsPatch {
            home: Some(HomeView { lat, lon }),
            ..SettingsPatch::default()
        }
    }
}

/// What to do outside a schedule: TWCManager's non-scheduled action.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used; the value travels as a string to the engine
pub(crate) enum NonScheduledAction {
    /// Charge at `non_scheduled_amps`.
    Charge,
    /// Do not charge.
    Stop,
    /// Follow the green surplus.
    Green,
}

/// A VIN list: what the engine's validator accepts (`bounds::MAX_VINS`).
fn vin_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(17))
                .pattern(Some("^[A-Za-z0-9]{1,17}$")),
        )
        .max_items(Some(bounds::MAX_VINS))
        .build()
}

/// Change settings. The engine validates; a refused value changes nothing.
#[utoipa::path(patch, path = "/settings", tag = "settings", request_body = SettingsPatch,
    responses((status = 200, body = SettingsView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn patch_settings(
    State(st): State<AppState>,
    r: Result<Json<SettingsPatch>, JsonRejection>,
) -> Response {
    let p = try_resp!(body(r));
    match patch(&st, p).await {
        Ok(s) => Json(settings_view(&s)).into_response(),
        Err(r) => r,
    }
}

/// Apply a settings change as one merge patch, which the engine applies to its settings as they
/// are then and validates as a whole: a concurrent change (another PATCH, MQTT, TWCManager's
/// API) is never overwritten by a stale copy, and a refused value changes nothing.
pub(crate) async fn patch(st: &AppState, p: SettingsPatch) -> Result<Settings, Response> {
    ops::apply(st, Command::PatchSettings(settings_merge_patch(p))).await
}

/// The RFC 7386 merge patch (`Command::PatchSettings`) of a [`SettingsPatch`]: only the
/// fields it names; `clear_*` win over a value given with them.
fn settings_merge_patch(p: SettingsPatch) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_string(), v);
    };
    if let Some(a) = p.flex_amps {
        put("flex_amps", serde_json::json!(a));
    }
    if p.clear_max_grid_import {
        put("max_grid_import", serde_json::Value::Null);
    } else if let Some(g) = p.max_grid_import {
        let unit = if g.unit == UnitView::A {
            OffsetUnit::A
        } else {
            OffsetUnit::W
        };
        put(
            "max_grid_import",
            serde_json::json!(GridLimit {
                value: g.value,
                unit
            }),
        );
    }
    let upper =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|x| x.to_ascii_uppercase()).collect() };
    if let Some(v) = p.vin_allow {
        put("vin_allow", serde_json::json!(upper(v)));
    }
    if let Some(v) = p.vin_deny {
        put("vin_deny", serde_json::json!(upper(v)));
    }
    if let Some(a) = p.non_scheduled_action {
        put("non_scheduled_action", serde_json::json!(a));
    }
    if let Some(a) = p.non_scheduled_amps {
        put("non_scheduled_amps", serde_json::json!(a));
    }
    if p.clear_home {
        put("home", serde_json::Value::Null);
    } else if let Some(h) = p.home {
        put(
            "home",
            serde_json::json!(HomeLocation {
                lat: h.lat,
                lon: h.lon
            }),
        );
    }
    serde_json::Value::Object(m)
}
