//! The list of policies tried in order, made again on every evaluation: built-in entries
//! (Charge Now, Scheduled Charging, the daytime green entry, the non-scheduled action) and the
//! custom ones around them, borrowing their names and conditions from the config.

use super::schedule::active_window;
use super::{Action, Condition, Context, Position, RulesConfig, sun};
use crate::model::Settings;
use chrono::{DateTime, FixedOffset, Timelike, Utc};
use std::borrow::Cow;

/// One entry of the list, borrowing its name and conditions from the config (the list is made
/// again on every evaluation, several times a second).
#[derive(Debug, Clone)]
pub(super) struct Rule<'a> {
    pub(super) name: &'a str,
    pub(super) key: Cow<'a, str>,
    pub(super) conditions: &'a [Condition],
    pub(super) builtin: Option<(bool, Cow<'a, str>, Action)>,
    pub(super) action: Action,
    pub(super) latch_minutes: f64,
}

/// The list in order: emergency custom entries, Charge Now, custom entries before, Scheduled
/// Charging, the daytime green entry, custom entries after, the non-scheduled action.
pub(super) fn rules<'a>(
    r: &'a RulesConfig,
    ctx: &Context<'_>,
    local: &DateTime<FixedOffset>,
) -> Vec<Rule<'a>> {
    let s = ctx.settings;
    let custom = |pos: Position| {
        r.custom
            .iter()
            .enumerate()
            .filter(move |(_, c)| r.replace_builtin || c.position == pos)
            .map(|(i, c)| Rule {
                name: &c.name,
                key: Cow::Owned(format!("custom#{i}")),
                conditions: &c.conditions,
                builtin: None,
                action: match c.amps {
                    Some(a) => Action::Fixed(a),
                    None => Action::Green { flex: c.flex_amps },
                },
                latch_minutes: c.latch_minutes,
            })
    };
    if r.replace_builtin {
        return custom(Position::Before).collect();
    }
    let restr = |name: &str| r.restrictions.get(name).map_or(&[][..], Vec::as_slice);
    let builtin = |name: &'static str,
                   key: &'static str,
                   ok: bool,
                   why: Cow<'a, str>,
                   action: Action,
                   latch: f64| Rule {
        name,
        key: Cow::Borrowed(key),
        conditions: restr(name),
        builtin: Some((ok, why, action.clone())),
        action,
        latch_minutes: latch,
    };
    let mut out: Vec<Rule<'a>> = Vec::with_capacity(r.custom.len() + 4);
    out.extend(custom(Position::Emergency));
    // Charge Now.
    let cn = s
        .charge_now
        .filter(|c| c.until_unix > ctx.now.timestamp() && c.amps > 0.0);
    out.push(builtin(
        "Charge Now",
        "charge_now",
        cn.is_some(),
        cn.map(|c| {
            Cow::Owned(format!(
                "charge now at {:.0} A for {} more seconds",
                c.amps,
                c.until_unix - ctx.now.timestamp()
            ))
        })
        .unwrap_or_default(),
        Action::Fixed(cn.map(|c| c.amps).unwrap_or(0.0)),
        0.0,
    ));
    out.extend(custom(Position::Before));
    // Scheduled Charging.
    let (win_ok, win_why, win_amps) = match active_window(s, local) {
        Some((amps, why)) => (true, Cow::Owned(why), amps),
        None => (false, Cow::Borrowed(""), 0.0),
    };
    out.push(builtin(
        "Scheduled Charging",
        "scheduled",
        win_ok,
        win_why,
        Action::Fixed(win_amps),
        0.0,
    ));
    // Track Green Energy, daytime.
    if r.daytime_green {
        let (day, why) = daytime(r, s, ctx.now, local);
        out.push(builtin(
            "Track Green Energy",
            "green_daytime",
            day && s.non_scheduled_action != "stop",
            Cow::Owned(why),
            Action::Green { flex: None },
            r.green_latch_minutes,
        ));
    }
    out.extend(custom(Position::After));
    match s.non_scheduled_action.as_str() {
        "green" => out.push(builtin(
            "Track Green Energy",
            "green_all_day",
            true,
            Cow::Borrowed("non-scheduled action is \"green\""),
            Action::Green { flex: None },
            0.0,
        )),
        "stop" => out.push(builtin(
            "Non Scheduled Charging",
            "non_scheduled",
            true,
            Cow::Borrowed("non-scheduled action is \"stop\""),
            Action::Fixed(0.0),
            0.0,
        )),
        _ => out.push(builtin(
            "Non Scheduled Charging",
            "non_scheduled",
            true,
            Cow::Owned(format!(
                "non-scheduled action is \"charge\" at {:.0} A",
                s.non_scheduled_amps
            )),
            Action::Fixed(s.non_scheduled_amps.max(0.0)),
            0.0,
        )),
    }
    out
}

/// Whether it is daytime for the daytime green entry, and why.
fn daytime(
    r: &RulesConfig,
    s: &Settings,
    now: DateTime<Utc>,
    local: &DateTime<FixedOffset>,
) -> (bool, String) {
    if r.green_window == "sun"
        && let Some(h) = s.home
    {
        return match sun::sun_times(local.date_naive(), h.lat, h.lon) {
            sun::SunTimes::RiseSet { rise, set } => {
                let tz = local.offset();
                let (a, b) = (
                    rise.with_timezone(tz).format("%H:%M"),
                    set.with_timezone(tz).format("%H:%M"),
                );
                (
                    rise <= now && now < set,
                    format!("daytime: sunrise {a}, sunset {b} (local)"),
                )
            }
            sun::SunTimes::AlwaysUp => (true, "daytime: the sun does not set today".into()),
            sun::SunTimes::AlwaysDown => (false, String::new()),
        };
    }
    let h = local.hour() as f64 + local.minute() as f64 / 60.0;
    (
        r.green_start_hour <= h && h < r.green_end_hour,
        format!(
            "daytime: between {:.1} h and {:.1} h (local)",
            r.green_start_hour, r.green_end_hour
        ),
    )
}
