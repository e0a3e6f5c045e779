//! `GET /sessions`: the charge sessions a database logger stored, with car, TWC, energy, solar
//! share, cost and state of charge; filters, pages, per-month totals and a CSV export.

use super::ErrorBody;
use crate::AppState;
use crate::util::{bad, error};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use twc_core::history::SessionRecord;
use twc_core::protocol::TwcId;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_sessions))
}

/// The longest range one request may cover, days.
const MAX_RANGE_DAYS: i64 = 366;
/// The most sessions per page.
const MAX_PER_PAGE: usize = 500;

/// Sessions query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionsQuery {
    /// Sessions that started on or after this: a local date `YYYY-MM-DD` or Unix seconds.
    /// Default: 30 days before `to`.
    #[param(max_length = 20)]
    from: Option<String>,
    /// Sessions that started before the end of this local date `YYYY-MM-DD` (inclusive), or
    /// before these Unix seconds. Default: now. At most 366 days after `from`.
    #[param(max_length = 20)]
    to: Option<String>,
    /// Only this car: its VIN or its name (case-insensitive).
    #[param(max_length = 64)]
    car: Option<String>,
    /// Only this TWC: its slave id, 4 hex digits.
    #[param(pattern = "^[0-9A-Fa-f]{4}$")]
    twc: Option<String>,
    /// Page, from 1 (default 1).
    #[param(minimum = 1, maximum = 100000)]
    page: Option<usize>,
    /// Sessions per page, 1 … 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<usize>,
    /// `json` (default) or `csv` (every matching session, no pages).
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// One stored charge session.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The TWC (slave id, 4 hex digits).
    twc: String,
    /// The car's VIN, when known.
    vin: Option<String>,
    /// The car's name from a vehicle plugin, when known.
    car_name: Option<String>,
    /// Start, Unix seconds.
    started_unix: i64,
    /// End, Unix seconds; absent while it runs.
    ended_unix: Option<i64>,
    /// Energy charged, kWh (integrated draw, or the lifetime counter's whole kWh).
    energy_kwh: Option<f64>,
    /// Of it from PV surplus, kWh; absent when unknown.
    solar_kwh: Option<f64>,
    /// Fraction of the energy from PV surplus (0 … 1); absent when unknown (meter data was
    /// stale or missing during part of the session, or it was not recorded).
    solar_share: Option<f64>,
    /// What the grid part cost at the tariff's import prices, in `currency`; absent when
    /// unknown (no tariff, or no price for part of it).
    cost: Option<f64>,
    /// True when energy charged without meter data was priced as grid energy: the real cost is
    /// at most `cost`.
    cost_upper_bound: bool,
    /// The feed-in payment forgone for the solar part, when known.
    solar_value: Option<f64>,
    /// ISO 4217 code of `cost` and `solar_value`.
    currency: Option<String>,
    /// State of charge at the start, %.
    soc_start_pct: Option<f64>,
    /// State of charge at the end, %.
    soc_end_pct: Option<f64>,
}

/// Totals of one local month.
#[derive(Serialize, ToSchema, Default, Debug, PartialEq)]
pub(crate) struct MonthTotals {
    /// `YYYY-MM`.
    month: String,
    /// Sessions that started in it.
    sessions: u32,
    /// Energy charged, kWh.
    energy_kwh: f64,
    /// PV energy of the sessions whose solar share is known, kWh.
    solar_kwh: f64,
    /// `solar_kwh` over those sessions' energy; absent when no session's share is known.
    solar_share: Option<f64>,
    /// Energy of sessions whose solar share is unknown, kWh.
    unknown_share_kwh: f64,
    /// Cost of the sessions whose cost is known, in `currency`; absent when none is.
    cost: Option<f64>,
    /// ISO 4217 code of `cost`.
    currency: Option<String>,
    /// Sessions whose cost is unknown (not in `cost`).
    unknown_cost_sessions: u32,
}

/// One page of sessions with the totals of the whole range.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionsPage {
    /// The sessions on this page, newest first.
    sessions: Vec<SessionView>,
    /// Matching sessions in the range.
    total: usize,
    /// This page.
    page: usize,
    /// Sessions per page.
    per_page: usize,
    /// Pages in all (at least 1).
    pages: usize,
    /// Totals per local month of every matching session, oldest first.
    months: Vec<MonthTotals>,
    /// The range served, Unix seconds `[from, to)`.
    from_unix: i64,
    /// End of the range, Unix seconds (exclusive).
    to_unix: i64,
}

fn parse_bound(name: &str, v: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or_else(|| format!("{name}: {v} is not a Unix time in range"));
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| format!("{name}: expected a date YYYY-MM-DD or Unix seconds, got {v:?}"))?;
    let d = if end_of_day {
        d.succ_opt()
            .ok_or_else(|| format!("{name}: {v} is out of range"))?
    } else {
        d
    };
    let naive = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{name}: {v} does not exist in the local time zone"))
}

/// The validated query.
struct Filter {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    car: Option<String>,
    twc: Option<TwcId>,
    page: usize,
    per_page: usize,
    csv: bool,
}

fn filter(q: SessionsQuery, now: DateTime<Utc>) -> Result<Filter, String> {
    let to = match &q.to {
        Some(v) => parse_bound("to", v, true)?,
        None => now,
    };
    let from = match &q.from {
        Some(v) => parse_bound("from", v, false)?,
        None => to - chrono::Duration::days(30),
    };
    if from >= to {
        return Err("from must be before to".into());
    }
    if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(format!(
            "the range from … to may cover at most {MAX_RANGE_DAYS} days"
        ));
    }
    let twc = match q.twc.as_deref() {
        Some(t) if t.len() == 4 && t.bytes().all(|b| b.is_ascii_hexdigit()) => Some(
            t.parse::<TwcId>()
                .map_err(|_| format!("twc: {t:?} is not a slave id"))?,
        ),
        Some(t) => return Err(format!("twc: expected 4 hex digits, got {t:?}")),
        None => None,
    };
    let car = match q.car {
        Some(c) if c.trim().is_empty() || c.chars().count() > 64 => {
            return Err("car: expected a VIN or car name of 1 … 64 characters".into());
        }
        c => c.map(|c| c.trim().to_owned()),
    };
    let page = q.page.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err("page must be 1 … 100000".into());
    }
    let per_page = q.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(format!("per_page must be 1 … {MAX_PER_PAGE}"));
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => return Err(format!("format: expected json or csv, got {f:?}")),
    };
    Ok(Filter {
        from,
        to,
        car,
        twc,
        page,
        per_page,
        csv,
    })
}

fn matches(s: &SessionRecord, f: &Filter) -> bool {
    if f.twc.is_some_and(|t| t != s.slave) {
        return false;
    }
    match &f.car {
        Some(c) => {
            s.vin.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(c))
                || s.car_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(c))
        }
        None => true,
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn view(s: &SessionRecord) -> SessionView {
    let m = s.metrics.as_ref();
    let share = s.solar_share();
    SessionView {
        twc: s.slave.to_string(),
        vin: s.vin.clone(),
        car_name: s.car_name.clone(),
        started_unix: s.started_at.timestamp(),
        ended_unix: s.ended_at.map(|t| t.timestamp()),
        energy_kwh: s.charged_kwh().map(r3),
        solar_kwh: share.and(m.map(|m| r3(m.solar_kwh))),
        solar_share: share.map(|x| (x * 1000.0).round() / 1000.0),
        cost: s.cost().map(|c| (c * 10_000.0).round() / 10_000.0),
        cost_upper_bound: m.is_some_and(|m| m.cost_is_upper_bound()),
        solar_value: m.and_then(|m| m.solar_value),
        currency: m.and_then(|m| m.currency.clone()),
        soc_start_pct: s.soc_start_pct,
        soc_end_pct: s.soc_end_pct,
    }
}

/// Totals per local month (of the session's start), oldest first.
pub(crate) fn months(sessions: &[SessionRecord]) -> Vec<MonthTotals> {
    let mut out: BTreeMap<String, MonthTotals> = BTreeMap::new();
    let mut known_kwh: BTreeMap<String, f64> = BTreeMap::new();
    for s in sessions {
        let month = s
            .started_at
            .with_timezone(&Local)
            .format("%Y-%m")
            .to_string();
        let t = out.entry(month.clone()).or_insert_with(|| MonthTotals {
            month: month.clone(),
            ..MonthTotals::default()
        });
        let kwh = s.charged_kwh().unwrap_or(0.0);
        t.sessions += 1;
        t.energy_kwh += kwh;
        match (s.solar_share(), s.metrics.as_ref()) {
            (Some(_), Some(m)) => {
                t.solar_kwh += m.solar_kwh;
                *known_kwh.entry(month.clone()).or_default() += m.integrated_kwh;
            }
            _ => t.unknown_share_kwh += kwh,
        }
        let currency = s.metrics.as_ref().and_then(|m| m.currency.clone());
        match s.cost() {
            Some(c) if t.currency.is_none() || t.currency == currency => {
                t.cost = Some(t.cost.unwrap_or(0.0) + c);
                if t.currency.is_none() {
                    t.currency = currency;
                }
            }
            // Unknown, or in another currency than the month's first.
            _ => t.unknown_cost_sessions += 1,
        }
    }
    out.into_iter()
        .map(|(k, mut t)| {
            let known = known_kwh.get(&k).copied().unwrap_or(0.0);
            t.solar_share =
                (known > 0.0).then(|| ((t.solar_kwh / known) * 1000.0).round() / 1000.0);
            t.energy_kwh = r3(t.energy_kwh);
            t.solar_kwh = r3(t.solar_kwh);
            t.unknown_share_kwh = r3(t.unknown_share_kwh);
            t.cost = t.cost.map(|c| (c * 100.0).round() / 100.0);
            t
        })
        .collect()
}

/// One CSV field: quoted when needed, and text that a spreadsheet would run as a formula
/// prefixed with `'`.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Every matching session as CSV, oldest first; unknown values are empty cells.
pub(crate) fn csv(sessions: &[SessionRecord]) -> String {
    let mut out = String::from(
        "started_at,ended_at,twc,vin,car,energy_kwh,solar_kwh,solar_share,cost,currency,\
         cost_upper_bound,solar_value,soc_start_pct,soc_end_pct\n",
    );
    for s in sessions {
        let v = view(s);
        let cells = [
            s.started_at.to_rfc3339(),
            s.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            v.twc,
            csv_field(v.vin.as_deref().unwrap_or_default()),
            csv_field(v.car_name.as_deref().unwrap_or_default()),
            num(v.energy_kwh),
            num(v.solar_kwh),
            num(v.solar_share),
            num(v.cost),
            csv_field(v.currency.as_deref().unwrap_or_default()),
            v.cost_upper_bound.to_string(),
            num(v.solar_value),
            num(v.soc_start_pct),
            num(v.soc_end_pct),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Stored charge sessions: car, TWC, start/end, energy, solar share, cost, state of charge,
/// filtered and paged, with per-month totals; `format=csv` downloads every matching session.
/// Needs a database logger (`logging.sqlite` or `logging.mysql`).
#[utoipa::path(get, path = "/sessions", tag = "history", params(SessionsQuery),
    responses(
        (status = 200, description = "a page of sessions (JSON), or every matching session as `text/csv` with `format=csv`",
            content((SessionsPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "refused: the reason is in `error`", body = ErrorBody),
        (status = 503, description = "no database logger is configured, or it did not answer", body = ErrorBody)))]
async fn get_sessions(
    State(st): State<AppState>,
    q: Result<Query<SessionsQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
    let f = match filter(q, Utc::now()) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let Some(h) = &st.history else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "sessions are stored by a database logger: configure [logging.sqlite] or [logging.mysql]",
        );
    };
    let all =
        match tokio::time::timeout(Duration::from_secs(10), h.sessions(None, f.from, f.to)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("querying sessions: {}", e.chain()),
                );
            }
            Err(_) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "querying sessions: no answer within 10 s",
                );
            }
        };
    let mut sel: Vec<SessionRecord> = all.into_iter().filter(|s| matches(s, &f)).collect();
    // Oldest first, whatever order the logger answered in.
    sel.sort_by_key(|s| s.started_at);
    if f.csv {
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"sessions.csv\"",
                ),
            ],
            csv(&sel),
        )
            .into_response();
    }
    let months = months(&sel);
    sel.reverse();
    let total = sel.len();
    let pages = total.div_ceil(f.per_page).max(1);
    let sessions = sel
        .iter()
        .skip((f.page - 1).saturating_mul(f.per_page))
        .take(f.per_page)
        .map(view)
        .collect();
    Json(SessionsPage {
        sessions,
        total,
        page: f.page,
        per_page: f.per_page,
        pages,
        months,
        from_unix: f.from.timestamp(),
        to_unix: f.to.timestamp(),
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use twc_core::model::SessionMetrics;

    fn q(pairs: &[(&str, &str)]) -> Result<Filter, String> {
        let s: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let uri: axum::http::Uri = format!("/sessions?{s}").parse().unwrap();
        let Query(q) = Query::<SessionsQuery>::try_from_uri(&uri).map_err(|e| e.body_text())?;
        filter(q, "2026-11-30T12:00:00Z".parse().unwrap())
    }

    #[test]
    fn bad_params_are_refused_with_the_field() {
        for (pairs, word) in [
            (vec![("twc", "12")], "twc"),
            (vec![("twc", "zzzz")], "twc"),
            (vec![("from", "2026-13-01")], "from"),
            (vec![("from", "2026-11-20"), ("to", "2026-11-10")], "before"),
            (vec![("from", "2024-01-01"), ("to", "2026-01-01")], "366"),
            (vec![("per_page", "0")], "per_page"),
            (vec![("per_page", "501")], "per_page"),
            (vec![("page", "0")], "page"),
            (vec![("format", "xml")], "format"),
            (vec![("car", "%20")], "car"),
        ] {
            let e = q(&pairs)
                .err()
                .unwrap_or_else(|| panic!("{pairs:?} accepted"));
            assert!(e.contains(word), "{pairs:?}: {e}");
        }
        let f = q(&[
            ("from", "2026-11-01"),
            ("to", "1796000000"),
            ("twc", "a1B2"),
        ])
        .unwrap();
        assert_eq!(f.twc, Some(TwcId::from_u16(0xA1B2)));
        assert_eq!(f.to.timestamp(), 1_796_000_000);
        assert!(q(&[("format", "csv")]).unwrap().csv);
    }

    fn rec(start: &str, vin: &str, m: Option<SessionMetrics>) -> SessionRecord {
        SessionRecord {
            slave: TwcId::from_u16(0x1111),
            vin: Some(vin.into()),
            started_at: start.parse().unwrap(),
            ended_at: Some(start.parse::<DateTime<Utc>>().unwrap() + chrono::Duration::hours(2)),
            start_kwh: Some(100),
            end_kwh: Some(110),
            car_name: Some("=HYPERLINK(\"x\")".into()),
            soc_start_pct: Some(40.0),
            soc_end_pct: None,
            metrics: m,
        }
    }

    fn metrics(kwh: f64, solar: f64, unmetered: f64, cost: Option<f64>) -> SessionMetrics {
        SessionMetrics {
            integrated_kwh: kwh,
            solar_kwh: solar,
            unmetered_kwh: unmetered,
            grid_cost: cost.unwrap_or(0.0),
            unpriced_kwh: if cost.is_some() { 0.0 } else { kwh - solar },
            currency: Some("EUR".into()),
            ..SessionMetrics::default()
        }
    }

    #[test]
    fn months_sum_known_values_and_count_the_unknown() {
        let s = vec![
            rec(
                "2026-10-10T10:00:00Z",
                "A",
                Some(metrics(10.0, 5.0, 0.0, Some(1.5))),
            ),
            rec(
                "2026-10-12T10:00:00Z",
                "A",
                Some(metrics(10.0, 10.0, 0.0, Some(0.0))),
            ),
            // Stale meter: share unknown; no price: cost unknown.
            rec(
                "2026-10-14T10:00:00Z",
                "A",
                Some(metrics(10.0, 2.0, 3.0, None)),
            ),
            // Written before metrics existed.
            rec("2026-11-14T10:00:00Z", "A", None),
        ];
        let m = months(&s);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].sessions, 3);
        assert_eq!(m[0].energy_kwh, 30.0);
        assert_eq!(m[0].solar_share, Some(0.75));
        assert_eq!(m[0].unknown_share_kwh, 10.0);
        assert_eq!(m[0].cost, Some(1.5));
        assert_eq!(m[0].unknown_cost_sessions, 1);
        assert_eq!(m[1].solar_share, None);
        assert_eq!(m[1].cost, None);
        assert_eq!(m[1].energy_kwh, 10.0);
    }

    #[test]
    fn csv_leaves_unknown_empty_and_defuses_formulas() {
        let s = vec![rec(
            "2026-10-14T10:00:00Z",
            "A",
            Some(metrics(10.0, 2.0, 3.0, None)),
        )];
        let out = csv(&s);
        let line = out.lines().nth(1).unwrap();
        assert!(line.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{line}");
        // energy 10, solar unknown, share unknown, cost unknown.
        assert!(line.contains(",10,,,,EUR,true,"), "{line}");
    }
}
