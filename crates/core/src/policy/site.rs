//! The site's numbers: offsets, green surplus, grid power now and the grid headroom.

use super::*;

/// Sum of the named offsets, W (positive = consumption).
pub fn offsets_w(s: &Settings, volts_total: f64) -> f64 {
    s.consumption_offsets
        .values()
        .map(|o| match o.unit {
            OffsetUnit::W => o.value,
            OffsetUnit::A => o.value * volts_total,
        })
        .sum()
}

/// Green surplus for the chargers, W: generation − house consumption without the chargers −
/// offsets − reserve (− the battery's share under battery-first). `None` without usable data.
pub fn surplus_w(ctx: &Context<'_>, g: &GreenConfig) -> Option<f64> {
    let r = ctx.reading?;
    let volts_total = ctx.voltage * ctx.phases.max(1) as f64;
    let charger_w = ctx.drawn_amps * volts_total;
    let base = match (r.generation_w, r.consumption_w, r.grid_w) {
        // Closed loop: the grid meter measures what the chargers may take (see closed_loop.rs).
        (_, _, Some(grid)) if g.closed_loop => charger_w - grid - battery_w(ctx, r)?,
        (Some(gen_w), Some(c), _) => {
            let house = if ctx.consumption_includes_chargers {
                (c - charger_w).max(0.0)
            } else {
                c.max(0.0)
            };
            gen_w.max(0.0) - house
        }
        // Only a grid meter: export plus what the chargers take, minus battery discharge (the
        // car must not drain the home battery), plus battery charging (car first). A battery
        // the site has but whose value is missing makes this unknown.
        (_, _, Some(grid)) => charger_w - grid - battery_w(ctx, r)?,
        _ => return None,
    };
    let mut w = base - offsets_w(ctx.settings, volts_total) - g.reserve_w;
    if g.battery_priority == "battery_first"
        && r.battery_soc_pct
            .is_some_and(|soc| soc < g.battery_first_below_soc)
    {
        w -= g.battery_charge_w;
    }
    Some(w)
}

/// The battery's power for derived values: 0 W only for a site without a battery; `None`
/// (unknown) when the site has one and its value is missing or stale.
pub(super) fn battery_w(ctx: &Context<'_>, r: &EnergyReading) -> Option<f64> {
    match r.battery_w {
        Some(b) => Some(b),
        None if ctx.battery_expected => None,
        None => Some(0.0),
    }
}

/// Grid power now (positive = import), measured or derived from consumption and generation
/// (and the chargers, when the consumption leaves them out). `None` when unknown.
pub fn grid_now_w(ctx: &Context<'_>) -> Option<f64> {
    let r = ctx.reading?;
    if let Some(g) = r.grid_w {
        return Some(g);
    }
    let volts_total = ctx.voltage * ctx.phases.max(1) as f64;
    let (c, gen_w) = (r.consumption_w?, r.generation_w?);
    let total = if ctx.consumption_includes_chargers {
        c
    } else {
        c + ctx.charger_amps * volts_total
    };
    Some(total - gen_w - battery_w(ctx, r)?)
}

/// What the grid-import limit leaves the chargers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GridHeadroom {
    /// No limit is set.
    NoLimit,
    /// Site amps the chargers may draw (may be negative: the house alone is over the limit).
    Amps(f64),
    /// A limit is set but no fresh reading shows the grid.
    Unknown,
}

/// The grid headroom for the chargers under the stricter of the config and runtime limits.
pub fn grid_headroom(ctx: &Context<'_>, g: &GridConfig) -> GridHeadroom {
    let mut limit_a = g.max_import_amps;
    let mut limit_w = g.max_import_w;
    if let Some(l) = ctx.settings.max_grid_import {
        match l.unit {
            OffsetUnit::A => limit_a = Some(limit_a.map_or(l.value, |a| a.min(l.value))),
            OffsetUnit::W => limit_w = Some(limit_w.map_or(l.value, |w| w.min(l.value))),
        }
    }
    if limit_a.is_none() && limit_w.is_none() {
        return GridHeadroom::NoLimit;
    }
    let Some(grid) = grid_now_w(ctx) else {
        return GridHeadroom::Unknown;
    };
    let volts_total = ctx.voltage * ctx.phases.max(1) as f64;
    let charger_w = ctx.charger_amps * volts_total;
    let house_import_w = grid - charger_w;
    if !house_import_w.is_finite() {
        return GridHeadroom::Unknown;
    }
    let mut head = f64::INFINITY;
    if let Some(w) = limit_w {
        head = head.min((w - house_import_w) / volts_total);
    }
    if let Some(a) = limit_a {
        let per_phase = ctx
            .reading
            .and_then(|r| r.phase_currents_a.as_ref())
            .filter(|p| ctx.phases == 3 && p.len() == 3);
        let house_a = match per_phase {
            // Three-phase chargers load every phase equally: the most loaded phase decides.
            Some(p) => p.iter().copied().fold(f64::MIN, f64::max) - ctx.charger_amps,
            // Without per-phase currents on a three-phase site the house load may all be on
            // one phase (a 15 A single-phase load): assume the worst phase carries all of it,
            // and PV (and nothing else) spread evenly over the three phases, as from a
            // three-phase inverter. A single-phase inverter needs per-phase currents.
            None if ctx.phases == 3 => worst_phase_house_a(ctx, house_import_w),
            None => house_import_w / volts_total,
        };
        // NaN (unknown) must not vanish in `min`: f64::min(x, NaN) is x, so a W limit set next
        // to an amps limit made an unknown phase load look like no load at all.
        if !house_a.is_finite() {
            return GridHeadroom::Unknown;
        }
        head = head.min(a - house_a);
    }
    if !head.is_finite() {
        return GridHeadroom::Unknown;
    }
    GridHeadroom::Amps(head)
}

/// The house's current on its most loaded phase, A, for a three-phase site whose meter gives
/// no per-phase currents: all of the house load, and of a charging home battery, on one phase;
/// PV spread evenly. Without the house load, the house is the net import with PV and the
/// battery added back. NaN (unknown) when the site's battery value is missing.
fn worst_phase_house_a(ctx: &Context<'_>, house_import_w: f64) -> f64 {
    let v = ctx.voltage.max(1.0);
    let Some(r) = ctx.reading else {
        return f64::NAN;
    };
    let Some(battery) = battery_w(ctx, r) else {
        return f64::NAN;
    };
    let pv = r.generation_w.unwrap_or(0.0).max(0.0);
    // The house load: measured, or what the net import leaves once PV and the battery are
    // added back (PV may hide a large single-phase load in the net figure: 22 A on L1 against
    // 12 A of PV per phase imports nothing in total but 10 A on L1).
    let house_w = match r.consumption_w {
        Some(c) if ctx.consumption_includes_chargers => c - ctx.charger_amps * v * 3.0,
        Some(c) => c,
        None => house_import_w + pv + battery,
    };
    (house_w.max(0.0) + (-battery).max(0.0) - pv / 3.0) / v
}
