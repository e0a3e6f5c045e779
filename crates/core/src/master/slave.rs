use crate::model::CentiAmps;
use crate::protocol::{ProtocolVersion, SlaveState, TwcId};
use tokio::time::Instant;

/// Progress of reading a car's VIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VinState {
    /// Not asking.
    Idle,
    /// Asking part `part` (1–3) of attempt `attempts`.
    Querying {
        /// Next part to ask.
        part: u8,
        /// Attempt number, 1-based.
        attempts: u32,
        /// Parts received so far.
        parts: Vec<Vec<u8>>,
    },
    /// Read.
    Done,
    /// The slave has no VIN to give (non-Tesla, CAN off, old firmware).
    Unavailable,
}

/// One slave in the master's table.
#[derive(Debug, Clone)]
pub struct Slave {
    /// Bus address.
    pub id: TwcId,
    /// Sign from its link-ready.
    pub sign: u8,
    /// Rated maximum from its link-ready.
    pub max_amps: CentiAmps,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Last state byte.
    pub state: SlaveState,
    /// Limit it reported.
    pub reported_limit: CentiAmps,
    /// What the car draws.
    pub actual: CentiAmps,
    /// What we last offered.
    pub offered: CentiAmps,
    /// What the engine wants it to get.
    pub target: CentiAmps,
    /// Lifetime kWh.
    pub lifetime_kwh: Option<u32>,
    /// Phase voltages.
    pub volts: [u16; 3],
    /// Current VIN (`Some("")` = no VIN available).
    pub vin: Option<String>,
    /// Previous session's VIN.
    pub last_vin: Option<String>,
    /// VIN read-out progress.
    pub vin_state: VinState,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// When it linked.
    pub linked_at: Instant,
    /// Last frame from it.
    pub last_rx: Option<Instant>,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Physical units answering to this TWCID: 2 once two units were seen with it (an ID clash),
    /// so that everything it may draw counts twice until the entry times out.
    pub units: u8,
    /// Car draws ≥ 1 A.
    pub charging: bool,
    /// Car draws more than the reported limit.
    pub overdraw: bool,
    /// Session start.
    pub session_started_at: Option<Instant>,
    /// Lifetime kWh at session start.
    pub session_start_kwh: Option<u32>,
    pub(crate) below_one_amp_since: Option<Instant>,
    pub(crate) next_heartbeat: Instant,
    pub(crate) last_heartbeat_tx: Option<Instant>,
    pub(crate) next_query: Instant,
    pub(crate) next_vin_query: Instant,
    pub(crate) kwh_received_at: Option<Instant>,
    pub(crate) firmware_asked: bool,
    pub(crate) vin_unanswered: bool,
    pub(crate) sent_limit: Option<CentiAmps>,
    /// Since when the car draws more than we offer (beyond the tolerance).
    pub(crate) over_offer_since: Option<Instant>,
    /// Since when the slave reports a limit above our (lower) offer.
    pub(crate) unconfirmed_since: Option<Instant>,
    /// The alert for the present episode was raised.
    pub(crate) alerted: bool,
    /// The stop command for the present episode was queued.
    pub(crate) escalated: bool,
    /// The most its car was seen to draw beyond its limit for longer than `follow_grace`, kept
    /// across that car's sessions until another car's VIN is read (or the slave relinks): such a car is assumed to keep doing it while it cannot be
    /// seen (a cut bus, a lost reply), so it counts at its limit plus this.
    pub excess_seen: CentiAmps,
    /// The VIN of the car `excess_seen` belongs to, when it was known.
    pub(crate) excess_vin: Option<String>,
}

impl Slave {
    pub(crate) fn new(
        id: TwcId,
        sign: u8,
        max_amps: CentiAmps,
        version: ProtocolVersion,
        now: Instant,
    ) -> Self {
        Slave {
            id,
            sign,
            max_amps,
            version,
            state: SlaveState::READY,
            reported_limit: CentiAmps::ZERO,
            actual: CentiAmps::ZERO,
            offered: CentiAmps::ZERO,
            target: CentiAmps::ZERO,
            lifetime_kwh: None,
            volts: [0; 3],
            vin: None,
            last_vin: None,
            vin_state: VinState::Idle,
            firmware: None,
            serial: None,
            linked_at: now,
            last_rx: Some(now),
            heartbeats: 0,
            units: 1,
            charging: false,
            overdraw: false,
            session_started_at: None,
            session_start_kwh: None,
            below_one_amp_since: None,
            next_heartbeat: now,
            last_heartbeat_tx: None,
            next_query: now,
            next_vin_query: now,
            kwh_received_at: None,
            firmware_asked: false,
            vin_unanswered: false,
            sent_limit: None,
            over_offer_since: None,
            unconfirmed_since: None,
            alerted: false,
            escalated: false,
            excess_seen: CentiAmps::ZERO,
            excess_vin: None,
        }
    }

    /// What the slave may draw right now as far as we know: the largest of our last offer, the
    /// limit it reports and what its car really draws (a car may ignore a lower limit, or keep
    /// drawing at 0 A: protocol spec §6.10). Until its first heartbeat reply we cannot know
    /// what limit a previous master (or our own previous run) left it with, so it counts at its
    /// rated maximum. A car seen not to follow its limit counts at its limit plus the most it
    /// was seen to take beyond it ([`Slave::excess_seen`]), even while it draws less: what it
    /// does next may not be seen in time. Two units answering to one TWCID count twice.
    pub fn committed(&self) -> CentiAmps {
        let limit = if self.heartbeats == 0 {
            self.offered.max(self.max_amps)
        } else {
            self.offered.max(self.reported_limit)
        };
        let one = (limit + self.excess_seen).max(self.actual);
        CentiAmps(one.0.saturating_mul(u16::from(self.units.max(1))))
    }

    /// True when the car has drawn more than we offer (beyond the measuring tolerance) for at
    /// least `grace`: it does not follow its pilot signal, and its draw is outside our control.
    pub fn not_following(&self, now: Instant, grace: std::time::Duration) -> bool {
        self.over_offer_since.is_some_and(|t| now - t >= grace)
    }

    /// Energy of the running session, kWh (from the lifetime counter).
    pub fn session_kwh(&self) -> f64 {
        match (self.session_start_kwh, self.lifetime_kwh) {
            (Some(a), Some(b)) if b >= a => (b - a) as f64,
            _ => 0.0,
        }
    }
}
