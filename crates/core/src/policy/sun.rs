//! Sunrise and sunset from latitude and longitude, computed locally (no web service).
//!
//! The NOAA/Meeus "sunrise equation" (mean anomaly, equation of the centre, ecliptic longitude,
//! solar transit, declination, hour angle with −0.833° for refraction and the solar disc). Good to
//! about a minute between the polar circles, which is far finer than green tracking needs.

use chrono::{DateTime, NaiveDate, Utc};

/// Sunrise and sunset on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SunTimes {
    /// The sun rises and sets.
    RiseSet {
        /// Sunrise, UTC.
        rise: DateTime<Utc>,
        /// Sunset, UTC.
        set: DateTime<Utc>,
    },
    /// The sun stays up all day (midnight sun).
    AlwaysUp,
    /// The sun stays down all day (polar night).
    AlwaysDown,
}

fn julian_to_utc(j: f64) -> DateTime<Utc> {
    let unix = (j - 2_440_587.5) * 86_400.0;
    DateTime::from_timestamp(unix.round() as i64, 0).unwrap_or_default()
}

/// Sunrise and sunset for the civil `date` at `lat`, `lon` (degrees; east and north positive).
/// `date` is the local date; the solar noon nearest to the location's noon on that date is used.
pub fn sun_times(date: NaiveDate, lat: f64, lon: f64) -> SunTimes {
    let noon_utc = date
        .and_hms_opt(12, 0, 0)
        .map(|d| d.and_utc().timestamp() as f64)
        .unwrap_or(0.0)
        - lon / 360.0 * 86_400.0;
    let jd = noon_utc / 86_400.0 + 2_440_587.5;
    let n = (jd - 2_451_545.0 + 0.0008).round();
    let j_star = n - lon / 360.0;
    let m = (357.5291 + 0.985_600_28 * j_star).rem_euclid(360.0);
    let mr = m.to_radians();
    let c = 1.9148 * mr.sin() + 0.02 * (2.0 * mr).sin() + 0.0003 * (3.0 * mr).sin();
    let lambda = (m + c + 180.0 + 102.9372).rem_euclid(360.0).to_radians();
    let transit = 2_451_545.0 + j_star + 0.0053 * mr.sin() - 0.0069 * (2.0 * lambda).sin();
    let sin_d = lambda.sin() * 23.4397_f64.to_radians().sin();
    let cos_d = sin_d.asin().cos();
    let phi = lat.to_radians();
    let cos_w = ((-0.833_f64).to_radians().sin() - phi.sin() * sin_d) / (phi.cos() * cos_d);
    if cos_w > 1.0 {
        return SunTimes::AlwaysDown;
    }
    if cos_w < -1.0 {
        return SunTimes::AlwaysUp;
    }
    let w = cos_w.acos().to_degrees();
    SunTimes::RiseSet {
        rise: julian_to_utc(transit - w / 360.0),
        set: julian_to_utc(transit + w / 360.0),
    }
}

/// True when the sun is up at `now` (UTC) for a site whose local date is `local_date`.
pub fn is_up(now: DateTime<Utc>, local_date: NaiveDate, lat: f64, lon: f64) -> bool {
    match sun_times(local_date, lat, lon) {
        SunTimes::RiseSet { rise, set } => rise <= now && now < set,
        SunTimes::AlwaysUp => true,
        SunTimes::AlwaysDown => false,
    }
}

/// True when the sun is down at `now` or within `minutes` of sunrise or sunset: a shortfall of
/// the surplus then does not come back within a stop delay (dusk only gets darker; a shadow at
/// dawn lifts more slowly than a cloud passes).
pub fn is_low(times: SunTimes, now: DateTime<Utc>, minutes: f64) -> bool {
    match times {
        SunTimes::RiseSet { rise, set } => {
            let margin = chrono::Duration::milliseconds((minutes.max(0.0) * 60_000.0) as i64);
            now < rise + margin || now >= set - margin
        }
        SunTimes::AlwaysUp => false,
        SunTimes::AlwaysDown => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn near(a: DateTime<Utc>, b: DateTime<Utc>, secs: i64) -> bool {
        (a - b).num_seconds().abs() <= secs
    }

    #[test]
    fn berlin_midsummer() {
        // Reference (timeanddate.com): 2026-06-21 Berlin sunrise 04:43 CEST, sunset 21:33 CEST.
        let SunTimes::RiseSet { rise, set } =
            sun_times(NaiveDate::from_ymd_opt(2026, 6, 21).unwrap(), 52.52, 13.405)
        else {
            panic!("the sun rises in Berlin");
        };
        assert!(
            near(
                rise,
                Utc.with_ymd_and_hms(2026, 6, 21, 2, 43, 0).unwrap(),
                180
            ),
            "{rise}"
        );
        assert!(
            near(
                set,
                Utc.with_ymd_and_hms(2026, 6, 21, 19, 33, 0).unwrap(),
                180
            ),
            "{set}"
        );
    }

    #[test]
    fn london_midwinter_and_sydney() {
        // London 2025-12-21: sunrise 08:04 GMT, sunset 15:54 GMT.
        let SunTimes::RiseSet { rise, set } = sun_times(
            NaiveDate::from_ymd_opt(2025, 12, 21).unwrap(),
            51.5074,
            -0.1278,
        ) else {
            panic!("the sun rises in London");
        };
        assert!(
            near(
                rise,
                Utc.with_ymd_and_hms(2025, 12, 21, 8, 4, 0).unwrap(),
                180
            ),
            "{rise}"
        );
        assert!(
            near(
                set,
                Utc.with_ymd_and_hms(2025, 12, 21, 15, 54, 0).unwrap(),
                180
            ),
            "{set}"
        );
        // Sydney 2025-12-21 (AEDT = UTC+11): sunrise 05:41, sunset 20:05 local.
        let SunTimes::RiseSet { rise, set } = sun_times(
            NaiveDate::from_ymd_opt(2025, 12, 21).unwrap(),
            -33.8688,
            151.2093,
        ) else {
            panic!("the sun rises in Sydney");
        };
        assert!(
            near(
                rise,
                Utc.with_ymd_and_hms(2025, 12, 20, 18, 41, 0).unwrap(),
                180
            ),
            "{rise}"
        );
        assert!(
            near(
                set,
                Utc.with_ymd_and_hms(2025, 12, 21, 9, 5, 0).unwrap(),
                180
            ),
            "{set}"
        );
    }

    #[test]
    fn polar_day_and_night() {
        let tromso = (69.6492, 18.9553);
        assert_eq!(
            sun_times(
                NaiveDate::from_ymd_opt(2026, 6, 21).unwrap(),
                tromso.0,
                tromso.1
            ),
            SunTimes::AlwaysUp
        );
        assert_eq!(
            sun_times(
                NaiveDate::from_ymd_opt(2026, 12, 21).unwrap(),
                tromso.0,
                tromso.1
            ),
            SunTimes::AlwaysDown
        );
    }

    #[test]
    fn low_sun_is_the_first_and_last_minutes_of_daylight_and_the_night() {
        // Golden, Colorado (the corpus's site), 2022-01-03: sunrise about 07:21, sunset about
        // 16:47 local (UTC−7).
        let t = sun_times(NaiveDate::from_ymd_opt(2022, 1, 3).unwrap(), 39.74, -105.18);
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2022, 1, 3, h + 7, m, 0).unwrap();
        assert!(is_low(t, at(6, 0), 30.0), "night");
        assert!(is_low(t, at(7, 45), 30.0), "24 min after sunrise");
        assert!(!is_low(t, at(8, 0), 30.0), "39 min after sunrise");
        assert!(!is_low(t, at(12, 0), 30.0), "noon");
        assert!(!is_low(t, at(16, 10), 30.0), "37 min before sunset");
        assert!(is_low(t, at(16, 20), 30.0), "27 min before sunset");
        assert!(!is_low(t, at(16, 20), 0.0), "0 minutes: only the night");
        assert!(is_low(t, at(16, 50), 0.0), "after sunset");
        assert!(!is_low(SunTimes::AlwaysUp, at(0, 0), 30.0));
        assert!(is_low(SunTimes::AlwaysDown, at(12, 0), 30.0));
    }
}
