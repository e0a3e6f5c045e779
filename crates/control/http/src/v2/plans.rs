//! `/plans`: charge plans ("80 % by 07:00 on weekdays") with what the planner made of them.

use super::{ErrorBody, body, try_resp};
use crate::AppState;
use crate::ops;
use crate::util::error;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twc_core::engine::Command;
use twc_core::planner::{ChargePlan, Departure, PlanStatus, PlanTarget, SlotKind};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_plans))
        .routes(routes!(get_plan, put_plan, delete_plan))
}

/// What a plan must reach.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum TargetView {
    /// A state of charge, % (needs `vin` and `battery_kwh`).
    Soc {
        /// Target state of charge, % (1–100).
        #[schema(minimum = 1, maximum = 100)]
        pct: f64,
    },
    /// Energy to add, kWh.
    Energy {
        /// kWh (0 < kWh ≤ 1000).
        #[schema(exclusive_minimum = 0, maximum = 1000)]
        kwh: f64,
    },
}

/// When the car leaves.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum DepartureView {
    /// Once.
    Once {
        /// Unix seconds.
        at_unix: i64,
    },
    /// Every week on these ISO weekdays (1 = Monday … 7 = Sunday) at `minute` after local
    /// midnight.
    Weekly {
        /// ISO weekdays, at least one.
        #[schema(min_items = 1, max_items = 7)]
        weekdays: Vec<u8>,
        /// Minutes after local midnight (0–1439).
        #[schema(minimum = 0, maximum = 1439)]
        minute: u16,
    },
}

/// A charge plan to store. Either `vin` (a car a vehicle plugin knows) or `twc` (4 hex digits).
/// A state-of-charge target needs `vin` and `battery_kwh`; the engine checks and names the
/// field it refuses.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanRequest {
    /// The car's VIN.
    #[serde(default)]
    #[schema(max_length = 32)]
    vin: Option<String>,
    /// The TWC, when the car is unknown.
    #[serde(default)]
    #[schema(pattern = "^[0-9A-Fa-f]{4}$")]
    twc: Option<String>,
    /// What to reach.
    target: TargetView,
    /// When.
    departure: DepartureView,
    /// Usable battery size, kWh (for a state-of-charge target).
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    battery_kwh: Option<f64>,
    /// False keeps the plan but does not run it (default true).
    #[serde(default)]
    enabled: Option<bool>,
}

/// One planned slot.
#[derive(Serialize, ToSchema)]
pub(crate) struct SlotView {
    start_unix: i64,
    end_unix: i64,
    /// `solar` (left to the green policy) or `grid` (the planned current is offered).
    kind: String,
    /// Planned current, A.
    amps: f64,
    /// Expected energy, kWh.
    kwh: f64,
    /// Of it from solar surplus, kWh.
    solar_kwh: f64,
    /// Import price in the slot, when known.
    price_per_kwh: Option<f64>,
}

/// A plan with what the planner made of it.
#[derive(Serialize, ToSchema)]
pub(crate) struct PlanView {
    /// The plan's id.
    id: String,
    /// The plan as stored.
    plan: PlanRequest,
    /// What it does now, in words.
    state: String,
    /// The TWC it runs at now (its car is plugged in there).
    twc_now: Option<String>,
    /// The next departure, Unix seconds.
    departure_unix: Option<i64>,
    /// State of charge now, %.
    soc_pct: Option<f64>,
    /// Energy delivered for this departure, kWh.
    delivered_kwh: Option<f64>,
    /// Energy still needed with the planning margin, kWh.
    needed_kwh: f64,
    /// Energy the slots bring, kWh.
    planned_kwh: f64,
    /// Expected cost of the grid energy (`null` without prices for every grid slot).
    expected_cost: Option<f64>,
    /// Currency of the cost.
    currency: Option<String>,
    /// Expected solar share, 0–1.
    solar_share: f64,
    /// True when the target is met by departure.
    feasible: bool,
    /// The current asked for now, A.
    active_amps: Option<f64>,
    /// The slots, by start.
    slots: Vec<SlotView>,
}

fn to_request(p: &ChargePlan) -> PlanRequest {
    PlanRequest {
        vin: p.vin.clone(),
        twc: p.twc.clone(),
        target: match p.target {
            PlanTarget::Soc { pct } => TargetView::Soc { pct },
            PlanTarget::Energy { kwh } => TargetView::Energy { kwh },
        },
        departure: match &p.departure {
            Departure::Once { at_unix } => DepartureView::Once { at_unix: *at_unix },
            Departure::Weekly { weekdays, minute } => DepartureView::Weekly {
                weekdays: weekdays.clone(),
                minute: *minute,
            },
        },
        battery_kwh: p.battery_kwh,
        enabled: Some(p.enabled),
    }
}

fn view(p: &ChargePlan, s: Option<&PlanStatus>) -> PlanView {
    let o = s.map(|s| s.outcome.clone()).unwrap_or_default();
    PlanView {
        id: p.id.clone(),
        plan: to_request(p),
        state: s.map_or_else(|| "not planned yet".into(), |s| s.state.clone()),
        twc_now: s.and_then(|s| s.twc.clone()),
        departure_unix: s.and_then(|s| s.departure_unix),
        soc_pct: s.and_then(|s| s.soc_pct),
        delivered_kwh: s.and_then(|s| s.delivered_kwh),
        needed_kwh: o.needed_kwh,
        planned_kwh: o.planned_kwh,
        expected_cost: o.expected_cost,
        currency: s.and_then(|s| s.currency.clone()),
        solar_share: o.solar_share,
        feasible: o.feasible,
        active_amps: s.and_then(|s| s.active_amps),
        slots: o
            .slots
            .iter()
            .map(|x| SlotView {
                start_unix: x.start_unix,
                end_unix: x.end_unix,
                kind: match x.kind {
                    SlotKind::Solar => "solar".into(),
                    SlotKind::Grid => "grid".into(),
                },
                amps: x.amps,
                kwh: x.kwh,
                solar_kwh: x.solar_kwh,
                price_per_kwh: x.price_per_kwh,
            })
            .collect(),
    }
}

fn all(st: &AppState) -> Vec<PlanView> {
    let status = st.engine.status();
    status
        .settings
        .plans
        .iter()
        .map(|p| view(p, status.plans.iter().find(|s| s.id == p.id)))
        .collect()
}

/// Every charge plan with its slots, expected cost and solar share.
#[utoipa::path(get, path = "/plans", tag = "plans",
    responses((status = 200, body = Vec<PlanView>)))]
async fn get_plans(State(st): State<AppState>) -> Json<Vec<PlanView>> {
    Json(all(&st))
}

/// One charge plan.
#[utoipa::path(get, path = "/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "plan id: 1 to 32 letters, digits, `-` or `_`", pattern = "^[A-Za-z0-9_-]{1,32}$", min_length = 1, max_length = 32)),
    responses((status = 200, body = PlanView), (status = 404, description = "no such plan", body = ErrorBody)))]
async fn get_plan(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match all(&st).into_iter().find(|p| p.id == id) {
        Some(p) => Json(p).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no plan with id {id:?}")),
    }
}

/// Add or replace a charge plan.
#[utoipa::path(put, path = "/plans/{id}", tag = "plans", request_body = PlanRequest,
    params(("id" = String, Path, description = "plan id: 1 to 32 letters, digits, `-` or `_`", pattern = "^[A-Za-z0-9_-]{1,32}$", min_length = 1, max_length = 32)),
    responses((status = 204, description = "stored"), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody), (status = 413, description = "the body is larger than `max_body_bytes`", body = ErrorBody), (status = 415, description = "the body is not `application/json`", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn put_plan(
    State(st): State<AppState>,
    Path(id): Path<String>,
    r: Result<Json<PlanRequest>, JsonRejection>,
) -> Response {
    let v = try_resp!(body(r));
    let plan = ChargePlan {
        id,
        vin: v.vin,
        twc: v.twc,
        target: match v.target {
            TargetView::Soc { pct } => PlanTarget::Soc { pct },
            TargetView::Energy { kwh } => PlanTarget::Energy { kwh },
        },
        departure: match v.departure {
            DepartureView::Once { at_unix } => Departure::Once { at_unix },
            DepartureView::Weekly { weekdays, minute } => Departure::Weekly { weekdays, minute },
        },
        battery_kwh: v.battery_kwh,
        enabled: v.enabled.unwrap_or(true),
    };
    match ops::apply(&st, Command::SetPlan(Box::new(plan))).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Delete a charge plan.
#[utoipa::path(delete, path = "/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "plan id", min_length = 1, max_length = 32)),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such plan", body = ErrorBody), (status = 429, description = "the engine is busy; retry", body = ErrorBody), (status = 503, description = "the engine has stopped", body = ErrorBody)))]
async fn delete_plan(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if !st.engine.settings().plans.iter().any(|p| p.id == id) {
        return error(StatusCode::NOT_FOUND, format!("no plan with id {id:?}"));
    }
    match st.engine.command(Command::DeletePlan(id.clone())).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        // Deleted by someone else in between.
        Err(twc_core::engine::CommandError::Invalid(_)) => {
            error(StatusCode::NOT_FOUND, format!("no plan with id {id:?}"))
        }
        Err(e) => crate::util::command_error(e),
    }
}
