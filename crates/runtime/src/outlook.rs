//! The tariff and solar-forecast tasks: one per enabled plugin, polling it on tokio's clock and
//! handing what it returns to the engine (`Command::SetPrices` / `Command::SetForecast`).
//!
//! - A good answer is sent at once; the next poll is after the plugin's `refresh_interval()`.
//! - A failed poll (or an answer that does not validate) is logged and retried with exponential
//!   backoff from [`FIRST_RETRY`] up to the refresh interval (at most [`MAX_RETRY`]); an
//!   `Auth` or `Config` error is logged as an error (the user must act), others as warnings.
//! - The last good data stays in force while it covers the future. Once every slot of it lies in
//!   the past, the task clears it (`None`): the engine then knows no price rather than a stale
//!   one, and the price condition reads false.

use crate::LOG_TARGET;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tracing::{Instrument, error, info, warn};
use twc_core::engine::{Command, CommandError, EngineHandle};
use twc_core::plugin::{
    ErrorKind, Forecast, PluginError, Prices, SolarForecast, TariffSource, plugin_span,
};

/// The first retry after a failed poll.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Retries never wait longer than this (nor longer than the refresh interval).
pub const MAX_RETRY: Duration = Duration::from_secs(30 * 60);

/// Wall-clock Unix seconds that follow tokio's clock: the system clock plus however far tokio's
/// clock has run ahead of real time (only under paused time in tests), as the engine does.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    tokio_start: Instant,
    std_start: std::time::Instant,
    /// Under test: a fixed start instead of the system clock.
    fixed_start: Option<i64>,
}

impl WallClock {
    /// The system clock, following tokio's clock when it runs ahead.
    pub fn system() -> Self {
        WallClock {
            tokio_start: Instant::now(),
            std_start: std::time::Instant::now(),
            fixed_start: None,
        }
    }

    /// A clock that reads `start_unix` now and advances with tokio's clock only.
    pub fn starting_at(start_unix: i64) -> Self {
        WallClock {
            fixed_start: Some(start_unix),
            ..Self::system()
        }
    }

    /// Unix seconds now.
    pub fn now_unix(&self) -> i64 {
        let tokio_elapsed = self.tokio_start.elapsed();
        if let Some(start) = self.fixed_start {
            return start + tokio_elapsed.as_secs() as i64;
        }
        let ahead = tokio_elapsed.saturating_sub(self.std_start.elapsed());
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        sys + ahead.as_secs() as i64
    }
}

/// What the two tasks have in common.
trait Outlooked: Send + 'static {
    /// "prices" or "forecast", for log lines.
    const WHAT: &'static str;
    fn last_end(&self) -> Option<i64>;
    fn slots(&self) -> usize;
    fn check(&self) -> Result<(), String>;
    fn command(data: Option<Self>) -> Command
    where
        Self: Sized;
}

impl Outlooked for Prices {
    const WHAT: &'static str = "prices";
    fn last_end(&self) -> Option<i64> {
        self.slots.iter().map(|s| s.end_unix).max()
    }
    fn slots(&self) -> usize {
        self.slots.len()
    }
    fn check(&self) -> Result<(), String> {
        self.validate()
    }
    fn command(data: Option<Self>) -> Command {
        Command::SetPrices(data)
    }
}

impl Outlooked for Forecast {
    const WHAT: &'static str = "forecast";
    fn last_end(&self) -> Option<i64> {
        self.slots.iter().map(|s| s.end_unix).max()
    }
    fn slots(&self) -> usize {
        self.slots.len()
    }
    fn check(&self) -> Result<(), String> {
        self.validate()
    }
    fn command(data: Option<Self>) -> Command {
        Command::SetForecast(data)
    }
}

/// Spawn the task of one tariff plugin. It ends when the engine stops.
pub fn spawn_tariff(
    handle: EngineHandle,
    name: String,
    source: Box<dyn TariffSource>,
    clock: WallClock,
) -> tokio::task::JoinHandle<()> {
    let span = plugin_span("tariff", &name);
    let refresh = source.refresh_interval();
    let source: Arc<dyn TariffSource> = Arc::from(source);
    tokio::spawn(
        run(handle, name, refresh, clock, move || {
            let s = source.clone();
            async move { s.prices().await }
        })
        .instrument(span),
    )
}

/// Spawn the task of one forecast plugin. It ends when the engine stops.
pub fn spawn_forecast(
    handle: EngineHandle,
    name: String,
    source: Box<dyn SolarForecast>,
    clock: WallClock,
) -> tokio::task::JoinHandle<()> {
    let span = plugin_span("forecast", &name);
    let refresh = source.refresh_interval();
    let source: Arc<dyn SolarForecast> = Arc::from(source);
    tokio::spawn(
        run(handle, name, refresh, clock, move || {
            let s = source.clone();
            async move { s.forecast().await }
        })
        .instrument(span),
    )
}

async fn run<T, F, Fut>(
    handle: EngineHandle,
    name: String,
    refresh: Duration,
    clock: WallClock,
    mut poll: F,
) where
    T: Outlooked,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, PluginError>> + Send,
{
    let refresh = refresh.max(Duration::from_secs(1));
    let max_retry = refresh.min(MAX_RETRY).max(FIRST_RETRY);
    let mut retry = FIRST_RETRY;
    // The end of the data the engine holds (None: it holds none from us).
    let mut held_until: Option<i64> = None;
    loop {
        let wait = match poll().await {
            Ok(data) => match data.check() {
                Ok(()) => {
                    let end = data.last_end();
                    let now = clock.now_unix();
                    if end.is_none_or(|e| e <= now) {
                        warn!(target: LOG_TARGET, plugin = %name, slots = data.slots(), "The answer holds no {} from now on; keeping what is known until it runs out", T::WHAT);
                        retry_wait(&mut retry, max_retry)
                    } else {
                        info!(target: LOG_TARGET, plugin = %name, slots = data.slots(), until_unix = end.unwrap_or(0), "New {}", T::WHAT);
                        match handle.command(T::command(Some(data))).await {
                            Ok(_) => held_until = end,
                            Err(CommandError::Stopped) => return,
                            Err(e) => {
                                warn!(target: LOG_TARGET, plugin = %name, error = %e, "The engine refused the {}", T::WHAT)
                            }
                        }
                        retry = FIRST_RETRY;
                        refresh
                    }
                }
                Err(e) => {
                    warn!(target: LOG_TARGET, plugin = %name, error = %e, "Unusable {}; retrying in {:?}", T::WHAT, retry);
                    retry_wait(&mut retry, max_retry)
                }
            },
            Err(e) => {
                let msg = e.chain();
                if matches!(e.kind(), ErrorKind::Auth | ErrorKind::Config) {
                    error!(target: LOG_TARGET, plugin = %name, error = %msg, "Reading {} failed (check the configuration); retrying in {:?}", T::WHAT, retry);
                } else {
                    warn!(target: LOG_TARGET, plugin = %name, error = %msg, "Reading {} failed; retrying in {:?}", T::WHAT, retry);
                }
                retry_wait(&mut retry, max_retry)
            }
        };
        // Sleep until the next poll, clearing the held data when it runs out before then.
        let wake = Instant::now() + wait;
        if let Some(end) = held_until {
            let left = end - clock.now_unix();
            let runs_out = Instant::now() + Duration::from_secs(left.max(0) as u64);
            if runs_out <= wake {
                tokio::time::sleep_until(runs_out).await;
                if clock.now_unix() >= end {
                    warn!(target: LOG_TARGET, plugin = %name, "The last {} have run out; the engine now knows none", T::WHAT);
                    match handle.command(T::command(None)).await {
                        Ok(_) => held_until = None,
                        Err(CommandError::Stopped) => return,
                        Err(e) => {
                            warn!(target: LOG_TARGET, plugin = %name, error = %e, "Clearing the {} failed", T::WHAT)
                        }
                    }
                }
            }
        }
        tokio::time::sleep_until(wake).await;
    }
}

fn retry_wait(retry: &mut Duration, max: Duration) -> Duration {
    let w = *retry;
    *retry = (*retry * 2).min(max);
    w
}
