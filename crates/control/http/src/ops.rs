//! Operations shared by the compatibility API and v2: settings commands sent to the engine, whose
//! one validator (`Settings::validate`) decides; its refusal reaches the client as a 400 with the
//! engine's reason.

use crate::AppState;
use crate::util::command_error;
use axum::response::Response;
use twc_core::engine::Command;
use twc_core::model::Settings;

/// Wiring limit for all TWCs, A.
pub(crate) fn wiring_max_all(st: &AppState) -> f64 {
    st.engine.status().wiring_max_all.amps()
}

/// Send one settings command; the engine validates the settings it would make as a whole.
pub(crate) async fn apply(st: &AppState, cmd: Command) -> Result<Settings, Response> {
    st.engine.command(cmd).await.map_err(command_error)
}
