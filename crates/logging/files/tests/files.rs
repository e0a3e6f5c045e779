//! Rotation by day and by size, retention, formats and mute switches, on temp dirs.

use chrono::{DateTime, Local, TimeZone, Utc};
use twc_core::logging::Mute;
use twc_core::model::Event;
use twc_core::plugin::{Logger, PluginConfig};
use twc_logging_files::{FilesConfig, FilesSink, Format, Rotate, rotated_files};

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn fault(at: DateTime<Utc>, msg: &str) -> Event {
    Event::Fault {
        at,
        component: "test".into(),
        message: msg.into(),
    }
}

fn cfg(dir: &std::path::Path, rotate: Rotate, keep: usize) -> FilesConfig {
    FilesConfig {
        path: dir.to_path_buf(),
        file_name: "twcmanager.log".into(),
        rotate,
        max_bytes: 300,
        keep,
        format: Format::Text,
        mute: Mute::default(),
    }
}

fn lines(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn example_config_parses() {
    let c = PluginConfig::from_toml("logging.files", include_str!("../example.toml")).unwrap();
    let parsed: FilesConfig = c.parse().unwrap();
    assert_eq!((parsed.rotate, parsed.keep), (Rotate::Daily, 14));
    let bad =
        PluginConfig::from_toml("logging.files", "path = \"x\"\nrotate = \"weekly\"").unwrap();
    assert!(
        bad.parse::<FilesConfig>()
            .unwrap_err()
            .to_string()
            .contains("weekly")
    );
}

#[tokio::test]
async fn daily_rotation_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FilesSink::new(cfg(dir.path(), Rotate::Daily, 3));
    let day = 86_400;
    for d in 0..5 {
        sink.record_batch(&[
            fault(t(d * day), &format!("day {d} a")),
            fault(t(d * day + 60), &format!("day {d} b")),
        ])
        .await
        .unwrap();
    }
    let rotated = rotated_files(dir.path(), "twcmanager.log").unwrap();
    let names: Vec<String> = rotated
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let want: Vec<String> = (1..4)
        .map(|d| {
            format!(
                "twcmanager.log.{}",
                t(d * day).with_timezone(&Local).format("%Y-%m-%d")
            )
        })
        .collect();
    assert_eq!(names, want);
    let cur = lines(&dir.path().join("twcmanager.log"));
    assert_eq!(cur.len(), 2);
    assert!(cur[0].ends_with("faults Fault in test: day 4 a"), "{cur:?}");
    assert!(
        cur[0].starts_with(
            &t(4 * day)
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        )
    );
    assert!(lines(&rotated[0])[1].ends_with("day 1 b"));
}

#[tokio::test]
async fn size_rotation_bounds_every_file_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FilesSink::new(cfg(dir.path(), Rotate::Size, 100));
    for i in 0..40 {
        sink.record(&fault(t(i), &format!("{i:03}"))).await.unwrap();
    }
    let mut all = Vec::new();
    let rotated = rotated_files(dir.path(), "twcmanager.log").unwrap();
    assert!(rotated.len() >= 5, "{rotated:?}");
    for p in rotated
        .iter()
        .chain(std::iter::once(&dir.path().join("twcmanager.log")))
    {
        assert!(std::fs::metadata(p).unwrap().len() <= 300, "{p:?} too big");
        all.extend(lines(p));
    }
    let got: Vec<String> = all
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..40).map(|i| format!("{i:03}")).collect();
    assert_eq!(got, want);

    // Retention: with keep = 2 only the two newest rotated files stay.
    let dir = tempfile::tempdir().unwrap();
    let sink = FilesSink::new(cfg(dir.path(), Rotate::Size, 2));
    for i in 0..40 {
        sink.record(&fault(t(i), &format!("{i:03}"))).await.unwrap();
    }
    assert_eq!(
        rotated_files(dir.path(), "twcmanager.log").unwrap().len(),
        2
    );
    let cur = lines(&dir.path().join("twcmanager.log"));
    assert!(cur.last().unwrap().ends_with("039"));
}

#[tokio::test]
async fn json_lines_read_back_as_events_and_mute_applies() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), Rotate::Daily, 3);
    c.format = Format::Json;
    c.mute.policy = true;
    let sink = FilesSink::new(c);
    let e = fault(t(0), "bus silent");
    sink.record_batch(&[
        e.clone(),
        Event::PolicyChanged {
            at: t(1),
            from: "a".into(),
            to: "b".into(),
            reason: "muted".into(),
        },
    ])
    .await
    .unwrap();
    let l = lines(&dir.path().join("twcmanager.log"));
    assert_eq!(l.len(), 1);
    let back: Event = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(back, e);
}
