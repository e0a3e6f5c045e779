//! Capture what the code under test logs, on this thread, in a test binary whose other tests run
//! in parallel without a subscriber.
//!
//! A subscriber set with `tracing::subscriber::set_default` is not enough there: tracing caches
//! each call site's interest globally, and when only one dispatcher is registered it computes
//! that interest from the *registering thread's* default. A log line first reached by a parallel
//! test (no subscriber) is then cached as "never" and this test never sees it (CI saw exactly
//! that). [`capture`] instead installs one global subscriber for the whole process whose filter
//! is decided per event — "is a capture active on this thread?" — so no interest is ever cached.
//!
//! Tasks on a current-thread runtime (`#[tokio::test]`'s default) run on the test's thread, so
//! their lines are captured; lines logged on other threads are dropped.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::filter::{DynFilterFn, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

thread_local! {
    static ACTIVE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// The lines logged on this thread since [`capture`]; capturing stops when it is dropped.
#[derive(Clone, Default)]
pub struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    level: Arc<OnceLock<LevelFilter>>,
}

impl Capture {
    /// Everything captured so far, one formatted line per event (no colours).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Ends the capture on this thread when dropped.
pub struct CaptureGuard(Capture);

impl std::ops::Deref for CaptureGuard {
    type Target = Capture;
    fn deref(&self) -> &Capture {
        &self.0
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.borrow_mut().take());
    }
}

struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        ACTIVE.with(|a| {
            if let Some(c) = a.borrow().as_ref() {
                c.buf
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadWriter {
    type Writer = ThreadWriter;
    fn make_writer(&'a self) -> ThreadWriter {
        ThreadWriter
    }
}

/// Capture events at `level` and above logged on this thread until the guard is dropped.
///
/// Installs the process-wide subscriber on first use; panics if the test binary already set a
/// different global subscriber.
pub fn capture(level: tracing::Level) -> CaptureGuard {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // `FilterFn` would cache its first answer per call site (`always`/`never`), decided on
        // whichever thread hits the line first; `sometimes` makes tracing ask on every event.
        let filter = DynFilterFn::new(|meta, _cx| {
            ACTIVE.with(|a| {
                a.borrow()
                    .as_ref()
                    .is_some_and(|c| c.level.get().is_some_and(|l| *meta.level() <= *l))
            })
        })
        .with_callsite_filter(|_| tracing::subscriber::Interest::sometimes());
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(ThreadWriter)
            .with_ansi(false)
            .with_filter(filter);
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("another global tracing subscriber is set in this test binary");
    });
    let c = Capture::default();
    let _ = c.level.set(LevelFilter::from_level(level));
    ACTIVE.with(|a| *a.borrow_mut() = Some(c.clone()));
    CaptureGuard(c)
}
