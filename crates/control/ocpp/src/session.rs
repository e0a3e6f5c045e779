//! The loop: keeps a WebSocket to the central system (reconnecting with backoff), feeds the
//! station the engine's status, the central system's messages and the clock, sends one CALL at a
//! time and runs the engine commands the station asks for.

use crate::link::{Target, Ws};
use crate::rpc::{self, Frame};
use crate::station::{Station, What};
use chrono::Utc;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};
use twc_core::engine::{Command, EngineHandle};
use twc_core::plugin::PluginError;

enum Incoming {
    Text(u64, String),
    Closed(u64, String),
}

struct Conn {
    sink: SplitSink<Ws, Message>,
    generation: u64,
}

/// Timings of the loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long to wait for the answer to a CALL.
    pub call_timeout: Duration,
    /// Longest wait between connection attempts.
    pub reconnect_max: Duration,
}

async fn run_commands(engine: &EngineHandle, cmds: Vec<Command>) {
    for c in cmds {
        let what = format!("{c:?}");
        if let Err(e) = engine.command(c).await {
            debug!(plugin = "ocpp", command = %what, error = %e, "Engine command refused");
        }
    }
}

/// Run until the engine stops.
pub(crate) async fn run(
    target: Target,
    mut station: Station,
    engine: EngineHandle,
    timing: Timing,
) -> Result<(), PluginError> {
    let mut status_rx = engine.watch_status();
    let (conn_tx, mut conn_rx) = mpsc::channel::<Result<Ws, String>>(1);
    let (in_tx, mut in_rx) = mpsc::channel::<Incoming>(64);
    let mut conn: Option<Conn> = None;
    let mut connecting = false;
    let mut next_attempt = Instant::now();
    let mut backoff = Duration::from_secs(1);
    let mut generation = 0u64;
    let mut msg_id = 0u64;
    let mut in_flight: Option<(String, What, Instant)> = None;
    let mut last_heartbeat = Instant::now();
    let mut last_sample = Instant::now();
    let mut boot_retry_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let mut cmds = Vec::new();
        let mut drop_conn: Option<String> = None;
        tokio::select! {
            Some(res) = conn_rx.recv() => {
                connecting = false;
                match res {
                    Ok(ws) => {
                        info!(plugin = "ocpp", url = %target.url, "Connected to the central system");
                        generation += 1;
                        let (sink, mut stream) = ws.split();
                        let tx = in_tx.clone();
                        let g = generation;
                        twc_core::plugin::spawn(async move {
                            let why = loop {
                                match stream.next().await {
                                    Some(Ok(Message::Text(t))) => {
                                        if tx.send(Incoming::Text(g, t.to_string())).await.is_err() {
                                            return;
                                        }
                                    }
                                    Some(Ok(Message::Binary(_))) => {
                                        let _ = tx.send(Incoming::Text(g, "<binary>".into())).await;
                                    }
                                    Some(Ok(Message::Close(f))) => break format!("closed by the central system ({f:?})"),
                                    Some(Ok(_)) => {}
                                    Some(Err(e)) => break e.to_string(),
                                    None => break "the connection ended".into(),
                                }
                            };
                            let _ = tx.send(Incoming::Closed(g, why)).await;
                        });
                        conn = Some(Conn { sink, generation });
                        in_flight = None;
                        backoff = Duration::from_secs(1);
                        station.connected();
                        boot_retry_at = None;
                    }
                    Err(e) => {
                        warn!(plugin = "ocpp", error = %e, retry_secs = backoff.as_secs(), "Cannot connect to the central system");
                        next_attempt = Instant::now() + backoff;
                        backoff = (backoff * 2).min(timing.reconnect_max);
                    }
                }
            }
            Some(inc) = in_rx.recv() => match inc {
                Incoming::Closed(g, why) if Some(g) == conn.as_ref().map(|c| c.generation) => {
                    drop_conn = Some(why);
                }
                Incoming::Text(g, text) if Some(g) == conn.as_ref().map(|c| c.generation) => {
                    let status = engine.status();
                    let now = Utc::now();
                    let reply = match rpc::parse(&text) {
                        Ok(Frame::Call { id, action, payload }) => {
                            let r = station.handle(&action, &payload, &status, now, &mut cmds);
                            match r {
                                Ok(v) => Some(rpc::result(&id, &v)),
                                Err(e) => {
                                    warn!(plugin = "ocpp", action = %action.chars().take(40).collect::<String>(), error = %e.description, "Refused a request from the central system");
                                    Some(rpc::error(&id, &e))
                                }
                            }
                        }
                        Ok(Frame::Result { id, payload }) => {
                            if let Some((_, what, _)) = in_flight.take_if(|(i, _, _)| *i == id) {
                                cmds.extend(station.on_result(&what, &payload));
                                if what == What::Boot {
                                    if station.booted {
                                        station.all_status(&status, None, now);
                                        last_heartbeat = Instant::now();
                                        station.resend_limits();
                                    } else {
                                        boot_retry_at = Some(Instant::now() + Duration::from_secs(station.heartbeat_secs.clamp(5, 3600)));
                                    }
                                }
                            }
                            None
                        }
                        Ok(Frame::Error { id, code, description }) => {
                            if let Some((_, what, _)) = in_flight.take_if(|(i, _, _)| *i == id) {
                                warn!(plugin = "ocpp", code = %code, description = %description, "The central system answered with an error");
                                station.on_error(&what, &code);
                                if what == What::Boot {
                                    boot_retry_at = Some(Instant::now() + Duration::from_secs(10));
                                }
                            }
                            None
                        }
                        Err(bad) => {
                            warn!(plugin = "ocpp", error = %bad.error.description, "Unreadable message from the central system");
                            Some(rpc::error(bad.id.as_deref().unwrap_or("-1"), &bad.error))
                        }
                    };
                    if let (Some(r), Some(c)) = (reply, conn.as_mut())
                        && let Err(e) = c.sink.send(Message::text(r)).await
                    {
                        drop_conn = Some(e.to_string());
                    }
                    if station.reset {
                        station.reset = false;
                        drop_conn = Some("reset requested by the central system".into());
                        next_attempt = Instant::now() + Duration::from_secs(1);
                    }
                }
                _ => {}
            },
            r = status_rx.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                let status = status_rx.borrow_and_update().clone();
                cmds.extend(station.observe(&status, Utc::now()));
            }
            _ = tick.tick() => {
                let now_i = Instant::now();
                let status = engine.status();
                let now = Utc::now();
                if conn.is_none() && !connecting && now_i >= next_attempt {
                    connecting = true;
                    let t = target.clone();
                    let tx = conn_tx.clone();
                    twc_core::plugin::spawn(async move {
                        let r = tokio::time::timeout(Duration::from_secs(30), t.connect())
                            .await
                            .unwrap_or_else(|_| Err("connection attempt timed out after 30 s".into()));
                        let _ = tx.send(r).await;
                    });
                }
                if let Some((_, _, deadline)) = &in_flight && now_i >= *deadline {
                    drop_conn = Some("no answer to a request in time".into());
                }
                if conn.is_some() && station.booted && now_i.duration_since(last_heartbeat).as_secs() >= station.heartbeat_secs {
                    station.send("Heartbeat", serde_json::json!({}));
                    last_heartbeat = now_i;
                }
                if conn.is_some() && !station.booted && in_flight.is_none() && boot_retry_at.is_some_and(|t| now_i >= t) {
                    boot_retry_at = None;
                    station.connected();
                }
                let every = station.meter_secs();
                if every > 0 && now_i.duration_since(last_sample).as_secs() >= every {
                    last_sample = now_i;
                    station.sample(&status, now);
                }
                cmds.extend(station.observe(&status, now));
                cmds.extend(station.limits(&status, now));
            }
        }
        if let Some(why) = drop_conn {
            if let Some(mut c) = conn.take() {
                warn!(plugin = "ocpp", reason = %why, "Disconnected from the central system; transaction messages stay queued");
                let _ = c.sink.close().await;
            }
            in_flight = None;
            station.booted = false;
            next_attempt = next_attempt.max(Instant::now() + Duration::from_secs(1));
        }
        run_commands(&engine, cmds).await;
        // Send the next CALL when none is waiting for its answer.
        if let Some(c) = conn.as_mut()
            && in_flight.is_none()
            && let Some(out) = station.next_out()
        {
            msg_id += 1;
            let id = format!("{}-{msg_id}", std::process::id());
            debug!(plugin = "ocpp", action = %out.action, "Sending");
            match c
                .sink
                .send(Message::text(rpc::call(&id, &out.action, &out.payload)))
                .await
            {
                Ok(()) => in_flight = Some((id, out.what, Instant::now() + timing.call_timeout)),
                Err(e) => {
                    warn!(plugin = "ocpp", error = %e, "Disconnected while sending");
                    conn = None;
                    station.booted = false;
                }
            }
        }
    }
}
