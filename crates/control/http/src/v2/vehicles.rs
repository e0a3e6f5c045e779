//! `GET /vehicles`: cars seen since start.

use crate::AppState;
use crate::recorder::VehicleSeen;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_vehicles))
}

/// A car: seen since start, or charging now.
#[derive(Serialize, ToSchema)]
pub(crate) struct VehicleView {
    /// VIN.
    vin: String,
    /// Finished sessions since start.
    sessions: u64,
    /// Energy of those sessions, kWh.
    energy_kwh: f64,
    /// When last seen (RFC 3339).
    last_seen: Option<String>,
    /// Slave it was last seen on.
    last_slave: Option<String>,
    /// The slave it is plugged into now, if any.
    plugged_into: Option<String>,
}

/// Cars seen since start (VINs from the slaves, with sessions and kWh).
#[utoipa::path(get, path = "/vehicles", tag = "vehicles", responses((status = 200, body = Vec<VehicleView>)))]
async fn get_vehicles(State(st): State<AppState>) -> Json<Vec<VehicleView>> {
    let s = st.engine.status();
    let mut seen: BTreeMap<String, VehicleSeen> = st
        .recorder
        .vehicles()
        .into_iter()
        .map(|v| (v.vin.clone(), v))
        .collect();
    for x in &s.slaves {
        if let Some(v) = x
            .vin
            .as_ref()
            .or(x.last_vin.as_ref())
            .filter(|v| !v.is_empty())
        {
            seen.entry(v.clone()).or_insert_with(|| VehicleSeen {
                vin: v.clone(),
                last_slave: Some(x.id.to_string()),
                ..Default::default()
            });
        }
    }
    Json(
        seen.into_values()
            .map(|v| {
                let plugged = s
                    .slaves
                    .iter()
                    .find(|x| x.vin.as_deref() == Some(v.vin.as_str()))
                    .map(|x| x.id.to_string());
                VehicleView {
                    vin: v.vin,
                    sessions: v.sessions,
                    energy_kwh: v.energy_kwh,
                    last_seen: v.last_seen,
                    last_slave: v.last_slave,
                    plugged_into: plugged,
                }
            })
            .collect(),
    )
}
