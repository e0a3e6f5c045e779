//! `GET /status`: one snapshot of everything, and the shared pieces of it (site, bus, sources,
//! trouble) the live event stream sends too.

use super::policy::{PolicyView, policy_view};
use super::settings::{SettingsView, settings_view};
use super::slaves::{SlaveView, slave_view};
use crate::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use twc_core::model::Status;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_status))
}

/// Site power as measured.
#[derive(Serialize, ToSchema)]
pub(crate) struct SiteView {
    /// PV generation, W; absent when no fresh reading has it.
    generation_w: Option<f64>,
    /// House consumption, W.
    consumption_w: Option<f64>,
    /// Grid power, W: positive = import, negative = export.
    grid_w: Option<f64>,
    /// Home battery power, W: positive = discharging.
    battery_w: Option<f64>,
    /// Home battery state of charge, %.
    battery_soc_pct: Option<f64>,
    /// Green surplus for the chargers as the policy computed it (after offsets and battery), else
    /// generation − consumption, W, when known.
    surplus_w: Option<f64>,
    /// What the chargers draw, W.
    charger_w: f64,
    /// What the cars draw, A (sum over slaves).
    charger_amps: f64,
    /// Age of the combined reading, s.
    reading_age_secs: Option<f64>,
    /// True when there is no fresh reading (policies that need one fall back to safe values).
    stale: bool,
    /// True when a value comes from an estimate (a weather forecast), not a meter.
    estimated: bool,
}

/// The bus.
#[derive(Serialize, ToSchema)]
pub(crate) struct BusView {
    /// Our TWCID.
    master_id: String,
    /// True while we transmit.
    transmitting: bool,
    /// Another master heard on the bus (rotary switch not at F).
    foreign_master: Option<String>,
    /// True while the comms link is up.
    link_up: bool,
    /// Last comms error.
    last_error: Option<String>,
    /// Frames sent.
    frames_tx: u64,
    /// Frames received with a good checksum.
    frames_rx: u64,
    /// Frames dropped for a bad checksum.
    bad_checksum: u64,
    /// Frames dropped for other framing errors.
    framing_errors: u64,
    /// Valid frames with an unknown code.
    unknown_messages: u64,
    /// Valid frames with a bad length for their code.
    malformed_messages: u64,
}

/// One energy source.
#[derive(Serialize, ToSchema)]
pub(crate) struct SourceView {
    /// Registry name.
    name: String,
    /// Age of its last reading, s.
    age_secs: Option<f64>,
    /// True when its last reading is too old (or missing).
    stale: bool,
    /// Last error.
    last_error: Option<String>,
    /// Errors so far.
    errors: u64,
    /// True when its last reading is an estimate (a weather forecast), not a measurement.
    estimated: bool,
}

/// Something the user should look at.
#[derive(Serialize, ToSchema)]
pub(crate) struct Trouble {
    /// `bus`, `slave`, `load_point`, `source`, `plugin`.
    component: String,
    /// What is wrong.
    message: String,
}

/// One snapshot of everything.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// When the snapshot was made (RFC 3339).
    updated_at: Option<String>,
    /// Site power.
    site: SiteView,
    /// Active policy and budget.
    policy: PolicyView,
    /// Linked slaves.
    slaves: Vec<SlaveView>,
    /// External load points (a Wall Connector Gen3, an OCPP charger), next to the slaves.
    load_points: Vec<super::load_points::LoadPointView>,
    /// The bus.
    bus: BusView,
    /// Energy sources.
    sources: Vec<SourceView>,
    /// Runtime settings.
    settings: SettingsView,
    /// Wiring limit for all TWCs, A.
    wiring_max_all_amps: f64,
    /// Wiring limit per TWC, A.
    wiring_max_per_twc_amps: f64,
    /// Problems to show.
    trouble: Vec<Trouble>,
    /// The price now and the solar forecast (tariff and forecast plugins).
    outlook: super::outlook::OutlookView,
}

pub(crate) fn status_view(st: &AppState, s: &Status) -> StatusView {
    let r = s.reading.as_ref();
    let now = tokio::time::Instant::now();
    let mut trouble = Vec::new();
    if let Some(f) = s.bus.foreign_master {
        trouble.push(Trouble {
            component: "bus".into(),
            message: format!("another master ({f}) is on the bus: set every TWC's rotary switch to F; not transmitting"),
        });
    }
    if !s.bus.link_up {
        trouble.push(Trouble {
            component: "bus".into(),
            message: format!(
                "the bus link is down: {}",
                s.bus.last_error.clone().unwrap_or_default()
            ),
        });
    }
    for x in &s.slaves {
        if x.timed_out {
            trouble.push(Trouble {
                component: "slave".into(),
                message: format!("slave {} timed out (no heartbeat reply)", x.id),
            });
        }
        if x.overdraw {
            trouble.push(Trouble {
                component: "slave".into(),
                message: format!("the car on slave {} draws more than its limit", x.id),
            });
        }
    }
    for l in &s.load_points {
        if let Some(p) = &l.problem {
            trouble.push(Trouble {
                component: "load_point".into(),
                message: format!("{}: {p}", l.name),
            });
        } else if l.stale {
            trouble.push(Trouble {
                component: "load_point".into(),
                message: format!(
                    "{} has no fresh measurement: it counts at its maximum",
                    l.name
                ),
            });
        }
    }
    for src in &s.sources {
        if src.stale {
            let why = src
                .last_error
                .clone()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            trouble.push(Trouble {
                component: "source".into(),
                message: format!("{} has no fresh reading{why}", src.name),
            });
        }
    }
    let (_, recent, _) = st.recorder.faults();
    let cutoff = chrono::Utc::now() - chrono::Duration::minutes(10);
    for f in recent.iter().rev().take(3) {
        if chrono::DateTime::parse_from_rfc3339(&f.at).is_ok_and(|t| t > cutoff)
            && f.component != "bus"
        {
            trouble.push(Trouble {
                component: "plugin".into(),
                message: format!("{}: {}", f.component, f.message),
            });
        }
    }
    StatusView {
        updated_at: s.updated_at.map(|t| t.to_rfc3339()),
        site: SiteView {
            generation_w: r.and_then(|r| r.generation_w),
            consumption_w: r.and_then(|r| r.consumption_w),
            grid_w: s.site.grid_w,
            battery_w: r.and_then(|r| r.battery_w),
            battery_soc_pct: r.and_then(|r| r.battery_soc_pct),
            surplus_w: s
                .policy
                .surplus_w
                .or_else(|| r.and_then(|r| Some(r.generation_w? - r.consumption_w?))),
            charger_w: crate::util::r2(s.site.charger_w),
            charger_amps: s.total_actual().amps(),
            reading_age_secs: r.map(|r| crate::util::r2(r.age_secs(now))),
            stale: r.is_none(),
            estimated: r.is_some_and(|r| r.estimated),
        },
        policy: policy_view(s),
        slaves: s.slaves.iter().map(|x| slave_view(x, s)).collect(),
        load_points: s
            .load_points
            .iter()
            .map(super::load_points::load_point_view)
            .collect(),
        bus: BusView {
            master_id: s.bus.master_id.to_string(),
            transmitting: s.bus.transmitting,
            foreign_master: s.bus.foreign_master.map(|f| f.to_string()),
            link_up: s.bus.link_up,
            last_error: s.bus.last_error.clone(),
            frames_tx: s.bus.frames_tx,
            frames_rx: s.bus.decode.frames_ok,
            bad_checksum: s.bus.decode.bad_checksum,
            framing_errors: s.bus.decode.bad_escape
                + s.bus.decode.bad_length
                + s.bus.decode.too_long
                + s.bus.decode.timed_out,
            unknown_messages: s.bus.unknown_messages,
            malformed_messages: s.bus.malformed_messages,
        },
        sources: s
            .sources
            .iter()
            .map(|x| SourceView {
                name: x.name.clone(),
                age_secs: x.age_secs.map(crate::util::r2),
                stale: x.stale,
                last_error: x.last_error.clone(),
                errors: x.errors,
                estimated: x.last.as_ref().is_some_and(|r| r.estimated),
            })
            .collect(),
        settings: settings_view(&s.settings),
        wiring_max_all_amps: s.wiring_max_all.amps(),
        wiring_max_per_twc_amps: s.wiring_max_per_twc.amps(),
        trouble,
        outlook: super::outlook::outlook_view(s, chrono::Utc::now()),
    }
}

/// Everything at once.
#[utoipa::path(get, path = "/status", tag = "status", responses((status = 200, body = StatusView)))]
async fn get_status(State(st): State<AppState>) -> Json<StatusView> {
    Json(status_view(&st, &st.engine.status()))
}
