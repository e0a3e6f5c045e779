//! Fault injection: the files sink behind the real no-loss queue, with a full disk, a failing
//! file, and the file or its directory deleted while records flow. Every record must land exactly
//! once, in order, and the queue's counters must only count what landed.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::{Mute, SinkHandle};
use twc_core::model::Event;
use twc_logging_files::{FilesConfig, FilesSink, Format, Rotate, SimulatedDisk};
use twc_testkit::sinks::{
    assert_all_written, assert_held_back, fault, numbered as want, queue_options, start_sink,
    wait_errors,
};

fn start(dir: &Path, spill: &Path) -> (broadcast::Sender<Event>, SinkHandle, SimulatedDisk) {
    let sink = FilesSink::new(FilesConfig {
        path: dir.to_path_buf(),
        file_name: "twcmanager.log".into(),
        rotate: Rotate::Size,
        max_bytes: 1 << 20,
        keep: 3,
        format: Format::Json,
        mute: Mute::default(),
    });
    let disk = sink.disk();
    let (tx, h) = start_sink("files", Box::new(sink), queue_options(spill, 100));
    (tx, h, disk)
}

/// The fault messages in the log file, in file order (a torn line fails the test).
fn messages(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str::<Event>(l) {
            Ok(Event::Fault { message, .. }) => message,
            other => panic!("not a whole fault line: {l:?} ({other:?})"),
        })
        .collect()
}

async fn wait_idle(h: &SinkHandle, written: u64) {
    twc_testkit::sinks::wait_idle(h, written, Duration::from_secs(10)).await;
}

/// Sends `from..=to` during a fault; nothing may be counted as written, the rest must wait.
async fn send_during_fault(tx: &broadcast::Sender<Event>, h: &SinkHandle, from: i64, to: i64) {
    let before = h.status();
    for i in from..=to {
        tx.send(fault(i)).unwrap();
    }
    wait_errors(h, before.errors + 2).await;
    assert_held_back(h, before.written);
    let st = h.status();
    assert_eq!(st.queued, (to - from + 1) as u64, "{st:?}");
}

fn log(dir: &Path) -> PathBuf {
    dir.join("twcmanager.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_batch_leaves_no_torn_or_doubled_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (tx, h, disk) = start(&dir, &tmp.path().join("spill"));
    for i in 1..=10 {
        tx.send(fault(i)).unwrap();
    }
    wait_idle(&h, 10).await;
    // Room for half a line while records pile up, then for two and a half: the next batch
    // fails part-way through its third line.
    let line = std::fs::metadata(log(&dir)).unwrap().len() / 10;
    disk.set_space_left(Some(line / 2));
    send_during_fault(&tx, &h, 11, 30).await;
    let errors = h.status().errors;
    disk.set_space_left(Some(line * 5 / 2));
    while h.status().errors < errors + 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.status().written, 10, "{:?}", h.status());
    disk.set_space_left(None);
    wait_idle(&h, 30).await;
    assert_all_written(&h, 30);
    assert_eq!(messages(&log(&dir)), want(1..=30));
    drop(tx);
    h.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_directory_is_created_again_and_nothing_goes_to_the_unlinked_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a").join("log");
    let (tx, h, _) = start(&dir, &tmp.path().join("spill"));
    for i in 1..=10 {
        tx.send(fault(i)).unwrap();
    }
    wait_idle(&h, 10).await;
    assert_eq!(messages(&log(&dir)), want(1..=10));
    std::fs::remove_dir_all(tmp.path().join("a")).unwrap();
    for i in 11..=30 {
        tx.send(fault(i)).unwrap();
    }
    wait_idle(&h, 30).await;
    assert_all_written(&h, 30);
    assert_eq!(messages(&log(&dir)), want(11..=30));
    drop(tx);
    h.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_deleted_under_the_running_sink_is_created_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (tx, h, _) = start(&dir, &tmp.path().join("spill"));
    for i in 1..=10 {
        tx.send(fault(i)).unwrap();
    }
    wait_idle(&h, 10).await;
    std::fs::remove_file(log(&dir)).unwrap();
    for i in 11..=30 {
        tx.send(fault(i)).unwrap();
    }
    wait_idle(&h, 30).await;
    assert_eq!(messages(&log(&dir)), want(11..=30));
    assert_eq!(h.status().written, 30);
    drop(tx);
    h.join().await;
}

/// /dev/full answers every write with ENOSPC: the log file replaced by a link to it is a disk
/// that is really full, not a simulated one.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_failing_with_enospc_wait_and_land_once_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (tx, h, _) = start(&dir, &tmp.path().join("spill"));
    for i in 1..=10 {
        tx.send(fault(i)).unwrap();
    }
    wait_idle(&h, 10).await;
    let kept = tmp.path().join("kept.log");
    std::fs::rename(log(&dir), &kept).unwrap();
    std::os::unix::fs::symlink("/dev/full", log(&dir)).unwrap();
    send_during_fault(&tx, &h, 11, 30).await;
    std::fs::remove_file(log(&dir)).unwrap();
    wait_idle(&h, 30).await;
    assert_all_written(&h, 30);
    assert_eq!(messages(&kept), want(1..=10));
    assert_eq!(messages(&log(&dir)), want(11..=30));
    drop(tx);
    h.join().await;
}
