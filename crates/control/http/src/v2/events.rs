//! `GET /events`: live updates as Server-Sent Events.

use super::ErrorBody;
use super::status::status_view;
use crate::AppState;
use crate::util::error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use twc_core::model::Status;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Live updates: `status` events carry a [`StatusView`] (at most 4 a second, and at least every
/// 5 s), `event` events carry the engine's events (slave linked, offer changed, session, fault, …).
#[utoipa::path(get, path = "/events", tag = "events",
    responses((status = 200, description = "text/event-stream of `status` and `event` messages", content_type = "text/event-stream"),
        (status = 429, description = "too many event streams are open", body = ErrorBody)))]
async fn events(State(st): State<AppState>) -> Response {
    let Ok(permit) = st.sse_slots.clone().try_acquire_owned() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "at most {MAX_EVENT_STREAMS} event streams may be open at once; close a page and retry"
            ),
        );
    };
    let stream = event_stream(st).map(move |e| {
        // The slot is released when the client goes away and the stream is dropped.
        let _slot = &permit;
        e
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Concurrent `/api/v2/events` streams allowed.
pub(crate) const MAX_EVENT_STREAMS: usize = 64;

fn event_stream(st: AppState) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let watch = st.engine.watch_status();
    let ev = st.engine.subscribe();
    let first = status_event(&st, &st.engine.status());
    futures::stream::unfold(
        (st, watch, ev, Some(first), tokio::time::Instant::now()),
        |(st, mut watch, mut ev, pending, mut last)| async move {
            if let Some(e) = pending {
                return Some((Ok(e), (st, watch, ev, None, last)));
            }
            loop {
                let wait = tokio::time::sleep_until(last + Duration::from_millis(250));
                tokio::select! {
                    r = async { wait.await; tokio::time::timeout(Duration::from_secs(5), watch.changed()).await } => {
                        match r {
                            Ok(Err(_)) => return None,
                            _ => {
                                last = tokio::time::Instant::now();
                                let s = watch.borrow_and_update().clone();
                                let e = status_event(&st, &s);
                                return Some((Ok(e), (st, watch, ev, None, last)));
                            }
                        }
                    }
                    r = ev.recv() => match r {
                        Ok(e) => {
                            if matches!(e, twc_core::model::Event::Reading { .. } | twc_core::model::Event::SlaveStatus { .. } | twc_core::model::Event::LoadPointStatus { .. }) {
                                continue;
                            }
                            let data = serde_json::to_string(&e).unwrap_or_else(|_| "{}".into());
                            return Some((Ok(SseEvent::default().event("event").data(data)), (st, watch, ev, None, last)));
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                }
            }
        },
    )
}

fn status_event(st: &AppState, s: &Status) -> SseEvent {
    let data = serde_json::to_string(&status_view(st, s)).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event("status").data(data)
}
