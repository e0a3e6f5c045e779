#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use sqlx::{Executor as _, QueryBuilder, Row as _, Sqlite};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::warn;
use twc_core::history::HistoryQuery;
use twc_core::logging::{Mute, Row};
use twc_core::model::Event;
use twc_core::plugin::{BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError};
use twc_plugin_kit::sql::{Dialect, Kind, SinkSettings, SqlSink, Value, defaults, write_rows};

const NAME: &str = "sqlite";

/// The schema: TWCManager's three tables, then our additions.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `[logging.sqlite]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (created when missing).
    pub path: PathBuf,
    /// At most one `green_energy` row per this many seconds (0 = every reading).
    #[serde(default = "defaults::green_energy_interval_secs")]
    pub green_energy_interval_secs: u64,
    /// After a restart, a session that starts again within this many seconds continues its row.
    #[serde(default = "defaults::resume_within_secs")]
    pub resume_within_secs: u64,
    /// Events per transaction.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    /// Per-type mute switches.
    #[serde(default)]
    pub mute: Mute,
}

impl SqliteConfig {
    fn settings(&self) -> SinkSettings {
        SinkSettings {
            green_energy_interval_secs: self.green_energy_interval_secs,
            resume_within_secs: self.resume_within_secs,
            batch_size: self.batch_size,
            mute: self.mute,
        }
    }
}

fn err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PluginError {
    twc_plugin_kit::sql::err::<SqliteDb>(context)
}

/// UTC, millisecond text that sorts by time (`2026-11-25 10:00:00.000`).
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
        .or_else(|| s.parse::<DateTime<Utc>>().ok())
}

/// Identity of the database file on disk, to notice it being deleted or replaced under us.
#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}
#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

struct Open {
    pool: SqlitePool,
    file: (u64, u64),
}

/// The database, connected and migrated on first use; shared by the sink and its history queries.
///
/// Before each use it checks that the file it has open is still the one at its path: when the
/// file (or its directory) was deleted or replaced, it warns, closes the pool, creates the
/// directories again and opens a fresh database, so records never go to an unlinked file.
pub struct SqliteDb {
    opts: SqliteConnectOptions,
    open: Mutex<Option<Open>>,
}

impl SqliteDb {
    /// A database at `path` (nothing is opened yet).
    pub fn new(path: &std::path::Path) -> Self {
        Self::with_busy_timeout(path, Duration::from_secs(5))
    }

    /// As [`SqliteDb::new`], waiting at most `busy` for another connection's lock.
    pub fn with_busy_timeout(path: &std::path::Path, busy: Duration) -> Self {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(busy);
        SqliteDb {
            opts,
            open: Mutex::new(None),
        }
    }

    fn path(&self) -> &std::path::Path {
        self.opts.get_filename()
    }

    /// The identity of the file now at the path, if any.
    async fn current_file(&self) -> Option<(u64, u64)> {
        tokio::fs::metadata(self.path())
            .await
            .ok()
            .map(|m| file_id(&m))
    }

    /// The pool, opening the file (creating its directory) and running the migrations the first
    /// time and again whenever the file was deleted or replaced.
    pub async fn pool(&self) -> Result<SqlitePool, PluginError> {
        Ok(self.pool_and_file().await?.0)
    }

    async fn pool_and_file(&self) -> Result<(SqlitePool, (u64, u64)), PluginError> {
        let mut open = self.open.lock().await;
        if let Some(o) = open.as_ref() {
            if self.current_file().await == Some(o.file) {
                return Ok((o.pool.clone(), o.file));
            }
            warn!(kind = "logging", plugin = NAME, file = %self.path().display(),
                "Database file was removed or replaced under the running sink; creating it again");
            if let Some(old) = open.take() {
                // Connections in use finish first; nothing waits for them.
                twc_core::plugin::spawn(async move { old.pool.close().await });
            }
        }
        let path = self.path().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                PluginError::new(
                    ErrorKind::Transient,
                    NAME,
                    format!("creating {}", dir.display()),
                )
                .with_source(e)
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(self.opts.clone())
            .await
            .map_err(err(format!("opening {}", path.display())))?;
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(
                PluginError::new(ErrorKind::Transient, NAME, "migrating the schema").with_source(e),
            );
        }
        let Some(file) = self.current_file().await else {
            pool.close().await;
            return Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!("{} vanished while opening it", path.display()),
            ));
        };
        *open = Some(Open {
            pool: pool.clone(),
            file,
        });
        Ok((pool, file))
    }
}

/// One batch as one transaction, begun and ended by hand rather than through sqlx's
/// `Transaction`: after a failed COMMIT or an error that made SQLite roll back by itself (I/O
/// error, full disk, busy), sqlx's idea of the transaction depth no longer matches the
/// connection, and its next `begin` becomes a SAVEPOINT inside a transaction that never commits.
/// `BEGIN IMMEDIATE` fails on a connection already in a transaction, and `COMMIT` fails when
/// there is none, so an `Ok` here means the rows are in the file.
async fn write_all(conn: &mut SqliteConnection, rows: &[Row]) -> Result<(), PluginError> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(err("starting a transaction"))?;
    let res = rows_and_commit(conn, rows).await;
    if res.is_err() {
        // Best effort; the connection is discarded anyway.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    res
}

async fn rows_and_commit(conn: &mut SqliteConnection, rows: &[Row]) -> Result<(), PluginError> {
    write_rows::<SqliteDb>(conn, rows)
        .await
        .map_err(err("writing a record"))?;
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(err("committing"))?;
    Ok(())
}

/// SQLite: times are millisecond text, each row its own statement (prepared once and cached),
/// and the file is checked after each commit.
#[async_trait]
impl Dialect for SqliteDb {
    type Db = Sqlite;
    type Stamp = (u64, u64);
    const NAME: &'static str = NAME;
    const REAL: &'static str = "REAL";
    const ROWS_PER_INSERT: usize = 1;
    const CUT_TEXT: bool = false;

    fn upsert(key: &[&str], update: &[&str]) -> String {
        let set: Vec<String> = update
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            set.join(", ")
        )
    }

    async fn pool(&self) -> Result<(SqlitePool, (u64, u64)), PluginError> {
        self.pool_and_file().await
    }

    async fn write(conn: &mut SqliteConnection, rows: &[Row]) -> Result<(), PluginError> {
        write_all(conn, rows).await
    }

    async fn committed(&self, file: (u64, u64)) -> Result<(), PluginError> {
        if self.current_file().await != Some(file) {
            // Committed into a file that was deleted meanwhile: those rows are gone with it.
            return Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!(
                    "{} was removed while writing; writing the batch again",
                    self.path().display()
                ),
            ));
        }
        Ok(())
    }

    fn bind(q: &mut QueryBuilder<'_, Sqlite>, v: Value) {
        match v {
            Value::Int(v) => q.push_bind(v),
            Value::Real(v) => q.push_bind(v),
            Value::Text(v) => q.push_bind(v),
            Value::Time(v) => q.push_bind(v.map(ts)),
        };
    }

    async fn execute(
        conn: &mut SqliteConnection,
        q: &mut QueryBuilder<'_, Sqlite>,
    ) -> Result<(), sqlx::Error> {
        conn.execute(q.build()).await.map(drop)
    }

    async fn fetch(
        pool: &SqlitePool,
        q: &mut QueryBuilder<'_, Sqlite>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Value>>, sqlx::Error> {
        let rows = q.build().fetch_all(pool).await?;
        Ok(rows
            .iter()
            .map(|r| {
                kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| match k {
                        Kind::Int => Value::Int(r.try_get(i).ok().flatten()),
                        Kind::Real => Value::Real(r.try_get(i).ok().flatten()),
                        Kind::Text => Value::Text(r.try_get(i).ok().flatten()),
                        Kind::Time => Value::Time(
                            r.try_get::<Option<String>, _>(i)
                                .ok()
                                .flatten()
                                .as_deref()
                                .and_then(parse_ts),
                        ),
                    })
                    .collect()
            })
            .collect())
    }
}

/// The SQLite event sink.
pub struct SqliteSink(SqlSink<SqliteDb>);

impl SqliteSink {
    /// A sink for `cfg` (the file is opened on the first write).
    pub fn new(cfg: SqliteConfig) -> Self {
        SqliteSink(SqlSink::new(SqliteDb::new(&cfg.path), cfg.settings()))
    }

    /// As [`SqliteSink::new`], waiting at most `busy` for another connection's lock (5 s in
    /// [`SqliteSink::new`]) before a write fails and is retried by the sink queue.
    pub fn with_busy_timeout(cfg: SqliteConfig, busy: Duration) -> Self {
        SqliteSink(SqlSink::new(
            SqliteDb::with_busy_timeout(&cfg.path, busy),
            cfg.settings(),
        ))
    }

    /// The database, for history queries.
    pub fn db(&self) -> Arc<SqliteDb> {
        self.0.db()
    }
}

#[async_trait]
impl Logger for SqliteSink {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        self.0.record(event).await
    }
    fn batch_size(&self) -> usize {
        self.0.batch_size()
    }
    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        self.0.record_batch(events).await
    }
    fn history(&self) -> Option<Arc<dyn HistoryQuery>> {
        self.0.history()
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    let c: SqliteConfig = cfg.parse()?;
    if c.path.as_os_str().is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "path must name the database file",
        ));
    }
    Ok(Box::new(SqliteSink::new(c)))
}

inventory::submit! {
    LoggingPlugin { name: NAME, summary: "SQLite database with TWCManager's tables; answers history queries for graphs",
        example: include_str!("../example.toml"), build }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twc_plugin_kit::sql::tables::{CHARGE_SESSIONS, GREEN_ENERGY};

    #[test]
    fn upserts_are_sqlites_on_conflict() {
        assert_eq!(
            SqliteDb::upsert(GREEN_ENERGY.key, GREEN_ENERGY.update),
            "ON CONFLICT (time) DO UPDATE SET genW = excluded.genW, conW = excluded.conW, \
             chgW = excluded.chgW, gridW = excluded.gridW, batteryW = excluded.batteryW"
        );
        assert_eq!(
            SqliteDb::upsert(CHARGE_SESSIONS.key, CHARGE_SESSIONS.update),
            "ON CONFLICT (startTime, slaveTWC) DO UPDATE SET startkWh = excluded.startkWh, \
             vehicleVIN = excluded.vehicleVIN, lastTime = excluded.lastTime, \
             lastkWh = excluded.lastkWh, vehicleName = excluded.vehicleName, \
             startSoC = excluded.startSoC"
        );
    }

    #[test]
    fn times_are_millisecond_text_and_read_back() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(t), "2026-11-25 10:00:00.123");
        assert_eq!(parse_ts(&ts(t)), Some(t));
    }
}
