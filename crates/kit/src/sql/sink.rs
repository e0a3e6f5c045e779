//! The sink: one transaction per batch of events.

use super::{Conn, Dialect, History, err};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use std::sync::Arc;
use tokio::sync::Mutex;
use twc_core::history::HistoryQuery;
use twc_core::logging::{Mute, RowBuilder};
use twc_core::model::Event;
use twc_core::plugin::{ErrorKind, Logger, PluginError};

/// The settings every SQL sink has (each dialect's config carries them under the same keys).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinkSettings {
    /// At most one `green_energy` row per this many seconds (0 = every reading).
    pub green_energy_interval_secs: u64,
    /// After a restart, a session that starts again within this many seconds continues its row.
    pub resume_within_secs: u64,
    /// Events per transaction.
    pub batch_size: usize,
    /// Per-type mute switches.
    pub mute: Mute,
}

/// A pooled connection that is closed, not returned to the pool, unless [`Discard::keep`] is
/// called: after a failed write (or a cancelled one) it may still hold a lock or be inside a
/// transaction, or sqlx's count of open transactions may no longer match the database's, and the
/// next batch on it would become a savepoint that never commits.
pub struct Discard<D: Dialect>(Option<PoolConnection<D::Db>>);

impl<D: Dialect> Discard<D> {
    /// Guards `conn`.
    pub fn new(conn: PoolConnection<D::Db>) -> Self {
        Discard(Some(conn))
    }
    /// The connection.
    pub fn get(&mut self) -> Result<&mut Conn<D>, PluginError> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| PluginError::new(ErrorKind::Transient, D::NAME, "connection discarded"))
    }
    /// The connection is clean: it goes back to the pool.
    pub fn keep(mut self) {
        self.0.take();
    }
}

impl<D: Dialect> Drop for Discard<D> {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            drop(c.detach());
        }
    }
}

/// The SQL event sink over dialect `D`.
pub struct SqlSink<D> {
    settings: SinkSettings,
    db: Arc<D>,
    rows: Mutex<Option<RowBuilder>>,
}

impl<D: Dialect> SqlSink<D> {
    /// A sink writing to `db` (which is opened on the first write).
    pub fn new(db: D, settings: SinkSettings) -> Self {
        SqlSink {
            settings,
            db: Arc::new(db),
            rows: Mutex::new(None),
        }
    }

    /// The database, for history queries.
    pub fn db(&self) -> Arc<D> {
        self.db.clone()
    }
}

#[async_trait]
impl<D: Dialect> Logger for SqlSink<D> {
    async fn record(&self, event: &Event) -> Result<(), PluginError> {
        self.record_batch(std::slice::from_ref(event)).await
    }

    fn batch_size(&self) -> usize {
        self.settings.batch_size.max(1)
    }

    async fn record_batch(&self, events: &[Event]) -> Result<(), PluginError> {
        let (pool, stamp) = self.db.pool().await?;
        let mut state = self.rows.lock().await;
        let mut rows = Vec::new();
        let mut builder = match state.as_ref() {
            Some(b) => b.clone(),
            None => {
                let s = &self.settings;
                let mut b =
                    RowBuilder::new(s.mute, s.green_energy_interval_secs, s.resume_within_secs);
                let open = super::history::open_sessions(&*self.db).await?;
                rows.extend(b.restore(open, s.resume_within_secs));
                b
            }
        };
        for e in events {
            rows.extend(builder.rows(e));
        }
        let conn = pool.acquire().await.map_err(err::<D>("connecting"))?;
        let mut conn = Discard::<D>::new(conn);
        D::write(conn.get()?, &rows).await?;
        // Committed: the connection is clean and may go back to the pool.
        conn.keep();
        self.db.committed(stamp).await?;
        *state = Some(builder);
        Ok(())
    }

    fn history(&self) -> Option<Arc<dyn HistoryQuery>> {
        Some(Arc::new(History(self.db.clone())))
    }
}
