#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde::Deserialize;
use std::collections::BTreeMap;
use twc_core::plugin::{
    BuildError, ErrorKind, PluginConfig, PluginError, PriceSlot, Prices, Secret, TariffPlugin,
    TariffSource,
};
use twc_plugin_kit::ParseError;
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url};
use twc_plugin_kit::tariff::{Adjust, finish, now_unix};

/// The registry name: `[tariff.entsoe]`, feature `tariff-entsoe`.
pub const NAME: &str = "entsoe";
/// The Web API.
pub const URL: &str = "https://web-api.tp.entsoe.eu/api";
/// How far ahead to ask, s.
pub const HORIZON_SECS: i64 = 48 * 3600;

/// `[tariff.entsoe]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntsoeConfig {
    /// Web API security token.
    pub security_token: Secret,
    /// EIC code of the bidding zone.
    pub bidding_zone: String,
    /// Added per kWh before VAT.
    #[serde(default)]
    pub markup_per_kwh: f64,
    /// VAT, %.
    #[serde(default)]
    pub vat_pct: f64,
    /// Feed-in price per kWh.
    #[serde(default)]
    pub feed_in_per_kwh: Option<f64>,
    /// Endpoint.
    #[serde(default = "url")]
    pub url: String,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn url() -> String {
    URL.into()
}

/// One `Period` as read.
#[derive(Debug, Default, Clone)]
struct Period {
    /// Index of its `TimeSeries` in the document.
    series: usize,
    start: Option<i64>,
    end: Option<i64>,
    resolution: Option<i64>,
    points: BTreeMap<u32, f64>,
}

fn entsoe_time(s: &str) -> Option<i64> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ")
                .ok()
                .map(|n| n.and_utc().timestamp())
        })
}

fn resolution_secs(s: &str) -> Option<i64> {
    match s.trim() {
        "PT15M" => Some(900),
        "PT30M" => Some(1800),
        "PT60M" | "PT1H" => Some(3600),
        _ => None,
    }
}

/// The parts of `[start, end)` that no slot in `taken` (disjoint, keyed by start) covers.
fn uncovered(taken: &BTreeMap<i64, PriceSlot>, start: i64, end: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut cursor = start;
    // A slot starting before `start` may reach into it: begin with the last such one.
    let from = taken.range(..start).next_back().map_or(start, |(k, _)| *k);
    for t in taken.range(from..end).map(|(_, t)| t) {
        if t.end_unix <= cursor {
            continue;
        }
        if t.start_unix > cursor {
            out.push((cursor, t.start_unix));
        }
        cursor = cursor.max(t.end_unix);
        if cursor >= end {
            break;
        }
    }
    if cursor < end {
        out.push((cursor, end));
    }
    out
}

/// The prices and currency of an A44 document (prices per MWh, adjusted to bill prices per
/// kWh); an `Acknowledgement_MarketDocument` is an error with its reason.
pub fn parse(body: &[u8], adjust: &Adjust) -> Result<(String, Vec<PriceSlot>), ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::protocol("body is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut root = None;
    let mut currency = None;
    let mut unit = None;
    let mut reason = Vec::new();
    let mut periods: Vec<Period> = Vec::new();
    // `classificationSequence_AttributeInstanceComponent.position` of each `TimeSeries`.
    let mut sequences: Vec<Option<u32>> = Vec::new();
    // Whether each `TimeSeries` is of another market than the day-ahead auction
    // (`contract_MarketAgreement.type` other than A01: e.g. A07, intraday, which some areas'
    // A44 answers carry beside it).
    let mut not_day_ahead: Vec<bool> = Vec::new();
    let mut point_pos: Option<u32> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if root.is_none() {
                    root = Some(name.clone());
                }
                if name == "TimeSeries" {
                    sequences.push(None);
                    not_day_ahead.push(false);
                }
                if name == "Period" {
                    periods.push(Period {
                        series: sequences.len().saturating_sub(1),
                        ..Period::default()
                    });
                }
                if name == "Point" {
                    point_pos = None;
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let v = t
                    .decode()
                    .map_err(|_| ParseError::protocol("undecodable text in the XML"))?
                    .into_owned();
                let leaf = path.last().map(String::as_str).unwrap_or("");
                let parent = path
                    .len()
                    .checked_sub(2)
                    .map(|i| path[i].as_str())
                    .unwrap_or("");
                let bad = |what: &str| ParseError::protocol(format!("{what} {v:?} is not valid"));
                match (parent, leaf) {
                    ("TimeSeries", "currency_Unit.name") => {
                        currency.get_or_insert(v);
                    }
                    ("TimeSeries", "price_Measure_Unit.name") => {
                        unit.get_or_insert(v);
                    }
                    (
                        "TimeSeries",
                        "classificationSequence_AttributeInstanceComponent.position",
                    ) => {
                        let n = v
                            .trim()
                            .parse()
                            .map_err(|_| bad("classificationSequence position"))?;
                        if let Some(q) = sequences.last_mut() {
                            *q = Some(n);
                        }
                    }
                    ("TimeSeries", "contract_MarketAgreement.type") => {
                        if let Some(q) = not_day_ahead.last_mut() {
                            *q = v.trim() != "A01";
                        }
                    }
                    ("Reason", "text") => reason.push(v),
                    ("timeInterval", "start") if path.iter().any(|p| p == "Period") => {
                        let p = periods.last_mut().ok_or_else(|| bad("start"))?;
                        p.start = Some(entsoe_time(&v).ok_or_else(|| bad("Period start"))?);
                    }
                    ("timeInterval", "end") if path.iter().any(|p| p == "Period") => {
                        let p = periods.last_mut().ok_or_else(|| bad("end"))?;
                        p.end = Some(entsoe_time(&v).ok_or_else(|| bad("Period end"))?);
                    }
                    ("Period", "resolution") => {
                        let p = periods.last_mut().ok_or_else(|| bad("resolution"))?;
                        p.resolution = Some(resolution_secs(&v).ok_or_else(|| bad("resolution"))?);
                    }
                    ("Point", "position") => {
                        point_pos = Some(v.trim().parse().map_err(|_| bad("Point position"))?);
                    }
                    ("Point", "price.amount") => {
                        let price: f64 = v.trim().parse().map_err(|_| bad("price.amount"))?;
                        let pos = point_pos.ok_or_else(|| bad("price.amount before position:"))?;
                        if !price.is_finite() {
                            return Err(bad("price.amount"));
                        }
                        let p = periods.last_mut().ok_or_else(|| bad("Point"))?;
                        p.points.insert(pos, price);
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(ParseError::protocol(format!(
                    "unreadable XML at byte {}: {e}",
                    reader.buffer_position()
                )));
            }
        }
    }
    if !path.is_empty() {
        return Err(ParseError::protocol("the XML ends early (truncated)"));
    }
    match root.as_deref() {
        Some("Publication_MarketDocument") => {}
        Some("Acknowledgement_MarketDocument") => {
            let why = if reason.is_empty() {
                "no reason given".to_string()
            } else {
                reason.join("; ")
            };
            let mut e = ParseError::protocol(format!("ENTSO-E: {why}"));
            if why.contains("Invalid security token") || why.contains("Unauthorized") {
                e.kind = ErrorKind::Auth;
            }
            return Err(e);
        }
        other => {
            return Err(ParseError::protocol(format!(
                "expected a Publication_MarketDocument, got {}",
                other.unwrap_or("no XML")
            )));
        }
    }
    if let Some(u) = &unit
        && !u.eq_ignore_ascii_case("MWH")
    {
        return Err(ParseError::protocol(format!(
            "price_Measure_Unit.name is {u:?}, expected \"MWH\""
        )));
    }
    // Which series gives the price of a time: the day-ahead auction (contract type A01, or
    // none given) before any other market, then classification sequence 1 before 2 (ENTSO-E
    // publishes the SDAC auction as sequence 1 and, for DE-LU and AT, EXAA's separate auction
    // as sequence 2; a series without one counts as 1), then the finest resolution (the
    // 15-minute prices of the market's own MTU before an hourly series), then document order.
    // A series further down the ranking fills only the times those before it leave open.
    for (i, p) in periods.iter().enumerate() {
        if p.start.is_none() || p.end.is_none() || p.resolution.is_none() {
            return Err(ParseError::protocol(format!(
                "Period {i} lacks its timeInterval or resolution"
            )));
        }
    }
    let rank = |p: &Period| {
        let other_market = not_day_ahead.get(p.series).copied().unwrap_or(false);
        let seq = sequences.get(p.series).copied().flatten().unwrap_or(1);
        (other_market, seq, p.resolution.unwrap_or(i64::MAX))
    };
    let mut order: Vec<usize> = (0..periods.len()).collect();
    order.sort_by_key(|&i| (rank(&periods[i]), i));
    let mut taken: BTreeMap<i64, PriceSlot> = BTreeMap::new();
    for i in order {
        let p = &periods[i];
        let (Some(start), Some(end), Some(res)) = (p.start, p.end, p.resolution) else {
            continue;
        };
        let n = ((end - start) / res).max(0) as u32;
        let mut last = None;
        for pos in 1..=n {
            // Curve A03: a position left out keeps the price before it.
            let Some(price) = p.points.get(&pos).copied().or(last) else {
                continue;
            };
            last = Some(price);
            let s = start + i64::from(pos - 1) * res;
            for (a, b) in uncovered(&taken, s, s + res) {
                taken.insert(
                    a,
                    PriceSlot {
                        start_unix: a,
                        end_unix: b,
                        price_per_kwh: adjust.per_mwh(price),
                        co2_g_per_kwh: None,
                    },
                );
            }
        }
    }
    let slots: Vec<PriceSlot> = taken.into_values().collect();
    Ok((currency.unwrap_or_else(|| "EUR".into()), slots))
}

/// The ENTSO-E tariff.
pub struct Entsoe {
    client: HttpClient,
    url: String,
    token: Secret,
    zone: String,
    adjust: Adjust,
    feed_in: Option<f64>,
}

fn stamp(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y%m%d%H%M")
        .to_string()
}

impl Entsoe {
    /// The prices from the current hour for 48 h.
    pub async fn prices_at(&self, now_unix: i64) -> Result<Prices, PluginError> {
        let start = now_unix - now_unix.rem_euclid(3600);
        let req = Request::get(format!(
            "{}?securityToken={}&documentType=A44&in_Domain={z}&out_Domain={z}&periodStart={}&periodEnd={}",
            self.url,
            self.token.expose(),
            stamp(start),
            stamp(start + HORIZON_SECS),
            z = self.zone
        ));
        let adjust = self.adjust;
        let (currency, slots) = self.client.fetch(&req, |b| parse(b, &adjust)).await?;
        finish(NAME, NAME, &currency, slots, self.feed_in, now_unix)
    }
}

#[async_trait]
impl TariffSource for Entsoe {
    async fn prices(&self) -> Result<Prices, PluginError> {
        self.prices_at(now_unix()).await
    }
}

/// Build from `[tariff.entsoe]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn TariffSource>, BuildError> {
    Ok(Box::new(build_entsoe(cfg)?))
}

/// Build the concrete type (for tests).
pub fn build_entsoe(cfg: &PluginConfig) -> Result<Entsoe, BuildError> {
    let c: EntsoeConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    let tok = c.security_token.expose();
    if tok.is_empty()
        || !tok
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return Err(BuildError::new(
            s,
            "security_token must be the Web API security token from transparency.entsoe.eu (letters, digits, dashes)",
        ));
    }
    if c.bidding_zone.len() != 16
        || !c
            .bidding_zone
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return Err(BuildError::new(
            s,
            format!(
                "bidding_zone = {:?}: expected a 16-character EIC code such as \"10Y1001A1001A82H\"",
                c.bidding_zone
            ),
        ));
    }
    let adjust = Adjust {
        markup_per_kwh: c.markup_per_kwh,
        vat_pct: c.vat_pct,
    };
    adjust.check(s)?;
    twc_plugin_kit::tariff::check_feed_in(s, c.feed_in_per_kwh)?;
    Ok(Entsoe {
        client: HttpClient::new(NAME, s, &c.http)?,
        url: c.url,
        token: c.security_token,
        zone: c.bidding_zone,
        adjust,
        feed_in: c.feed_in_per_kwh,
    })
}

inventory::submit! {
    TariffPlugin {
        name: NAME,
        summary: "ENTSO-E transparency platform day-ahead prices (A44) for a bidding zone, with markup and VAT",
        example: include_str!("../example.toml"),
        build,
    }
}
