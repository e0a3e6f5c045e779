#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, Local, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;
use twc_core::logging::{Mute, OpenSession, Row, RowBuilder, SessionOp};
use twc_core::model::Event;
use twc_core::plugin::{BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError};

const NAME: &str = "csv";
/// A session restarting within this many seconds of its last update continues its row.
const RESUME_WITHIN_SECS: u64 = 900;

/// TWCManager's file of green-energy snapshots.
pub const GREEN_ENERGY: &str = "greenenergy.csv";
/// TWCManager's file of slave kWh and voltages.
pub const SLAVE_STATUS: &str = "slavestatus.csv";
/// TWCManager's file of finished charge sessions.
pub const CHARGE_SESSIONS: &str = "chargesessions.csv";
/// Policy changes (ours).
pub const POLICY: &str = "policy.csv";
/// Faults (ours).
pub const FAULTS: &str = "faults.csv";
/// External load points (a Gen3, an OCPP charger), one line per load point at the slaves'
/// status interval (ours): name, time, kind, state, draw, allocated, power, per-phase currents
/// and voltages, session and lifetime energy, problem.
pub const LOAD_POINTS: &str = "loadpointstatus.csv";
/// Sessions still open, so a restart continues them (ours).
pub const OPEN_SESSIONS: &str = "open-sessions.json";

/// Time zone of the date-time text columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeZone {
    /// The machine's local time, as TWCManager writes it.
    #[default]
    Local,
    /// UTC.
    Utc,
}

/// `[logging.csv]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// Directory of the files.
    pub path: PathBuf,
    /// At most one `greenenergy.csv` row per this many seconds (0 = every reading).
    #[serde(default = "default_green")]
    pub green_energy_interval_secs: u64,
    /// Time zone of the date-time text.
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Per-type mute switches.
    #[serde(default)]
    pub mute: Mute,
}

fn default_green() -> u64 {
    60
}

/// Every field double-quoted, quotes doubled, no header: TWCManager's `csv.QUOTE_ALL`.
pub fn csv_line(fields: &[String]) -> String {
    let mut s = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        s.push_str(&f.replace('"', "\"\""));
        s.push('"');
    }
    s.push_str("\r\n");
    s
}

/// The CSV event sink. A batch is all-or-nothing: when a file cannot be appended to (full disk,
/// read-only file, directory gone), every file the batch already appended to is cut back to its
/// length before the batch, so the queue's retry does not write lines twice.
pub struct CsvSink {
    cfg: CsvConfig,
    rows: Mutex<Option<RowBuilder>>,
    /// Files this sink has written, to warn when one disappears under it.
    written: Arc<std::sync::Mutex<BTreeSet<&'static str>>>,
}

impl CsvSink {
    /// A sink for `cfg` (the directory is created on the first write).
    pub fn new(cfg: CsvConfig) -> Self {
        CsvSink {
            rows: Mutex::new(None),
            cfg,
            written: Arc::default(),
        }
    }

    fn text(&self, t: DateTime<Utc>) -> String {
        match self.cfg.time_zone {
            TimeZone::Local => t
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            TimeZone::Utc => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }

    fn line(&self, row: &Row) -> Option<(&'static str, String)> {
        let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        let w = |v: Option<f64>| format!("{:.1}", v.unwrap_or(0.0));
        match row {
            Row::GreenEnergy(g) => Some((
                GREEN_ENERGY,
                csv_line(&[
                    g.at.timestamp().to_string(),
                    self.text(g.at),
                    w(g.generation_w),
                    w(g.consumption_w),
                    w(Some(g.charger_w)),
                ]),
            )),
            Row::SlaveStatus {
                slave,
                at,
                kwh,
                volts,
            } => Some((
                SLAVE_STATUS,
                csv_line(&[
                    slave.to_string(),
                    at.timestamp().to_string(),
                    self.text(*at),
                    opt(*kwh),
                    volts[0].to_string(),
                    volts[1].to_string(),
                    volts[2].to_string(),
                ]),
            )),
            Row::Session(SessionOp::End {
                session,
                ended_at,
                end_kwh,
            }) => Some((
                CHARGE_SESSIONS,
                csv_line(&[
                    session.slave.to_string(),
                    session.started_at.timestamp().to_string(),
                    self.text(session.started_at),
                    opt(session.start_kwh),
                    ended_at.timestamp().to_string(),
                    self.text(*ended_at),
                    opt(*end_kwh),
                    session.vin.clone().unwrap_or_default(),
                ]),
            )),
            Row::Policy {
                at,
                from,
                to,
                reason,
            } => Some((
                POLICY,
                csv_line(&[
                    at.timestamp().to_string(),
                    self.text(*at),
                    from.clone(),
                    to.clone(),
                    reason.clone(),
                ]),
            )),
            Row::LoadPoint { at, load_point: l } => {
                let v = l.view();
                let num =
                    |x: Option<f64>, d: usize| x.map(|x| format!("{x:.d$}")).unwrap_or_default();
                let mut f = vec![
                    l.name.clone(),
                    at.timestamp().to_string(),
                    self.text(*at),
                    l.kind.clone(),
                    if l.stale { "stale" } else { l.state.as_str() }.to_string(),
                    num(l.draw.filter(|_| !l.stale).map(|d| d.amps()), 2),
                    num(Some(l.allocated.amps()), 2),
                    num(l.power_w(), 1),
                ];
                f.extend(v.currents_a.iter().map(|a| num(*a, 2)));
                f.extend(v.voltages_v.iter().map(|a| num(*a, 1)));
                f.push(num(v.session_energy_wh, 1));
                f.push(num(v.lifetime_energy_wh, 1));
                f.push(l.problem.clone().unwrap_or_default());
                Some((LOAD_POINTS, csv_line(&f)))
            }
            Row::Fault {
                at,
                component,
                message,
            } => Some((
                FAULTS,
                csv_line(&[
                    at.timestamp().to_string(),
                    self.text(*at),
                    component.clone(),
                    message.clone(),
                ]),
            )),
            _ => None,
        }
    }
}

#[async_trait]
impl Logger for CsvSink {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        self.record_batch(std::slice::from_ref(event)).await
    }

    fn batch_size(&self) -> usize {
        100
    }

    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        let mut state = self.rows.lock().await;
        let mut rows = Vec::new();
        let mut builder = match state.as_ref() {
            Some(b) => b.clone(),
            None => {
                let mut b = RowBuilder::new(
                    self.cfg.mute,
                    self.cfg.green_energy_interval_secs,
                    RESUME_WITHIN_SECS,
                );
                let p = self.cfg.path.join(OPEN_SESSIONS);
                let open: Vec<OpenSession> = match tokio::fs::read(&p).await {
                    Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                        tracing::warn!(file = %p.display(), error = %e, "Unreadable open-sessions file; starting afresh");
                        Vec::new()
                    }),
                    Err(_) => Vec::new(),
                };
                rows.extend(b.restore(open, RESUME_WITHIN_SECS));
                b
            }
        };
        let before: Vec<OpenSession> = builder.open_sessions().cloned().collect();
        for e in events {
            rows.extend(builder.rows(e));
        }
        let mut files: BTreeMap<&'static str, String> = BTreeMap::new();
        for r in &rows {
            if let Some((file, line)) = self.line(r) {
                files.entry(file).or_default().push_str(&line);
            }
        }
        let after: Vec<OpenSession> = builder.open_sessions().cloned().collect();
        let open_json = (before != after || state.is_none())
            .then(|| serde_json::to_vec(&after).unwrap_or_default());
        if !files.is_empty() || open_json.is_some() {
            let dir = self.cfg.path.clone();
            let known = self.written.clone();
            twc_core::plugin::spawn_blocking(move || -> Result<(), (String, std::io::Error)> {
                let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
                let gone: Vec<&str> = files
                    .keys()
                    .copied()
                    .filter(|f| known.contains(f) && !dir.join(f).exists())
                    .collect();
                if !gone.is_empty() {
                    tracing::warn!(kind = "logging", plugin = NAME, dir = %dir.display(), files = ?gone,
                        "CSV files were removed under the running sink; creating them again");
                }
                let mut marks: Vec<(PathBuf, u64)> = Vec::new();
                let res = append_all(&dir, &files, open_json, &mut marks);
                match &res {
                    Ok(()) => known.extend(files.keys().copied()),
                    Err(_) => {
                        for (p, len) in marks {
                            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&p) {
                                let _ = f.set_len(len);
                            }
                        }
                    }
                }
                res
            })
            .await
            .map_err(|e| PluginError::new(ErrorKind::Transient, NAME, e.to_string()))?
            .map_err(|(p, e)| {
                PluginError::new(ErrorKind::Transient, NAME, format!("appending to {p}"))
                    .with_source(e)
            })?;
        }
        *state = Some(builder);
        Ok(())
    }
}

/// Append each file's lines (noting each file's length before, for a rollback), then replace the
/// open-sessions file.
fn append_all(
    dir: &std::path::Path,
    files: &BTreeMap<&'static str, String>,
    open_json: Option<Vec<u8>>,
    marks: &mut Vec<(PathBuf, u64)>,
) -> Result<(), (String, std::io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (dir.display().to_string(), e))?;
    for (file, text) in files {
        let p = dir.join(file);
        let ctx = |e| (p.display().to_string(), e);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(ctx)?;
        let len = f.metadata().map_err(ctx)?.len();
        marks.push((p.clone(), len));
        f.write_all(text.as_bytes())
            .and_then(|()| f.flush())
            .map_err(ctx)?;
    }
    if let Some(json) = open_json {
        let p = dir.join(OPEN_SESSIONS);
        let tmp = dir.join(format!("{OPEN_SESSIONS}.tmp"));
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &p))
            .map_err(|e| (p.display().to_string(), e))?;
    }
    Ok(())
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    let c: CsvConfig = cfg.parse()?;
    if c.path.as_os_str().is_empty() {
        return Err(BuildError::new(&cfg.section, "path must name a directory"));
    }
    Ok(Box::new(CsvSink::new(c)))
}

inventory::submit! {
    LoggingPlugin { name: NAME, summary: "TWCManager's CSV files: greenenergy, slavestatus, chargesessions (+ policy, faults)",
        example: include_str!("../example.toml"), build }
}
