//! The SQL event sink core (feature `sql`).
//!
//! The part of the SQL event sinks that does not depend on the database: the core under
//! `twc-logging-sqlite` and `twc-logging-mysql`, which are thin dialect layers over it.
//!
//! It owns
//! - the sink ([`SqlSink`]): one transaction per batch of events, rows from
//!   `twc_core::logging::RowBuilder` (kept only when the batch was written, so a retried batch
//!   yields the same rows), sessions open at a restart continued or closed;
//! - the table layout shared by both dialects ([`tables`]): TWCManager's `charge_sessions`,
//!   `green_energy` and `slave_status`, and our `slave_power`, `policy_changes` and `faults`, and
//!   the mapping of each row onto them (session rows one by one and in order, the other tables as
//!   multi-row `INSERT`s of up to [`Dialect::ROWS_PER_INSERT`] rows);
//! - the history queries for graphs ([`History`]);
//! - the connection guard ([`Discard`]): a connection whose write failed or was cancelled is
//!   closed, never returned to the pool (it may still hold a lock or half a transaction).
//!
//! A dialect ([`Dialect`]) supplies only what differs: connecting (and migrating), how a time and
//! the other values are bound and read, the upsert clause, the transaction statements, which
//! errors mean bad credentials, column widths, and an optional check after each commit.

mod history;
mod sink;
pub mod tables;

use async_trait::async_trait;
use sqlx::{Database, Pool, QueryBuilder};
use twc_core::logging::Row;
use twc_core::plugin::{ErrorKind, PluginError};

pub use history::History;
pub use sink::{Discard, SinkSettings, SqlSink};
pub use tables::{Kind, Value, write_rows};

/// The connection type of a dialect's database.
pub type Conn<D> = <<D as Dialect>::Db as Database>::Connection;

/// What differs between SQL databases. Implemented by the database handle of a dialect crate
/// (`SqliteDb`, `MysqlDb`), which the sink and its history queries share.
#[async_trait]
pub trait Dialect: Send + Sync + Sized + 'static {
    /// The sqlx driver.
    type Db: Database;
    /// Handed out with the pool by [`Dialect::pool`] and given back to [`Dialect::committed`]
    /// after a batch was committed (SQLite: the identity of the database file).
    type Stamp: Send + 'static;

    /// The plugin name, used in errors.
    const NAME: &'static str;
    /// The type a decimal column is `CAST` to for reading as `f64`.
    const REAL: &'static str;
    /// Rows per multi-row `INSERT` (1 = one statement per row).
    const ROWS_PER_INSERT: usize;
    /// Whether text is cut to its column's width (a strict server refuses longer strings).
    const CUT_TEXT: bool;

    /// The clause that turns an `INSERT` into an upsert on `key`, updating `update`.
    fn upsert(key: &[&str], update: &[&str]) -> String;

    /// What kind of failure `e` is ([`ErrorKind::Transient`] unless the dialect knows better).
    fn error_kind(_e: &sqlx::Error) -> ErrorKind {
        ErrorKind::Transient
    }

    /// The pool, connected and migrated (on first use, or again when the dialect finds it stale).
    async fn pool(&self) -> Result<(Pool<Self::Db>, Self::Stamp), PluginError>;

    /// Writes `rows` (with [`write_rows`]) as one transaction; `Ok` means they are committed.
    async fn write(conn: &mut Conn<Self>, rows: &[Row]) -> Result<(), PluginError>;

    /// Called after a batch was committed; an `Err` makes the sink write the batch again.
    async fn committed(&self, _stamp: Self::Stamp) -> Result<(), PluginError> {
        Ok(())
    }

    /// Binds one value as the next placeholder of `q`.
    fn bind(q: &mut QueryBuilder<'_, Self::Db>, v: Value);

    /// Executes `q` on `conn`.
    async fn execute(
        conn: &mut Conn<Self>,
        q: &mut QueryBuilder<'_, Self::Db>,
    ) -> Result<(), sqlx::Error>;

    /// Runs the query `q` and reads each row's columns as `kinds` (a column that is NULL or
    /// cannot be read becomes an empty value).
    async fn fetch(
        pool: &Pool<Self::Db>,
        q: &mut QueryBuilder<'_, Self::Db>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Value>>, sqlx::Error>;
}

/// Maps a driver error to a [`PluginError`] of dialect `D` with `context`.
pub fn err<D: Dialect>(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PluginError {
    let context = context.into();
    move |e| PluginError::new(D::error_kind(&e), D::NAME, context).with_source(e)
}

/// Serde defaults of the settings every SQL sink shares.
pub mod defaults {
    /// `green_energy_interval_secs`.
    pub fn green_energy_interval_secs() -> u64 {
        60
    }
    /// `resume_within_secs`.
    pub fn resume_within_secs() -> u64 {
        900
    }
    /// `batch_size`.
    pub fn batch_size() -> usize {
        500
    }
}
