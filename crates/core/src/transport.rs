//! Turn any byte stream (`AsyncRead + AsyncWrite`) into a [`Comms`]: the codec lives here once,
//! so a TCP or serial plugin only opens its stream, and tests use `tokio::io::duplex`.

use crate::plugin::{Comms, ErrorKind, PluginError, Received};
use crate::protocol::{DecodeStats, Frame, FrameDecoder};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default silence after which a partial frame is dropped (spec §12: 500 ms, TCP bridges deliver
/// bytes in bursts).
pub const DEFAULT_PARTIAL_TIMEOUT: Duration = Duration::from_millis(500);

/// A [`Comms`] over a byte stream.
pub struct StreamComms<S> {
    stream: S,
    plugin: &'static str,
    decoder: FrameDecoder,
    queue: VecDeque<Received>,
    buf: Box<[u8; 256]>,
    partial_timeout: Duration,
    trailer: Option<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> StreamComms<S> {
    /// Wrap a stream; `plugin` names the owner in errors.
    pub fn new(stream: S, plugin: &'static str) -> Self {
        StreamComms {
            stream,
            plugin,
            decoder: FrameDecoder::new(),
            queue: VecDeque::new(),
            buf: Box::new([0; 256]),
            partial_timeout: DEFAULT_PARTIAL_TIMEOUT,
            trailer: None,
        }
    }

    /// Drop a partial frame after this much silence.
    pub fn with_partial_timeout(mut self, d: Duration) -> Self {
        self.partial_timeout = d;
        self
    }

    /// Append this byte after every frame (a simulated slave sends `FE` like a real TWC).
    pub fn with_trailer(mut self, byte: Option<u8>) -> Self {
        self.trailer = byte;
        self
    }

    /// Decoder counters.
    pub fn stats(&self) -> DecodeStats {
        self.decoder.stats()
    }

    /// Replace the stream (after a reconnect), keeping the counters.
    pub fn replace_stream(&mut self, stream: S) {
        self.stream = stream;
        self.decoder.flush_partial();
    }

    /// The stream.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Write raw bytes (for tests that inject noise).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        self.stream.write_all(bytes).await.map_err(|e| {
            PluginError::new(ErrorKind::Transient, self.plugin, "write").with_source(e)
        })?;
        self.stream.flush().await.map_err(|e| {
            PluginError::new(ErrorKind::Transient, self.plugin, "flush").with_source(e)
        })
    }
}

#[async_trait]
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Comms for StreamComms<S> {
    async fn send(&mut self, frame: &Frame) -> Result<(), PluginError> {
        let mut wire = frame.to_wire();
        if let Some(t) = self.trailer {
            wire.push(t);
        }
        self.send_raw(&wire).await
    }

    async fn recv(&mut self) -> Result<Received, PluginError> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(item);
            }
            let n = if self.decoder.has_partial() {
                match tokio::time::timeout(
                    self.partial_timeout,
                    self.stream.read(&mut self.buf[..]),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        self.decoder.flush_partial();
                        continue;
                    }
                }
            } else {
                self.stream.read(&mut self.buf[..]).await
            }
            .map_err(|e| {
                PluginError::new(ErrorKind::Transient, self.plugin, "read").with_source(e)
            })?;
            if n == 0 {
                return Err(PluginError::new(
                    ErrorKind::Transient,
                    self.plugin,
                    "link closed by the other end",
                ));
            }
            for r in self.decoder.push(&self.buf[..n]) {
                self.queue.push_back(match r {
                    Ok(f) => Received::Frame(f),
                    Err(e) => Received::Dropped(e),
                });
            }
        }
    }

    fn describe(&self) -> String {
        self.plugin.to_string()
    }

    fn decode_stats(&self) -> Option<DecodeStats> {
        Some(self.decoder.stats())
    }
}
