//! Fault injection: the CSV sink behind the real no-loss queue, with a file that cannot be
//! written (ENOSPC from /dev/full), a path that cannot be a directory, and the directory deleted
//! while records flow. Every record must land exactly once, in order, in its file, and the
//! queue's counters must only count what landed.

use std::path::Path;
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::{Mute, SinkHandle};
use twc_core::model::Event;
use twc_logging_csv::{CsvConfig, CsvSink, FAULTS, POLICY, TimeZone};
use twc_testkit::sinks::{
    assert_all_written, assert_held_back, fault, numbered, policy, queue_options, send_each,
    start_sink, wait_errors,
};

fn want(range: std::ops::RangeInclusive<i64>) -> Vec<String> {
    numbered(range)
        .into_iter()
        .map(|n| format!("\"{n}\""))
        .collect()
}

/// The last field of every line (a torn line shows up as a wrong value).
fn last_fields(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .split_terminator("\r\n")
        .map(|l| l.rsplit(',').next().unwrap_or_default().to_string())
        .collect()
}

fn start(dir: &Path, spill: &Path) -> (broadcast::Sender<Event>, SinkHandle) {
    let sink = CsvSink::new(CsvConfig {
        path: dir.to_path_buf(),
        green_energy_interval_secs: 0,
        time_zone: TimeZone::Utc,
        mute: Mute::default(),
    });
    start_sink("csv", Box::new(sink), queue_options(spill, 100))
}

async fn wait_idle(h: &SinkHandle, written: u64) {
    twc_testkit::sinks::wait_idle(h, written, Duration::from_secs(10)).await;
}

fn send_pairs(tx: &broadcast::Sender<Event>, range: std::ops::RangeInclusive<i64>) {
    send_each(tx, range, &[fault, policy]);
}

/// `faults.csv` is written before `policy.csv` in a batch: with policy.csv failing, the fault
/// lines of the same batch must be taken back, or the retry writes them twice.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_failing_with_enospc_takes_back_the_batch_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("csv");
    let (tx, h) = start(&dir, &tmp.path().join("spill"));
    send_pairs(&tx, 1..=5);
    wait_idle(&h, 10).await;
    let kept = tmp.path().join("policy-kept.csv");
    std::fs::rename(dir.join(POLICY), &kept).unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.join(POLICY)).unwrap();
    let before = h.status();
    send_pairs(&tx, 6..=20);
    wait_errors(&h, before.errors + 2).await;
    // A lone fault can have gone through in a batch of its own before its policy change.
    assert_held_back(&h, before.written + 1);
    std::fs::remove_file(dir.join(POLICY)).unwrap();
    wait_idle(&h, 40).await;
    assert_all_written(&h, 40);
    assert_eq!(last_fields(&dir.join(FAULTS)), want(1..=20));
    assert_eq!(last_fields(&kept), want(1..=5));
    assert_eq!(last_fields(&dir.join(POLICY)), want(6..=20));
    drop(tx);
    h.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_cannot_be_a_directory_holds_records_until_it_can() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("csv");
    std::fs::write(&dir, "not a directory").unwrap();
    let (tx, h) = start(&dir, &tmp.path().join("spill"));
    send_pairs(&tx, 1..=10);
    wait_errors(&h, 2).await;
    let during = h.status();
    assert_eq!((during.written, during.queued), (0, 20), "{during:?}");
    std::fs::remove_file(&dir).unwrap();
    wait_idle(&h, 20).await;
    assert_eq!(last_fields(&dir.join(FAULTS)), want(1..=10));
    assert_eq!(last_fields(&dir.join(POLICY)), want(1..=10));
    let st = h.status();
    assert_eq!((st.written, st.dropped), (20, 0), "{st:?}");
    drop(tx);
    h.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_deleted_under_the_running_sink_is_created_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a").join("csv");
    let (tx, h) = start(&dir, &tmp.path().join("spill"));
    send_pairs(&tx, 1..=5);
    wait_idle(&h, 10).await;
    std::fs::remove_dir_all(tmp.path().join("a")).unwrap();
    send_pairs(&tx, 6..=20);
    wait_idle(&h, 40).await;
    assert_all_written(&h, 40);
    assert_eq!(last_fields(&dir.join(FAULTS)), want(6..=20));
    assert_eq!(last_fields(&dir.join(POLICY)), want(6..=20));
    drop(tx);
    h.join().await;
}
