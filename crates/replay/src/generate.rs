//! Reproducible synthetic traces: a clear day and a broken-cloud day.
//!
//! The site: 7 kWp of PV near Munich (48.14 N, 11.58 E), mid-June, local time UTC+02:00. PV follows
//! a clear-sky bell between the computed sunrise and sunset (`sin(π x)^1.3`, peak at solar noon).
//! The house: a 250 W base load, a fridge cycling 100 W (20 min on, 25 min off), breakfast,
//! lunch and dinner cooking, a washing machine with a 15-minute 2 kW heating phase, and a few
//! kettle boils (2 kW, 3 min) at seeded random times.
//!
//! The broken-cloud day adds cumulus shadows: alternating clear spells (exponential, mean 7 min)
//! and shadows (exponential, mean 3 min, at least 30 s) that let through 25–55 % of the clear-sky
//! power, with 20-second edges, plus a 5 % haze. Everything comes from a SplitMix64 generator with
//! a fixed seed, so `cargo run -p twc-replay -- --generate cloudy` writes the same file on every
//! machine.

use crate::trace::{Trace, TraceStep};
use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, TimeZone};
use twc_core::policy::sun::{SunTimes, sun_times};

/// Which synthetic day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// No clouds.
    Clear,
    /// Broken cumulus clouds all day.
    BrokenCloud,
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSpec {
    /// Which day.
    pub kind: DayKind,
    /// First local date.
    pub date: NaiveDate,
    /// Days to generate.
    pub days: u32,
    /// Local offset, seconds east of UTC.
    pub offset_secs: i32,
    /// Step, s (1..=900).
    pub step_secs: u32,
    /// PV peak, W.
    pub peak_w: f64,
    /// Latitude, longitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Seed.
    pub seed: u64,
}

impl GenSpec {
    /// The documented defaults for `kind`: 2026-06-17, one day, UTC+02:00, 7 kWp near Munich,
    /// 60 s steps for the clear day and 10 s steps for the cloudy one, seed 17.
    pub fn new(kind: DayKind) -> Self {
        GenSpec {
            kind,
            date: NaiveDate::from_ymd_opt(2026, 6, 17).expect("valid date"),
            days: 1,
            offset_secs: 2 * 3600,
            step_secs: match kind {
                DayKind::Clear => 60,
                DayKind::BrokenCloud => 10,
            },
            peak_w: 7000.0,
            lat: 48.14,
            lon: 11.58,
            seed: 17,
        }
    }
}

/// SplitMix64: tiny, fast, and the same on every platform and rand version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Exponential with this mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Cloud shadows over a day: (start s, end s, transmission).
fn clouds(rng: &mut SplitMix64, day_secs: f64) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    let mut t = rng.exp(7.0 * 60.0);
    while t < day_secs {
        let len = rng.exp(3.0 * 60.0).max(30.0);
        let tr = 0.25 + 0.30 * rng.unit();
        out.push((t, t + len, tr));
        t += len + rng.exp(7.0 * 60.0);
    }
    out
}

fn transmission(shadows: &[(f64, f64, f64)], t: f64) -> f64 {
    const EDGE: f64 = 20.0;
    let mut k: f64 = 1.0;
    for &(a, b, tr) in shadows {
        if t < a - EDGE || t > b + EDGE {
            continue;
        }
        let depth = if t < a {
            (t - (a - EDGE)) / EDGE
        } else if t > b {
            ((b + EDGE) - t) / EDGE
        } else {
            1.0
        };
        k = k.min(1.0 - (1.0 - tr) * depth.clamp(0.0, 1.0));
    }
    k
}

/// House load at local second-of-day `s` (without the chargers).
fn house_w(s: f64, kettles: &[f64]) -> f64 {
    let h = s / 3600.0;
    let mut w = 250.0;
    if (s / 60.0) % 45.0 < 20.0 {
        w += 100.0; // fridge
    }
    if (6.75..7.5).contains(&h) {
        w += 600.0; // breakfast
    }
    if (12.0..12.5).contains(&h) {
        w += 1500.0; // lunch
    }
    if (18.0..19.0).contains(&h) {
        w += 2000.0; // dinner
    }
    if (10.0..11.5).contains(&h) {
        w += if (10.0..10.25).contains(&h) {
            2000.0
        } else {
            300.0
        }; // washing machine
    }
    if (19.5..23.0).contains(&h) {
        w += 300.0; // evening lights and TV
    }
    for &k in kettles {
        if (k..k + 180.0).contains(&s) {
            w += 2000.0;
        }
    }
    w
}

/// Generate a trace.
pub fn generate(spec: &GenSpec) -> Result<Trace, String> {
    if !(1..=900).contains(&spec.step_secs) {
        return Err(format!("step = {} s: expected 1..=900", spec.step_secs));
    }
    let tz = FixedOffset::east_opt(spec.offset_secs)
        .ok_or_else(|| format!("offset {} s is not a valid UTC offset", spec.offset_secs))?;
    let mut rng = SplitMix64::new(spec.seed);
    let mut steps = Vec::new();
    for d in 0..spec.days {
        let date = spec.date + ChronoDuration::days(d as i64);
        let midnight: DateTime<FixedOffset> = tz
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
            .single()
            .ok_or("ambiguous midnight")?;
        let (rise, set) = match sun_times(date, spec.lat, spec.lon) {
            SunTimes::RiseSet { rise, set } => (
                (rise - midnight.to_utc()).num_seconds() as f64,
                (set - midnight.to_utc()).num_seconds() as f64,
            ),
            SunTimes::AlwaysUp => (0.0, 86_400.0),
            SunTimes::AlwaysDown => (0.0, 0.0),
        };
        let kettles: Vec<f64> = (0..3)
            .map(|i| (7.0 + 5.0 * i as f64 + 4.0 * rng.unit()) * 3600.0)
            .collect();
        let shadows = match spec.kind {
            DayKind::Clear => Vec::new(),
            DayKind::BrokenCloud => clouds(&mut rng, 86_400.0),
        };
        let haze = match spec.kind {
            DayKind::Clear => 1.0,
            DayKind::BrokenCloud => 0.95,
        };
        let mut s = 0u32;
        while s < 86_400 {
            let t = s as f64;
            let pv = if t > rise && t < set {
                let x = (t - rise) / (set - rise);
                spec.peak_w * (std::f64::consts::PI * x).sin().powf(1.3)
            } else {
                0.0
            };
            let pv = pv * haze * transmission(&shadows, t);
            steps.push(TraceStep {
                at: midnight + ChronoDuration::seconds(s as i64),
                pv_w: pv.round(),
                load_w: house_w(t, &kettles).round(),
                battery_w: None,
                battery_soc_pct: None,
            });
            s += spec.step_secs;
        }
    }
    Ok(Trace { steps })
}
