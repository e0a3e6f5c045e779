//! Fault tests of event sinks: numbered records, the real no-loss queue with a spill directory,
//! and the waits and checks that prove every record landed exactly once, in order, and was counted
//! only once it landed. Shared by the csv, files, mysql and sqlite sinks' `tests/faults.rs`.

use crate::events::t;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::{SinkHandle, SinkOptions, spawn_sink};
use twc_core::model::Event;
use twc_core::plugin::Logger;

/// Record number `i` as text: `0001`, the message or reason of [`fault`] and [`policy`].
pub fn number(i: i64) -> String {
    format!("{i:04}")
}

/// The numbers of `range` as text, oldest first: what a table or file must hold.
pub fn numbered(range: RangeInclusive<i64>) -> Vec<String> {
    range.map(number).collect()
}

/// Fault number `i`, at `t(i)`, its message [`number`]`(i)`.
pub fn fault(i: i64) -> Event {
    Event::Fault {
        at: t(i),
        component: "test".into(),
        message: number(i),
    }
}

/// Policy change number `i` (`a` to `b`), at `t(i)`, its reason [`number`]`(i)`.
pub fn policy(i: i64) -> Event {
    Event::PolicyChanged {
        at: t(i),
        from: "a".into(),
        to: "b".into(),
        reason: number(i),
    }
}

/// For each number of `range`, sends one event made by each of `events`, in that order.
pub fn send_each(
    tx: &broadcast::Sender<Event>,
    range: RangeInclusive<i64>,
    events: &[fn(i64) -> Event],
) {
    for i in range {
        for e in events {
            tx.send(e(i)).unwrap();
        }
    }
}

/// A small queue (10) that spills to `spill`, retrying every 20 ms up to `retry_max_ms`.
pub fn queue_options(spill: &Path, retry_max_ms: u64) -> SinkOptions {
    SinkOptions {
        queue_capacity: 10,
        spill_dir: Some(spill.to_path_buf()),
        retry_min_ms: 20,
        retry_max_ms,
        ..SinkOptions::default()
    }
}

/// `sink` behind the real queue, fed by the returned sender.
pub fn start_sink(
    name: &str,
    sink: Box<dyn Logger>,
    opts: SinkOptions,
) -> (broadcast::Sender<Event>, SinkHandle) {
    let (tx, rx) = broadcast::channel(1024);
    (tx, spawn_sink(rx, name, sink, opts))
}

/// Waits until at least `written` records were written and nothing is queued; fails after
/// `within`.
pub async fn wait_idle(h: &SinkHandle, written: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let st = h.status();
        if st.written >= written && st.queued == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{st:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the sink counted at least `errors` errors; fails after 10 s.
pub async fn wait_errors(h: &SinkHandle, errors: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.status().errors < errors {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", h.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every one of `n` records was written once: `n` written, none dropped, none queued.
#[track_caller]
pub fn assert_all_written(h: &SinkHandle, n: u64) {
    let st = h.status();
    assert_eq!((st.written, st.dropped, st.queued), (n, 0, 0), "{st:?}");
}

/// While a fault lasts: the sink failed, spilled and kept the error, and counted at most `written`.
#[track_caller]
pub fn assert_held_back(h: &SinkHandle, written: u64) {
    let st = h.status();
    assert!(st.written <= written, "counted while failing: {st:?}");
    assert!(st.spilled > 0 && st.last_error.is_some(), "{st:?}");
}
