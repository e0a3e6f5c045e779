//! `/metrics` shows the logging sinks of the engine it serves (`Status.sinks`), not a process-wide
//! registry.

mod common;

use common::*;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use twc_core::logging::{SinkOptions, SinkSet, spawn_engine_sink};
use twc_core::model::{Event, Settings};
use twc_core::plugin::{Logger, PluginError};

struct Null;

#[twc_core::async_trait]
impl Logger for Null {
    async fn record(&self, _: &Event) -> Result<(), PluginError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_render_the_sinks_in_the_status() {
    let set = SinkSet::new();
    let mut ec = engine_config();
    ec.sinks = set.clone();
    let meter = Box::new(FailingMeter {
        n: AtomicU64::new(0),
    });
    let d = demo_with_meter(0, Settings::default(), ec, meter).await;
    let sink = spawn_engine_sink(&d.engine, "probe", Box::new(Null), SinkOptions::default());
    set.add(sink.watcher());
    d.wait_until(Duration::from_secs(20), |s| {
        s.sinks.iter().any(|x| x.name == "probe")
    })
    .await
    .expect("the sink in the status");
    let t = d.get("/metrics").await.text().await.unwrap();
    assert!(t.contains("twc_sink_queued{sink=\"probe\"}"), "{t}");
    assert!(t.contains("# TYPE twc_sink_dropped_total counter"), "{t}");
}
