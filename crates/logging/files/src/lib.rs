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
///
/// Writes of one batch can be undone ([`RotatingFile::rollback`]): every file the batch appended
/// to is cut back to its length before the batch, so a retried batch is not written twice.
pub struct RotatingFile {
    cfg: FilesConfig,
    file: Option<File>,
    size: u64,
    period: Option<String>,
    /// Files appended to since [`RotatingFile::commit`], with their length before.
    marks: Vec<(PathBuf, u64)>,
    /// Simulated free space (tests): writes past it fail part-way with `StorageFull`.
    space: Option<u64>,
}

/// Identity of a file (device, inode) to notice it being unlinked or replaced.
#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}
#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

impl RotatingFile {
    /// Nothing is opened until the first write.
    pub fn new(cfg: FilesConfig) -> Self {
        RotatingFile {
            cfg,
            file: None,
            size: 0,
            period: None,
            marks: Vec::new(),
            space: None,
        }
    }

    /// Tests only: pretend the disk has `bytes` free (`None` = no limit). A write that does not
    /// fit lands part-way and fails with `StorageFull`, as on a real full disk.
    #[doc(hidden)]
    pub fn set_space_left(&mut self, bytes: Option<u64>) {
        self.space = bytes;
    }

    /// When the open file is no longer the one at its path (deleted, its directory deleted, or
    /// replaced), warn and forget it, so the next write creates it again instead of appending
    /// to an unlinked file nobody will ever read. Returns whether it was gone.
    pub fn check_still_there(&mut self) -> bool {
        let Some(f) = self.file.as_ref() else {
            return false;
        };
        let open = f.metadata().ok().and_then(|m| file_id(&m));
        let at_path = std::fs::metadata(self.current())
            .ok()
            .and_then(|m| file_id(&m));
        let gone = match (open, at_path) {
            (Some(a), Some(b)) => a != b,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if gone {
            tracing::warn!(kind = "logging", plugin = NAME, file = %self.current().display(),
                "Log file was removed or replaced under the running sink; creating it again");
            self.file = None;
            self.marks.clear();
        }
        gone
    }

    /// Keep what was written since the last commit.
    pub fn commit(&mut self) {
        self.marks.clear();
    }

    /// Undo what was written since the last commit (best effort), and re-open on the next write.
    pub fn rollback(&mut self) {
        self.file = None;
        for (p, len) in self.marks.drain(..) {
            if let Ok(f) = OpenOptions::new().write(true).open(&p) {
                let _ = f.set_len(len);
            }
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
            for m in &mut self.marks {
                if m.0 == cur {
                    m.0.clone_from(&target);
                }
            }
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
        let cur = self.current();
        if !self.marks.iter().any(|m| m.0 == cur) {
            self.marks.push((cur, self.size));
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("file not open"))?;
        let bytes = line.as_bytes();
        let fits = self
            .space
            .map_or(bytes.len(), |left| bytes.len().min(left as usize));
        f.write_all(&bytes[..fits])?;
        self.size += fits as u64;
        if let Some(left) = self.space.as_mut() {
            *left -= fits as u64;
        }
        if fits < bytes.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device",
            ));
        }
        Ok(())
    }

    /// Flush to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
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

/// The rotating-files event sink. A batch is all-or-nothing: on a write error (full disk, read-only
/// file, deleted directory) what it appended is cut off again, and the queue retries it whole.
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

    /// Tests only: a handle that simulates a full disk under the running sink.
    #[doc(hidden)]
    pub fn disk(&self) -> SimulatedDisk {
        SimulatedDisk(self.file.clone())
    }
}

/// Tests only: see [`RotatingFile::set_space_left`].
#[doc(hidden)]
#[derive(Clone)]
pub struct SimulatedDisk(Arc<Mutex<RotatingFile>>);

impl SimulatedDisk {
    /// Pretend `bytes` are free (`None` = no limit).
    pub fn set_space_left(&self, bytes: Option<u64>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_space_left(bytes);
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
        twc_core::plugin::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            f.check_still_there();
            let r = lines
                .iter()
                .try_for_each(|(at, l)| f.write_line(*at, l))
                .and_then(|()| f.flush());
            // Deleted while writing: the lines went with the old file; write them again.
            let r = r.and_then(|()| match f.check_still_there() {
                true => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the log file was removed while writing",
                )),
                false => Ok(()),
            });
            match &r {
                Ok(()) => f.commit(),
                // Nothing of a failed batch stays, so its retry does not duplicate lines.
                Err(_) => f.rollback(),
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
