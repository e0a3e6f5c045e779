//! What survives a restart: the connector numbers, open transactions, the queue of transaction
//! messages not yet confirmed by the central system, installed charging profiles and changed
//! configuration keys. One JSON file, replaced atomically (write, fsync, rename) on each change.

use crate::profile::Installed;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Most queued messages; beyond it the oldest MeterValues go first (transactions are kept).
pub const MAX_QUEUED: usize = 10_000;

/// A transaction message waiting for the central system's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// Order of creation.
    pub seq: u64,
    /// `StartTransaction`, `MeterValues` or `StopTransaction`.
    pub action: String,
    /// The payload; `transactionId` is filled in when sent, from `local_tx`.
    pub payload: Value,
    /// Our number for the transaction it belongs to.
    pub local_tx: u64,
    /// CALLERRORs received for it so far.
    #[serde(default)]
    pub errors: u32,
}

/// A transaction that is open on a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenTx {
    /// Our number for it (the central system's `transactionId` comes later, maybe offline).
    pub local: u64,
    /// The idTag it was started with.
    pub id_tag: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Energy register at the start, Wh.
    pub meter_start_wh: i64,
}

/// The persisted state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Connector id of each TWC (by TWCID), stable across restarts.
    pub connectors: BTreeMap<String, u32>,
    /// Transaction messages in the order they must reach the central system.
    pub queue: VecDeque<Queued>,
    /// The next sequence number / local transaction number.
    pub next_seq: u64,
    /// The central system's transactionId of each of our transactions, once it answered.
    pub tx_ids: BTreeMap<u64, i64>,
    /// Open transactions by connector id.
    pub open: BTreeMap<u32, OpenTx>,
    /// Energy register of each connector, Wh (monotonic across sessions and restarts).
    pub registers_wh: BTreeMap<u32, f64>,
    /// Installed charging profiles.
    pub profiles: Vec<Installed>,
    /// Configuration keys changed by ChangeConfiguration.
    pub config: BTreeMap<String, String>,
    /// Connectors set Inoperative by ChangeAvailability (0 = the whole charge point).
    pub inoperative: BTreeSet<u32>,
}

impl State {
    /// A new sequence number.
    pub fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Queue a transaction message.
    pub fn push(&mut self, action: &str, payload: Value, local_tx: u64) {
        let seq = self.seq();
        self.queue.push_back(Queued {
            seq,
            action: action.into(),
            payload,
            local_tx,
            errors: 0,
        });
        while self.queue.len() > MAX_QUEUED {
            match self.queue.iter().position(|q| q.action == "MeterValues") {
                Some(i) => {
                    self.queue.remove(i);
                }
                None => break,
            }
        }
    }

    /// The connector id of a TWC, given a new one (the lowest free) the first time.
    pub fn connector_of(&mut self, twc: &str) -> u32 {
        if let Some(c) = self.connectors.get(twc) {
            return *c;
        }
        let used: BTreeSet<u32> = self.connectors.values().copied().collect();
        let c = (1..).find(|c| !used.contains(c)).unwrap_or(1);
        self.connectors.insert(twc.to_string(), c);
        c
    }

    /// The open transaction with the central system's `transactionId`.
    pub fn open_by_remote(&self, id: i64) -> Option<u32> {
        self.open
            .iter()
            .find(|(_, t)| self.tx_ids.get(&t.local) == Some(&id))
            .map(|(c, _)| *c)
    }
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not ours or is damaged.
    #[error("{path}: not a twcmanager OCPP state file ({source}); move it away to start afresh")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// The state and where it lives.
pub struct Store {
    path: PathBuf,
    /// The state.
    pub state: State,
}

impl Store {
    /// Open the state file (a missing file is an empty state).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let state = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StoreError::Corrupt {
                path: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io(e)),
        };
        Ok(Store {
            path: path.to_path_buf(),
            state,
        })
    }

    /// Write the state: a temporary file, fsync, rename over the old one. The file is small (the
    /// queue holds a few hundred bytes per message).
    pub fn save(&self) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let body = serde_json::to_vec(&self.state).map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}
