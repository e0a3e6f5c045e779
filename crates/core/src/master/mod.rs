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

mod slave;

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

    /// The most slave `id` may be offered: min(wiring max per TWC, its rated max).
    pub fn cap(&self, id: TwcId) -> CentiAmps {
        self.slaves
            .get(&id)
            .map(|s| s.max_amps.min(self.cfg.wiring_max_per_twc))
            .unwrap_or(CentiAmps::ZERO)
    }

    /// What each slave may draw right now, as far as we know (see [`Slave::committed`]), plus
    /// reservations for slaves that timed out. A slave that links again after timing out counts
    /// at the larger of its reservation and its own committed amps until the reservation ends.
    pub fn committed_except(&self, except: Option<TwcId>) -> CentiAmps {
        let live: CentiAmps = self
            .slaves
            .values()
            .filter(|s| Some(s.id) != except)
            .map(|s| {
                let r = self
                    .reserved
                    .get(&s.id)
                    .map(|(a, _)| *a)
                    .unwrap_or_default();
                s.committed().max(r)
            })
            .sum();
        let reserved: CentiAmps = self
            .reserved
            .iter()
            .filter(|(id, _)| Some(**id) != except && !self.slaves.contains_key(id))
            .map(|(_, (a, _))| *a)
            .sum();
        live + reserved
    }

    /// Everything the slaves may draw now, reservations included.
    pub fn committed_total(&self) -> CentiAmps {
        self.committed_except(None)
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
                s.target = t.floor_whole();
            }
        }
    }

    /// The site budget: raises never take the total of what the slaves may draw above it (the
    /// wiring max for all TWCs always applies too). Lowering is not held back by it.
    pub fn set_total_cap(&mut self, cap: CentiAmps) {
        self.total_cap = Some(cap);
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

    /// Handle one received frame.
    pub fn handle_frame(&mut self, frame: &Frame, now: Instant) -> Vec<MasterEvent> {
        let mut ev = Vec::new();
        // Keep the last slave reply that is not a heartbeat or link-ready (for diagnostics).
        if frame.as_bytes()[0] == 0xFD
            && !matches!(
                MessageCode(frame.code()),
                MessageCode::SLAVE_HEARTBEAT | MessageCode::SLAVE_LINKREADY
            )
        {
            self.last_reply = Some(frame.clone());
            self.replies += 1;
        }
        let msg = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                ev.push(MasterEvent::Malformed(e));
                return ev;
            }
        };
        match msg {
            Message::MasterLinkReady1 { master, .. }
            | Message::MasterLinkReady2 { master, .. }
            | Message::MasterHeartbeat { master, .. }
            | Message::Query { master, .. }
            | Message::StartCharging { master, .. }
            | Message::StopCharging { master, .. } => {
                if master == self.id {
                    self.counters.echoes += 1;
                } else if matches!(
                    msg.code(),
                    MessageCode::MASTER_LINKREADY1
                        | MessageCode::MASTER_LINKREADY2
                        | MessageCode::MASTER_HEARTBEAT
                ) {
                    if self.foreign.is_none() {
                        ev.push(MasterEvent::ForeignMaster(master));
                    }
                    self.foreign = Some((master, now));
                }
            }
            Message::SlaveLinkReady {
                slave,
                sign,
                max_amps,
                version,
            } => self.on_link_ready(slave, sign, max_amps, version, now, &mut ev),
            Message::SlaveHeartbeat {
                slave,
                state,
                max,
                actual,
                version,
                ..
            } => self.on_heartbeat(slave, state, max, actual, version, now, &mut ev),
            Message::LifetimeKwh {
                slave, kwh, volts, ..
            } => {
                if let Some(s) = self.slaves.get_mut(&slave) {
                    s.lifetime_kwh = Some(kwh);
                    s.volts = volts;
                    s.kwh_received_at = Some(now);
                    ev.push(MasterEvent::LifetimeKwh(slave));
                }
            }
            Message::Firmware { slave, version } => {
                if let Some(s) = self.slaves.get_mut(&slave) {
                    s.firmware = Some(format!(
                        "{}.{}.{}.{}",
                        version[0], version[1], version[2], version[3]
                    ));
                }
            }
            Message::Serial { slave, serial } => {
                if let Some(s) = self.slaves.get_mut(&slave) {
                    s.serial = Some(serial);
                }
            }
            Message::VinPart { slave, part, chars } => {
                self.on_vin_part(slave, part, chars, now, &mut ev)
            }
            Message::StartAck { slave } => ev.push(MasterEvent::Ack { slave, start: true }),
            Message::StopAck { slave } => ev.push(MasterEvent::Ack {
                slave,
                start: false,
            }),
            Message::Idle => {}
            Message::Unknown { code, .. } => {
                self.counters.unknown += 1;
                ev.push(MasterEvent::Unknown(code));
            }
        }
        ev
    }

    fn on_link_ready(
        &mut self,
        id: TwcId,
        sign: u8,
        max_amps: CentiAmps,
        version: ProtocolVersion,
        now: Instant,
        ev: &mut Vec<MasterEvent>,
    ) {
        if id == self.id {
            // A slave holds our TWCID: the bursts make it pick a new one (spec §5).
            ev.push(MasterEvent::IdClash(id));
            if self.shutdown.is_none() {
                self.queue_bursts();
            }
            return;
        }
        if let Some(s) = self.slaves.get_mut(&id) {
            if s.sign != sign && s.last_rx.is_some_and(|t| now - t < Duration::from_secs(5)) {
                // Two units answer with one TWCID: one entry at the lower maximum, but everything
                // it may draw counts twice (both units may follow each heartbeat) until the entry
                // times out.
                s.max_amps = s.max_amps.min(max_amps);
                s.units = 2;
                ev.push(MasterEvent::IdClash(id));
                self.queue_bursts();
                return;
            }
            // A linked slave announcing itself again (it lost us for a moment, or restarted).
            s.sign = sign;
            s.max_amps = max_amps;
            s.version = version;
            s.last_rx = Some(now);
            s.next_heartbeat = now;
            return;
        }
        if self.slaves.len() >= self.cfg.max_slaves {
            ev.push(MasterEvent::TooManySlaves(id));
            return;
        }
        let mut s = Slave::new(id, sign, max_amps, version, now);
        s.next_query = now + self.cfg.heartbeat_interval;
        // A reservation left by this TWCID timing out stays until it ends: `committed_except`
        // counts the slave at the larger of the two meanwhile.
        let relinked = self.reserved.contains_key(&id);
        self.slaves.insert(id, s);
        ev.push(if relinked {
            MasterEvent::SlaveRelinked(id)
        } else {
            MasterEvent::SlaveLinked(id)
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_heartbeat(
        &mut self,
        id: TwcId,
        state: SlaveState,
        max: CentiAmps,
        actual: CentiAmps,
        version: ProtocolVersion,
        now: Instant,
        ev: &mut Vec<MasterEvent>,
    ) {
        let query_vin = self.cfg.query_vin;
        let tolerance = FOLLOW_TOLERANCE;
        let Some(s) = self.slaves.get_mut(&id) else {
            self.counters.unlinked_heartbeats += 1;
            return;
        };
        s.version = version;
        if s.state != state && s.heartbeats > 0 {
            ev.push(MasterEvent::StateChanged {
                slave: id,
                from: s.state,
                to: state,
            });
        }
        s.state = state;
        s.reported_limit = max;
        s.actual = actual;
        s.last_rx = Some(now);
        s.heartbeats += 1;
        ev.push(MasterEvent::Heartbeat(id));
        let overdraw = actual > max + OVERDRAW_TOLERANCE;
        if overdraw && !s.overdraw {
            ev.push(MasterEvent::Overdraw {
                slave: id,
                actual,
                limit: max,
            });
        }
        s.overdraw = overdraw;
        // Does the car follow what we offer? (What it may draw counts in `committed` at once;
        // this is for reporting, taking its draw out of the others' budget and escalating.)
        if actual > s.offered + tolerance {
            s.over_offer_since.get_or_insert(now);
        } else {
            s.over_offer_since = None;
        }
        if s.reported_limit > s.offered && s.sent_limit == Some(s.offered) {
            s.unconfirmed_since.get_or_insert(now);
        } else {
            s.unconfirmed_since = None;
        }
        // Sessions and VIN (spec §7): ≥ 1 A starts, < 1 A for 5 s ends.
        if actual >= ONE_AMP {
            s.below_one_amp_since = None;
            if !s.charging {
                s.charging = true;
                s.session_started_at = Some(now);
                s.session_start_kwh = s.lifetime_kwh;
                ev.push(MasterEvent::SessionStarted(id));
                if query_vin && s.vin.is_none() {
                    s.vin_state = VinState::Querying {
                        part: 1,
                        attempts: 1,
                        parts: Vec::new(),
                    };
                    s.next_vin_query = now;
                }
            }
        } else if s.charging {
            let since = *s.below_one_amp_since.get_or_insert(now);
            if now - since >= SESSION_END_AFTER {
                s.charging = false;
                s.below_one_amp_since = None;
                s.session_started_at = None;
                if s.vin.is_some() {
                    s.last_vin = s.vin.take();
                }
                s.vin_state = VinState::Idle;
                // The next session (perhaps another car) starts with a clean record.
                s.excess_seen = CentiAmps::ZERO;
                ev.push(MasterEvent::SessionEnded(id));
            }
        }
    }

    fn on_vin_part(
        &mut self,
        id: TwcId,
        part: u8,
        chars: Vec<u8>,
        now: Instant,
        ev: &mut Vec<MasterEvent>,
    ) {
        let Some(s) = self.slaves.get_mut(&id) else {
            return;
        };
        let VinState::Querying {
            part: want,
            attempts,
            parts,
        } = &mut s.vin_state
        else {
            return;
        };
        if part != *want {
            return;
        }
        s.vin_unanswered = false;
        parts.push(chars);
        if part < 3 {
            *want += 1;
            s.next_vin_query = now;
            return;
        }
        let all: Vec<u8> = parts.iter().flatten().copied().collect();
        let attempts = *attempts;
        if all.iter().all(|&c| c == 0) {
            // Not a Tesla, or CAN disabled: stop asking (spec §3.7).
            s.vin_state = VinState::Unavailable;
            s.vin = Some(String::new());
            ev.push(MasterEvent::Vin(id, String::new()));
            return;
        }
        let vin = crate::protocol::message::ascii(&all);
        if vin_is_valid(&vin) {
            s.vin = Some(vin.clone());
            s.vin_state = VinState::Done;
            ev.push(MasterEvent::Vin(id, vin));
        } else if attempts < VIN_MAX_ATTEMPTS {
            s.vin_state = VinState::Querying {
                part: 1,
                attempts: attempts + 1,
                parts: Vec::new(),
            };
            s.next_vin_query = now + VIN_RETRY;
        } else {
            s.vin_state = VinState::Unavailable;
        }
    }

    /// Time out silent slaves; drop expired reservations; end the foreign-master hold; report
    /// and escalate cars that do not follow their offer.
    pub fn check_timeouts(&mut self, now: Instant) -> Vec<MasterEvent> {
        let mut ev = Vec::new();
        let timeout = self.cfg.slave_timeout;
        let mut timed_out = Vec::new();
        for s in self.slaves.values() {
            if s.last_rx.is_some_and(|t| now - t >= timeout) {
                // Our heartbeats may have kept its car charging until the last one we sent: keep
                // what it may draw reserved until the car must have stopped, with a margin.
                let last_tx = s.last_heartbeat_tx.unwrap_or(now).max(now - timeout);
                let until = last_tx.max(now) + CAR_STOPS_WITHIN + RESERVATION_MARGIN;
                let mut committed = s.committed();
                if let Some((r, _)) = self.reserved.get(&s.id) {
                    committed = committed.max(*r);
                }
                timed_out.push((s.id, committed, until));
                ev.push(MasterEvent::SlaveTimedOut(s.id));
            }
        }
        for (id, committed, until) in timed_out {
            self.reserved.insert(id, (committed, until));
            self.slaves.remove(&id);
        }
        self.reserved.retain(|_, (_, until)| *until > now);
        let grace = self.cfg.follow_grace;
        let escalate = self.cfg.escalate_stop_after;
        let mut stops = Vec::new();
        for s in self.slaves.values_mut() {
            let since = match (s.over_offer_since, s.unconfirmed_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match since {
                Some(t) if now - t >= grace => {
                    let limit = s.offered.max(s.reported_limit);
                    if s.over_offer_since.is_some() {
                        s.excess_seen = s.excess_seen.max(s.actual.saturating_sub(limit));
                    }
                    if !s.alerted {
                        s.alerted = true;
                        ev.push(MasterEvent::NotFollowing {
                            slave: s.id,
                            actual: s.actual,
                            offered: s.offered,
                            reported: s.reported_limit,
                        });
                    }
                    if let Some(after) = escalate
                        && s.over_offer_since.is_some_and(|o| now - o >= after)
                        && !s.escalated
                        && s.version != ProtocolVersion::V1
                    {
                        s.escalated = true;
                        stops.push(s.id);
                    }
                }
                Some(_) => {}
                None => {
                    if s.alerted {
                        ev.push(MasterEvent::FollowingAgain(s.id));
                    }
                    s.alerted = false;
                    s.escalated = false;
                }
            }
        }
        for id in stops {
            // A safety stop goes ahead of anything a user queued.
            self.commands
                .retain(|q| !matches!(q, Pending::Start(x) | Pending::Stop(x) if *x == id));
            self.commands.push_front(Pending::Stop(id));
            ev.push(MasterEvent::EscalatedStop(id));
        }
        if let Some((_, last)) = self.foreign
            && now - last >= self.cfg.foreign_master_hold
        {
            self.foreign = None;
            ev.push(MasterEvent::ForeignMasterGone);
            if self.cfg.link_ready_bursts {
                self.queue_bursts();
            }
        }
        ev
    }

    /// When `poll_transmit` should next be called.
    pub fn next_wakeup(&self, now: Instant) -> Instant {
        if self.foreign.is_some() || self.shutdown_complete() {
            // Nothing will be sent: overdue heartbeats must not make the caller spin (and starve
            // the tick that ends the foreign-master hold).
            return now + Duration::from_millis(500);
        }
        let gap_end = self.last_tx.map(|t| t + self.cfg.frame_gap).unwrap_or(now);
        let mut due = now + Duration::from_millis(500);
        if !self.bursts.is_empty() || (!self.commands.is_empty() && self.command_allowed()) {
            due = now;
        }
        for s in self.slaves.values() {
            due = due.min(s.next_heartbeat).min(self.next_query_due(s));
        }
        due.max(gap_end)
    }

    fn next_query_due(&self, s: &Slave) -> Instant {
        let mut due = s.next_query;
        if matches!(s.vin_state, VinState::Querying { .. }) {
            due = due.min(s.next_vin_query);
        }
        due.max(
            s.last_heartbeat_tx
                .map(|t| t + QUERY_AFTER_HEARTBEAT)
                .unwrap_or(due),
        )
    }

    /// The next frame to send, if one is due. Returns at most one frame per call and respects the
    /// minimum gap between frames.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(Frame, Vec<MasterEvent>)> {
        if self.foreign.is_some() || self.shutdown_complete() {
            return None;
        }
        if let Some(t) = self.last_tx
            && now < t + self.cfg.frame_gap
        {
            return None;
        }
        let out = self.next_frame(now)?;
        self.last_tx = Some(now);
        self.counters.frames_tx += 1;
        Some(out)
    }

    /// Commands go at most one per heartbeat round, so that no number of them delays a
    /// heartbeat by more than one frame.
    fn command_allowed(&self) -> bool {
        self.heartbeats_since_command >= self.slaves.len().max(1)
    }

    fn next_frame(&mut self, now: Instant) -> Option<(Frame, Vec<MasterEvent>)> {
        // Heartbeats first (they carry the limits that keep the wiring safe), round robin among
        // due slaves starting after the last one served.
        let due: Vec<TwcId> = self
            .slaves
            .values()
            .filter(|s| s.next_heartbeat <= now)
            .map(|s| s.id)
            .collect();
        if !due.is_empty() {
            let pick = match self.rr_cursor {
                Some(c) => due.iter().copied().find(|id| *id > c).unwrap_or(due[0]),
                None => due[0],
            };
            self.rr_cursor = Some(pick);
            self.heartbeats_since_command = self.heartbeats_since_command.saturating_add(1);
            return Some(self.heartbeat(pick, now));
        }
        if let Some(f) = self.bursts.pop_front() {
            return Some((f, Vec::new()));
        }
        if self.command_allowed()
            && let Some(cmd) = self.commands.pop_front()
        {
            self.heartbeats_since_command = 0;
            let msg = match cmd {
                Pending::Start(slave) => Message::StartCharging {
                    master: self.id,
                    slave,
                },
                Pending::Stop(slave) => Message::StopCharging {
                    master: self.id,
                    slave,
                },
                Pending::Query(slave, code) => Message::Query {
                    code,
                    master: self.id,
                    slave,
                    len: self
                        .slaves
                        .get(&slave)
                        .map(|s| s.version.frame_len())
                        .unwrap_or(16),
                },
            };
            return msg.encode().ok().map(|f| (f, Vec::new()));
        }
        // Then queries.
        let query = self
            .slaves
            .values()
            .find(|s| self.next_query_due(s) <= now)
            .map(|s| s.id)?;
        self.query(query, now)
    }

    fn heartbeat(&mut self, id: TwcId, now: Instant) -> (Frame, Vec<MasterEvent>) {
        // What this slave's own car draws beyond our offer is not ours to give either (a car
        // that overdraws would otherwise take the total above the wiring by that much).
        let own_excess = self
            .slaves
            .get(&id)
            .map(|s| s.actual.saturating_sub(s.offered).max(s.excess_seen))
            .unwrap_or_default();
        let others = self.committed_except(Some(id)) + own_excess;
        // Hard limit: the wiring. Soft limit for raises: the site budget too, so that a raise
        // never pushes the total above the budget (a grid limit, say) while another slave's
        // lowering is still unconfirmed. Lowering is never held back by the budget.
        let hard_room = self.cfg.wiring_max_all.saturating_sub(others);
        let soft_room = self
            .cfg
            .wiring_max_all
            .min(self.total_cap.unwrap_or(self.cfg.wiring_max_all))
            .saturating_sub(others);
        let cap = self.cap(id);
        let interval = self.cfg.heartbeat_interval;
        let in_shutdown = self.shutdown.is_some();
        let s = self.slaves.get_mut(&id).expect("due slave exists");
        let units = u16::from(s.units.max(1));
        // Two units on one TWCID both follow this heartbeat: each may have half the room.
        let (hard_room, soft_room) = (
            CentiAmps(hard_room.0 / units),
            CentiAmps(soft_room.0 / units),
        );
        let min = s.version.min_amps();
        let target = s.target.min(cap);
        let mut offer = if target > s.offered {
            target.min(soft_room).max(s.offered.min(hard_room))
        } else {
            target.min(hard_room)
        }
        .floor_whole();
        if offer < min {
            // Below what the car can charge with: stop rather than offer a useless trickle.
            offer = CentiAmps::ZERO;
        }
        let mut events = Vec::new();
        let command;
        let amps;
        if s.heartbeats == 0 && !in_shutdown {
            // Until its first reply we do not know what limit the slave holds (a car may be
            // charging at what our previous run offered): "no change", so a restart does not
            // stop a charging car for a second. It counts at its rated maximum meanwhile.
            command = MasterCommand::NONE;
            amps = CentiAmps::ZERO;
        } else {
            if offer != s.offered {
                events.push(MasterEvent::OfferSent {
                    slave: id,
                    from: s.offered,
                    to: offer,
                });
            }
            // Spec §4.4: send the set-limit command when the slave's limit differs, or when it
            // is 0 (re-sending 0 stops relay clicking); otherwise "no change". The limit we last
            // *sent* counts too: with a lost reply the reported limit can be stale and match the
            // offer while the slave holds something else.
            (command, amps) = if s.reported_limit != offer
                || offer == CentiAmps::ZERO
                || s.sent_limit != Some(offer)
            {
                s.sent_limit = Some(offer);
                (s.version.set_limit_command(), offer)
            } else {
                (MasterCommand::NONE, CentiAmps::ZERO)
            };
            s.offered = offer;
        }
        s.next_heartbeat = now + interval;
        s.last_heartbeat_tx = Some(now);
        if s.last_rx.is_none() {
            s.last_rx = Some(now);
        }
        let frame = Message::MasterHeartbeat {
            master: self.id,
            slave: id,
            command,
            amps,
            master_plugged_in: false,
            version: s.version,
        }
        .encode()
        .expect("heartbeat encodes");
        if in_shutdown
            && Some(id) == self.slaves.keys().next_back().copied()
            && let Some(r) = self.shutdown.as_mut()
        {
            *r += 1;
        }
        (frame, events)
    }

    fn query(&mut self, id: TwcId, now: Instant) -> Option<(Frame, Vec<MasterEvent>)> {
        let kwh_interval = self.cfg.kwh_interval;
        let master = self.id;
        let s = self.slaves.get_mut(&id)?;
        let len = s.version.frame_len();
        let vin_due = matches!(s.vin_state, VinState::Querying { .. }) && s.next_vin_query <= now;
        if vin_due && s.vin_unanswered {
            // The last VIN part was not answered: count an attempt and retry later from part 1,
            // or give up (old firmware and some cars never answer, spec §3.7).
            s.vin_unanswered = false;
            if let VinState::Querying {
                part,
                attempts,
                parts,
            } = &mut s.vin_state
            {
                if *attempts >= VIN_MAX_ATTEMPTS {
                    s.vin_state = VinState::Unavailable;
                } else {
                    *attempts += 1;
                    *part = 1;
                    parts.clear();
                    s.next_vin_query = now + VIN_RETRY;
                }
            }
            return None;
        }
        let code = match &s.vin_state {
            VinState::Querying { part, .. } if s.next_vin_query <= now => {
                s.next_vin_query = now + Duration::from_secs(2);
                s.vin_unanswered = true;
                match part {
                    1 => MessageCode::QUERY_VIN1,
                    2 => MessageCode::QUERY_VIN2,
                    _ => MessageCode::QUERY_VIN3,
                }
            }
            _ => {
                s.next_query = now + kwh_interval;
                if s.firmware.is_none()
                    && s.kwh_received_at.is_some()
                    && s.version == ProtocolVersion::V2
                    && !s.firmware_asked
                {
                    s.firmware_asked = true;
                    MessageCode::QUERY_FIRMWARE
                } else {
                    MessageCode::QUERY_KWH
                }
            }
        };
        Message::Query {
            code,
            master,
            slave: id,
            len,
        }
        .encode()
        .ok()
        .map(|f| (f, Vec::new()))
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
