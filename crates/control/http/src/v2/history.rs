//! `GET /history`: chart samples, energy per day and faults since start, and a database
//! logger's long history.

use super::ErrorBody;
use crate::AppState;
use crate::recorder::{DayTotals, FaultSeen, Sample};
use crate::util::bad;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_history))
}

/// History query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// Only samples at or after this Unix time.
    since: Option<i64>,
    /// Days of stored energy per day (1 … 366, default 14), when a database logger is present.
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
    /// Hours of stored power points (1 … 168, default `chart_hours`), when a database logger is present.
    #[param(minimum = 1, maximum = 168)]
    hours: Option<u32>,
}

/// A stored power point.
#[derive(Serialize, ToSchema)]
pub(crate) struct PowerPointView {
    /// Unix time, seconds.
    t: i64,
    /// PV generation, W.
    generation_w: Option<f64>,
    /// House consumption, W.
    consumption_w: Option<f64>,
    /// Chargers, W.
    charger_w: Option<f64>,
    /// Grid, W (positive = import).
    grid_w: Option<f64>,
}

/// Energy charged on one stored day.
#[derive(Serialize, ToSchema)]
pub(crate) struct DailyView {
    /// Local date, `YYYY-MM-DD`.
    pub(super) date: String,
    /// kWh charged in sessions that started that day.
    pub(super) energy_kwh: f64,
    /// Sessions that started that day.
    pub(super) sessions: u32,
    /// PV energy that day, kWh, from the stored power points (absent without any).
    pub(super) generation_kwh: Option<f64>,
    /// Grid import that day, kWh (absent without stored power points).
    pub(super) import_kwh: Option<f64>,
    /// Grid export that day, kWh (absent without stored power points).
    pub(super) export_kwh: Option<f64>,
}

/// History from a database logger (`logging.sqlite`, `logging.mysql`).
#[derive(Serialize, ToSchema)]
pub(crate) struct StoredHistory {
    /// Power points, oldest first (at most 1000).
    power: Vec<PowerPointView>,
    /// Energy per local day, oldest first, every day present.
    days: Vec<DailyView>,
    /// Why a query failed, if one did (the rest is still served).
    error: Option<String>,
}

/// History kept since start.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryView {
    /// Live-chart samples, oldest first.
    samples: Vec<Sample>,
    /// Energy per local day.
    days: Vec<DayTotals>,
    /// Recent faults.
    faults: Vec<FaultSeen>,
    /// The last 200 engine events, oldest first, shaped as the live stream's `event` messages.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
    /// The long history from a database logger, when one is configured.
    stored: Option<StoredHistory>,
    /// Energy per day, ISO week and month for the history chart: charged energy from the
    /// database logger when there is one (else this process's samples), PV, import and export
    /// from this process's samples.
    energy: super::energy::EnergyPeriods,
}

/// Chart samples, energy per day and recent faults (kept in memory since start).
#[utoipa::path(get, path = "/history", tag = "history", params(HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 400, description = "refused: the reason is in `error`", body = ErrorBody)))]
async fn get_history(
    State(st): State<AppState>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
    let days = q.days.unwrap_or(14);
    let hours = q.hours.unwrap_or(st.cfg.chart_hours.min(168) as u32);
    if !(1..=366).contains(&days) || !(1..=168).contains(&hours) {
        return bad("days must be 1 … 366 and hours 1 … 168");
    }
    let stored = match &st.history {
        Some(h) => Some(stored_history(h.as_ref(), days, hours).await),
        None => None,
    };
    let (_, faults, _) = st.recorder.faults();
    let days = st.recorder.days();
    let energy = super::energy::periods(&days, stored.as_ref().map(|s| &s.days[..]));
    Json(HistoryView {
        samples: st.recorder.samples(q.since),
        days,
        energy,
        faults,
        events: st.recorder.events(),
        stored,
    })
    .into_response()
}

async fn stored_history(
    h: &dyn twc_core::history::HistoryQuery,
    days: u32,
    hours: u32,
) -> StoredHistory {
    let now = chrono::Utc::now();
    let limit = Duration::from_secs(5);
    let mut error = None;
    let power = match tokio::time::timeout(
        limit,
        h.power(now - chrono::Duration::hours(i64::from(hours)), now, 1000),
    )
    .await
    {
        Ok(Ok(p)) => p
            .into_iter()
            .map(|p| PowerPointView {
                t: p.at.timestamp(),
                generation_w: p.generation_w,
                consumption_w: p.consumption_w,
                charger_w: p.charger_w,
                grid_w: p.grid_w,
            })
            .collect(),
        Ok(Err(e)) => {
            error = Some(format!("power history: {}", e.chain()));
            Vec::new()
        }
        Err(_) => {
            error = Some("power history: no answer within 5 s".into());
            Vec::new()
        }
    };
    let local = chrono::Local::now();
    let offset = *local.offset();
    let to = local.date_naive();
    let from = to - chrono::Duration::days(i64::from(days) - 1);
    let days = match tokio::time::timeout(limit, h.energy_per_day(from, to, offset)).await {
        Ok(Ok(d)) => d
            .into_iter()
            .map(|d| DailyView {
                date: d.day.format("%Y-%m-%d").to_string(),
                energy_kwh: d.energy_kwh,
                sessions: d.sessions,
                generation_kwh: d.generation_kwh,
                import_kwh: d.import_kwh,
                export_kwh: d.export_kwh,
            })
            .collect(),
        Ok(Err(e)) => {
            error.get_or_insert(format!("energy per day: {}", e.chain()));
            Vec::new()
        }
        Err(_) => {
            error.get_or_insert("energy per day: no answer within 5 s".into());
            Vec::new()
        }
    };
    StoredHistory { power, days, error }
}
