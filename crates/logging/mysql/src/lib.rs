#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::Deserialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Connection as _, MySql, QueryBuilder, Row as _, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};
use twc_core::history::{HistoryQuery, PowerPoint, SessionRecord};
use twc_core::logging::{GreenEnergy, Mute, OpenSession, Row, RowBuilder, SessionOp};
use twc_core::model::Event;
use twc_core::plugin::{
    BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError, Secret,
};
use twc_core::protocol::TwcId;

const NAME: &str = "mysql";
/// Rows per multi-row INSERT (keeps every statement far below MySQL's 65 535 placeholders).
const ROWS_PER_INSERT: usize = 1000;

/// The schema: TWCManager's three tables, then our additions.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `[logging.mysql]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// Server host name or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Server port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database (must exist).
    pub database: String,
    /// User.
    #[serde(default = "default_user")]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: Secret,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect")]
    pub connect_timeout_secs: u64,
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

fn default_host() -> String {
    "localhost".into()
}
fn default_port() -> u16 {
    3306
}
fn default_user() -> String {
    "twcmanager".into()
}
fn default_connect() -> u64 {
    10
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
    move |e| {
        let kind = match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("28000") => ErrorKind::Auth,
            _ => ErrorKind::Transient,
        };
        PluginError::new(kind, NAME, context).with_source(e)
    }
}

/// UTC, whole seconds (TWCManager's `DATETIME` columns).
fn dt(t: DateTime<Utc>) -> NaiveDateTime {
    let n = t.naive_utc();
    n.with_nanosecond(0).unwrap_or(n)
}

/// The database, connected and migrated on first use; shared by the sink and its history queries.
pub struct MysqlDb {
    opts: MySqlConnectOptions,
    connect_timeout: Duration,
    pool: OnceCell<MySqlPool>,
}

impl MysqlDb {
    /// A database for `cfg` (nothing is opened yet).
    pub fn new(cfg: &MysqlConfig) -> Self {
        let mut opts = MySqlConnectOptions::new()
            .host(&cfg.host)
            .port(cfg.port)
            .database(&cfg.database)
            .username(&cfg.username)
            .charset("utf8mb4")
            .timezone(Some("+00:00".into()));
        if !cfg.password.is_empty() {
            opts = opts.password(cfg.password.expose());
        }
        MysqlDb {
            opts,
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs.max(1)),
            pool: OnceCell::new(),
        }
    }

    /// The pool, connecting and running the migrations the first time.
    pub async fn pool(&self) -> Result<&MySqlPool, PluginError> {
        self.pool
            .get_or_try_init(|| async {
                let pool = MySqlPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(self.connect_timeout)
                    .connect_with(self.opts.clone())
                    .await
                    .map_err(err("connecting"))?;
                MIGRATOR.run(&pool).await.map_err(|e| {
                    PluginError::new(ErrorKind::Transient, NAME, "migrating the schema")
                        .with_source(e)
                })?;
                Ok(pool)
            })
            .await
    }

    async fn open_sessions(&self) -> Result<Vec<OpenSession>, PluginError> {
        let rows = sqlx::query(
            "SELECT slaveTWC, startTime, startkWh, vehicleVIN, lastTime, lastkWh \
             FROM charge_sessions WHERE endTime IS NULL",
        )
        .fetch_all(self.pool().await?)
        .await
        .map_err(err("reading open sessions"))?;
        let mut out = Vec::new();
        for r in rows {
            let slave: Option<String> = r.try_get(0).ok();
            let start: Option<NaiveDateTime> = r.try_get(1).ok();
            let (Some(slave), Some(started_at)) =
                (slave.and_then(|s| s.parse::<TwcId>().ok()), start)
            else {
                continue;
            };
            let started_at = started_at.and_utc();
            let last: Option<NaiveDateTime> = r.try_get(4).ok().flatten();
            out.push(OpenSession {
                slave,
                started_at,
                start_kwh: kwh(r.try_get(2).ok().flatten()),
                vin: r.try_get(3).ok().flatten(),
                last_at: last.map(|l| l.and_utc()).unwrap_or(started_at),
                last_kwh: kwh(r.try_get(5).ok().flatten()),
            });
        }
        Ok(out)
    }
}

/// At most `n` characters, so strict SQL mode never rejects a record (and blocks the queue) for a
/// string longer than its column.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn kwh(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn opt_kwh(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

async fn write_session(tx: &mut Transaction<'_, MySql>, op: &SessionOp) -> Result<(), sqlx::Error> {
    match op {
        SessionOp::Start(s) => {
            sqlx::query(
                "INSERT INTO charge_sessions \
                 (chargeid, startTime, startkWh, slaveTWC, vehicleVIN, lastTime, lastkWh) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                 startkWh = VALUES(startkWh), vehicleVIN = VALUES(vehicleVIN), \
                 lastTime = VALUES(lastTime), lastkWh = VALUES(lastkWh)",
            )
            .bind(s.started_at.timestamp())
            .bind(dt(s.started_at))
            .bind(opt_kwh(s.start_kwh))
            .bind(s.slave.to_string())
            .bind(s.vin.as_deref().map(|v| cut(v, 17)))
            .bind(dt(s.last_at))
            .bind(opt_kwh(s.last_kwh))
            .execute(&mut **tx)
            .await?;
        }
        SessionOp::Update(s) => {
            sqlx::query(
                "UPDATE charge_sessions SET startkWh = ?, vehicleVIN = ?, lastTime = ?, \
                 lastkWh = ? WHERE slaveTWC = ? AND startTime = ?",
            )
            .bind(opt_kwh(s.start_kwh))
            .bind(s.vin.as_deref().map(|v| cut(v, 17)))
            .bind(dt(s.last_at))
            .bind(opt_kwh(s.last_kwh))
            .bind(s.slave.to_string())
            .bind(dt(s.started_at))
            .execute(&mut **tx)
            .await?;
        }
        SessionOp::End {
            session: s,
            ended_at,
            end_kwh,
        } => {
            sqlx::query(
                "UPDATE charge_sessions SET startkWh = ?, vehicleVIN = ?, endTime = ?, \
                 endkWh = ?, lastTime = ?, lastkWh = ? WHERE slaveTWC = ? AND startTime = ?",
            )
            .bind(opt_kwh(s.start_kwh))
            .bind(s.vin.as_deref().map(|v| cut(v, 17)))
            .bind(dt(*ended_at))
            .bind(opt_kwh(*end_kwh))
            .bind(dt(*ended_at))
            .bind(opt_kwh(*end_kwh))
            .bind(s.slave.to_string())
            .bind(dt(s.started_at))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Rows of the append-style tables, gathered per table for multi-row INSERTs.
#[derive(Default)]
struct Batches<'a> {
    green: Vec<&'a GreenEnergy>,
    status: Vec<&'a Row>,
    power: Vec<&'a Row>,
    policy: Vec<&'a Row>,
    faults: Vec<&'a Row>,
}

async fn write_rows(tx: &mut Transaction<'_, MySql>, rows: &[Row]) -> Result<(), sqlx::Error> {
    let mut b = Batches::default();
    for r in rows {
        match r {
            // Session rows depend on each other: in order, one by one (a few per session).
            Row::Session(op) => write_session(tx, op).await?,
            Row::GreenEnergy(g) => b.green.push(g),
            Row::SlaveStatus { .. } => b.status.push(r),
            Row::SlavePower { .. } => b.power.push(r),
            Row::Policy { .. } => b.policy.push(r),
            Row::Fault { .. } => b.faults.push(r),
            _ => {}
        }
    }
    for chunk in b.green.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO green_energy (time, genW, conW, chgW, gridW, batteryW) ",
        );
        q.push_values(chunk, |mut v, g| {
            v.push_bind(dt(g.at))
                .push_bind(g.generation_w)
                .push_bind(g.consumption_w)
                .push_bind(g.charger_w)
                .push_bind(g.grid_w)
                .push_bind(g.battery_w);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE genW = VALUES(genW), conW = VALUES(conW), \
             chgW = VALUES(chgW), gridW = VALUES(gridW), batteryW = VALUES(batteryW)",
        );
        q.build().execute(&mut **tx).await?;
    }
    for chunk in b.status.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO slave_status (slaveTWC, time, kWh, voltsPhaseA, voltsPhaseB, voltsPhaseC) ",
        );
        q.push_values(chunk, |mut v, r| {
            if let Row::SlaveStatus {
                slave,
                at,
                kwh,
                volts,
            } = r
            {
                v.push_bind(slave.to_string())
                    .push_bind(dt(*at))
                    .push_bind(opt_kwh(*kwh))
                    .push_bind(i32::from(volts[0]))
                    .push_bind(i32::from(volts[1]))
                    .push_bind(i32::from(volts[2]));
            }
        });
        q.push(
            " ON DUPLICATE KEY UPDATE kWh = VALUES(kWh), voltsPhaseA = VALUES(voltsPhaseA), \
             voltsPhaseB = VALUES(voltsPhaseB), voltsPhaseC = VALUES(voltsPhaseC)",
        );
        q.build().execute(&mut **tx).await?;
    }
    for chunk in b.power.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO slave_power (slaveTWC, time, kind, state, actualA, offeredA, powerW) ",
        );
        q.push_values(chunk, |mut v, r| {
            if let Row::SlavePower {
                slave,
                at,
                kind,
                state,
                actual,
                offered,
                power_w,
            } = r
            {
                v.push_bind(slave.to_string())
                    .push_bind(dt(*at))
                    .push_bind(cut(kind, 16))
                    .push_bind(state.as_deref().map(|v| cut(v, 32)))
                    .push_bind(actual.map(|a| a.amps()))
                    .push_bind(offered.map(|a| a.amps()))
                    .push_bind(*power_w);
            }
        });
        q.push(
            " ON DUPLICATE KEY UPDATE state = VALUES(state), actualA = VALUES(actualA), \
             offeredA = VALUES(offeredA), powerW = VALUES(powerW)",
        );
        q.build().execute(&mut **tx).await?;
    }
    for chunk in b.policy.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO policy_changes (time, fromPolicy, toPolicy, reason) ",
        );
        q.push_values(chunk, |mut v, r| {
            if let Row::Policy {
                at,
                from,
                to,
                reason,
            } = r
            {
                v.push_bind(dt(*at))
                    .push_bind(cut(from, 64))
                    .push_bind(cut(to, 64))
                    .push_bind(reason.clone());
            }
        });
        q.build().execute(&mut **tx).await?;
    }
    for chunk in b.faults.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<MySql>::new("INSERT INTO faults (time, component, message) ");
        q.push_values(chunk, |mut v, r| {
            if let Row::Fault {
                at,
                component,
                message,
            } = r
            {
                v.push_bind(dt(*at))
                    .push_bind(cut(component, 64))
                    .push_bind(message.clone());
            }
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A pooled connection that is closed, not returned to the pool, unless [`Discard::keep`] is
/// called: after a failed write (or a cancelled one) it may still be inside a transaction, or
/// sqlx's count of open transactions may no longer match the server's, and the next batch on it
/// would become a savepoint that never commits.
struct Discard(Option<PoolConnection<MySql>>);

impl Discard {
    fn get(&mut self) -> Result<&mut MySqlConnection, PluginError> {
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

/// The MySQL/MariaDB event sink.
pub struct MysqlSink {
    cfg: MysqlConfig,
    db: Arc<MysqlDb>,
    rows: Mutex<Option<RowBuilder>>,
}

impl MysqlSink {
    /// A sink for `cfg` (the server is contacted on the first write).
    pub fn new(cfg: MysqlConfig) -> Self {
        MysqlSink {
            db: Arc::new(MysqlDb::new(&cfg)),
            cfg,
            rows: Mutex::new(None),
        }
    }

    /// The database, for history queries.
    pub fn db(&self) -> Arc<MysqlDb> {
        self.db.clone()
    }
}

#[async_trait]
impl Logger for MysqlSink {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        self.record_batch(std::slice::from_ref(event)).await
    }

    fn batch_size(&self) -> usize {
        self.cfg.batch_size.max(1)
    }

    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        let pool = self.db.pool().await?;
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
        let mut tx = conn
            .get()?
            .begin()
            .await
            .map_err(err("starting a transaction"))?;
        write_rows(&mut tx, &rows)
            .await
            .map_err(err("writing records"))?;
        tx.commit().await.map_err(err("committing"))?;
        // Committed: the connection is clean and may go back to the pool.
        conn.keep();
        *state = Some(builder);
        Ok(())
    }

    fn history(&self) -> Option<Arc<dyn HistoryQuery>> {
        Some(self.db.clone())
    }
}

#[async_trait]
impl HistoryQuery for MysqlDb {
    async fn power(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<PowerPoint>, PluginError> {
        let rows = sqlx::query(
            "SELECT time, CAST(genW AS DOUBLE), CAST(conW AS DOUBLE), CAST(chgW AS DOUBLE), \
             CAST(gridW AS DOUBLE) FROM green_energy WHERE time >= ? AND time < ? ORDER BY time",
        )
        .bind(dt(from))
        .bind(dt(to))
        .fetch_all(self.pool().await?)
        .await
        .map_err(err("querying green_energy"))?;
        let pts = rows
            .iter()
            .filter_map(|r| {
                let at: NaiveDateTime = r.try_get(0).ok()?;
                Some(PowerPoint {
                    at: at.and_utc(),
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
        .bind(dt(from))
        .bind(dt(to))
        .bind(vin)
        .bind(vin)
        .fetch_all(self.pool().await?)
        .await
        .map_err(err("querying charge_sessions"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let slave: String = r.try_get(0).ok()?;
                let start: NaiveDateTime = r.try_get(2).ok()?;
                let end: Option<NaiveDateTime> = r.try_get(3).ok().flatten();
                Some(SessionRecord {
                    slave: slave.parse().ok()?,
                    vin: r.try_get(1).ok().flatten(),
                    started_at: start.and_utc(),
                    ended_at: end.map(|e| e.and_utc()),
                    start_kwh: kwh(r.try_get(4).ok().flatten()),
                    end_kwh: kwh(r.try_get(5).ok().flatten()),
                })
            })
            .collect())
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn Logger>, BuildError> {
    let c: MysqlConfig = cfg.parse()?;
    if c.database.trim().is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "database must name the database",
        ));
    }
    if c.host.trim().is_empty() {
        return Err(BuildError::new(&cfg.section, "host must not be empty"));
    }
    Ok(Box::new(MysqlSink::new(c)))
}

inventory::submit! {
    LoggingPlugin { name: NAME, summary: "MySQL/MariaDB with TWCManager's tables, batched inserts; answers history queries for graphs",
        example: include_str!("../example.toml"), build }
}
