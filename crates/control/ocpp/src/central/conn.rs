//! The listening socket: the WebSocket handshake (path = charge point id, subprotocol
//! `ocpp1.6`, basic auth when the charger has a password), then one reader and one writer task
//! per charger, talking to the hub through bounded channels.

use super::CentralConfig;
use crate::rpc::{self, CallError, ErrorCode};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

/// What the connections tell the hub.
#[derive(Debug)]
pub(crate) enum Event {
    /// A charger connected; `out` takes the frames for it; dropping `kill` ends the connection.
    Open {
        id: String,
        conn: u64,
        out: mpsc::Sender<Message>,
        kill: oneshot::Sender<()>,
    },
    /// A text frame from it.
    Text { id: String, conn: u64, text: String },
    /// It disconnected.
    Closed { id: String, conn: u64, why: String },
}

/// Largest message a charger may send (MeterValues with many samples stay far below).
const MAX_MESSAGE: usize = 64 * 1024;
/// Frames waiting to be written to one charger, per message per second it may send (the
/// answers to a full burst fit twice); a charger that does not read is dropped.
const OUT_QUEUE_PER_RATE: usize = 8;

fn refuse(code: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(format!("{why}\n")));
    *r.status_mut() = code;
    r
}

/// Check the handshake; the charge point id on success. (The error is the HTTP response
/// tungstenite's callback returns.)
#[allow(clippy::result_large_err)]
fn check(cfg: &CentralConfig, req: &Request) -> Result<String, ErrorResponse> {
    let id = req
        .uri()
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .to_string();
    if !super::valid_id(&id) {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "connect to ws://host:port/<chargePointId>",
        ));
    }
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "ocpp1.6");
    if !offered {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the subprotocol ocpp1.6 is required",
        ));
    }
    let Some(limits) = cfg.limits(&id) else {
        return Err(refuse(StatusCode::NOT_FOUND, "unknown charge point id"));
    };
    if !limits.password.is_empty() {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", limits.password))
        );
        let got = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return Err(refuse(StatusCode::UNAUTHORIZED, "bad credentials"));
        }
    }
    Ok(id)
}

/// Accept chargers forever.
pub(crate) async fn listen(
    listener: TcpListener,
    cfg: Arc<CentralConfig>,
    events: mpsc::Sender<Event>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut next_conn = 0u64;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(plugin = "ocpp", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= cfg.max_chargers {
            warn!(plugin = "ocpp", %peer, max = cfg.max_chargers, "Too many charger connections; refused");
            continue;
        }
        next_conn += 1;
        active.fetch_add(1, Ordering::SeqCst);
        let (cfg, events, active, conn) = (cfg.clone(), events.clone(), active.clone(), next_conn);
        twc_core::plugin::spawn(async move {
            serve_one(tcp, cfg, events, conn).await;
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn serve_one(
    tcp: TcpStream,
    cfg: Arc<CentralConfig>,
    events: mpsc::Sender<Event>,
    conn: u64,
) {
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok();
    let mut id = None;
    let callback = |req: &Request, mut resp: Response| match check(&cfg, req) {
        Ok(i) => {
            id = Some(i);
            resp.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("ocpp1.6"),
            );
            Ok(resp)
        }
        Err(e) => {
            info!(plugin = "ocpp", ?peer, path = %req.uri().path(), status = %e.status(), "Charger refused at the handshake");
            Err(e)
        }
    };
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(ws_cfg)),
    )
    .await;
    let (Ok(Ok(ws)), Some(id)) = (ws, id) else {
        debug!(plugin = "ocpp", ?peer, "WebSocket handshake failed");
        return;
    };
    info!(plugin = "ocpp", charger = %id, ?peer, "Charger connected");
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(
        (cfg.max_messages_per_sec as usize * OUT_QUEUE_PER_RATE).clamp(64, 8192),
    );
    let (kill, mut killed) = oneshot::channel::<()>();
    let open = Event::Open {
        id: id.clone(),
        conn,
        out: out_tx.clone(),
        kill,
    };
    if events.send(open).await.is_err() {
        return;
    }
    let writer = twc_core::plugin::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // A token bucket: `rate` per second, bursts of 4× rate.
    let rate = f64::from(cfg.max_messages_per_sec);
    let (mut tokens, mut at) = (rate * 4.0, Instant::now());
    let mut refused = 0u32;
    let why = loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = out_tx.closed() => break "the connection could not be written".to_string(),
            _ = &mut killed => break "closed by twcmanager".to_string(),
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(_))) => String::from("<binary frame>"),
            Some(Ok(Message::Close(f))) => break format!("closed by the charger ({f:?})"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e.to_string(),
            None => break "the connection ended".into(),
        };
        let now = Instant::now();
        tokens = (tokens + now.duration_since(at).as_secs_f64() * rate).min(rate * 4.0);
        at = now;
        if tokens < 1.0 {
            refused += 1;
            if refused > 10 * cfg.max_messages_per_sec {
                break "flooding: too many messages".into();
            }
            let id = match rpc::parse(&text) {
                Ok(rpc::Frame::Call { id, .. }) => id,
                _ => continue,
            };
            let e = CallError::new(
                ErrorCode::GenericError,
                format!(
                    "busy: more than {} messages per second",
                    cfg.max_messages_per_sec
                ),
            );
            let _ = out_tx.try_send(Message::text(rpc::error(&id, &e)));
            continue;
        }
        tokens -= 1.0;
        refused = 0;
        let ev = Event::Text {
            id: id.clone(),
            conn,
            text,
        };
        if events.send(ev).await.is_err() {
            break "twcmanager stops".into();
        }
    };
    info!(plugin = "ocpp", charger = %id, reason = %why, "Charger disconnected");
    drop(out_tx);
    writer.abort();
    let _ = events.send(Event::Closed { id, conn, why }).await;
}
