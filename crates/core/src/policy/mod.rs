//! Deciding the site budget: which policy applies and how many amps it allows.
//!
//! An ordered list, first match wins (TWCManager's order):
//!
//! 1. custom policies at `position = "emergency"`
//! 2. **Charge Now** — fixed amps until an end time
//! 3. custom policies at `position = "before"`
//! 4. **Scheduled Charging** — per-weekday windows (start/end minute, amps)
//! 5. **Track Green Energy** (daytime; `[policy] daytime_green`) — sunrise–sunset from the home
//!    location, or configured hours
//! 6. custom policies at `position = "after"`
//! 7. **Non Scheduled Charging** — fixed amps (`charge`) or 0 A (`stop`)
//! 8. **Track Green Energy** (all day) — when the non-scheduled action is `green`
//!
//! `[policy.restrictions]` adds conditions to a built-in; `replace_builtin` uses only the custom
//! list. If nothing matches, the previous policy stays. Then every policy's amps go through the
//! same limits: the wiring maximum for all TWCs, and the grid-import limit (recomputed from the
//! reading at hand; with no fresh reading it falls back to `[grid] safe_amps`). Green tracking
//! with no fresh data gives 0 A (safety invariant 3); stale data never counts as 0 W.

pub mod closed_loop;
mod conditions;
mod config;
pub mod drop_reserve;
pub mod green;
mod list;
mod memo;
mod schedule;
mod site;
pub mod sun;
mod webhooks;

use closed_loop::ClosedLoop;
pub use conditions::check_condition;
use conditions::{describe_conditions, eval_condition};
pub use config::{
    Condition, CustomPolicy, GreenConfig, GridConfig, Op, PolicyConfig, Position, RulesConfig,
    SECTIONS, Webhook, parse_offset,
};
use drop_reserve::DropReserve;
use green::{GreenStep, GreenTracker};
use list::rules;
pub use schedule::{active_window, local_time};
pub use site::{GridHeadroom, grid_headroom, grid_now_w, offsets_w, surplus_w};
pub use webhooks::webhooks_for_change;

use crate::model::{EnergyReading, OffsetUnit, Settings};
use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// Names of the built-in policies (for `[policy.restrictions]`).
pub const BUILTIN_NAMES: &[&str] = &[
    "Charge Now",
    "Scheduled Charging",
    "Track Green Energy",
    "Non Scheduled Charging",
];

/// Values a condition can look at (`settings.<key>` reads a runtime setting, including the
/// free-form ones stored by `setSetting`).
pub const VALUE_NAMES: &[&str] = &[
    "time.hour",
    "time.minute_of_day",
    "time.weekday",
    "sun.up",
    "settings.<key>",
    "vehicle.connected",
    "vehicle.charging",
    "vehicle.vin",
    "battery.soc",
    "battery.w",
    "grid.w",
    "generation.w",
    "consumption.w",
    "surplus.w",
    "price.per_kwh",
    "price.co2_g_per_kwh",
];

/// Everything one evaluation looks at.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Runtime settings.
    pub settings: &'a Settings,
    /// Wall-clock now.
    pub now: DateTime<Utc>,
    /// Monotonic seconds (for timers and latches).
    pub mono_secs: f64,
    /// The combined reading, `None` when missing or stale.
    pub reading: Option<&'a EnergyReading>,
    /// What the chargers drew when the reading was measured, A (sum over slaves). The reading's
    /// grid and consumption include that draw, so it is what must be taken out again (using the
    /// draw of *now* would misjudge the house while a car ramps).
    pub charger_amps: f64,
    /// What the chargers drew when the reading was measured, the best estimate, A: for the
    /// green surplus and the cars' shortfall. `charger_amps` is the least it may have been, for
    /// the grid limit (a larger draw would make the house look smaller); the two differ after
    /// an offer was lowered since the measuring time, whose effect the reading cannot show.
    pub drawn_amps: f64,
    /// `drawn_amps` is the most the chargers can draw (their offers: a newer reading used to
    /// lower before the slaves reported after it), so the closed loop's correction for the
    /// cars drawing under their offers is left out of this evaluation (it would count twice).
    pub drawn_is_bound: bool,
    /// What the drawing chargers were offered when the reading was measured, A (sum), when
    /// that offer had been in force long enough before it for the cars to follow it, and no
    /// car was told less through its own API. `None` otherwise. With it, the closed loop sees
    /// each car's shortfall (offer − draw) directly, without the offer's rounding in it.
    pub offered_amps: Option<f64>,
    /// Volts per phase.
    pub voltage: f64,
    /// Phases the chargers use.
    pub phases: u8,
    /// True when `consumption_w` includes the chargers.
    pub consumption_includes_chargers: bool,
    /// Wiring limit for all TWCs, A.
    pub wiring_max_all: f64,
    /// The least one car can charge with, A.
    pub min_amps: f64,
    /// Cars connected (allowed ones).
    pub cars_connected: usize,
    /// Cars drawing ≥ 1 A.
    pub cars_charging: usize,
    /// VINs of connected cars.
    pub vins: &'a [String],
    /// True when the site has a home battery (configured, or seen in a reading): a missing
    /// battery value then makes every value derived with it unknown, never "0 W".
    pub battery_expected: bool,
    /// The grid price per kWh now (`None`: unknown; every condition on it is false).
    pub price_per_kwh: Option<f64>,
    /// The grid's CO₂ intensity now, g/kWh, where the tariff gives it.
    pub co2_g_per_kwh: Option<f64>,
}

/// What the evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Policy name.
    pub name: String,
    /// Why it matched and how the amps came about.
    pub reason: String,
    /// True when following green energy.
    pub is_green: bool,
    /// What the policy asked for before limits, A.
    pub policy_amps: f64,
    /// Site budget after every limit, A (≥ 0).
    pub amps: f64,
    /// `"wiring"`, `"grid"` or `"stale"` when a limit bound the budget.
    pub limited_by: Option<String>,
    /// Green surplus, W.
    pub surplus_w: Option<f64>,
    /// Grid headroom for the chargers, A.
    pub grid_headroom_amps: Option<f64>,
    /// Green tracking state, while green.
    pub green_state: Option<String>,
    /// While green: how many cars the surplus carries (the rest get 0 A).
    pub green_cars: Option<usize>,
    /// Webhooks to call now (the policy changed), with the event name.
    pub webhooks: Vec<(Webhook, String)>,
    /// The names of the policies in the order they were tried (custom ones included; the list
    /// depends on the config and the settings, e.g. the non-scheduled action).
    pub rules: Vec<String>,
    /// The user explicitly said "no charging now": a custom policy (`[[policy.custom]]`) or a
    /// policy named `Stop` that sets 0 A. A charge plan never overrides it; the built-in
    /// policies that merely give no reason to charge (non-scheduled `stop`, green tracking
    /// without surplus, no policy) it does (docs/plans.md, "Precedence").
    pub explicit_stop: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Fixed(f64),
    Green { flex: Option<f64> },
}

/// The policy engine's state: latches, green tracking and the active policy.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    cfg: PolicyConfig,
    latches: BTreeMap<String, f64>,
    green: Option<GreenTracker>,
    closed_loop: ClosedLoop,
    drop_reserve: DropReserve,
    last: Option<(String, String, Action)>,
    /// The reason with the surplus, by (reason so far, surplus W, A, correction A).
    surplus_text: memo::TextMemo<(String, [u64; 4])>,
    /// `[policy] utc_offset` parsed, by its text (parsed once, not on every evaluation).
    offset: Option<(String, Option<FixedOffset>)>,
    /// Sunrise and sunset of the last local date and home location asked for.
    sun: Option<((chrono::NaiveDate, u64, u64), sun::SunTimes)>,
}

impl PolicyEngine {
    /// A new engine with the given config.
    pub fn new(cfg: PolicyConfig) -> Self {
        PolicyEngine {
            cfg,
            latches: BTreeMap::new(),
            green: None,
            closed_loop: ClosedLoop::default(),
            drop_reserve: DropReserve::default(),
            last: None,
            surplus_text: memo::TextMemo::default(),
            offset: None,
            sun: None,
        }
    }

    /// The config.
    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// The configured grid limit the runtime setting may not exceed, for validating commands:
    /// (`max_import_amps`, `max_import_w`).
    pub fn configured_grid_limit(&self) -> (Option<f64>, Option<f64>) {
        (self.cfg.grid.max_import_amps, self.cfg.grid.max_import_w)
    }

    /// Evaluate the list and the limits.
    pub fn evaluate(&mut self, ctx: &Context<'_>) -> Outcome {
        let mut rules = Vec::new();
        let mut out = self.evaluate_into(ctx, &mut rules);
        out.rules = rules;
        out
    }

    /// Whether the sun is down or within `[green] low_sun_minutes` of sunrise or sunset at the
    /// home location (false without one, or with the rule off).
    fn low_sun(&mut self, ctx: &Context<'_>, local: &DateTime<FixedOffset>) -> bool {
        let minutes = self.cfg.green.low_sun_minutes;
        let Some(h) = ctx.settings.home.filter(|_| minutes > 0.0) else {
            return false;
        };
        let key = (local.date_naive(), h.lat.to_bits(), h.lon.to_bits());
        let times = match self.sun {
            Some((k, t)) if k == key => t,
            _ => {
                let t = sun::sun_times(key.0, h.lat, h.lon);
                self.sun = Some((key, t));
                t
            }
        };
        sun::is_low(times, ctx.now, minutes)
    }

    /// [`PolicyEngine::evaluate`] with the names of the policies written into `rules` (into the
    /// strings already there: the engine passes the list of its last evaluation, which is
    /// almost always the same) instead of [`Outcome::rules`], which is left empty.
    pub fn evaluate_into(&mut self, ctx: &Context<'_>, rule_names: &mut Vec<String>) -> Outcome {
        let local = self.local_time(ctx.now);
        let surplus = surplus_w(ctx, &self.cfg.green);
        let rules = rules(&self.cfg.rules, ctx, &local);
        rule_names.truncate(rules.len());
        for (i, r) in rules.iter().enumerate() {
            match rule_names.get_mut(i) {
                Some(n) => r.name.clone_into(n),
                None => rule_names.push(r.name.to_string()),
            }
        }
        let mut chosen: Option<(String, String, Action)> = None;
        for r in &rules {
            let (base_ok, base_reason) = match &r.builtin {
                Some((ok, why, _)) => (*ok, why.as_ref()),
                None => (true, ""),
            };
            let conds_ok = r
                .conditions
                .iter()
                .all(|c| eval_condition(c, ctx, &local, surplus));
            let really = base_ok && conds_ok;
            // Made only for the rule that matches (the same text as before for it).
            let reason = || {
                let mut reason = if r.builtin.is_some() {
                    base_reason.to_string()
                } else {
                    describe_conditions(r.conditions)
                };
                if r.builtin.is_some() && !r.conditions.is_empty() {
                    reason = format!("{reason}; and {}", describe_conditions(r.conditions));
                }
                reason
            };
            let matched = if really {
                if r.latch_minutes > 0.0 {
                    self.latches
                        .insert(r.key.to_string(), ctx.mono_secs + r.latch_minutes * 60.0);
                }
                Some(reason())
            } else if let Some(until) = self.latches.get(r.key.as_ref()).copied()
                && ctx.mono_secs < until
            {
                Some(format!(
                    "latched: matched {:.0} min ago or less, latch runs {:.0} s more",
                    r.latch_minutes,
                    until - ctx.mono_secs
                ))
            } else {
                None
            };
            if let Some(reason) = matched {
                chosen = Some((r.name.to_string(), reason, r.action.clone()));
                break;
            }
        }
        // An ended Charge Now is over: nothing keeps its amps.
        if chosen.is_none()
            && ctx.settings.charge_now.is_none()
            && self
                .last
                .as_ref()
                .is_some_and(|(n, _, _)| n == "Charge Now")
        {
            self.last = None;
        }
        let (name, mut reason, action) = match chosen.or_else(|| {
            self.last.clone().map(|(n, r, a)| {
                (
                    n,
                    format!("nothing matched; keeping the previous policy ({r})"),
                    a,
                )
            })
        }) {
            Some(c) => c,
            None => (
                "No Policy".to_string(),
                "no policy matched: 0 A".to_string(),
                Action::Fixed(0.0),
            ),
        };

        let explicit_stop = matches!(action, Action::Fixed(a) if a <= 0.0)
            && (name.eq_ignore_ascii_case("stop")
                || self.cfg.rules.custom.iter().any(|c| c.name == name));
        let prev = self.last.as_ref().map(|(n, _, _)| n.as_str());
        let webhooks = webhooks_for_change(&self.cfg.rules.webhooks, prev, &name);
        // Into the strings already held (no new allocation when they fit).
        match &mut self.last {
            Some((n, r, a)) => {
                n.clone_from(&name);
                r.clone_from(&reason);
                *a = action.clone();
            }
            None => self.last = Some((name.clone(), reason.clone(), action.clone())),
        }

        let volts_total = ctx.voltage * ctx.phases.max(1) as f64;
        let mut green_cars = None;
        let (policy_amps, is_green, green_state) = match &action {
            Action::Fixed(a) => {
                self.green = None;
                self.closed_loop.forget();
                self.drop_reserve.forget();
                (a.max(0.0), false, None)
            }
            Action::Green { flex } => {
                let low_sun = self.low_sun(ctx, &local);
                let tracker = self
                    .green
                    .get_or_insert_with(|| GreenTracker::entering(ctx.cars_charging));
                let out = tracker.update(GreenStep {
                    surplus_a: surplus.map(|w| w / volts_total),
                    min_a: ctx.min_amps,
                    max_cars: ctx.cars_connected,
                    flex_a: flex.unwrap_or(ctx.settings.flex_amps).max(0.0),
                    flex_to_start: self.cfg.green.flex_to_start,
                    start_delay: self.cfg.green.start_delay_secs,
                    restart_delay: self.cfg.green.restart_delay_secs,
                    stop_delay: self.cfg.green.stop_delay_secs,
                    now: ctx.mono_secs,
                    forecast_secs: self.cfg.green.forecast_secs,
                    restart_cost: (self.cfg.green.restart_cost_wh > 0.0)
                        .then(|| self.cfg.green.restart_cost_wh * 3600.0 / volts_total),
                    import_a: ctx
                        .reading
                        .and_then(|r| r.grid_w)
                        .map(|g| g.max(0.0) / volts_total),
                    low_sun,
                });
                let mut cars = tracker.cars();
                let mut amps = out.amps;
                let mut state = out.state;
                // Drop reserve (drop_reserve.rs): a margin sized by the recent falls.
                let drop_reserve = match (ctx.reading, surplus) {
                    (Some(r), Some(w)) => self.drop_reserve.update(
                        r.measured_at,
                        w / volts_total,
                        std::time::Duration::from_secs_f64(self.cfg.green.drop_reserve_secs),
                        self.cfg.green.drop_reserve_max_w / volts_total,
                    ),
                    _ => {
                        self.drop_reserve.forget();
                        0.0
                    }
                };
                // Closed loop (closed_loop.rs): add the cars' shortfall under their offer, with
                // a grid meter (the surplus is then measured).
                let measured_at = ctx
                    .reading
                    .filter(|r| self.cfg.green.closed_loop && r.grid_w.is_some())
                    .map(|r| r.measured_at);
                let correction = match (measured_at, surplus) {
                    (Some(at), Some(_)) => self.closed_loop.update(
                        tokio::time::Instant::now(),
                        at,
                        ctx.offered_amps.map(|o| o - ctx.drawn_amps),
                        ctx.cars_charging,
                    ),
                    _ => {
                        self.closed_loop.forget();
                        0.0
                    }
                };
                // With the offers standing in for the draw, the shortfall is already counted.
                let correction = if ctx.drawn_is_bound { 0.0 } else { correction };
                let hold = cars as f64 * ctx.min_amps;
                if let Some(s) = surplus.map(|w| w / volts_total)
                    && cars > 0
                    && s >= hold
                {
                    amps = (s + correction - drop_reserve).max(hold);
                }
                // Min + solar: the minimum always (with fresh data and a car connected), the
                // surplus on top.
                if self.cfg.green.mode == "min_solar"
                    && surplus.is_some()
                    && ctx.cars_connected > 0
                    && amps < ctx.min_amps
                {
                    amps = ctx.min_amps;
                    cars = cars.max(1);
                    state = format!("min + solar: holding the minimum ({state})");
                }
                green_cars = Some(cars);
                match surplus {
                    Some(w) => {
                        reason = self.surplus_reason(
                            reason,
                            w,
                            w / volts_total,
                            correction,
                            drop_reserve,
                        )
                    }
                    None => reason = format!("{reason}; no fresh reading: 0 A until one arrives"),
                }
                (amps, true, Some(state))
            }
        };

        let mut amps = policy_amps;
        let mut limited_by = None;
        if amps > ctx.wiring_max_all {
            amps = ctx.wiring_max_all;
            limited_by = Some("wiring".to_string());
        }
        let headroom = grid_headroom(ctx, &self.cfg.grid);
        let mut grid_headroom_amps = None;
        match headroom {
            GridHeadroom::NoLimit => {}
            GridHeadroom::Amps(h) => {
                grid_headroom_amps = Some(h);
                if amps > h.max(0.0) {
                    amps = h.max(0.0);
                    limited_by = Some("grid".to_string());
                    reason = format!("{reason}; grid-import limit leaves {:.2} A", h.max(0.0));
                }
            }
            GridHeadroom::Unknown => {
                if amps > self.cfg.grid.safe_amps {
                    amps = self.cfg.grid.safe_amps;
                    limited_by = Some("stale".to_string());
                    reason = format!(
                        "{reason}; grid-import limit set but no fresh grid reading: safe current {:.1} A",
                        self.cfg.grid.safe_amps
                    );
                }
            }
        }
        if !amps.is_finite() {
            // Never reached with sanitised readings; a last line of defence.
            amps = 0.0;
            limited_by = Some("stale".to_string());
        }
        Outcome {
            name,
            reason,
            is_green,
            policy_amps,
            amps: amps.max(0.0),
            limited_by,
            surplus_w: surplus,
            grid_headroom_amps,
            green_state,
            green_cars,
            webhooks,
            rules: Vec::new(),
            explicit_stop,
        }
    }
}

#[cfg(test)]
mod tests;
