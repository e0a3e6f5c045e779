//! A blocking serial port bridged to tokio by two threads: a reader with a short timeout and a
//! writer fed from a channel. The runtime never blocks on the port.

use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits};
use std::io::{self, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// How long the reader thread blocks in one read; bounds how long a closed link's thread lives.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// How long one write may take (a 20-byte frame takes 21 ms at 9600 baud).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames waiting for the writer thread; more means the port has stopped taking data.
const WRITE_QUEUE: usize = 32;
/// Chunks read but not yet taken by the async side.
const READ_QUEUE: usize = 64;

struct Open {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    pending: Vec<u8>,
    stop: Arc<AtomicBool>,
}

/// An open serial port as `AsyncRead + AsyncWrite`, or a closed placeholder whose every call
/// fails with `NotConnected`. Dropping it stops its threads (within `READ_TIMEOUT`, 100 ms).
pub struct SerialLink {
    open: Option<Open>,
}

impl SerialLink {
    /// A link that is not open.
    pub fn closed() -> Self {
        SerialLink { open: None }
    }

    /// True when a port is open (it may still fail on the next read).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Open `port` at `baud`, 8N1, no flow control, and start the two threads. Blocking (call
    /// from `spawn_blocking`). Returns the link and the device the path resolves to.
    pub fn open(port: &str, baud: u32) -> Result<(SerialLink, PathBuf), String> {
        let resolved = std::fs::canonicalize(port).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => "no such device (unplugged?)".to_string(),
            _ => e.to_string(),
        })?;
        let mut reader = serialport::new(port, baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(READ_TIMEOUT)
            .open()
            .map_err(|e| e.to_string())?;
        // Bytes that arrived while nobody listened belong to no frame we can answer.
        let _ = reader.clear(serialport::ClearBuffer::All);
        let mut writer = reader.try_clone().map_err(|e| e.to_string())?;
        let _ = writer.set_timeout(WRITE_TIMEOUT);
        let stop = Arc::new(AtomicBool::new(false));
        let (rtx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(READ_QUEUE);
        let (tx, wrx) = std::sync::mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);

        let stop_r = stop.clone();
        let rtx_r = rtx.clone();
        std::thread::Builder::new()
            .name("twc-rs485-read".into())
            .spawn(move || read_loop(reader.as_mut(), &stop_r, &rtx_r))
            .map_err(|e| format!("cannot start the reader thread: {e}"))?;
        std::thread::Builder::new()
            .name("twc-rs485-write".into())
            .spawn(move || {
                while let Ok(bytes) = wrx.recv() {
                    if let Err(e) = writer.write_all(&bytes).and_then(|_| writer.flush()) {
                        let _ = rtx.blocking_send(Err(io::Error::new(
                            e.kind(),
                            format!("write failed: {e}"),
                        )));
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        Ok((
            SerialLink {
                open: Some(Open {
                    rx,
                    tx,
                    pending: Vec::new(),
                    stop,
                }),
            },
            resolved,
        ))
    }
}

fn read_loop(port: &mut dyn SerialPort, stop: &AtomicBool, tx: &mpsc::Sender<io::Result<Vec<u8>>>) {
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        match port.read(&mut buf) {
            Ok(0) => {
                // Readable but nothing there: the device hung up.
                let _ = tx.blocking_send(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the device hung up",
                )));
                return;
            }
            Ok(n) => {
                if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(io::Error::new(
                    e.kind(),
                    format!("{e} (device unplugged?)"),
                )));
                return;
            }
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the serial port is not open")
}

impl AsyncRead for SerialLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(open) = self.open.as_mut() else {
            return Poll::Ready(Err(not_connected()));
        };
        if open.pending.is_empty() {
            match open.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => open.pending = bytes,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the serial reader stopped",
                    )));
                }
            }
        }
        let n = open.pending.len().min(buf.remaining());
        buf.put_slice(&open.pending[..n]);
        open.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SerialLink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let Some(open) = self.open.as_ref() else {
            return Poll::Ready(Err(not_connected()));
        };
        Poll::Ready(match open.tx.try_send(buf.to_vec()) {
            Ok(()) => Ok(buf.len()),
            Err(std::sync::mpsc::TrySendError::Full(_)) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the serial port takes no data (write queue full)",
            )),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the serial writer stopped",
            )),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(if self.open.is_some() {
            Ok(())
        } else {
            Err(not_connected())
        })
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.open = None;
        Poll::Ready(Ok(()))
    }
}
