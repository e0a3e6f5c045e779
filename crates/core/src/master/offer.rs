//! What a slave may be offered: caps, committed amps and the heartbeat's room.

use super::Master;
use crate::model::CentiAmps;
use crate::protocol::TwcId;

impl Master {
    /// The most slave `id` may be offered: min(wiring max per TWC, its rated max).
    pub fn cap(&self, id: TwcId) -> CentiAmps {
        self.slaves
            .get(&id)
            .map(|s| s.max_amps.min(self.cfg.wiring_max_per_twc))
            .unwrap_or(CentiAmps::ZERO)
    }

    /// What each slave may draw right now, as far as we know (see
    /// [`Slave::committed`](super::Slave::committed)), plus reservations for slaves that timed
    /// out. A slave that links again after timing out counts at the larger of its reservation and
    /// its own committed amps until the reservation ends.
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
}

/// What a slave's own car draws beyond our offer: now, or the most seen this session. It is not
/// ours to give either (a car that overdraws would otherwise take the total above the wiring by
/// that much).
pub fn own_excess(actual: CentiAmps, offered: CentiAmps, excess_seen: CentiAmps) -> CentiAmps {
    actual.saturating_sub(offered).max(excess_seen)
}

/// How much one heartbeat may offer a slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// The wiring: never offered beyond, even when lowering.
    pub hard: CentiAmps,
    /// Also the site budget: a raise goes no further than this.
    pub soft: CentiAmps,
}

/// The room for a slave's next offer.
///
/// `others` is what every other slave may draw ([`Master::committed_except`]), `own_excess`
/// what this slave's car draws beyond its offer ([`own_excess`]), `units` the physical units
/// answering to its TWCID. Hard limit: the wiring. Soft limit for raises: the site budget too,
/// so that a raise never pushes the total above the budget (a grid limit, say) while another
/// slave's lowering is still unconfirmed. Lowering is never held back by the budget. Two units
/// on one TWCID both follow the heartbeat: each may have half the room.
pub fn room(
    wiring_max_all: CentiAmps,
    total_cap: Option<CentiAmps>,
    others: CentiAmps,
    own_excess: CentiAmps,
    units: u8,
) -> Room {
    let others = others + own_excess;
    let hard = wiring_max_all.saturating_sub(others);
    let soft = wiring_max_all
        .min(total_cap.unwrap_or(wiring_max_all))
        .saturating_sub(others);
    let units = u16::from(units.max(1));
    Room {
        hard: CentiAmps(hard.0 / units),
        soft: CentiAmps(soft.0 / units),
    }
}

/// The offer for a slave's next heartbeat, a multiple of `step` (`[wiring] offer_step_amps`).
///
/// The target is clamped to the slave's `cap`. A raise goes no higher than the soft room (but
/// never takes back what is already offered, within the hard room); a lowering, or keeping, no
/// higher than the hard room. Below `min`, what the car can charge with, the offer is 0: stop
/// rather than offer a useless trickle.
pub fn offer(
    target: CentiAmps,
    cap: CentiAmps,
    offered: CentiAmps,
    room: Room,
    min: CentiAmps,
    step: CentiAmps,
) -> CentiAmps {
    let target = target.min(cap);
    let offer = if target > offered {
        target.min(room.soft).max(offered.min(room.hard))
    } else {
        target.min(room.hard)
    }
    .floor_to(step);
    if offer < min { CentiAmps::ZERO } else { offer }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u16 = 100;

    fn amps(a: u16) -> CentiAmps {
        CentiAmps(a * A)
    }

    #[test]
    fn raise_never_exceeds_wiring_minus_others() {
        for others in [0, 6, 16, 30, 40] {
            for offered in [0, 6, 16, 32] {
                let r = room(amps(40), None, amps(others), CentiAmps::ZERO, 1);
                let o = offer(amps(32), amps(32), amps(offered), r, amps(6), amps(1));
                // Never beyond what the wiring leaves after the others, even when already
                // offered more.
                assert!(
                    o <= amps(40).saturating_sub(amps(others)),
                    "{others} {offered} {o}"
                );
                assert!(o <= amps(32));
            }
        }
    }

    #[test]
    fn own_excess_reduces_room() {
        let excess = own_excess(amps(20), amps(16), CentiAmps::ZERO);
        assert_eq!(excess, amps(4));
        assert_eq!(own_excess(amps(10), amps(16), amps(3)), amps(3));
        let r = room(amps(40), None, amps(20), excess, 1);
        assert_eq!(r.hard, amps(16));
        // The car wants 20 A but only 16 A are left once its own overdraw is counted.
        assert_eq!(
            offer(amps(20), amps(32), amps(16), r, amps(6), amps(1)),
            amps(16)
        );
    }

    #[test]
    fn budget_holds_back_raises_not_lowering() {
        let r = room(amps(40), Some(amps(20)), amps(10), CentiAmps::ZERO, 1);
        assert_eq!((r.hard, r.soft), (amps(30), amps(10)));
        // Raise: limited by the budget.
        assert_eq!(
            offer(amps(32), amps(32), amps(6), r, amps(6), amps(1)),
            amps(10)
        );
        // Already offered more than the budget leaves: kept within the wiring, not cut.
        assert_eq!(
            offer(amps(24), amps(32), amps(16), r, amps(6), amps(1)),
            amps(16)
        );
        // Two units on one TWCID: each gets half.
        let r2 = room(amps(40), None, amps(10), CentiAmps::ZERO, 2);
        assert_eq!(r2.hard, amps(15));
        // Below the car's minimum: stop.
        assert_eq!(
            offer(amps(5), amps(32), amps(0), r, amps(6), amps(1)),
            CentiAmps::ZERO
        );
    }
}
