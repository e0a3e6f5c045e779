//! The invariants, checked every simulated second against what the wires really carry.

use super::*;

pub(super) async fn check(
    sc: &Scenario,
    sim: &SimHandle,
    h: &engine::EngineHandle,
    start: Instant,
) -> Result<(), String> {
    let n = sc.units.len();
    let round = 1.2 * n as f64;
    let slow = sc
        .units
        .iter()
        .map(|u| u.faults.lower_after.as_secs_f64())
        .fold(0.0, f64::max);
    let changes = sc.changes();
    let m = &sc.meter;
    // How long the engine may take to see the site as it is after a change: the meter's age
    // and refresh, a poll, pairing with the heartbeats, noticing a car that does not follow,
    // and a slow car's lowering.
    // A meter whose reads are sometimes unusable is seen only every `usable_every` polls: the
    // engine keeps the last good reading meanwhile (while it is fresh).
    let polls = m.usable_every(sc.battery, sc.secs / m.interval.max(1) + 1) as f64;
    let react =
        m.delay + m.refresh + m.jitter + m.interval as f64 * polls + 2.0 * round + 5.0 + slow + 4.0;
    let wiring_window = 2.0 * round + slow + 3.0;
    let mut rogue_excess_prev = 0.0;
    let mut rogue_since = f64::NEG_INFINITY;
    let mut stale_since: Option<f64> = None;
    let mut fresh_since: Option<f64> = None;
    for k in 1..=sc.secs {
        tokio::time::sleep_until(start + Duration::from_secs(k)).await;
        let t = k as f64;
        let snaps = sim.slaves();
        let status = h.status();
        // 1. What each slave holds.
        for (i, s) in snaps.iter().enumerate() {
            let cap = sc.wiring_per.min(sc.units[i].rated) as f64;
            if s.limit.amps() > cap + 1e-9 {
                return Err(format!(
                    "invariant 1 at {t} s: slave {i} holds {} > cap {cap} A",
                    s.limit
                ));
            }
        }
        // 2. What the wires carry.
        let draws: Vec<f64> = snaps.iter().map(|s| s.actual.amps()).collect();
        let total: f64 = draws.iter().sum();
        if std::env::var_os("TWC_ADVERSARY_TRACE").is_some() {
            let limits: Vec<f64> = snaps.iter().map(|s| s.limit.amps()).collect();
            println!(
                "{t} s: draws {draws:?} limits {limits:?} budget {}",
                status.policy.budget
            );
        }
        let rogue_excess: f64 = snaps
            .iter()
            .enumerate()
            .filter(|(i, _)| sc.rogue(*i))
            .map(|(_, s)| (s.actual.amps() - s.limit.amps()).max(0.0))
            .sum();
        if rogue_excess > rogue_excess_prev + 1e-6 {
            rogue_since = t;
        }
        rogue_excess_prev = rogue_excess;
        if total > sc.wiring_all as f64 + 0.01 && t - rogue_since > wiring_window {
            return Err(format!(
                "invariant 2 at {t} s: the cars draw {total:.2} A > wiring {} A ({draws:?}; rogue excess {rogue_excess:.2} A since {rogue_since} s)",
                sc.wiring_all
            ));
        }
        // Cars that follow their offer, and whether they draw.
        let followers: f64 = draws
            .iter()
            .enumerate()
            .filter(|(i, _)| !sc.rogue(*i) && sc.cut.is_none_or(|(c, _, _)| c != *i))
            .map(|(_, a)| *a)
            .sum();
        // 3. Meter down.
        if let Some((a, l)) = m.outage {
            let since = t - a as f64;
            if since >= m.stale_after as f64 + m.interval as f64 * 2.0 + 3.0 + slow
                && t < (a + l) as f64
            {
                let ok = match (sc.fixed_amps, sc.grid) {
                    (None, _) => followers < 0.01,
                    (Some(_), GridCap::None) => true,
                    (Some(_), _) => followers <= sc.safe_amps + 0.01,
                };
                if !ok {
                    return Err(format!(
                        "invariant 3 at {t} s: meter down for {since} s, the cars that follow draw {followers:.2} A (safe {} A, policy {:?})",
                        sc.safe_amps, status.policy.name
                    ));
                }
            }
        }
        // 4. The grid limit, once the engine had time to see the site.
        let last_change = changes
            .iter()
            .copied()
            .filter(|c| *c <= t)
            .fold(0.0, f64::max);
        let settled = t - last_change >= react && t - rogue_since >= react;
        let outage_now = m
            .outage
            .is_some_and(|(a, l)| t >= a as f64 && t < (a + l) as f64 + react);
        let cut_now = sc
            .cut
            .is_some_and(|(_, a, l)| t >= a as f64 && t < (a + l) as f64 + 60.0 + react);
        let stale = status.policy.limited_by.as_deref() == Some("stale");
        if stale {
            fresh_since = None;
        } else {
            stale_since = None;
        }
        // Raising to a fresh budget's limit, or lowering to it, takes a heartbeat round too.
        let fresh_long = !stale && t - *fresh_since.get_or_insert(t) >= wiring_window;
        // Lowering to the safe current takes a heartbeat round (and a slow car's delay).
        let stale_long = stale && t - *stale_since.get_or_insert(t) >= wiring_window;
        let perfect = m.garbage_every == 0 && m.battery_gap_every == 0 && m.outage.is_none();
        if settled && stale_long && !matches!(sc.grid, GridCap::None) {
            // No usable grid value: the safe current, and only when the meter really gave none.
            if followers > sc.safe_amps + 0.01 {
                return Err(format!(
                    "invariant 3 at {t} s: no usable grid value, the cars that follow draw {followers:.2} A > safe {} A",
                    sc.safe_amps
                ));
            }
            if perfect && !cut_now && t >= react + m.stale_after as f64 {
                return Err(format!(
                    "at {t} s the engine finds no usable grid value from a working meter ({m:?})"
                ));
            }
        }
        if settled && fresh_long && !outage_now && !cut_now && followers > 0.5 {
            let st = sc.step_at(t);
            let (import_w, phases) = phase_imports(sc, st, &draws);
            match sc.grid {
                GridCap::None => {}
                GridCap::Watts(w) => {
                    if import_w > w + 60.0 {
                        return Err(format!(
                            "invariant 4 at {t} s: import {import_w:.0} W > limit {w:.0} W while following cars draw {followers:.2} A ({draws:?}, {st:?}, budget {})",
                            status.policy.budget
                        ));
                    }
                }
                GridCap::Amps(a) => {
                    let worst = phases.iter().copied().fold(f64::MIN, f64::max);
                    if worst > a + 0.3 {
                        return Err(format!(
                            "invariant 4 at {t} s: phase import {phases:.2?} A > limit {a} A while following cars draw {followers:.2} A ({draws:?}, {st:?}, budget {})",
                            status.policy.budget
                        ));
                    }
                }
            }
        }
        // 5. Heartbeats under a flood: no slave that is connected times out.
        if let Some((at, cmds)) = sc.flood {
            let end = at as f64 + cmds as f64 * 0.002 + 5.0;
            if t >= at as f64 + 2.0 && t <= end + 30.0 {
                for (i, s) in snaps.iter().enumerate() {
                    let cut = sc.cut.is_some_and(|(c, a, l)| {
                        c == i && t >= a as f64 - 30.0 && t < (a + l) as f64 + 40.0
                    });
                    if !cut && !s.linked && t > 40.0 {
                        return Err(format!(
                            "invariant 5 at {t} s: slave {i} lost its link during a flood of commands"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
