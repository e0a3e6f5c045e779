//! CSV files read back and compared column by column with TWCManager's layout.

use chrono::Local;
use std::time::Duration;
use tokio::sync::broadcast;
use twc_core::logging::{Mute, SinkOptions, spawn_sink};
use twc_core::model::{ChargeSession, EnergyReading, Event, SlaveStatus};
use twc_core::plugin::{Logger, PluginConfig};
use twc_core::protocol::TwcId;
use twc_logging_csv::{CsvConfig, CsvSink, TimeZone as Tz};
use twc_testkit::events::t;

fn local(s: i64) -> String {
    t(s).with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A reader for QUOTE_ALL lines: every field must be quoted.
fn read(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with("\r\n"),
        "CRLF line ends like Python's csv module"
    );
    text.split_terminator("\r\n")
        .map(|line| {
            let mut fields = Vec::new();
            let mut chars = line.chars().peekable();
            loop {
                assert_eq!(chars.next(), Some('"'), "unquoted field in {line:?}");
                let mut f = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            f.push('"');
                        }
                        Some('"') => break,
                        Some(c) => f.push(c),
                        None => panic!("unterminated field in {line:?}"),
                    }
                }
                fields.push(f);
                match chars.next() {
                    Some(',') => continue,
                    None => break,
                    Some(c) => panic!("unexpected {c:?} in {line:?}"),
                }
            }
            fields
        })
        .collect()
}

fn slave(kwh: u32, amps: u16) -> SlaveStatus {
    SlaveStatus {
        id: TwcId::from_u16(0xA1B2),
        volts: [241, 0, 0],
        ..twc_testkit::events::slave(kwh, amps, amps > 0)
    }
}

fn cfg(dir: &std::path::Path) -> CsvConfig {
    CsvConfig {
        path: dir.to_path_buf(),
        green_energy_interval_secs: 0,
        time_zone: Tz::Local,
        mute: Mute::default(),
    }
}

fn events() -> Vec<Event> {
    let session = |energy| ChargeSession {
        slave: TwcId::from_u16(0xA1B2),
        vin: Some("5YJ3E1EA7KF000001".into()),
        started_at: t(0),
        start_kwh: Some(1200),
        energy_kwh: energy,
        metrics: Default::default(),
    };
    vec![
        Event::SessionStarted {
            at: t(0),
            session: session(0.0),
        },
        Event::SlaveStatus {
            at: t(30),
            slave: slave(1201, 10),
        },
        Event::Reading {
            at: t(31),
            source: "fronius".into(),
            reading: EnergyReading {
                generation_w: Some(4321.06),
                consumption_w: Some(987.44),
                ..EnergyReading::default()
            },
        },
        Event::Fault {
            at: t(40),
            component: "ems.fronius".into(),
            message: "HTTP 503 \"busy\", retrying".into(),
        },
        Event::SessionEnded {
            at: t(5400),
            session: session(9.0),
        },
    ]
}

#[test]
fn example_config_parses() {
    let c = PluginConfig::from_toml("logging.csv", include_str!("../example.toml")).unwrap();
    let parsed: CsvConfig = c.parse().unwrap();
    assert_eq!(parsed.time_zone, Tz::Local);
    let bad = PluginConfig::from_toml("logging.csv", "path = \"x\"\ntime_zone = \"mars\"").unwrap();
    assert!(
        bad.parse::<CsvConfig>()
            .unwrap_err()
            .to_string()
            .contains("mars")
    );
}

#[tokio::test]
async fn files_have_twcmanagers_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CsvSink::new(cfg(dir.path()));
    sink.record_batch(&events()).await.unwrap();

    let ge = read(&dir.path().join("greenenergy.csv"));
    assert_eq!(
        ge,
        vec![vec![
            t(31).timestamp().to_string(),
            local(31),
            "4321.1".to_string(),
            "987.4".to_string(),
            "2410.0".to_string(), // 10 A × 241 V from the slave's last status
        ]]
    );
    let ss = read(&dir.path().join("slavestatus.csv"));
    assert_eq!(
        ss,
        vec![vec![
            "A1B2".to_string(),
            t(30).timestamp().to_string(),
            local(30),
            "1201".into(),
            "241".into(),
            "0".into(),
            "0".into(),
        ]]
    );
    let cs = read(&dir.path().join("chargesessions.csv"));
    assert_eq!(
        cs,
        vec![vec![
            "A1B2".to_string(),
            t(0).timestamp().to_string(),
            local(0),
            "1200".into(),
            t(5400).timestamp().to_string(),
            local(5400),
            "1209".into(),
            "5YJ3E1EA7KF000001".into(),
        ]]
    );
    let f = read(&dir.path().join("faults.csv"));
    assert_eq!(f[0][3], "HTTP 503 \"busy\", retrying");
}

#[tokio::test]
async fn mute_switches_keep_files_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.mute.green_energy = true;
    c.mute.charge_sessions = true;
    CsvSink::new(c).record_batch(&events()).await.unwrap();
    assert!(!dir.path().join("greenenergy.csv").exists());
    assert!(!dir.path().join("chargesessions.csv").exists());
    assert_eq!(read(&dir.path().join("slavestatus.csv")).len(), 1);
}

#[tokio::test]
async fn an_unwritable_directory_delays_rows_but_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("csv");
    // A plain file where the directory should be: every write fails until it is removed.
    std::fs::write(&target, b"in the way").unwrap();
    let (tx, rx) = broadcast::channel(256);
    let opts = SinkOptions {
        retry_min_ms: 20,
        retry_max_ms: 100,
        ..SinkOptions::default()
    };
    let h = spawn_sink(rx, "csv", Box::new(CsvSink::new(cfg(&target))), opts);
    for i in 0..50 {
        tx.send(Event::Fault {
            at: t(i),
            component: "test".into(),
            message: format!("{i:03}"),
        })
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = h.status();
    assert!(st.errors >= 2 && st.written == 0, "{st:?}");
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("csv"),
        "{st:?}"
    );
    std::fs::remove_file(&target).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.status().written < 50 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", h.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got: Vec<String> = read(&target.join("faults.csv"))
        .into_iter()
        .map(|r| r[3].clone())
        .collect();
    let want: Vec<String> = (0..50).map(|i| format!("{i:03}")).collect();
    assert_eq!(got, want);
    assert_eq!(h.status().dropped, 0);
}

#[tokio::test]
async fn a_session_across_a_restart_is_one_row_from_its_original_start() {
    let dir = tempfile::tempdir().unwrap();
    let session = |start: i64, kwh: u32, energy: f64| ChargeSession {
        slave: TwcId::from_u16(0xA1B2),
        vin: None,
        started_at: t(start),
        start_kwh: Some(kwh),
        energy_kwh: energy,
        metrics: Default::default(),
    };
    CsvSink::new(cfg(dir.path()))
        .record_batch(&[
            Event::SessionStarted {
                at: t(0),
                session: session(0, 1200, 0.0),
            },
            Event::SlaveStatus {
                at: t(60),
                slave: slave(1203, 16),
            },
        ])
        .await
        .unwrap();
    // Restarted: the engine sees a new session at 1204 kWh a minute later.
    CsvSink::new(cfg(dir.path()))
        .record_batch(&[
            Event::SessionStarted {
                at: t(120),
                session: session(120, 1204, 0.0),
            },
            Event::SessionEnded {
                at: t(3600),
                session: session(120, 1204, 5.0),
            },
        ])
        .await
        .unwrap();
    let cs = read(&dir.path().join("chargesessions.csv"));
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert_eq!(
        (cs[0][1].as_str(), cs[0][3].as_str(), cs[0][6].as_str()),
        (t(0).timestamp().to_string().as_str(), "1200", "1209")
    );
}

/// A Wall Connector Gen3 (an external load point) gets its own file, one line per status, and
/// its power counts in the green-energy file's charger column.
#[tokio::test]
async fn a_gen3_load_point_has_its_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CsvSink::new(cfg(dir.path()));
    let lp = twc_testkit::load_points::gen3_charging_na();
    let events = vec![
        Event::LoadPointStatus {
            at: t(10),
            load_point: Box::new(lp.clone()),
        },
        Event::Reading {
            at: t(11),
            source: "fronius".into(),
            reading: EnergyReading {
                generation_w: Some(9000.0),
                consumption_w: Some(8000.0),
                ..EnergyReading::default()
            },
        },
        Event::LoadPointStatus {
            at: t(70),
            load_point: Box::new(twc_testkit::load_points::gen3_unreachable()),
        },
    ];
    sink.record_batch(&events).await.unwrap();
    let rows = read(&dir.path().join(twc_logging_csv::LOAD_POINTS));
    let s = |x: &str| x.to_string();
    assert_eq!(
        rows[0],
        vec![
            s("gen3.garage"),
            t(10).timestamp().to_string(),
            local(10),
            s("gen3"),
            s("charging"),
            s("31.90"),
            s("32.00"),
            s("7703.8"),
            s("31.80"),
            s("31.90"),
            s("0.10"),
            s("241.5"),
            s("241.5"),
            s("118.7"),
            s("11562.4"),
            s("386204.0"),
            s(""),
        ]
    );
    // Unreachable: no draw or power (unknown, not 0), the problem said.
    assert_eq!(rows[1][4], "stale");
    assert_eq!((rows[1][5].as_str(), rows[1][7].as_str()), ("", ""));
    assert_eq!(rows[1][16], "not reachable: connection refused");
    let ge = read(&dir.path().join("greenenergy.csv"));
    assert_eq!(ge[0][4], "7703.8");
}
