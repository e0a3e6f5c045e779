//! The engine's helper tasks: the bus, one per energy source, the settings writer, loggers and
//! status publishers.

use super::*;

pub(super) enum BusIn {
    Rx(Received),
    Down(String),
    Up,
    /// The transport's decoder counters, when its garbage or partial-frame counts moved.
    Stats(DecodeStats),
}

pub(super) async fn bus_task(
    mut comms: Box<dyn Comms>,
    mut out: mpsc::Receiver<Frame>,
    tx: mpsc::Sender<BusIn>,
) {
    let mut backoff = Duration::from_millis(500);
    let mut reported = (0, 0);
    loop {
        let failure = tokio::select! {
            r = comms.recv() => match r {
                Ok(item) => {
                    if tx.send(BusIn::Rx(item)).await.is_err() { return; }
                    if let Some(s) = comms.decode_stats()
                        && (s.garbage_bytes, s.timed_out) != reported
                    {
                        reported = (s.garbage_bytes, s.timed_out);
                        let _ = tx.send(BusIn::Stats(s)).await;
                    }
                    continue;
                }
                Err(e) => e,
            },
            f = out.recv() => match f {
                Some(frame) => match comms.send(&frame).await {
                    Ok(()) => { backoff = Duration::from_millis(500); continue; }
                    Err(e) => e,
                },
                None => return,
            },
        };
        let _ = tx.send(BusIn::Down(failure.chain())).await;
        // Retry with backoff until the link is back; frames queued meanwhile are dropped (the
        // next heartbeat round carries fresh values).
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
            while out.try_recv().is_ok() {}
            if out.is_closed() {
                return;
            }
            match comms.reconnect().await {
                Ok(()) => {
                    let _ = tx.send(BusIn::Up).await;
                    break;
                }
                Err(e) => debug!(error = %e.chain(), "Reconnect failed"),
            }
        }
    }
}

pub(super) async fn ems_task(
    index: usize,
    spec: SourceSpec,
    tx: mpsc::Sender<(usize, Result<EnergyReading, PluginError>)>,
) {
    let mut iv = tokio::time::interval(spec.poll.interval);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let limit = spec.poll.interval.max(Duration::from_secs(5)) * 2;
    loop {
        iv.tick().await;
        let r = match tokio::time::timeout(limit, spec.source.read()).await {
            Ok(r) => r,
            Err(_) => Err(PluginError::new(
                crate::plugin::ErrorKind::Transient,
                spec.name.clone(),
                format!("no answer within {} s", limit.as_secs()),
            )),
        };
        if tx.send((index, r)).await.is_err() {
            return;
        }
    }
}

/// The writer task for settings: saves the latest value of the engine's settings whenever it
/// changes, off the engine loop, and the last one when the engine drops the sender (the engine
/// awaits the task).
pub(super) fn spawn_settings_writer(
    store: SettingsStore,
    mut rx: watch::Receiver<Settings>,
) -> JoinHandle<()> {
    rx.mark_unchanged();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let s = rx.borrow_and_update().clone();
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.save(&s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    error!(error = %e, "Could not save the settings; the change holds until restart")
                }
                Err(e) => error!(error = %e, "The settings writer failed"),
            }
        }
    })
}

/// Feed every event to a logger through its own bounded queue, so a slow logger never blocks the
/// engine. Returns the task; the counter of events the logger missed is logged.
pub fn spawn_logger(
    handle: &EngineHandle,
    name: String,
    logger: Box<dyn Logger>,
) -> JoinHandle<()> {
    let mut rx = handle.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Err(err) = logger.record(&e).await {
                        warn!(logger = %name, error = %err.chain(), "Logger failed to record an event");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(logger = %name, missed = n, "Logger fell behind and missed events");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = logger.flush().await;
                    return;
                }
            }
        }
    })
}

/// Publish every status change to a publisher, at most once per `min_interval`, always ending
/// with the latest snapshot.
pub fn spawn_publisher(
    handle: &EngineHandle,
    name: String,
    publisher: Box<dyn StatusPublisher>,
    min_interval: Duration,
) -> JoinHandle<()> {
    let mut rx = handle.watch_status();
    let span = crate::plugin::plugin_span("status", &name);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            loop {
                if rx.changed().await.is_err() {
                    return;
                }
                let snapshot = rx.borrow_and_update().clone();
                if let Err(err) = publisher.publish(&snapshot).await {
                    warn!(publisher = %name, error = %err.chain(), "Status publish failed");
                }
                tokio::time::sleep(min_interval).await;
            }
        },
        span,
    ))
}
