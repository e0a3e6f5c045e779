//! The subscriber's filter and formats, and events printed at info, captured in a buffer.

use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing::instrument::WithSubscriber;
use twc_core::model::Event;
use twc_core::plugin::{Logger, PluginConfig};
use twc_logging_console::{ConsoleConfig, ConsoleSink, Format, subscriber};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn fault() -> Event {
    Event::Fault {
        at: chrono::Utc::now(),
        component: "bus".into(),
        message: "another master".into(),
    }
}

const OWN: &[&str] = &["twc_logging_console", "twc_core"];

#[test]
fn example_config_parses_and_bad_levels_are_named() {
    let c = PluginConfig::from_toml("logging.console", include_str!("../example.toml")).unwrap();
    let parsed: ConsoleConfig = c.parse().unwrap();
    assert_eq!(parsed.levels["twc_core::master"], "info");
    let v = serde_json::json!({ "enabled": true, "level": "loud" });
    let e = ConsoleConfig::from_section(Some(&v))
        .unwrap_err()
        .to_string();
    assert!(e.contains("level") && e.contains("loud"), "{e}");
    let v = serde_json::json!({ "levels": { "twc_core::master": "chatty" } });
    let e = ConsoleConfig::from_section(Some(&v))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("twc_core::master") && e.contains("chatty"),
        "{e}"
    );
    let v = serde_json::json!({ "colour": true });
    assert!(
        ConsoleConfig::from_section(Some(&v))
            .unwrap_err()
            .to_string()
            .contains("colour")
    );
    assert_eq!(
        ConsoleConfig::from_section(None).unwrap(),
        ConsoleConfig::default()
    );
}

#[test]
fn directives_put_dependencies_at_warn_and_apply_module_levels_last() {
    let v = serde_json::json!({ "level": "debug", "levels": { "twc_core::master": "trace" } });
    let c = ConsoleConfig::from_section(Some(&v)).unwrap();
    assert_eq!(
        c.directives(OWN),
        "warn,twc_logging_console=debug,twc_core=debug,twc_core::master=trace"
    );
}

#[tokio::test]
async fn events_print_at_info_in_json_and_mute_and_filters_apply() {
    let buf = Buf::default();
    let cfg = ConsoleConfig {
        format: Format::Json,
        ..ConsoleConfig::default()
    };
    let sink = ConsoleSink::new(cfg.mute);
    let sub = subscriber(&cfg, OWN, None, buf.clone());
    async {
        sink.record(&fault()).await.unwrap();
        // Muted by default on the console: slave status and green energy.
        sink.record(&Event::Reading {
            at: chrono::Utc::now(),
            source: "sim".into(),
            reading: Default::default(),
        })
        .await
        .unwrap();
        tracing::debug!(target: "twc_core::master", "Below the level: not printed");
        tracing::info!(target: "hyper", "A dependency at info: not printed");
    }
    .with_subscriber(sub)
    .await;
    let out = buf.text();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(
        lines[0]["fields"]["message"],
        "Fault in bus: another master"
    );
    assert_eq!(lines[0]["fields"]["record"], "faults");

    // RUST_LOG wins over the config.
    let buf = Buf::default();
    let sub = subscriber(&cfg, OWN, Some("twc_core::master=debug"), buf.clone());
    async {
        sink.record(&fault()).await.unwrap();
        tracing::debug!(target: "twc_core::master", "Shown by RUST_LOG");
    }
    .with_subscriber(sub)
    .await;
    let out = buf.text();
    assert!(
        out.contains("Shown by RUST_LOG") && !out.contains("another master"),
        "{out}"
    );
}

#[tokio::test]
async fn human_format_has_level_target_and_message() {
    let buf = Buf::default();
    let cfg = ConsoleConfig {
        ansi: false,
        ..ConsoleConfig::default()
    };
    let sub = subscriber(&cfg, OWN, None, buf.clone());
    ConsoleSink::new(cfg.mute)
        .record(&fault())
        .with_subscriber(sub)
        .await
        .unwrap();
    let out = buf.text();
    assert!(
        out.contains(" INFO twc_logging_console: Fault in bus: another master"),
        "{out}"
    );
}
