//! When a value was measured, from the timestamps vendors put into their answers.
//!
//! The engine counts a reading as fresh while `now - measured_at <= stale_after`, on tokio's
//! clock. A source that knows when its value was measured (Home Assistant's `last_updated`, a
//! cloud API's report time, a gateway's `readingTime`) turns that wall-clock time into an
//! [`Instant`] in the past with these helpers, so that a value whose sensor died keeps ageing even
//! though every request still gets an answer.
//!
//! - A timestamp in the future (clock skew between the device and us) counts as now.
//! - A timestamp too old for the clock to represent becomes the oldest instant that can be
//!   represented: clearly stale, never fresh.

use crate::ParseError;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// Numbers above this are taken as milliseconds since the epoch, below as seconds
/// (10^11 seconds is the year 5138; 10^11 milliseconds is 1973).
pub const MILLIS_ABOVE: f64 = 1e11;

/// The instant, on tokio's clock, at which the wall clock showed `ts`.
pub fn instant_of(ts: DateTime<Utc>) -> Instant {
    instant_at(ts, Utc::now(), Instant::now())
}

/// As [`instant_of`], with both clocks given (for tests): `now` on tokio's clock is `now_utc` on
/// the wall clock.
pub fn instant_at(ts: DateTime<Utc>, now_utc: DateTime<Utc>, now: Instant) -> Instant {
    // A negative age (a timestamp in the future) fails the conversion: it counts as now.
    match (now_utc - ts).to_std() {
        Ok(age) => older_by(now, age),
        Err(_) => now,
    }
}

/// `now - age`, or the oldest instant that can be represented when that is before it.
pub fn older_by(now: Instant, age: Duration) -> Instant {
    if let Some(t) = now.checked_sub(age) {
        return t;
    }
    // Find the largest representable age in whole seconds (lo works, hi does not).
    let (mut lo, mut hi) = (0u64, age.as_secs().max(1));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if now.checked_sub(Duration::from_secs(mid)).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    now.checked_sub(Duration::from_secs(lo)).unwrap_or(now)
}

/// The instant of a Unix time in seconds (fractions allowed).
pub fn instant_of_unix_secs(secs: f64) -> Instant {
    instant_of_unix_secs_at(secs, Utc::now(), Instant::now())
}

fn instant_of_unix_secs_at(secs: f64, now_utc: DateTime<Utc>, now: Instant) -> Instant {
    let now_secs = now_utc.timestamp() as f64 + f64::from(now_utc.timestamp_subsec_nanos()) * 1e-9;
    let age = now_secs - secs;
    if age.is_nan() || age <= 0.0 {
        return now;
    }
    match Duration::try_from_secs_f64(age) {
        Ok(d) => older_by(now, d),
        Err(_) => older_by(now, Duration::MAX),
    }
}

/// The instant of a Unix time in milliseconds.
pub fn instant_of_unix_millis(ms: i64) -> Instant {
    instant_of_unix_secs(ms as f64 / 1000.0)
}

/// Parse an RFC 3339 / ISO 8601 timestamp with an offset (`2021-10-07T08:00:43.512345+00:00`,
/// `2021-12-26T13:09:22.321056599-07:00`, `...Z`).
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, ParseError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ParseError::protocol(format!("{text:?} is not an RFC 3339 timestamp")))
}

/// Parse a timestamp without an offset (`2025-01-01 12:00:00`, `2025-01-01T12:00:00`) as a time
/// in time zone `tz`. When the local time is ambiguous (the hour the clocks go back) the earlier
/// one is taken, so the value looks older rather than fresher.
pub fn parse_naive_in<Tz: TimeZone>(text: &str, tz: &Tz) -> Result<DateTime<Utc>, ParseError> {
    let t = text.trim();
    let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| ParseError::protocol(format!("{text:?} is not a date and time")))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| ParseError::protocol(format!("{text:?} does not exist in the time zone")))
}

/// A timestamp as a JSON value: a number of Unix seconds, or of milliseconds when above
/// [`MILLIS_ABOVE`], or an RFC 3339 string (a string of digits is read as a number). `null` is
/// `None` (no timestamp).
pub fn value_instant(v: &Value) -> Result<Option<Instant>, ParseError> {
    let secs = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ParseError::protocol("timestamp is not a number"))?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(x) => x,
            Err(_) => return Ok(Some(instant_of(parse_rfc3339(s)?))),
        },
        other => {
            return Err(ParseError::protocol(format!(
                "timestamp {other} is neither a number nor a string"
            )));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(ParseError::protocol(format!(
            "timestamp {secs} is not a Unix time"
        )));
    }
    Ok(Some(if secs > MILLIS_ABOVE {
        instant_of_unix_secs(secs / 1000.0)
    } else {
        instant_of_unix_secs(secs)
    }))
}

/// The timestamp at JSON pointer `ptr` of `v` (see [`value_instant`]); a missing one is an error
/// naming the pointer, since it was configured.
pub fn pointer_instant(v: &Value, ptr: &str) -> Result<Option<Instant>, ParseError> {
    let x = v
        .pointer(ptr)
        .ok_or_else(|| ParseError::protocol(format!("missing timestamp {ptr}")))?;
    value_instant(x).map_err(|e| e.context(ptr))
}

/// The older of two optional instants.
pub fn oldest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn a_past_timestamp_is_as_old_on_the_tokio_clock() {
        let now = Instant::now();
        let now_utc = Utc::now();
        let ts = now_utc - chrono::TimeDelta::seconds(600);
        let t = instant_at(ts, now_utc, now);
        assert!((secs(now - t) - 600.0).abs() < 1e-6);
    }

    #[test]
    fn a_future_timestamp_counts_as_now() {
        let now = Instant::now();
        let now_utc = Utc::now();
        let ts = now_utc + chrono::TimeDelta::seconds(90);
        assert_eq!(instant_at(ts, now_utc, now), now);
        assert_eq!(instant_of_unix_secs_at(4e9, now_utc, now), now);
    }

    #[test]
    fn an_unrepresentable_age_is_the_oldest_instant() {
        let now = Instant::now();
        let t = older_by(now, Duration::MAX);
        assert!(t <= now);
        assert!(
            now - t > Duration::from_secs(3600),
            "too old must be clearly stale, got {:?}",
            now - t
        );
        // Nothing older can be represented (to the second).
        assert!(t.checked_sub(Duration::from_secs(1)).is_none());
        // The beginning of the calendar is clearly stale as well.
        let t = instant_at(DateTime::<Utc>::MIN_UTC, Utc::now(), now);
        assert!(now - t > Duration::from_secs(100 * 365 * 86_400));
    }

    #[test]
    fn unix_seconds_and_millis() {
        let now = Instant::now();
        let now_utc = Utc::now();
        let s = now_utc.timestamp() as f64 - 30.0;
        let t = instant_of_unix_secs_at(s, now_utc, now);
        assert!((secs(now - t) - 30.0).abs() < 1.0);
        let ms = (now_utc.timestamp() - 30) * 1000;
        let t = instant_of_unix_millis(ms);
        assert!((secs(Instant::now() - t) - 30.0).abs() < 2.0);
        assert_eq!(instant_of_unix_secs_at(f64::NAN, now_utc, now), now);
    }

    #[test]
    fn rfc3339_and_naive_times() {
        let t = parse_rfc3339("2021-12-26T13:09:22.321056599-07:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2021-12-26T20:09:22.321056599+00:00");
        assert_eq!(
            parse_rfc3339("2021-10-07T08:00:43.512345+00:00")
                .unwrap()
                .timestamp(),
            1_633_593_643
        );
        assert!(parse_rfc3339("yesterday").is_err());
        let cet = FixedOffset::east_opt(3600).unwrap();
        let t = parse_naive_in("2025-01-01 12:00:00", &cet).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-01T11:00:00+00:00");
        assert!(parse_naive_in("soon", &cet).is_err());
    }

    #[test]
    fn json_timestamps() {
        let now_utc = Utc::now().timestamp();
        let age = |v: Value| secs(Instant::now() - value_instant(&v).unwrap().unwrap());
        assert!((age(serde_json::json!(now_utc - 100)) - 100.0).abs() < 2.0);
        assert!((age(serde_json::json!((now_utc - 100) * 1000)) - 100.0).abs() < 2.0);
        assert!((age(serde_json::json!(format!("{}", now_utc - 100))) - 100.0).abs() < 2.0);
        let iso = (Utc::now() - chrono::TimeDelta::seconds(100)).to_rfc3339();
        assert!((age(serde_json::json!(iso)) - 100.0).abs() < 2.0);
        assert_eq!(value_instant(&Value::Null).unwrap(), None);
        assert!(value_instant(&serde_json::json!(-5)).is_err());
        assert!(value_instant(&serde_json::json!("later")).is_err());
        let e = pointer_instant(&serde_json::json!({}), "/ts").unwrap_err();
        assert!(e.message.contains("/ts"), "{e}");
    }

    #[test]
    fn oldest_of_two() {
        let now = Instant::now();
        let old = older_by(now, Duration::from_secs(5));
        assert_eq!(oldest(Some(now), Some(old)), Some(old));
        assert_eq!(oldest(None, Some(old)), Some(old));
        assert_eq!(oldest(None, None), None);
    }
}
