//! Local time and the charging schedule's active window.

use super::parse_offset;
use crate::model::Settings;
use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};

/// Local time per `[policy] utc_offset`.
pub fn local_time(offset: &str, now: DateTime<Utc>) -> DateTime<FixedOffset> {
    let off = if offset == "local" {
        *now.with_timezone(&chrono::Local).offset()
    } else {
        parse_offset(offset)
            .and_then(FixedOffset::east_opt)
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("0 is a valid offset"))
    };
    now.with_timezone(&off)
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The schedule window active at `local`, with its amps and a description.
pub fn active_window(s: &Settings, local: &DateTime<FixedOffset>) -> Option<(f64, String)> {
    let sch = &s.schedule;
    if !sch.enabled {
        return None;
    }
    let wd = local.weekday().number_from_monday() as u8;
    let prev = if wd == 1 { 7 } else { wd - 1 };
    let m = (local.hour() * 60 + local.minute()) as u16;
    for w in &sch.windows {
        let (st, en) = (w.start_minute, w.end_minute);
        let hit = if st < en {
            w.weekday == wd && st <= m && m < en
        } else if st > en {
            (w.weekday == wd && m >= st) || (w.weekday == prev && m < en)
        } else {
            false
        };
        if hit {
            let amps = sch.day_amps.get(&w.weekday).copied().unwrap_or(sch.amps);
            let day = DAYS
                .get(w.weekday.saturating_sub(1) as usize)
                .unwrap_or(&"?");
            return Some((
                amps,
                format!(
                    "schedule window {day} {:02}:{:02}–{:02}:{:02} at {amps:.0} A",
                    st / 60,
                    st % 60,
                    en / 60,
                    en % 60
                ),
            ));
        }
    }
    None
}
