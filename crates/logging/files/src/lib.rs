#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, Local, Utc};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use twc_core::logging::{Mute, RecordType, describe, event_time};
use twc_core::model::Event;
use twc_core::plugin::{BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError};

const NAME: &str = "files";

/// When to start a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotate {
    /// Every local hour.
    Hourly,
    /// Every local day.
    Daily,
    /// Past `max_bytes`.
    Size,
}

/// Line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Time, record type, and the event in words.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[logging.files]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Directory of the files.
    pub path: PathBuf,
    /// Name of the current file.
    #[serde(default = "default_name")]
    pub file_name: String,
    /// When to rotate.
    #[serde(default = "default_rotate")]
    pub rotate: Rotate,
    /// Size limit with `rotate = "size"`.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Line format.
    #[serde(default)]
    pub format: Format,
    /// Per-type mute switches.
    #[serde(default)]
    pub mute: Mute,
}

fn default_name() -> String {
    "twcmanager.log".into()
}
fn default_rotate() -> Rotate {
    Rotate::Daily
}
fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_keep() -> usize {
    14
}

/// A file that rotates by period or size and keeps `keep` old files. Periods come from the
/// records' own times (local time), so a backlog written late lands in the file of its hour/day.
pub struct RotatingFile {
    cfg: FilesConfig,
    file: Option<File>,
    size: u64,
    period: Option<String>,
}

impl RotatingFile {
    /// Nothing is opened until the first write.
    pub fn new(cfg: FilesConfig) -> Self {
        RotatingFile {
            cfg,
            file: None,
            size: 0,
            period: None,
        }
    }

    fn current(&self) -> PathBuf {
        self.cfg.path.join(&self.cfg.file_name)
    }

    fn period_of(&self, t: DateTime<Utc>) -> Option<String> {
        let l = t.with_timezone(&Local);
        match self.cfg.rotate {
            Rotate::Hourly => Some(l.format("%Y-%m-%d-%H").to_string()),
            Rotate::Daily => Some(l.format("%Y-%m-%d").to_string()),
            Rotate::Size => None,
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.cfg.path)?;
        let p = self.current();
        let f = OpenOptions::new().create(true).append(true).open(&p)?;
        let meta = f.metadata()?;
        self.size = meta.len();
        if self.period.is_none() && self.size > 0 {
            // An existing file belongs to the period it was last written in.
            let m: DateTime<Utc> = meta
                .modified()
                .map(DateTime::from)
                .unwrap_or_else(|_| Utc::now());
            self.period = self.period_of(m);
        }
        self.file = Some(f);
        Ok(())
    }

    fn rotate(&mut self, suffix: &str) -> std::io::Result<()> {
        self.file = None;
        let cur = self.current();
        if cur.exists() && std::fs::metadata(&cur)?.len() > 0 {
            let mut target = self
                .cfg
                .path
                .join(format!("{}.{suffix}", self.cfg.file_name));
            let mut n = 1;
            while target.exists() {
                target = self
                    .cfg
                    .path
                    .join(format!("{}.{suffix}.{n:04}", self.cfg.file_name));
                n += 1;
            }
            std::fs::rename(&cur, &target)?;
        }
        self.prune()?;
        self.open()
    }

    /// Rotated files, oldest first.
    pub fn rotated(&self) -> std::io::Result<Vec<PathBuf>> {
        rotated_files(&self.cfg.path, &self.cfg.file_name)
    }

    fn prune(&self) -> std::io::Result<()> {
        let files = self.rotated()?;
        let extra = files.len().saturating_sub(self.cfg.keep);
        for p in files.into_iter().take(extra) {
            std::fs::remove_file(p)?;
        }
        Ok(())
    }

    /// Append one line written at `at`, rotating first when it belongs to a new period or would
    /// make the file too big.
    pub fn write_line(&mut self, at: DateTime<Utc>, line: &str) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        let period = self.period_of(at);
        match (&period, &self.period) {
            (Some(new), Some(old)) if new > old && self.size > 0 => {
                let old = old.clone();
                self.rotate(&old)?;
            }
            (None, _) if self.size > 0 && self.size + line.len() as u64 > self.cfg.max_bytes => {
                let stamp = Local::now().format("%Y%m%dT%H%M%S").to_string();
                self.rotate(&stamp)?;
            }
            _ => {}
        }
        if period.is_some() && (self.period.is_none() || period > self.period) {
            self.period = period;
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("file not open"))?;
        f.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Flush to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    /// Forget the open file (after an error, so the next write re-opens it).
    fn reset(&mut self) {
        self.file = None;
    }
}

/// `<name>.<suffix>` files in `dir`, oldest first (suffixes sort by time).
pub fn rotated_files(dir: &Path, name: &str) -> std::io::Result<Vec<PathBuf>> {
    let prefix = format!("{name}.");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// One line for an event.
pub fn format_line(format: Format, event: &Event) -> String {
    match format {
        Format::Text => format!(
            "{} {} {}\n",
            event_time(event)
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S"),
            RecordType::of(event).as_str(),
            describe(event)
        ),
        Format::Json => {
            let mut s = serde_json::to_string(event).unwrap_or_else(|e| {
                format!(
                    "{{\"type\":\"unserialisable\",\"error\":{:?}}}",
                    e.to_string()
                )
            });
            s.push('\n');
            s
        }
    }
}

/// The rotating-files event sink.
pub struct FilesSink {
    format: Format,
    mute: Mute,
    file: Arc<Mutex<RotatingFile>>,
}

impl FilesSink {
    /// A sink for `cfg`.
    pub fn new(cfg: FilesConfig) -> Self {
        FilesSink {
            format: cfg.format,
            mute: cfg.mute,
            file: Arc::new(Mutex::new(RotatingFile::new(cfg))),
        }
    }
}

#[async_trait]
impl Logger for FilesSink {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        self.record_batch(std::slice::from_ref(event)).await
    }

    fn batch_size(&self) -> usize {
        100
    }

    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        let lines: Vec<(DateTime<Utc>, String)> = events
            .iter()
            .filter(|e| self.mute.allows(e))
            .map(|e| (event_time(e), format_line(self.format, e)))
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            let r = lines
                .iter()
                .try_for_each(|(at, l)| f.write_line(*at, l))
                .and_then(|()| f.flush());
            if r.is_err() {
                f.reset();
            }
            r
        })
        .await
        .map_err(|e| PluginError::new(ErrorKind::Transient, NAME, e.to_string()))?
        .map_err(|e| {
            PluginError::new(ErrorKind::Transient, NAME, "writing the log file").with_source(e)
        })
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    let c: FilesConfig = cfg.parse()?;
    if c.path.as_os_str().is_empty() {
        return Err(BuildError::new(&cfg.section, "path must name a directory"));
    }
    if c.file_name.is_empty() || c.file_name.contains('/') {
        return Err(BuildError::new(
            &cfg.section,
            format!("file_name must be a plain file name, got {:?}", c.file_name),
        ));
    }
    if c.rotate == Rotate::Size && c.max_bytes == 0 {
        return Err(BuildError::new(
            &cfg.section,
            "max_bytes must be greater than 0",
        ));
    }
    Ok(Box::new(FilesSink::new(c)))
}

inventory::submit! {
    LoggingPlugin { name: NAME, summary: "Rotating log files of events (hourly, daily or by size, N kept; text or JSON)",
        example: include_str!("../example.toml"), build }
}
