#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use sqlx::{Row as _, Sqlite as Db};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::warn;
use twc_core::history::{HistoryQuery, PowerPoint, SessionRecord};
use twc_core::logging::{Mute, OpenSession, Row, RowBuilder, SessionOp};
use twc_core::model::Event;
use twc_core::plugin::{BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError};
use twc_core::protocol::TwcId;

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
    #[serde(default = "default_green")]
    pub green_energy_interval_secs: u64,
    /// After a restart, a session that starts again within this many seconds continues its row.
    #[serde(default = "default_resume")]
    pub resume_within_secs: u64,
    /// Events per transaction.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Per-type mute switches.
    #[serde(default)]
    pub mute: Mute,
}

fn default_green() -> u64 {
    60
}
fn default_resume() -> u64 {
    900
}
fn default_batch() -> usize {
    500
}

fn err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PluginError {
    let context = context.into();
    move |e| PluginError::new(ErrorKind::Transient, NAME, context).with_source(e)
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
                tokio::spawn(async move { old.pool.close().await });
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

    async fn open_sessions(&self) -> Result<Vec<OpenSession>, PluginError> {
        let rows = sqlx::query(
            "SELECT slaveTWC, startTime, startkWh, vehicleVIN, lastTime, lastkWh \
             FROM charge_sessions WHERE endTime IS NULL",
        )
        .fetch_all(&self.pool().await?)
        .await
        .map_err(err("reading open sessions"))?;
        let mut out = Vec::new();
        for r in rows {
            let slave: Option<String> = r.try_get(0).ok();
            let start: Option<String> = r.try_get(1).ok();
            let (Some(slave), Some(started_at)) = (
                slave.and_then(|s| s.parse::<TwcId>().ok()),
                start.as_deref().and_then(parse_ts),
            ) else {
                continue;
            };
            let last: Option<String> = r.try_get(4).ok().flatten();
            out.push(OpenSession {
                slave,
                started_at,
                start_kwh: kwh(r.try_get(2).ok().flatten()),
                vin: r.try_get(3).ok().flatten(),
                last_at: last.as_deref().and_then(parse_ts).unwrap_or(started_at),
                last_kwh: kwh(r.try_get(5).ok().flatten()),
            });
        }
        Ok(out)
    }
}

fn kwh(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

async fn write_row(tx: &mut SqliteConnection, row: &Row) -> Result<(), sqlx::Error> {
    match row {
        Row::Session(SessionOp::Start(s)) => {
            sqlx::query(
                "INSERT INTO charge_sessions \
                 (chargeid, startTime, startkWh, slaveTWC, vehicleVIN, lastTime, lastkWh) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (startTime, slaveTWC) DO UPDATE SET startkWh = excluded.startkWh, \
                 vehicleVIN = excluded.vehicleVIN, lastTime = excluded.lastTime, \
                 lastkWh = excluded.lastkWh",
            )
            .bind(s.started_at.timestamp())
            .bind(ts(s.started_at))
            .bind(s.start_kwh.map(i64::from))
            .bind(s.slave.to_string())
            .bind(&s.vin)
            .bind(ts(s.last_at))
            .bind(s.last_kwh.map(i64::from))
            .execute(&mut *tx)
            .await?;
        }
        Row::Session(SessionOp::Update(s)) => {
            sqlx::query(
                "UPDATE charge_sessions SET startkWh = ?, vehicleVIN = ?, lastTime = ?, \
                 lastkWh = ? WHERE slaveTWC = ? AND startTime = ?",
            )
            .bind(s.start_kwh.map(i64::from))
            .bind(&s.vin)
            .bind(ts(s.last_at))
            .bind(s.last_kwh.map(i64::from))
            .bind(s.slave.to_string())
            .bind(ts(s.started_at))
            .execute(&mut *tx)
            .await?;
        }
        Row::Session(SessionOp::End {
            session: s,
            ended_at,
            end_kwh,
        }) => {
            sqlx::query(
                "UPDATE charge_sessions SET startkWh = ?, vehicleVIN = ?, endTime = ?, \
                 endkWh = ?, lastTime = ?, lastkWh = ? WHERE slaveTWC = ? AND startTime = ?",
            )
            .bind(s.start_kwh.map(i64::from))
            .bind(&s.vin)
            .bind(ts(*ended_at))
            .bind(end_kwh.map(i64::from))
            .bind(ts(*ended_at))
            .bind(end_kwh.map(i64::from))
            .bind(s.slave.to_string())
            .bind(ts(s.started_at))
            .execute(&mut *tx)
            .await?;
        }
        Row::GreenEnergy(g) => {
            sqlx::query(
                "INSERT INTO green_energy (time, genW, conW, chgW, gridW, batteryW) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (time) DO UPDATE SET \
                 genW = excluded.genW, conW = excluded.conW, chgW = excluded.chgW, \
                 gridW = excluded.gridW, batteryW = excluded.batteryW",
            )
            .bind(ts(g.at))
            .bind(g.generation_w)
            .bind(g.consumption_w)
            .bind(g.charger_w)
            .bind(g.grid_w)
            .bind(g.battery_w)
            .execute(&mut *tx)
            .await?;
        }
        Row::SlaveStatus {
            slave,
            at,
            kwh,
            volts,
        } => {
            sqlx::query(
                "INSERT INTO slave_status \
                 (slaveTWC, time, kWh, voltsPhaseA, voltsPhaseB, voltsPhaseC) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (slaveTWC, time) DO UPDATE SET \
                 kWh = excluded.kWh, voltsPhaseA = excluded.voltsPhaseA, \
                 voltsPhaseB = excluded.voltsPhaseB, voltsPhaseC = excluded.voltsPhaseC",
            )
            .bind(slave.to_string())
            .bind(ts(*at))
            .bind(kwh.map(i64::from))
            .bind(i64::from(volts[0]))
            .bind(i64::from(volts[1]))
            .bind(i64::from(volts[2]))
            .execute(&mut *tx)
            .await?;
        }
        Row::SlavePower {
            slave,
            at,
            kind,
            state,
            actual,
            offered,
            power_w,
        } => {
            sqlx::query(
                "INSERT INTO slave_power \
                 (slaveTWC, time, kind, state, actualA, offeredA, powerW) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (slaveTWC, time, kind) DO UPDATE SET \
                 state = excluded.state, actualA = excluded.actualA, \
                 offeredA = excluded.offeredA, powerW = excluded.powerW",
            )
            .bind(slave.to_string())
            .bind(ts(*at))
            .bind(*kind)
            .bind(state)
            .bind(actual.map(|a| a.amps()))
            .bind(offered.map(|a| a.amps()))
            .bind(power_w)
            .execute(&mut *tx)
            .await?;
        }
        Row::Policy {
            at,
            from,
            to,
            reason,
        } => {
            sqlx::query(
                "INSERT INTO policy_changes (time, fromPolicy, toPolicy, reason) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(ts(*at))
            .bind(from)
            .bind(to)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        Row::Fault {
            at,
            component,
            message,
        } => {
            sqlx::query("INSERT INTO faults (time, component, message) VALUES (?, ?, ?)")
                .bind(ts(*at))
                .bind(component)
                .bind(message)
                .execute(&mut *tx)
                .await?;
        }
        _ => {}
    }
    Ok(())
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
    for r in rows {
        write_row(conn, r).await.map_err(err("writing a record"))?;
    }
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(err("committing"))?;
    Ok(())
}

/// A pooled connection that is closed, not returned to the pool, unless [`Discard::keep`] is
/// called: after any failure (or a cancelled write) it may hold a lock or a half-done transaction.
struct Discard(Option<PoolConnection<Db>>);

impl Discard {
    fn get(&mut self) -> Result<&mut SqliteConnection, PluginError> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| PluginError::new(ErrorKind::Transient, NAME, "connection discarded"))
    }
    fn keep(mut self) {
        self.0.take();
    }
}

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            drop(c.detach());
        }
    }
}

/// The SQLite event sink.
pub struct SqliteSink {
    cfg: SqliteConfig,
    db: Arc<SqliteDb>,
    rows: Mutex<Option<RowBuilder>>,
}

impl SqliteSink {
    /// A sink for `cfg` (the file is opened on the first write).
    pub fn new(cfg: SqliteConfig) -> Self {
        SqliteSink {
            db: Arc::new(SqliteDb::new(&cfg.path)),
            cfg,
            rows: Mutex::new(None),
        }
    }

    /// As [`SqliteSink::new`], waiting at most `busy` for another connection's lock (5 s in
    /// [`SqliteSink::new`]) before a write fails and is retried by the sink queue.
    pub fn with_busy_timeout(cfg: SqliteConfig, busy: Duration) -> Self {
        SqliteSink {
            db: Arc::new(SqliteDb::with_busy_timeout(&cfg.path, busy)),
            cfg,
            rows: Mutex::new(None),
        }
    }

    /// The database, for history queries.
    pub fn db(&self) -> Arc<SqliteDb> {
        self.db.clone()
    }
}

#[async_trait]
impl Logger for SqliteSink {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        self.record_batch(std::slice::from_ref(event)).await
    }

    fn batch_size(&self) -> usize {
        self.cfg.batch_size.max(1)
    }

    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        let (pool, file) = self.db.pool_and_file().await?;
        let mut state = self.rows.lock().await;
        let mut rows = Vec::new();
        let mut builder = match state.as_ref() {
            Some(b) => b.clone(),
            None => {
                let mut b = RowBuilder::new(
                    self.cfg.mute,
                    self.cfg.green_energy_interval_secs,
                    self.cfg.resume_within_secs,
                );
                let open = self.db.open_sessions().await?;
                rows.extend(b.restore(open, self.cfg.resume_within_secs));
                b
            }
        };
        for e in events {
            rows.extend(builder.rows(e));
        }
        let conn = pool.acquire().await.map_err(err("connecting"))?;
        let mut conn = Discard(Some(conn));
        write_all(conn.get()?, &rows).await?;
        // Success: the connection is clean (committed, no transaction open) and may be reused.
        conn.keep();
        if self.db.current_file().await != Some(file) {
            // Committed into a file that was deleted meanwhile: those rows are gone with it.
            return Err(PluginError::new(
                ErrorKind::Transient,
                NAME,
                format!(
                    "{} was removed while writing; writing the batch again",
                    self.db.path().display()
                ),
            ));
        }
        *state = Some(builder);
        Ok(())
    }

    fn history(&self) -> Option<Arc<dyn HistoryQuery>> {
        Some(self.db.clone())
    }
}

#[async_trait]
impl HistoryQuery for SqliteDb {
    async fn power(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<PowerPoint>, PluginError> {
        let rows = sqlx::query(
            "SELECT time, CAST(genW AS REAL), CAST(conW AS REAL), CAST(chgW AS REAL), \
             CAST(gridW AS REAL) FROM green_energy WHERE time >= ? AND time < ? ORDER BY time",
        )
        .bind(ts(from))
        .bind(ts(to))
        .fetch_all(&self.pool().await?)
        .await
        .map_err(err("querying green_energy"))?;
        let pts = rows
            .iter()
            .filter_map(|r| {
                let at: String = r.try_get(0).ok()?;
                Some(PowerPoint {
                    at: parse_ts(&at)?,
                    generation_w: r.try_get(1).ok().flatten(),
                    consumption_w: r.try_get(2).ok().flatten(),
                    charger_w: r.try_get(3).ok().flatten(),
                    grid_w: r.try_get(4).ok().flatten(),
                })
            })
            .collect();
        Ok(twc_core::history::thin(pts, max_points))
    }

    async fn sessions(
        &self,
        vin: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, PluginError> {
        let rows = sqlx::query(
            "SELECT slaveTWC, vehicleVIN, startTime, endTime, startkWh, \
             COALESCE(endkWh, lastkWh) FROM charge_sessions \
             WHERE startTime >= ? AND startTime < ? AND (? IS NULL OR vehicleVIN = ?) \
             ORDER BY startTime",
        )
        .bind(ts(from))
        .bind(ts(to))
        .bind(vin)
        .bind(vin)
        .fetch_all(&self.pool().await?)
        .await
        .map_err(err("querying charge_sessions"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let slave: String = r.try_get(0).ok()?;
                let start: String = r.try_get(2).ok()?;
                let end: Option<String> = r.try_get(3).ok().flatten();
                Some(SessionRecord {
                    slave: slave.parse().ok()?,
                    vin: r.try_get(1).ok().flatten(),
                    started_at: parse_ts(&start)?,
                    ended_at: end.as_deref().and_then(parse_ts),
                    start_kwh: kwh(r.try_get(4).ok().flatten()),
                    end_kwh: kwh(r.try_get(5).ok().flatten()),
                })
            })
            .collect())
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
