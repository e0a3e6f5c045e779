#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::Deserialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection as _, Executor as _, MySql, QueryBuilder, Row as _};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use twc_core::history::HistoryQuery;
use twc_core::logging::{Mute, Row};
use twc_core::model::Event;
use twc_core::plugin::{
    BuildError, ErrorKind, Logger, LoggingPlugin, PluginConfig, PluginError, Secret,
};
use twc_plugin_kit::sql::{Dialect, Kind, SinkSettings, SqlSink, Value, defaults, write_rows};

const NAME: &str = "mysql";

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

impl MysqlConfig {
    fn settings(&self) -> SinkSettings {
        SinkSettings {
            green_energy_interval_secs: self.green_energy_interval_secs,
            resume_within_secs: self.resume_within_secs,
            batch_size: self.batch_size,
            mute: self.mute,
        }
    }
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

fn err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PluginError {
    twc_plugin_kit::sql::err::<MysqlDb>(context)
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
}

/// MySQL/MariaDB: times are whole-second `DATETIME`s, text is cut to its column (strict mode),
/// the append-style tables get multi-row `INSERT`s, and bad credentials are an auth error.
#[async_trait]
impl Dialect for MysqlDb {
    type Db = MySql;
    type Stamp = ();
    const NAME: &'static str = NAME;
    const REAL: &'static str = "DOUBLE";
    /// Keeps every statement far below MySQL's 65 535 placeholders.
    const ROWS_PER_INSERT: usize = 1000;
    const CUT_TEXT: bool = true;

    fn upsert(_key: &[&str], update: &[&str]) -> String {
        let set: Vec<String> = update
            .iter()
            .map(|c| format!("{c} = VALUES({c})"))
            .collect();
        format!("ON DUPLICATE KEY UPDATE {}", set.join(", "))
    }

    fn error_kind(e: &sqlx::Error) -> ErrorKind {
        match e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("28000") => ErrorKind::Auth,
            _ => ErrorKind::Transient,
        }
    }

    async fn pool(&self) -> Result<(MySqlPool, ()), PluginError> {
        Ok((MysqlDb::pool(self).await?.clone(), ()))
    }

    async fn write(conn: &mut MySqlConnection, rows: &[Row]) -> Result<(), PluginError> {
        let mut tx = conn.begin().await.map_err(err("starting a transaction"))?;
        write_rows::<MysqlDb>(&mut tx, rows)
            .await
            .map_err(err("writing records"))?;
        tx.commit().await.map_err(err("committing"))
    }

    fn bind(q: &mut QueryBuilder<'_, MySql>, v: Value) {
        match v {
            Value::Int(v) => q.push_bind(v),
            Value::Real(v) => q.push_bind(v),
            Value::Text(v) => q.push_bind(v),
            Value::Time(v) => q.push_bind(v.map(dt)),
        };
    }

    async fn execute(
        conn: &mut MySqlConnection,
        q: &mut QueryBuilder<'_, MySql>,
    ) -> Result<(), sqlx::Error> {
        conn.execute(q.build()).await.map(drop)
    }

    async fn fetch(
        pool: &MySqlPool,
        q: &mut QueryBuilder<'_, MySql>,
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
                        // TWCManager's kWh columns are `INT`.
                        Kind::Int => {
                            Value::Int(r.try_get::<Option<i32>, _>(i).ok().flatten().map(i64::from))
                        }
                        Kind::Real => Value::Real(r.try_get(i).ok().flatten()),
                        Kind::Text => Value::Text(r.try_get(i).ok().flatten()),
                        Kind::Time => Value::Time(
                            r.try_get::<Option<NaiveDateTime>, _>(i)
                                .ok()
                                .flatten()
                                .map(|t| t.and_utc()),
                        ),
                    })
                    .collect()
            })
            .collect())
    }
}

/// The MySQL/MariaDB event sink.
pub struct MysqlSink(SqlSink<MysqlDb>);

impl MysqlSink {
    /// A sink for `cfg` (the server is contacted on the first write).
    pub fn new(cfg: MysqlConfig) -> Self {
        MysqlSink(SqlSink::new(MysqlDb::new(&cfg), cfg.settings()))
    }

    /// The database, for history queries.
    pub fn db(&self) -> Arc<MysqlDb> {
        self.0.db()
    }
}

#[async_trait]
impl Logger for MysqlSink {
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

#[cfg(test)]
mod tests {
    use super::*;
    use twc_plugin_kit::sql::tables::SLAVE_POWER;

    #[test]
    fn upserts_are_on_duplicate_key_update() {
        assert_eq!(
            MysqlDb::upsert(SLAVE_POWER.key, SLAVE_POWER.update),
            "ON DUPLICATE KEY UPDATE state = VALUES(state), actualA = VALUES(actualA), \
             offeredA = VALUES(offeredA), powerW = VALUES(powerW)"
        );
    }
}
