#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc, Weekday};
use serde::Deserialize;
use twc_core::plugin::{
    BuildError, PluginConfig, PluginError, PriceSlot, Prices, TariffPlugin, TariffSource,
};
use twc_plugin_kit::tariff::{finish, now_unix};

/// The registry name: `[tariff.tou]`, feature `tariff-tou`.
pub const NAME: &str = "tou";
/// Slot step, s.
pub const STEP: i64 = 900;

/// `[tariff.tou]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouConfig {
    /// ISO 4217 currency code.
    #[serde(default = "eur")]
    pub currency: String,
    /// IANA zone or `local`.
    #[serde(default = "local")]
    pub timezone: String,
    /// Price outside the windows.
    pub default_price_per_kwh: f64,
    /// Feed-in price.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// The windows.
    #[serde(default)]
    pub windows: Vec<WindowConfig>,
    /// Hours ahead.
    #[serde(default = "horizon")]
    pub horizon_hours: u32,
}

/// One `[[tariff.tou.windows]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Weekdays the window starts on (default all).
    #[serde(default)]
    pub days: Vec<String>,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM` (`24:00` allowed).
    pub end: String,
    /// Price in the window.
    pub price_per_kwh: f64,
}

fn eur() -> String {
    "EUR".into()
}
fn local() -> String {
    "local".into()
}
fn horizon() -> u32 {
    48
}

/// A checked window: minutes of the day and a weekday mask (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    days: u8,
    start_min: u32,
    end_min: u32,
    price: f64,
}

impl Window {
    /// Does the window hold local weekday `wd` at minute of day `m`?
    fn holds(&self, wd: Weekday, m: u32) -> bool {
        let bit = |d: Weekday| self.days & (1 << d.num_days_from_monday()) != 0;
        if self.start_min < self.end_min {
            bit(wd) && self.start_min <= m && m < self.end_min
        } else {
            // Past midnight: from start on the window's day, until end on the next day.
            (bit(wd) && m >= self.start_min) || (bit(wd.pred()) && m < self.end_min)
        }
    }
}

/// The zone of the windows.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    /// The machine's.
    Local,
    /// A named zone.
    Named(chrono_tz::Tz),
}

impl Zone {
    fn local_parts(&self, t: DateTime<Utc>) -> (Weekday, u32) {
        let naive = match self {
            Zone::Local => t.with_timezone(&chrono::Local).naive_local(),
            Zone::Named(tz) => t.with_timezone(tz).naive_local(),
        };
        (naive.weekday(), naive.hour() * 60 + naive.minute())
    }

    /// The UTC offset at `t`, seconds (for tests and logs).
    pub fn offset_secs(&self, t: DateTime<Utc>) -> i32 {
        match self {
            Zone::Local => chrono::Local
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        }
    }
}

/// The time-of-use tariff.
#[derive(Debug, Clone)]
pub struct Tou {
    zone: Zone,
    default_price: f64,
    windows: Vec<Window>,
    currency: String,
    feed_in: Option<f64>,
    horizon_hours: u32,
}

impl Tou {
    /// The price at a UTC instant.
    pub fn price_at(&self, t: DateTime<Utc>) -> f64 {
        let (wd, m) = self.zone.local_parts(t);
        self.windows
            .iter()
            .find(|w| w.holds(wd, m))
            .map_or(self.default_price, |w| w.price)
    }

    /// The prices as seen at `now_unix`: from the current quarter hour for `horizon_hours`,
    /// adjacent quarters of one price merged.
    pub fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let start = now_unix - now_unix.rem_euclid(STEP);
        let end = start + i64::from(self.horizon_hours) * 3600;
        let mut slots: Vec<PriceSlot> = Vec::new();
        let mut t = start;
        while t < end {
            let at = Utc.timestamp_opt(t, 0).single().unwrap_or_default();
            let p = self.price_at(at);
            match slots.last_mut() {
                Some(s) if s.price_per_kwh == p => s.end_unix = t + STEP,
                _ => slots.push(PriceSlot {
                    start_unix: t,
                    end_unix: t + STEP,
                    price_per_kwh: p,
                    co2_g_per_kwh: None,
                }),
            }
            t += STEP;
        }
        finish(NAME, NAME, &self.currency, slots, self.feed_in, now_unix)
    }
}

#[async_trait]
impl TariffSource for Tou {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix())
    }
}

fn parse_hhmm(section: &str, key: &str, s: &str) -> Result<u32, BuildError> {
    let bad = || {
        BuildError::new(
            section,
            format!("{key} = {s:?}: expected HH:MM on a quarter hour, 00:00 to 24:00"),
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let min = h * 60 + m;
    if m >= 60 || min > 24 * 60 || m % 15 != 0 {
        return Err(bad());
    }
    Ok(min)
}

fn parse_day(section: &str, key: &str, d: &str) -> Result<Weekday, BuildError> {
    d.parse::<Weekday>().map_err(|_| {
        BuildError::new(
            section,
            format!("{key}: {d:?} is no weekday; expected Mon, Tue, Wed, Thu, Fri, Sat or Sun"),
        )
    })
}

/// Build from `[tariff.tou]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_tou(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_tou(cfg: &PluginConfig) -> Result<Tou, BuildError> {
    let c: TouConfig = cfg.parse()?;
    let s = &cfg.section;
    let zone = if c.timezone == "local" {
        Zone::Local
    } else {
        Zone::Named(c.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            BuildError::new(
                s,
                format!(
                    "timezone = {:?}: not an IANA time zone name (such as \"Europe/Berlin\"), nor \"local\"",
                    c.timezone
                ),
            )
        })?)
    };
    if !c.default_price_per_kwh.is_finite() {
        return Err(BuildError::new(s, "default_price_per_kwh must be a number"));
    }
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    if !(1..=24 * 14).contains(&c.horizon_hours) {
        return Err(BuildError::new(
            s,
            format!(
                "horizon_hours must be between 1 and 336, got {}",
                c.horizon_hours
            ),
        ));
    }
    if c.currency.len() != 3 || !c.currency.chars().all(|ch| ch.is_ascii_uppercase()) {
        return Err(BuildError::new(
            s,
            format!(
                "currency = {:?}: expected an ISO 4217 code such as \"EUR\"",
                c.currency
            ),
        ));
    }
    let mut windows = Vec::new();
    for (i, w) in c.windows.iter().enumerate() {
        let key = |k: &str| format!("windows[{i}].{k}");
        let start_min = parse_hhmm(s, &key("start"), &w.start)?;
        let end_min = parse_hhmm(s, &key("end"), &w.end)?;
        if start_min == 24 * 60 {
            return Err(BuildError::new(
                s,
                format!(
                    "{}: a window cannot start at 24:00; use 00:00",
                    key("start")
                ),
            ));
        }
        if !w.price_per_kwh.is_finite() {
            return Err(BuildError::new(
                s,
                format!("{} must be a number", key("price_per_kwh")),
            ));
        }
        let mut days = 0u8;
        for d in &w.days {
            days |= 1 << parse_day(s, &key("days"), d)?.num_days_from_monday();
        }
        if w.days.is_empty() {
            days = 0x7f;
        }
        windows.push(Window {
            days,
            start_min,
            end_min,
            price: w.price_per_kwh,
        });
    }
    Ok(Tou {
        zone,
        default_price: c.default_price_per_kwh,
        windows,
        currency: c.currency,
        feed_in: c.feed_in_per_kwh,
        horizon_hours: c.horizon_hours,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "Time-of-use prices by weekday and time of day, in a named time zone",
        example: include_str!("../example.toml"),
        build,
    }
}
