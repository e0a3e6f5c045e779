//! The runtime settings file: loaded at start, written after every settings-changing command.
//!
//! Writes are atomic: the JSON goes to a temporary file in the same directory, is flushed to disk
//! (`fsync`), and is renamed over the old file; then the directory is synced so the rename itself
//! survives a power cut. A `kill -9` (or a power loss) at any moment leaves either the old file
//! or the new one, never a mix, never an empty file. A leftover temporary file from an interrupted
//! write is ignored and replaced by the next save.

use crate::model::Settings;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why loading or saving the settings failed. The message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading, writing, syncing or renaming failed.
    #[error("settings file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid settings JSON.
    #[error("settings file {path} is not valid settings JSON: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde said.
        message: String,
    },
}

/// Where the settings live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsStore {
    path: PathBuf,
}

impl SettingsStore {
    /// A store at `path` (the file need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SettingsStore { path: path.into() }
    }

    /// The settings file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tmp_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "settings.json".into());
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Load the settings. `Ok(None)` when the file does not exist yet (first start). Keys missing
    /// from the file take their defaults, so files from older versions load.
    pub fn load(&self) -> Result<Option<Settings>, StoreError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Parse {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Write the settings atomically (temporary file, `fsync`, rename, directory `fsync`).
    pub fn save(&self, settings: &Settings) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(settings).map_err(|e| StoreError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let tmp = self.tmp_path();
        {
            let mut f = File::create(&tmp).map_err(|e| self.io(e))?;
            f.write_all(&json).map_err(|e| self.io(e))?;
            f.write_all(b"\n").map_err(|e| self.io(e))?;
            f.sync_all().map_err(|e| self.io(e))?;
        }
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        // Make the rename durable. Directories cannot be opened for syncing on every platform;
        // where they cannot, the rename is still atomic, only its durability is the OS's.
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
