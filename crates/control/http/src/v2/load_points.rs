//! `/load_points`: external load points (a Tesla Wall Connector Gen3, an OCPP charger) as the
//! engine budgets them, with what each charger tells; also part of `GET /status`.

use crate::AppState;
use crate::util::{error, r2};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use twc_core::model::LoadPointStatus;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_load_points))
        .routes(routes!(get_load_point))
}

/// One temperature.
#[derive(Serialize, ToSchema)]
pub(crate) struct TemperatureView {
    /// Where (`handle`, `pcba`, `mcu`).
    name: String,
    /// °C.
    celsius: f64,
}

/// One external load point. Values the charger did not give are absent (never 0); while
/// `stale`, `draw_amps` and `power_w` are absent and the rest is its last measurement.
#[derive(Serialize, ToSchema)]
pub(crate) struct LoadPointView {
    /// Unique name, `<plugin>.<unit>` (`gen3.garage`).
    name: String,
    /// Its name as used in MQTT topics and Home Assistant ids (`gen3_garage`).
    ident: String,
    /// What kind of charger (`gen3`, `ocpp`).
    kind: String,
    /// `unknown`, `idle`, `connected`, `charging` or `error`.
    state: String,
    /// The charger's own state name (a Gen3: `charging`, `waiting_car`, …).
    state_name: Option<String>,
    /// True while it charges (fresh measurement).
    charging: bool,
    /// True when the latest measurement is missing or older than its bound: it then counts at
    /// its maximum in the budgets.
    stale: bool,
    /// When it was last measured (RFC 3339).
    measured_at: Option<String>,
    /// True when the engine's allocation is followed; false = monitored only.
    controllable: bool,
    /// The most it can draw, A.
    max_amps: f64,
    /// The least worth giving it, A.
    min_amps: f64,
    /// The current the policy gives it, A.
    allocated_amps: f64,
    /// What it counts for in the wiring and grid budgets, A.
    reserved_amps: f64,
    /// What the car draws, A (the highest phase).
    draw_amps: Option<f64>,
    /// Charging power, W.
    power_w: Option<f64>,
    /// Phases carrying current.
    phases: Option<u8>,
    /// Per-phase currents A, B, C, A (`null` where unknown).
    currents_a: Vec<Option<f64>>,
    /// Per-phase voltages A, B, C, V (`null` where unknown).
    voltages_v: Vec<Option<f64>>,
    /// Energy of the current or last session, Wh.
    session_energy_wh: Option<f64>,
    /// Length of the current or last session, s.
    session_secs: Option<f64>,
    /// Energy over its life, kWh.
    lifetime_kwh: Option<f64>,
    /// Temperatures.
    temperatures: Vec<TemperatureView>,
    /// Alerts in force.
    alerts: Vec<String>,
    /// Firmware version.
    firmware: Option<String>,
    /// Wi-Fi signal, %.
    wifi_signal_pct: Option<f64>,
    /// Wi-Fi RSSI, dBm.
    wifi_rssi_dbm: Option<f64>,
    /// A problem to look at (it does not follow the emulated meter, it is unreachable).
    problem: Option<String>,
    /// Everything the charger tells, as its plugin reported it.
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

pub(crate) fn load_point_view(l: &LoadPointStatus) -> LoadPointView {
    let v = l.view();
    LoadPointView {
        name: l.name.clone(),
        ident: l.ident(),
        kind: l.kind.clone(),
        state: l.state.as_str().into(),
        state_name: v.state_name.clone(),
        charging: l.charging(),
        stale: l.stale,
        measured_at: l.measured_at.map(|t| t.to_rfc3339()),
        controllable: l.controllable,
        max_amps: l.max.amps(),
        min_amps: l.min.amps(),
        allocated_amps: l.allocated.amps(),
        reserved_amps: l.reserved.amps(),
        draw_amps: l.draw.filter(|_| !l.stale).map(|d| d.amps()),
        power_w: l.power_w().map(r2),
        phases: v.phases,
        currents_a: v.currents_a.to_vec(),
        voltages_v: v.voltages_v.to_vec(),
        session_energy_wh: v.session_energy_wh,
        session_secs: v.session_s,
        lifetime_kwh: v.lifetime_energy_wh.map(|wh| wh / 1000.0),
        temperatures: v
            .temperatures_c
            .into_iter()
            .map(|(name, celsius)| TemperatureView { name, celsius })
            .collect(),
        alerts: v.alerts,
        firmware: v.firmware,
        wifi_signal_pct: v.wifi_signal_pct,
        wifi_rssi_dbm: v.wifi_rssi_dbm,
        problem: l.problem.clone(),
        details: l.details.clone(),
    }
}

/// External load points.
#[utoipa::path(get, path = "/load_points", tag = "load-points", responses((status = 200, body = Vec<LoadPointView>)))]
async fn get_load_points(State(st): State<AppState>) -> Json<Vec<LoadPointView>> {
    Json(
        st.engine
            .status()
            .load_points
            .iter()
            .map(load_point_view)
            .collect(),
    )
}

/// One external load point, by name (`gen3.garage`) or ident (`gen3_garage`).
#[utoipa::path(get, path = "/load_points/{name}", tag = "load-points",
    params(("name" = String, Path, description = "its name or ident")),
    responses((status = 200, body = LoadPointView), (status = 404, description = "not found", body = super::ErrorBody)))]
async fn get_load_point(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    let s = st.engine.status();
    match s
        .load_points
        .iter()
        .find(|l| l.name == name || l.ident() == name)
    {
        Some(l) => Json(load_point_view(l)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no load point {name:?} (see GET /api/v2/load_points)"),
        ),
    }
}
