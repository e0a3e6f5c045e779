//! Splitting the site budget among slaves.
//!
//! Fair share by water-filling in whole amps, higher priority first; a slave that cannot get its
//! minimum gets 0 and the rest is shared among the others; idle slaves get their minimum from
//! what is left so that a car plugging in can start at once. The result never exceeds a slave's
//! cap and its sum never exceeds the budget (nor the wiring max for all TWCs).

use crate::model::CentiAmps;
use crate::protocol::TwcId;
use std::collections::BTreeMap;

/// How much a slave wants current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Demand {
    /// No car (or no sign of one).
    Idle,
    /// A car is connected but not drawing.
    Connected,
    /// A car draws ≥ 1 A.
    Charging,
}

/// One slave as the sharing step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareInput<K = TwcId> {
    /// Which slave (or, in the engine, which slave or load point).
    pub id: K,
    /// The most it may get: min(wiring per TWC, rated max).
    pub cap: CentiAmps,
    /// The least worth offering: max(min amps per TWC, protocol minimum).
    pub min: CentiAmps,
    /// Demand.
    pub demand: Demand,
    /// Higher gets served first (vehicle/slave priority); equal priorities share fairly.
    pub priority: i32,
}

/// Split `budget` (already capped by the policy and the grid) among `slaves`, never exceeding
/// `wiring_max_all` in total. Every value is whole amps, 0 or ≥ that slave's minimum.
pub fn distribute<K: Ord + Copy>(
    budget: CentiAmps,
    wiring_max_all: CentiAmps,
    slaves: &[ShareInput<K>],
) -> BTreeMap<K, CentiAmps> {
    distribute_limited(budget, wiring_max_all, slaves, None)
}

/// As [`distribute`], giving current to at most `max_active` cars (the most deserving; cars
/// already charging before those that are only connected). Green tracking uses it so that the
/// number of cars follows its start/stop hysteresis, not every wobble of the surplus.
pub fn distribute_limited<K: Ord + Copy>(
    budget: CentiAmps,
    wiring_max_all: CentiAmps,
    slaves: &[ShareInput<K>],
    max_active: Option<usize>,
) -> BTreeMap<K, CentiAmps> {
    distribute_stepped(
        budget,
        wiring_max_all,
        slaves,
        max_active,
        CentiAmps::from_amps(1),
    )
}

/// As [`distribute_limited`], in multiples of `step` instead of whole amps (`[wiring]
/// offer_step_amps`; a zero step counts as 1 A).
pub fn distribute_stepped<K: Ord + Copy>(
    budget: CentiAmps,
    wiring_max_all: CentiAmps,
    slaves: &[ShareInput<K>],
    max_active: Option<usize>,
    step: CentiAmps,
) -> BTreeMap<K, CentiAmps> {
    let step = if step.0 == 0 {
        CentiAmps::from_amps(1)
    } else {
        step
    };
    let budget = budget.min(wiring_max_all).floor_to(step);
    let mut out: BTreeMap<K, CentiAmps> = slaves.iter().map(|s| (s.id, CentiAmps::ZERO)).collect();
    let mut active: Vec<&ShareInput<K>> = slaves
        .iter()
        .filter(|s| s.demand != Demand::Idle && s.cap >= s.min && s.cap > CentiAmps::ZERO)
        .collect();
    // Most deserving first; the last one is dropped first when the budget is short.
    active.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(b.demand.cmp(&a.demand))
            .then(a.id.cmp(&b.id))
    });
    if let Some(n) = max_active {
        active.truncate(n);
    }
    let mut used = CentiAmps::ZERO;
    while !active.is_empty() {
        let alloc = water_fill(budget, &active, step);
        if active.iter().zip(&alloc).any(|(s, a)| *a < s.min) {
            // Someone cannot reach its minimum: drop the least deserving and try again.
            active.pop();
            continue;
        }
        for (s, a) in active.iter().zip(&alloc) {
            out.insert(s.id, *a);
            used = used + *a;
        }
        break;
    }
    // Idle slaves: their minimum from the leftover, so a car that plugs in can start.
    let mut left = budget.saturating_sub(used);
    let mut idle: Vec<&ShareInput<K>> = slaves
        .iter()
        .filter(|s| s.demand == Demand::Idle && s.cap >= s.min)
        .collect();
    idle.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
    for s in idle {
        let m = s.min.max(CentiAmps::from_amps(1)).floor_to(step);
        let m = if m < s.min { m + step } else { m };
        if m <= left && m <= s.cap {
            out.insert(s.id, m);
            left = left - m;
        }
    }
    out
}

/// Water-filling in multiples of `step`: each gets min(cap, an equal share of what is left),
/// smallest caps first so their unused share flows to the others. Returned in the order of
/// `slaves`.
fn water_fill<K>(budget: CentiAmps, slaves: &[&ShareInput<K>], step: CentiAmps) -> Vec<CentiAmps> {
    let st = step.0 as u32;
    let mut order: Vec<usize> = (0..slaves.len()).collect();
    order.sort_by_key(|&i| slaves[i].cap);
    let mut remaining = budget.0 as u32;
    let mut alloc = vec![CentiAmps::ZERO; slaves.len()];
    for (k, &i) in order.iter().enumerate() {
        let n = (slaves.len() - k) as u32;
        let share = (remaining / n) / st * st;
        let give = share.min(slaves[i].cap.floor_to(step).0 as u32);
        alloc[i] = CentiAmps(give as u16);
        remaining -= give;
    }
    // Rounding to the step can leave steps unused; hand them out in priority order.
    for (i, s) in slaves.iter().enumerate() {
        while remaining >= st && alloc[i].0 as u32 + st <= s.cap.floor_to(step).0 as u32 {
            alloc[i] = alloc[i] + step;
            remaining -= st;
        }
    }
    alloc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u8, cap: u16, demand: Demand, priority: i32) -> ShareInput {
        ShareInput {
            id: TwcId([n, n]),
            cap: CentiAmps::from_amps(cap),
            min: CentiAmps::from_amps(6),
            demand,
            priority,
        }
    }

    fn amps(m: &BTreeMap<TwcId, CentiAmps>) -> Vec<u16> {
        m.values().map(|a| a.0 / 100).collect()
    }

    const C: Demand = Demand::Charging;

    #[test]
    fn one_slave_gets_the_budget_up_to_its_cap_in_whole_amps() {
        let one = [s(1, 32, C, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps(1750), CentiAmps::from_amps(80), &one)),
            [17]
        );
        assert_eq!(
            amps(&distribute(
                CentiAmps::from_amps(40),
                CentiAmps::from_amps(80),
                &one
            )),
            [32]
        );
        // Below the minimum: 0.
        assert_eq!(
            amps(&distribute(
                CentiAmps::from_amps(5),
                CentiAmps::from_amps(80),
                &one
            )),
            [0]
        );
        // The wiring limit for all TWCs caps the budget.
        assert_eq!(
            amps(&distribute(
                CentiAmps::from_amps(40),
                CentiAmps::from_amps(20),
                &one
            )),
            [20]
        );
    }

    #[test]
    fn fair_share_among_two_three_and_four_slaves() {
        let wiring = CentiAmps::from_amps(200);
        let two = [s(1, 32, C, 0), s(2, 32, C, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(30), wiring, &two)),
            [15, 15]
        );
        // A small cap's unused share flows to the others.
        let three = [s(1, 10, C, 0), s(2, 32, C, 0), s(3, 32, C, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(50), wiring, &three)),
            [10, 20, 20]
        );
        let four = [
            s(1, 32, C, 0),
            s(2, 32, C, 0),
            s(3, 32, C, 0),
            s(4, 32, C, 0),
        ];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(50), wiring, &four)),
            [12, 12, 13, 13]
        );
    }

    #[test]
    fn a_slave_that_cannot_reach_its_minimum_gets_zero_and_priority_decides_who() {
        let wiring = CentiAmps::from_amps(200);
        // 14 A for three cars of 6 A minimum: two get 7 A; the least deserving (highest id at
        // equal priority) gets 0.
        let three = [s(1, 32, C, 0), s(2, 32, C, 0), s(3, 32, C, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(14), wiring, &three)),
            [7, 7, 0]
        );
        // Priority: slave 3 first.
        let three = [s(1, 32, C, 0), s(2, 32, C, 0), s(3, 32, C, 5)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(10), wiring, &three)),
            [0, 0, 10]
        );
        // A charging car is kept before one that is only connected.
        let two = [s(1, 32, Demand::Connected, 0), s(2, 32, C, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(8), wiring, &two)),
            [0, 8]
        );
    }

    #[test]
    fn idle_slaves_get_their_minimum_from_the_leftover_and_cap_zero_gets_nothing() {
        let wiring = CentiAmps::from_amps(200);
        let two = [s(1, 10, C, 0), s(2, 32, Demand::Idle, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(20), wiring, &two)),
            [10, 6]
        );
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(12), wiring, &two)),
            [10, 0]
        );
        // A denied car (cap 0) gets 0 whatever the budget.
        let two = [s(1, 0, C, 9), s(2, 32, C, 0)];
        assert_eq!(
            amps(&distribute(CentiAmps::from_amps(40), wiring, &two)),
            [0, 32]
        );
    }
}
