//! Event sinks that lose nothing: one bounded queue per sink, a spill file, retry with backoff, and
//! counters for Status and /metrics. Also the record types and session logic the sinks share.
//!
//! ```text
//! engine ─broadcast<Event>─▶ pump task ─▶ memory queue (queue_capacity) ─▶ worker ─▶ Logger
//!                                  └──▶ spill file (JSON lines, spill_max_bytes) ──┘
//! ```
//!
//! **Spill policy.** The pump never waits for the sink: it moves each event into the sink's
//! memory queue, or, once that holds `queue_capacity` events, appends it to the sink's spill file
//! (and keeps appending while the file holds anything, so order is kept). The worker drains memory
//! first, then reloads the file in chunks. Only when there is no spill directory, or the file has
//! reached `spill_max_bytes`, or the broadcast outran the pump, is an event dropped, and every drop
//! is counted in [`SinkStatus::dropped`]. Events still queued at shutdown are saved to the spill
//! file (when there is one) and written first on the next start.
//!
//! **Delivery.** The worker hands the oldest events to [`Logger::record_batch`] (at most
//! [`Logger::batch_size`] at a time). An error leaves them at the head of the queue and the worker
//! retries the same batch after a backoff (doubling from `retry_min` to `retry_max`), so records
//! arrive in order and exactly once as long as the sink writes a batch atomically.

pub mod records;
pub mod rows;
pub mod sessions;

pub use records::{
    GreenEnergy, GreenEnergySampler, Mute, RecordType, describe, event_time, slave_power_w,
};
pub use rows::{Row, RowBuilder};
pub use sessions::{OpenSession, SessionOp, SessionTracker};

use crate::engine::EngineHandle;
use crate::model::Event;
use crate::plugin::Logger;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read as _, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Queue settings of one sink (`[logging.queue]` in the bin's config, the same for every sink).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkOptions {
    /// Events held in memory before spilling, per sink.
    pub queue_capacity: usize,
    /// Directory of the spill files (`<dir>/<sink>.spill`); none = drop (and count) when full.
    pub spill_dir: Option<PathBuf>,
    /// Largest spill file, bytes; past it events are dropped and counted.
    pub spill_max_bytes: u64,
    /// First retry delay after a failed write, ms.
    pub retry_min_ms: u64,
    /// Longest retry delay, ms.
    pub retry_max_ms: u64,
    /// How long shutdown waits for the sink to catch up before saving the rest to the spill file.
    pub shutdown_timeout_ms: u64,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            queue_capacity: 10_000,
            spill_dir: None,
            spill_max_bytes: 256 * 1024 * 1024,
            retry_min_ms: 500,
            retry_max_ms: 30_000,
            shutdown_timeout_ms: 5_000,
        }
    }
}

/// One sink's health, for Status and /metrics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SinkStatus {
    /// Sink name (`"sqlite"`, …).
    pub name: String,
    /// Events waiting (memory + spill file).
    pub queued: u64,
    /// Of those, in the spill file.
    pub spilled: u64,
    /// Age of the oldest waiting event, seconds (0 when none waits).
    pub lag_secs: f64,
    /// Events written so far.
    pub written: u64,
    /// Failed write attempts so far.
    pub errors: u64,
    /// Events lost (queue and spill full, or the broadcast outran the pump). Should stay 0.
    pub dropped: u64,
    /// The last write error, cleared by the next success.
    pub last_error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SpillLine {
    /// Enqueued at, ms since the epoch (for lag).
    t: u64,
    e: Event,
}

struct Spill {
    path: PathBuf,
    file: File,
    read_pos: u64,
    write_pos: u64,
    count: u64,
}

struct Inner {
    mem: VecDeque<(Event, u64)>,
    spill: Option<Spill>,
    closed: bool,
    status: SinkStatus,
}

struct Shared {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Tells the pump to take what the channel still holds and stop (shutdown).
    pump_stop: Notify,
    opts: SinkOptions,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, e: Event) {
        let mut g = self.lock();
        let inner = &mut *g;
        let t = now_ms();
        let spilled = inner.spill.as_ref().is_some_and(|s| s.count > 0);
        if !spilled && inner.mem.len() < self.opts.queue_capacity {
            inner.mem.push_back((e, t));
        } else if let Some(sp) = inner.spill.as_mut() {
            let ok =
                sp.write_pos < self.opts.spill_max_bytes && append(sp, &SpillLine { t, e }).is_ok();
            if ok {
                sp.count += 1;
            } else {
                inner.status.dropped += 1;
            }
        } else {
            inner.status.dropped += 1;
        }
        drop(g);
        self.notify.notify_one();
    }

    /// Move up to `n` spilled events into memory (memory must be empty).
    fn reload(&self, inner: &mut Inner, n: usize) {
        let Some(sp) = inner.spill.as_mut() else {
            return;
        };
        if sp.count == 0 {
            return;
        }
        let mut loaded = Vec::new();
        let res = (|| -> std::io::Result<u64> {
            sp.file.seek(SeekFrom::Start(sp.read_pos))?;
            let mut r = BufReader::new(&sp.file);
            let mut pos = sp.read_pos;
            let mut line = String::new();
            while loaded.len() < n {
                line.clear();
                let k = r.read_line(&mut line)?;
                if k == 0 {
                    break;
                }
                pos += k as u64;
                match serde_json::from_str::<SpillLine>(line.trim_end()) {
                    Ok(l) => loaded.push((l.e, l.t)),
                    Err(e) => {
                        warn!(file = %sp.path.display(), error = %e, "Unreadable line in the spill file; skipped")
                    }
                }
            }
            Ok(pos)
        })();
        match res {
            Ok(pos) => {
                let got = loaded.len() as u64;
                sp.read_pos = pos;
                sp.count = sp.count.saturating_sub(got);
                if pos >= sp.write_pos {
                    // Fully read: anything uncounted was unreadable.
                    inner.status.dropped += sp.count;
                    sp.count = 0;
                }
                if sp.count == 0 {
                    let _ = sp.file.set_len(0);
                    sp.read_pos = 0;
                    sp.write_pos = 0;
                }
                inner.mem.extend(loaded);
            }
            Err(e) => {
                warn!(file = %sp.path.display(), error = %e, "Reading the spill file failed");
            }
        }
    }

    fn refresh_status(&self, inner: &mut Inner) {
        let spilled = inner.spill.as_ref().map_or(0, |s| s.count);
        inner.status.spilled = spilled;
        inner.status.queued = inner.mem.len() as u64 + spilled;
        inner.status.lag_secs = inner
            .mem
            .front()
            .map(|(_, t)| now_ms().saturating_sub(*t) as f64 / 1000.0)
            .unwrap_or(0.0);
    }
}

fn append(sp: &mut Spill, line: &SpillLine) -> std::io::Result<()> {
    let mut s = serde_json::to_string(line).map_err(std::io::Error::other)?;
    s.push('\n');
    sp.file.seek(SeekFrom::Start(sp.write_pos))?;
    sp.file.write_all(s.as_bytes())?;
    sp.write_pos += s.len() as u64;
    Ok(())
}

fn open_spill(dir: &std::path::Path, name: &str) -> std::io::Result<Spill> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.spill"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let len = file.metadata()?.len();
    let count = if len > 0 {
        BufReader::new(&file).lines().count() as u64
    } else {
        0
    };
    Ok(Spill {
        path,
        file,
        read_pos: 0,
        write_pos: len,
        count,
    })
}

/// A running sink: its status and its task.
pub struct SinkHandle {
    shared: Arc<Shared>,
    name: String,
    task: JoinHandle<()>,
}

impl SinkHandle {
    /// Its current health.
    pub fn status(&self) -> SinkStatus {
        let mut g = self.shared.lock();
        self.shared.refresh_status(&mut g);
        let mut s = g.status.clone();
        s.name.clone_from(&self.name);
        s
    }

    /// A cheap handle for reading the status from elsewhere (the web UI, /metrics).
    pub fn watcher(&self) -> SinkWatcher {
        SinkWatcher {
            shared: self.shared.clone(),
            name: self.name.clone(),
        }
    }

    /// Stop taking events (for shutdown while the engine handle still lives): take every event
    /// already sent (the engine's last ones included), write what is queued for up to
    /// `shutdown_timeout_ms`, save the rest to the spill file, flush, and wait.
    pub async fn close(self) {
        self.shared.pump_stop.notify_one();
        let _ = self.task.await;
    }

    /// Wait until the sink has finished (after the event channel closed and the queue drained or
    /// was saved).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Reads one sink's status; clone freely.
#[derive(Clone)]
pub struct SinkWatcher {
    shared: Arc<Shared>,
    name: String,
}

impl SinkWatcher {
    /// Its current health.
    pub fn status(&self) -> SinkStatus {
        let mut g = self.shared.lock();
        self.shared.refresh_status(&mut g);
        let mut s = g.status.clone();
        s.name.clone_from(&self.name);
        s
    }
}

type Metric = (&'static str, &'static str, fn(&SinkStatus) -> f64);

/// The sinks of one runtime, for Status and /metrics: a handle the runtime assembly creates,
/// fills with each sink's [`SinkHandle::watcher`] and hands to the engine
/// ([`crate::engine::EngineConfig::sinks`]) and to whoever reports on the sinks. Clones share
/// the same set.
#[derive(Clone, Default)]
pub struct SinkSet(Arc<Mutex<Vec<SinkWatcher>>>);

impl std::fmt::Debug for SinkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|w| w.name.clone())
            .collect();
        f.debug_tuple("SinkSet").field(&names).finish()
    }
}

impl SinkSet {
    /// An empty set.
    pub fn new() -> Self {
        SinkSet::default()
    }
    /// Add a sink.
    pub fn add(&self, w: SinkWatcher) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(w);
    }
    /// Every sink's status, in the order added.
    pub fn statuses(&self) -> Vec<SinkStatus> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        v.iter().map(SinkWatcher::status).collect()
    }
    /// Prometheus text lines (`twc_sink_queued{sink="sqlite"} 0`, …) for /metrics.
    pub fn prometheus(&self) -> String {
        prometheus(&self.statuses())
    }
}

/// Prometheus text lines (`twc_sink_queued{sink="sqlite"} 0`, …) for sink statuses, e.g.
/// `Status::sinks`.
pub fn prometheus(statuses: &[SinkStatus]) -> String {
    let mut out = String::new();
    let metrics: [Metric; 6] = [
        ("twc_sink_queued", "gauge", |s| s.queued as f64),
        ("twc_sink_lag_seconds", "gauge", |s| s.lag_secs),
        ("twc_sink_written_total", "counter", |s| s.written as f64),
        ("twc_sink_errors_total", "counter", |s| s.errors as f64),
        ("twc_sink_dropped_total", "counter", |s| s.dropped as f64),
        ("twc_sink_spilled", "gauge", |s| s.spilled as f64),
    ];
    for (m, kind, f) in metrics {
        out.push_str(&format!("# TYPE {m} {kind}\n"));
        for s in statuses {
            out.push_str(&format!("{m}{{sink=\"{}\"}} {}\n", s.name, f(s)));
        }
    }
    out
}

/// [`spawn_sink`] on the engine's event stream.
pub fn spawn_engine_sink(
    handle: &EngineHandle,
    name: impl Into<String>,
    logger: Box<dyn Logger>,
    opts: SinkOptions,
) -> SinkHandle {
    spawn_sink(handle.subscribe(), name, logger, opts)
}

/// Run `logger` behind its own queue (see the module docs). The engine and the bus never wait for
/// it. Add [`SinkHandle::watcher`] to the runtime's [`SinkSet`] for Status and /metrics. The sink ends when `rx` closes, after draining (up to `shutdown_timeout_ms`), saving what
/// is left to the spill file, and calling [`Logger::flush`].
pub fn spawn_sink(
    mut rx: broadcast::Receiver<Event>,
    name: impl Into<String>,
    logger: Box<dyn Logger>,
    opts: SinkOptions,
) -> SinkHandle {
    let name = name.into();
    let spill = opts.spill_dir.as_ref().and_then(|d| match open_spill(d, &name) {
        Ok(s) => {
            if s.count > 0 {
                info!(sink = %name, events = s.count, "Resuming events saved in the spill file");
            }
            Some(s)
        }
        Err(e) => {
            warn!(sink = %name, dir = %d.display(), error = %e, "Cannot open the spill file; a full queue will drop events");
            None
        }
    });
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            mem: VecDeque::new(),
            spill,
            closed: false,
            status: SinkStatus {
                name: name.clone(),
                ..SinkStatus::default()
            },
        }),
        notify: Notify::new(),
        pump_stop: Notify::new(),
        opts,
    });
    let pump_shared = shared.clone();
    let pump_name = name.clone();
    let pump = tokio::spawn(async move {
        let lagged = |n: u64| {
            warn!(sink = %pump_name, missed = n, "Sink pump fell behind the event bus; events lost");
            pump_shared.lock().status.dropped += n;
        };
        loop {
            let r = tokio::select! {
                biased;
                r = rx.recv() => r,
                _ = pump_shared.pump_stop.notified() => {
                    // Shutdown: what was sent before now is still ours to write.
                    loop {
                        match rx.try_recv() {
                            Ok(e) => pump_shared.push(e),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => lagged(n),
                            Err(_) => break,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed)
                }
            };
            match r {
                Ok(e) => pump_shared.push(e),
                Err(broadcast::error::RecvError::Lagged(n)) => lagged(n),
                Err(broadcast::error::RecvError::Closed) => {
                    pump_shared.lock().closed = true;
                    pump_shared.notify.notify_one();
                    return;
                }
            }
        }
    });
    let worker_shared = shared.clone();
    let worker_name = name.clone();
    let span = crate::plugin::plugin_span("logging", &name);
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            worker(worker_shared, worker_name, logger).await;
            let _ = pump.await;
        },
        span,
    ));
    SinkHandle { shared, name, task }
}

async fn worker(shared: Arc<Shared>, name: String, logger: Box<dyn Logger>) {
    let opts = shared.opts.clone();
    let batch_max = logger.batch_size().max(1);
    let reload_chunk = opts.queue_capacity.clamp(1, 10_000);
    let mut backoff = Duration::from_millis(opts.retry_min_ms.max(1));
    let mut failing = false;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let (batch, closed) = {
            let mut g = shared.lock();
            if g.mem.is_empty() {
                shared.reload(&mut g, reload_chunk);
            }
            let n = g.mem.len().min(batch_max);
            let batch: Vec<Event> = g.mem.iter().take(n).map(|(e, _)| e.clone()).collect();
            (batch, g.closed)
        };
        if closed && deadline.is_none() {
            deadline =
                Some(tokio::time::Instant::now() + Duration::from_millis(opts.shutdown_timeout_ms));
        }
        if batch.is_empty() {
            if closed {
                break;
            }
            shared.notify.notified().await;
            continue;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            save_rest(&shared, &name);
            break;
        }
        match logger.record_batch(&batch).await {
            Ok(()) => {
                let mut g = shared.lock();
                for _ in 0..batch.len() {
                    g.mem.pop_front();
                }
                g.status.written += batch.len() as u64;
                g.status.last_error = None;
                drop(g);
                if failing {
                    info!(sink = %name, "Sink is writing again; catching up in order");
                    failing = false;
                }
                backoff = Duration::from_millis(opts.retry_min_ms.max(1));
            }
            Err(e) => {
                let msg = e.chain();
                {
                    let mut g = shared.lock();
                    g.status.errors += 1;
                    g.status.last_error = Some(msg.clone());
                }
                if !failing {
                    warn!(sink = %name, error = %msg, "Sink cannot write; records wait in its queue and are retried");
                    failing = true;
                }
                let sleep = match deadline {
                    Some(d) => {
                        backoff.min(d.saturating_duration_since(tokio::time::Instant::now()))
                    }
                    None => backoff,
                };
                tokio::time::sleep(sleep).await;
                backoff = (backoff * 2).min(Duration::from_millis(opts.retry_max_ms.max(1)));
            }
        }
    }
    if let Err(e) = logger.flush().await {
        warn!(sink = %name, error = %e.chain(), "Sink flush at shutdown failed");
    }
    let g = shared.lock();
    let left = g.mem.len() as u64 + g.spill.as_ref().map_or(0, |s| s.count);
    info!(
        sink = %name,
        written = g.status.written,
        errors = g.status.errors,
        dropped = g.status.dropped,
        left,
        "Sink stopped"
    );
}

/// At shutdown: write memory + the unread part of the spill file to a fresh spill file, in order.
fn save_rest(shared: &Shared, name: &str) {
    let mut g = shared.lock();
    let inner = &mut *g;
    let left = inner.mem.len() as u64 + inner.spill.as_ref().map_or(0, |s| s.count);
    let Some(sp) = inner.spill.as_mut() else {
        warn!(sink = %name, events = left, "Shutdown before the sink caught up and there is no spill directory; events lost");
        inner.status.dropped += left;
        return;
    };
    let res = (|| -> std::io::Result<()> {
        let tmp = sp.path.with_extension("spill.tmp");
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        for (e, t) in &inner.mem {
            let mut s = serde_json::to_string(&SpillLine {
                t: *t,
                e: e.clone(),
            })
            .map_err(std::io::Error::other)?;
            s.push('\n');
            out.write_all(s.as_bytes())?;
        }
        sp.file.seek(SeekFrom::Start(sp.read_pos))?;
        let mut rest = (&sp.file).take(sp.write_pos - sp.read_pos);
        std::io::copy(&mut rest, &mut out)?;
        out.flush()?;
        drop(out);
        std::fs::rename(&tmp, &sp.path)?;
        Ok(())
    })();
    match res {
        Ok(()) => {
            info!(sink = %name, events = left, file = %sp.path.display(), "Saved the events the sink had not written; they go first on the next start");
        }
        Err(e) => {
            warn!(sink = %name, events = left, error = %e, "Saving the unwritten events failed; events lost");
            inner.status.dropped += left;
        }
    }
}
