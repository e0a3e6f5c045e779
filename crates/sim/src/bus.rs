//! Several simulated slaves sharing one bus (one byte stream to the master).

use crate::SimError;
use crate::config::{CarConfig, SimSlave};
use crate::slave::{SlaveSim, SlaveSnapshot};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, trace};
use twc_core::model::CentiAmps;
use twc_core::plugin::{Comms, Received};
use twc_core::protocol::{DecodeStats, Message, TwcId};
use twc_core::transport::StreamComms;

/// Spacing between the slaves' first link-readies, so they do not all talk at once.
const LINK_READY_STAGGER: Duration = Duration::from_millis(150);
/// Bytes buffered in each direction of an in-process duplex bus.
pub const DUPLEX_BUFFER: usize = 4096;

struct BusState {
    slaves: Vec<SlaveSim>,
    stats: DecodeStats,
    frames_rx: u64,
    frames_tx: u64,
}

struct Shared {
    state: Mutex<BusState>,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BusState> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One RS-485 bus with one or more simulated slaves on it.
#[derive(Clone)]
pub struct SimBus {
    shared: Arc<Shared>,
}

/// Counters of the simulated bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusCounters {
    /// Frames the slaves received (valid checksum).
    pub frames_rx: u64,
    /// Frames the slaves sent.
    pub frames_tx: u64,
    /// The slaves' decoder counters.
    pub decode: DecodeStats,
}

impl SimBus {
    /// A bus with these slaves, powered on now.
    pub fn new(slaves: Vec<SimSlave>) -> Self {
        let now = Instant::now();
        let slaves = slaves
            .into_iter()
            .enumerate()
            .map(|(i, s)| SlaveSim::new(i, s.slave, s.car, now, LINK_READY_STAGGER * i as u32))
            .collect();
        SimBus {
            shared: Arc::new(Shared {
                state: Mutex::new(BusState {
                    slaves,
                    stats: DecodeStats::default(),
                    frames_rx: 0,
                    frames_tx: 0,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// A handle to watch and steer the slaves.
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serve the master on `stream` until it closes it. The slaves keep their state between
    /// streams (a TCP master that reconnects finds the same units).
    pub async fn run<S>(&self, stream: S) -> Result<(), SimError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut comms = StreamComms::new(stream, "sim").with_trailer(Some(0xFE));
        {
            let now = Instant::now();
            let mut st = self.shared.lock();
            for (i, s) in st.slaves.iter_mut().enumerate() {
                s.restart_link(now, LINK_READY_STAGGER * i as u32);
            }
        }
        let result = self.serve(&mut comms).await;
        self.shared.lock().stats = comms.stats();
        result
    }

    async fn serve<S>(&self, comms: &mut StreamComms<S>) -> Result<(), SimError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        // One timer, moved only when the next wakeup changes.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        loop {
            let now = Instant::now();
            let (out, wake) = {
                let mut st = self.shared.lock();
                let mut out = Vec::new();
                for s in st.slaves.iter_mut() {
                    out.extend(s.poll(now));
                }
                let wake = st.slaves.iter().filter_map(|s| s.next_wakeup()).min();
                (out, wake)
            };
            self.send_all(comms, out).await?;
            let wake = wake.unwrap_or(now + Duration::from_secs(3600));
            if timer.deadline() != wake || timer.is_elapsed() {
                timer.as_mut().reset(wake);
            }
            tokio::select! {
                r = comms.recv() => match r {
                    Ok(Received::Frame(frame)) => {
                        trace!(hex = %frame.hex(), "sim RX");
                        let msg = match Message::decode(&frame) {
                            Ok(m) => m,
                            Err(e) => {
                                debug!(error = %e, "sim: undecodable frame ignored");
                                continue;
                            }
                        };
                        let replies = {
                            let now = Instant::now();
                            let mut st = self.shared.lock();
                            st.frames_rx += 1;
                            st.stats = comms.stats();
                            let mut replies = Vec::new();
                            for i in 0..st.slaves.len() {
                                let avoid: Vec<TwcId> = st
                                    .slaves
                                    .iter()
                                    .enumerate()
                                    .filter(|(j, _)| *j != i)
                                    .map(|(_, s)| s.id())
                                    .collect();
                                replies.extend(st.slaves[i].on_message(&msg, now, &avoid));
                            }
                            replies
                        };
                        self.send_all(comms, replies).await?;
                    }
                    Ok(Received::Dropped(e)) => {
                        debug!(error = %e, "sim: frame dropped by the codec");
                        self.shared.lock().stats = comms.stats();
                    }
                    Err(e) => {
                        info!(error = %e.chain(), "sim: the master closed the link");
                        return Ok(());
                    }
                },
                _ = &mut timer => {}
                _ = self.shared.notify.notified() => {}
            }
        }
    }

    async fn send_all<S>(
        &self,
        comms: &mut StreamComms<S>,
        msgs: Vec<Message>,
    ) -> Result<(), SimError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        for m in msgs {
            let frame = m.encode().map_err(|e| SimError::Encode(e.to_string()))?;
            trace!(hex = %frame.hex(), "sim TX");
            if let Err(e) = comms.send(&frame).await {
                info!(error = %e.chain(), "sim: cannot write to the master; link closed");
                return Err(SimError::Io(std::io::Error::other(e.chain())));
            }
            self.shared.lock().frames_tx += 1;
        }
        Ok(())
    }

    /// Run on `stream` in a new task (call inside a tokio runtime); returns the handle.
    pub fn spawn<S>(self, stream: S) -> SimHandle
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handle = self.handle();
        tokio::spawn(async move {
            if let Err(e) = self.run(stream).await {
                debug!(error = %e, "sim bus ended");
            }
        });
        handle
    }
}

/// The master's end of an in-process bus with these slaves, and a handle to steer them. Must be
/// called inside a tokio runtime (the slaves run in a spawned task). The master side is a
/// [`StreamComms`] named `"sim"`, ready to hand to the engine as `Box<dyn Comms>`.
pub fn duplex_pair(slaves: Vec<SimSlave>) -> (StreamComms<DuplexStream>, SimHandle) {
    duplex_pair_named(slaves, "sim")
}

/// As [`duplex_pair`], naming the master-side transport `plugin` in its errors.
pub fn duplex_pair_named(
    slaves: Vec<SimSlave>,
    plugin: &'static str,
) -> (StreamComms<DuplexStream>, SimHandle) {
    let (master_end, sim_end) = tokio::io::duplex(DUPLEX_BUFFER);
    let handle = SimBus::new(slaves).spawn(sim_end);
    (StreamComms::new(master_end, plugin), handle)
}

/// A cloneable handle to the slaves of a running [`SimBus`].
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl SimHandle {
    fn with_slave<T>(
        &self,
        index: usize,
        f: impl FnOnce(&mut SlaveSim, Instant) -> T,
    ) -> Result<T, SimError> {
        let now = Instant::now();
        let r = {
            let mut st = self.shared.lock();
            let n = st.slaves.len();
            let s = st
                .slaves
                .get_mut(index)
                .ok_or(SimError::NoSuchSlave { index, count: n })?;
            f(s, now)
        };
        self.shared.notify.notify_one();
        Ok(r)
    }

    /// Number of slaves on the bus.
    pub fn len(&self) -> usize {
        self.shared.lock().slaves.len()
    }

    /// True when the bus has no slave.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every slave, brought up to date.
    pub fn slaves(&self) -> Vec<SlaveSnapshot> {
        self.each_advanced(SlaveSim::snapshot)
    }

    /// Every slave's limit and its car's draw, brought up to date (as [`SimHandle::slaves`]
    /// does, without the rest of the snapshot).
    pub fn draws(&self) -> Vec<(CentiAmps, CentiAmps)> {
        self.each_advanced(SlaveSim::draw)
    }

    /// `f` of every slave, each brought up to date first.
    fn each_advanced<T>(&self, f: impl Fn(&SlaveSim) -> T) -> Vec<T> {
        let now = Instant::now();
        let mut st = self.shared.lock();
        st.slaves
            .iter_mut()
            .map(|s| {
                s.advance(now);
                f(s)
            })
            .collect()
    }

    /// One slave, brought up to date.
    pub fn slave(&self, index: usize) -> Result<SlaveSnapshot, SimError> {
        self.with_slave(index, |s, now| {
            s.advance(now);
            s.snapshot()
        })
    }

    /// Plug `car` into slave `index` (its `plugged_in` is forced to true).
    pub fn plug_in(&self, index: usize, car: CarConfig) -> Result<(), SimError> {
        self.with_slave(index, |s, now| {
            s.set_car(
                CarConfig {
                    plugged_in: true,
                    ..car
                },
                now,
            )
        })
    }

    /// Unplug the car of slave `index`.
    pub fn unplug(&self, index: usize) -> Result<(), SimError> {
        self.with_slave(index, |s, now| {
            let car = CarConfig {
                plugged_in: false,
                ..s.car().clone()
            };
            s.set_car(car, now)
        })
    }

    /// Replace the car of slave `index` (plugged in or not, as `car` says).
    pub fn set_car(&self, index: usize, car: CarConfig) -> Result<(), SimError> {
        self.with_slave(index, |s, now| s.set_car(car, now))
    }

    /// Add noise to the draw slave `index` reports.
    pub fn set_noise(&self, index: usize, noise: CentiAmps) -> Result<(), SimError> {
        self.with_slave(index, |s, _| s.set_noise(noise))
    }

    /// Cut (`true`) or reconnect slave `index`'s bus wires.
    pub fn set_cut(&self, index: usize, cut: bool) -> Result<(), SimError> {
        self.with_slave(index, |s, now| s.set_cut(cut, now))
    }

    /// Hold slave `index`'s reset button (clears an error latched by command `02`).
    pub fn reset(&self, index: usize) -> Result<(), SimError> {
        self.with_slave(index, |s, now| s.reset(now))
    }

    /// Bus counters.
    pub fn counters(&self) -> BusCounters {
        let st = self.shared.lock();
        BusCounters {
            frames_rx: st.frames_rx,
            frames_tx: st.frames_tx,
            decode: st.stats,
        }
    }
}
