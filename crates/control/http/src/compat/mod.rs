//! TWCManager-compatible `/api/*`: the 25 routes of TWCManager's HTTPControl with its methods,
//! bodies, status codes and loose JSON types, so existing scripts and dashboards work unchanged.
//! Where TWCManager drops the connection or silently ignores a value, this answers 400 with a
//! reason and changes nothing.
//!
//! A translation over the typed API: reads reshape the engine's `Status`, writes call the typed
//! operations of `crate::v2` (or send the engine command that has no typed route), so both APIs
//! accept and refuse alike.

mod commands;
mod read;
mod write;

use crate::AppState;
use crate::util::{bad, json_object};
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use commands::*;
use read::*;
use serde_json::{Map, Value};
use std::sync::Mutex;
use twc_core::model::OffsetUnit;
use write::*;

/// State only the compatibility API has.
pub(crate) struct CompatState {
    last_twc_response: Mutex<String>,
    /// `Status.bus.replies` when the last debug query was sent: a later reply is its answer.
    debug_sent_at: Mutex<Option<u64>>,
    uuid: u64,
}

impl CompatState {
    pub(crate) fn new() -> Self {
        CompatState {
            last_twc_response: Mutex::new("None".into()),
            debug_sent_at: Mutex::new(None),
            uuid: host_node(),
        }
    }
}

/// Python's `uuid.getnode()`: the first hardware MAC address as a 48-bit number, or a random
/// number with the multicast bit set when there is none.
fn host_node() -> u64 {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        if n == "lo" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(format!("/sys/class/net/{n}/address")) else {
            continue;
        };
        let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
        if let Ok(v) = u64::from_str_radix(&hex, 16)
            && v != 0
            && hex.len() == 12
        {
            return v;
        }
    }
    (rand::random::<u64>() & 0xFFFF_FFFF_FFFF) | 0x0100_0000_0000
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/getStatus", get(get_status))
        .route("/getSlaveTWCs", get(get_slave_twcs))
        .route("/getActivePolicyAction", get(get_active_policy_action))
        .route("/getPolicy", get(get_policy))
        .route("/getConfig", get(get_config))
        .route("/getConsumptionOffsets", get(get_consumption_offsets))
        .route("/getLastTWCResponse", get(get_last_twc_response))
        .route("/getHistory", get(get_history))
        .route("/getUUID", get(get_uuid))
        .route("/chargeNow", post(charge_now))
        .route("/cancelChargeNow", post(cancel_charge_now))
        .route("/addConsumptionOffset", post(add_consumption_offset))
        .route("/deleteConsumptionOffset", post(delete_consumption_offset))
        .route("/setConsumptionOffset", post(set_consumption_offset))
        .route("/setPolicy", post(set_policy))
        .route("/setLatLon", post(set_lat_lon))
        .route("/setSetting", post(set_setting))
        .route("/saveSettings", post(save_settings))
        .route(
            "/setScheduledChargingSettings",
            post(set_scheduled_charging),
        )
        .route("/sendStartCommand", post(send_start))
        .route("/sendStopCommand", post(send_stop))
        .route("/checkArrival", post(check_arrival))
        .route("/checkDeparture", post(check_departure))
        .route("/sendDebugCommand", post(send_debug_command))
        .route("/sendTeslaAPICommand", post(send_tesla_api_command))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
}

pub(super) fn f2(x: f64) -> String {
    // `+ 0.0` turns −0.0 (an empty float sum) into 0.0.
    format!("{:.2}", x + 0.0)
}

pub(super) fn unit_str(u: OffsetUnit) -> &'static str {
    match u {
        OffsetUnit::A => "A",
        OffsetUnit::W => "W",
    }
}

pub(super) fn text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s).into_response()
}

pub(super) fn body_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    json_object(body).map_err(bad)
}
