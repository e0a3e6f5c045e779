//! The bus master as a sans-I/O state machine.
//!
//! The engine feeds it received frames ([`Master::handle_frame`]) and asks it for the next frame
//! to send ([`Master::poll_transmit`]) at the times it names ([`Master::next_wakeup`]). All time
//! comes in as `tokio::time::Instant`, so tests and the simulator run on paused time.
//!
//! **Invariant (safety 1):** a heartbeat never offers a slave more than its cap,
//! `min(wiring max per TWC, rated max)`. **Invariant (safety 2):** the sum over slaves of what
//! each may draw (`max(offered, reported limit)`) never exceeds the wiring max for all TWCs: a
//! raise is only sent once lowering elsewhere has been confirmed by the slaves.

mod handlers;
pub mod offer;
mod slave;
mod timeouts;
mod transmit;

pub use slave::{Slave, VinState};

use crate::model::CentiAmps;
use crate::protocol::{
    Frame, MasterCommand, Message, MessageCode, MessageError, ProtocolVersion, SlaveState, TwcId,
    message::vin_is_valid,
};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Master settings (from `[master]` and `[wiring]`).
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Fixed TWCID; random when `None`.
    pub id: Option<TwcId>,
    /// Fixed sign; random when `None`.
    pub sign: Option<u8>,
    /// Wiring limit for all TWCs together.
    pub wiring_max_all: CentiAmps,
    /// Wiring limit per TWC.
    pub wiring_max_per_twc: CentiAmps,
    /// Each slave gets a heartbeat this often.
    pub heartbeat_interval: Duration,
    /// Minimum gap between two frames we send (room for the slave's reply).
    pub frame_gap: Duration,
    /// A slave silent this long is timed out.
    pub slave_timeout: Duration,
    /// How often to ask each slave for lifetime kWh and voltages.
    pub kwh_interval: Duration,
    /// Send 5 × `FC E1` + 5 × `FB E2` at start.
    pub link_ready_bursts: bool,
    /// Largest number of slaves (the protocol's limit is 3).
    pub max_slaves: usize,
    /// Stay silent this long after the last frame of another master.
    pub foreign_master_hold: Duration,
    /// Ask slaves for the VIN of the car.
    pub query_vin: bool,
    /// A car that draws more than it is offered for this long is reported (and its draw is
    /// taken out of everyone else's budget); it then gets a stop command (`FC B2`, protocol 2)
    /// when it keeps on for [`MasterConfig::escalate_stop_after`].
    pub follow_grace: Duration,
    /// How long a car may go on drawing more than offered before it gets `FC B2` (protocol-2
    /// slaves; a Tesla then needs a re-plug). `None`: never.
    pub escalate_stop_after: Option<Duration>,
    /// Most start/stop/query commands waiting to be sent; more are refused as busy.
    pub max_pending_commands: usize,
    /// Offers are multiples of this (`[wiring] offer_step_amps`; the protocol carries
    /// centiamps, cars follow in steps of about 0.5 A).
    pub offer_step: CentiAmps,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            id: None,
            sign: None,
            wiring_max_all: CentiAmps::from_amps(6),
            wiring_max_per_twc: CentiAmps::from_amps(6),
            heartbeat_interval: Duration::from_secs(1),
            frame_gap: Duration::from_millis(100),
            slave_timeout: Duration::from_secs(26),
            kwh_interval: Duration::from_secs(60),
            link_ready_bursts: true,
            max_slaves: 3,
            foreign_master_hold: Duration::from_secs(60),
            query_vin: true,
            follow_grace: Duration::from_secs(5),
            escalate_stop_after: Some(Duration::from_secs(60)),
            max_pending_commands: 16,
            // Whole amps for code that builds its own config (what it always had); the config
            // file's default, `[wiring] offer_step_amps = 0.5`, sets 0.5 A.
            offer_step: CentiAmps(100),
        }
    }
}

/// What happened on the bus, for the engine to log and publish.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MasterEvent {
    /// A new slave linked.
    SlaveLinked(TwcId),
    /// A slave that had timed out linked again.
    SlaveRelinked(TwcId),
    /// A slave was silent longer than the timeout.
    SlaveTimedOut(TwcId),
    /// A slave heartbeat was received (status updated).
    Heartbeat(TwcId),
    /// A slave's state byte changed.
    StateChanged {
        /// Which slave.
        slave: TwcId,
        /// Old state.
        from: SlaveState,
        /// New state.
        to: SlaveState,
    },
    /// A heartbeat carrying a new limit was sent.
    OfferSent {
        /// Which slave.
        slave: TwcId,
        /// Previous offer.
        from: CentiAmps,
        /// New offer.
        to: CentiAmps,
    },
    /// Lifetime kWh / voltages arrived.
    LifetimeKwh(TwcId),
    /// A VIN was read (empty = not a Tesla / no CAN).
    Vin(TwcId, String),
    /// Car started drawing ≥ 1 A.
    SessionStarted(TwcId),
    /// Car below 1 A for 5 s.
    SessionEnded(TwcId),
    /// Another master was heard; we stop transmitting.
    ForeignMaster(TwcId),
    /// The other master has been silent long enough; we transmit again.
    ForeignMasterGone,
    /// A slave claims our TWCID, or two slaves share one.
    IdClash(TwcId),
    /// A slave linked while the table was full.
    TooManySlaves(TwcId),
    /// A slave's car draws more than the slave's reported limit.
    Overdraw {
        /// Which slave.
        slave: TwcId,
        /// What it draws.
        actual: CentiAmps,
        /// Its limit.
        limit: CentiAmps,
    },
    /// A frame with an unknown code.
    Unknown(MessageCode),
    /// A frame with a known code but a length that does not fit.
    Malformed(MessageError),
    /// A car has drawn more than offered for longer than `follow_grace` (or the slave has not
    /// confirmed a lower limit for that long): it is outside our control.
    NotFollowing {
        /// Which slave.
        slave: TwcId,
        /// What its car draws.
        actual: CentiAmps,
        /// What we offer.
        offered: CentiAmps,
        /// The limit it reports.
        reported: CentiAmps,
    },
    /// A slave that did not follow does again.
    FollowingAgain(TwcId),
    /// A car kept drawing more than offered: `FC B2` was queued for its slave.
    EscalatedStop(TwcId),
    /// A start/stop command was acknowledged.
    Ack {
        /// Which slave.
        slave: TwcId,
        /// True for start, false for stop.
        start: bool,
    },
}

/// Counters the engine copies into `BusStatus`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MasterCounters {
    /// Frames handed out by `poll_transmit`.
    pub frames_tx: u64,
    /// Unknown message codes.
    pub unknown: u64,
    /// Known codes with bad lengths.
    pub malformed: u64,
    /// Heartbeats from slaves never linked.
    pub unlinked_heartbeats: u64,
    /// Our own frames heard back.
    pub echoes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Start(TwcId),
    Stop(TwcId),
    Query(TwcId, MessageCode),
}

/// Why a start, stop or query request was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No slave with that TWCID is linked.
    #[error("no slave {0} is linked")]
    NoSuchSlave(TwcId),
    /// The slave's firmware has no such command.
    #[error("slave {0} speaks protocol 1, whose firmware has no start/stop command")]
    Unsupported(TwcId),
    /// Not one of the queries the protocol spec marks safe.
    #[error("{0} is not one of the queries the protocol spec marks safe")]
    NotSafe(MessageCode),
    /// Too many commands are waiting; heartbeats go first.
    #[error("{0} commands are already waiting to be sent; try again in a few seconds")]
    Busy(usize),
}

/// The bus master.
pub struct Master {
    cfg: MasterConfig,
    id: TwcId,
    sign: u8,
    slaves: BTreeMap<TwcId, Slave>,
    /// Slaves that timed out: their last possible draw stays reserved until this instant.
    reserved: BTreeMap<TwcId, (CentiAmps, Instant)>,
    bursts: VecDeque<Frame>,
    commands: VecDeque<Pending>,
    last_tx: Option<Instant>,
    foreign: Option<(TwcId, Instant)>,
    counters: MasterCounters,
    shutdown: Option<u32>,
    rr_cursor: Option<TwcId>,
    total_cap: Option<CentiAmps>,
    /// What chargers outside the bus (external load points) may draw: counted with every
    /// slave's committed current when room for a raise is computed.
    external_reserved: CentiAmps,
    last_reply: Option<Frame>,
    replies: u64,
    /// Heartbeats sent since the last command frame: commands go at most one per round.
    heartbeats_since_command: usize,
}

const ONE_AMP: CentiAmps = CentiAmps(100);
const OVERDRAW_TOLERANCE: CentiAmps = CentiAmps(150);
/// A car drawing more than this above our offer does not follow it (cars draw under it).
const FOLLOW_TOLERANCE: CentiAmps = CentiAmps(50);
const VIN_RETRY: Duration = Duration::from_secs(60);
const VIN_MAX_ATTEMPTS: u32 = 6;
const SESSION_END_AFTER: Duration = Duration::from_secs(5);
const QUERY_AFTER_HEARTBEAT: Duration = Duration::from_millis(300);
const SHUTDOWN_ROUNDS: u32 = 3;
/// Without heartbeats a car stops within 20–30 s (spec §5); what a slave that timed out may
/// draw stays reserved this long after the last heartbeat we sent it.
const CAR_STOPS_WITHIN: Duration = Duration::from_secs(30);
/// Margin on top of [`CAR_STOPS_WITHIN`].
const RESERVATION_MARGIN: Duration = Duration::from_secs(15);

impl Master {
    /// A master with a random (or configured) TWCID and sign. Queues the link-ready bursts.
    pub fn new(cfg: MasterConfig) -> Self {
        let id = cfg.id.unwrap_or_else(|| random_id(&[]));
        let sign = cfg.sign.unwrap_or_else(rand::random);
        let mut m = Master {
            cfg,
            id,
            sign,
            slaves: BTreeMap::new(),
            reserved: BTreeMap::new(),
            bursts: VecDeque::new(),
            commands: VecDeque::new(),
            last_tx: None,
            foreign: None,
            counters: MasterCounters::default(),
            shutdown: None,
            rr_cursor: None,
            total_cap: None,
            external_reserved: CentiAmps::ZERO,
            last_reply: None,
            replies: 0,
            heartbeats_since_command: usize::MAX,
        };
        if m.cfg.link_ready_bursts {
            m.queue_bursts();
        }
        m
    }

    /// Our TWCID.
    pub fn id(&self) -> TwcId {
        self.id
    }
    /// Our sign byte.
    pub fn sign(&self) -> u8 {
        self.sign
    }
    /// The configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.cfg
    }
    /// Counters.
    pub fn counters(&self) -> MasterCounters {
        self.counters
    }
    /// The slave table, sorted by id.
    pub fn slaves(&self) -> impl Iterator<Item = &Slave> {
        self.slaves.values()
    }
    /// One slave.
    pub fn slave(&self, id: TwcId) -> Option<&Slave> {
        self.slaves.get(&id)
    }
    /// The other master we heard, while we hold back.
    pub fn foreign_master(&self) -> Option<TwcId> {
        self.foreign.map(|(id, _)| id)
    }
    /// True while we may transmit.
    pub fn transmitting(&self) -> bool {
        self.foreign.is_none() && !self.shutdown_complete()
    }

    /// Announce ourselves again (5 × `FC E1` + 5 × `FB E2`, if `link_ready_bursts` is on), e.g.
    /// after the bus link came back: slaves answer the second `FB E2` with their link-ready at
    /// once instead of within their 10 s cycle. Nothing while shutting down.
    pub fn announce(&mut self) {
        if self.cfg.link_ready_bursts && self.shutdown.is_none() {
            self.queue_bursts();
        }
    }

    fn queue_bursts(&mut self) {
        self.bursts.clear();
        for _ in 0..5 {
            self.bursts.push_back(
                Message::MasterLinkReady1 {
                    master: self.id,
                    sign: self.sign,
                }
                .encode()
                .expect("link-ready encodes"),
            );
        }
        for _ in 0..5 {
            self.bursts.push_back(
                Message::MasterLinkReady2 {
                    master: self.id,
                    sign: self.sign,
                }
                .encode()
                .expect("link-ready encodes"),
            );
        }
    }

    /// Set what the engine wants each slave to get. Slaves not named get 0. Values are clamped to
    /// the slave's cap; the master reaches them as fast as the lower-before-raise rule allows.
    pub fn set_targets(&mut self, targets: &BTreeMap<TwcId, CentiAmps>) {
        if self.shutdown.is_some() {
            return;
        }
        let ids: Vec<TwcId> = self.slaves.keys().copied().collect();
        for id in ids {
            let cap = self.cap(id);
            let t = targets
                .get(&id)
                .copied()
                .unwrap_or(CentiAmps::ZERO)
                .min(cap);
            if let Some(s) = self.slaves.get_mut(&id) {
                s.target = t.floor_to(self.cfg.offer_step);
            }
        }
    }

    /// The site budget: raises never take the total of what the slaves may draw above it (the
    /// wiring max for all TWCs always applies too). Lowering is not held back by it.
    pub fn set_total_cap(&mut self, cap: CentiAmps) {
        self.total_cap = Some(cap);
    }

    /// What chargers that are not on the bus (external load points) may draw now. A raise
    /// for a slave leaves room for it under the wiring max and the total cap; lowering is never
    /// held back by it.
    pub fn set_external_reserved(&mut self, amps: CentiAmps) {
        self.external_reserved = amps;
    }

    /// What chargers that are not on the bus may draw, as last set.
    pub fn external_reserved(&self) -> CentiAmps {
        self.external_reserved
    }

    /// Queue `FC B1` (start) for a slave. Only protocol-2 firmware has it. A start or stop
    /// already waiting for the same slave is replaced (the latest wins).
    pub fn request_start(&mut self, id: TwcId) -> Result<(), RequestError> {
        self.check_start_stop(id)?;
        self.enqueue(Pending::Start(id))
    }

    /// Queue `FC B2` (stop) for a slave. A Tesla then needs a re-plug.
    pub fn request_stop(&mut self, id: TwcId) -> Result<(), RequestError> {
        self.check_start_stop(id)?;
        self.enqueue(Pending::Stop(id))
    }

    /// Queue one query (`FB EB`, `FB EC`, …) to a slave, for diagnostics. Only the query codes
    /// the protocol spec marks safe are accepted; the reply shows in [`Self::last_reply`]. The
    /// same query already waiting for the same slave is not queued twice.
    pub fn request_query(&mut self, id: TwcId, code: MessageCode) -> Result<(), RequestError> {
        if code.is_dangerous() || !code.is_query() {
            return Err(RequestError::NotSafe(code));
        }
        if !self.slaves.contains_key(&id) {
            return Err(RequestError::NoSuchSlave(id));
        }
        self.enqueue(Pending::Query(id, code))
    }

    /// Commands waiting to be sent.
    pub fn pending_commands(&self) -> usize {
        self.commands.len()
    }

    fn enqueue(&mut self, p: Pending) -> Result<(), RequestError> {
        if self.commands.contains(&p) {
            return Ok(());
        }
        if let Pending::Start(id) | Pending::Stop(id) = p
            && let Some(slot) = self
                .commands
                .iter_mut()
                .find(|q| matches!(q, Pending::Start(x) | Pending::Stop(x) if *x == id))
        {
            *slot = p;
            return Ok(());
        }
        if self.commands.len() >= self.cfg.max_pending_commands.max(1) {
            return Err(RequestError::Busy(self.commands.len()));
        }
        self.commands.push_back(p);
        Ok(())
    }

    /// The last reply from a slave other than a heartbeat or link-ready (a query's answer, an
    /// acknowledgement, or an unknown message), with how many such replies came so far.
    pub fn last_reply(&self) -> (Option<&Frame>, u64) {
        (self.last_reply.as_ref(), self.replies)
    }

    fn check_start_stop(&self, id: TwcId) -> Result<(), RequestError> {
        match self.slaves.get(&id) {
            None => Err(RequestError::NoSuchSlave(id)),
            Some(s) if s.version == ProtocolVersion::V1 => Err(RequestError::Unsupported(id)),
            Some(_) => Ok(()),
        }
    }

    /// Begin the graceful shutdown of spec §12: offer 0 A to every slave and keep heartbeating
    /// until each reports 0 A or three rounds have passed.
    pub fn begin_shutdown(&mut self) {
        for s in self.slaves.values_mut() {
            s.target = CentiAmps::ZERO;
        }
        self.bursts.clear();
        self.commands.clear();
        self.shutdown = Some(0);
    }

    /// True once shutdown may stop transmitting.
    pub fn shutdown_complete(&self) -> bool {
        match self.shutdown {
            None => false,
            Some(rounds) => {
                rounds >= SHUTDOWN_ROUNDS
                    || self.slaves.values().all(|s| {
                        s.offered == CentiAmps::ZERO && s.reported_limit == CentiAmps::ZERO
                    })
            }
        }
    }
}

/// A random TWCID that is not `0000`, `FFFF`, nor in `avoid`.
pub fn random_id(avoid: &[TwcId]) -> TwcId {
    loop {
        let id = TwcId(rand::random());
        if id.0 != [0, 0] && id.0 != [0xFF, 0xFF] && !avoid.contains(&id) {
            return id;
        }
    }
}
