//! The table layout both dialects share and the mapping of rows onto it.

use super::{Conn, Dialect};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use twc_core::logging::{Row, SessionOp};

/// A value bound into, or read from, a statement; the dialect decides its column type (a time is
/// text in SQLite and a `DATETIME` in MySQL).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer.
    Int(Option<i64>),
    /// A real number.
    Real(Option<f64>),
    /// Text.
    Text(Option<String>),
    /// A time, UTC.
    Time(Option<DateTime<Utc>>),
}

impl Value {
    /// The integer, when this is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => *v,
            _ => None,
        }
    }
    /// The real number, when this is one.
    pub fn real(&self) -> Option<f64> {
        match self {
            Value::Real(v) => *v,
            _ => None,
        }
    }
    /// The text, when this is some.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(v) => v.as_deref(),
            _ => None,
        }
    }
    /// The time, when this is one.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Time(v) => *v,
            _ => None,
        }
    }
}

/// How a column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// As [`Value::Int`].
    Int,
    /// As [`Value::Real`].
    Real,
    /// As [`Value::Text`].
    Text,
    /// As [`Value::Time`].
    Time,
}

/// A table written with (multi-row) `INSERT`s, upserted on `key` when that is not empty.
#[derive(Debug)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// The columns written, in the order of the values.
    pub columns: &'static [&'static str],
    /// The unique key a repeated row collides on (empty: plain insert).
    pub key: &'static [&'static str],
    /// The columns a collision updates.
    pub update: &'static [&'static str],
}

/// `charge_sessions`, as a new session inserts it.
pub const CHARGE_SESSIONS: Table = Table {
    name: "charge_sessions",
    columns: &[
        "chargeid",
        "startTime",
        "startkWh",
        "slaveTWC",
        "vehicleVIN",
        "lastTime",
        "lastkWh",
        "vehicleName",
        "startSoC",
    ],
    key: &["startTime", "slaveTWC"],
    update: &[
        "startkWh",
        "vehicleVIN",
        "lastTime",
        "lastkWh",
        "vehicleName",
        "startSoC",
    ],
};
/// `green_energy`.
pub const GREEN_ENERGY: Table = Table {
    name: "green_energy",
    columns: &["time", "genW", "conW", "chgW", "gridW", "batteryW"],
    key: &["time"],
    update: &["genW", "conW", "chgW", "gridW", "batteryW"],
};
/// `slave_status`.
pub const SLAVE_STATUS: Table = Table {
    name: "slave_status",
    columns: &[
        "slaveTWC",
        "time",
        "kWh",
        "voltsPhaseA",
        "voltsPhaseB",
        "voltsPhaseC",
    ],
    key: &["slaveTWC", "time"],
    update: &["kWh", "voltsPhaseA", "voltsPhaseB", "voltsPhaseC"],
};
/// `slave_power`.
pub const SLAVE_POWER: Table = Table {
    name: "slave_power",
    columns: &[
        "slaveTWC", "time", "kind", "state", "actualA", "offeredA", "powerW",
    ],
    key: &["slaveTWC", "time", "kind"],
    update: &["state", "actualA", "offeredA", "powerW"],
};
/// `load_point_status`.
pub const LOAD_POINT_STATUS: Table = Table {
    name: "load_point_status",
    columns: &[
        "loadPoint",
        "time",
        "kind",
        "state",
        "stale",
        "drawA",
        "allocatedA",
        "reservedA",
        "powerW",
        "ampsPhaseA",
        "ampsPhaseB",
        "ampsPhaseC",
        "voltsPhaseA",
        "voltsPhaseB",
        "voltsPhaseC",
        "sessionWh",
        "lifetimeWh",
        "problem",
    ],
    key: &["loadPoint", "time"],
    update: &[
        "kind",
        "state",
        "stale",
        "drawA",
        "allocatedA",
        "reservedA",
        "powerW",
        "ampsPhaseA",
        "ampsPhaseB",
        "ampsPhaseC",
        "voltsPhaseA",
        "voltsPhaseB",
        "voltsPhaseC",
        "sessionWh",
        "lifetimeWh",
        "problem",
    ],
};
/// `policy_changes`.
pub const POLICY_CHANGES: Table = Table {
    name: "policy_changes",
    columns: &["time", "fromPolicy", "toPolicy", "reason"],
    key: &[],
    update: &[],
};
/// `faults`.
pub const FAULTS: Table = Table {
    name: "faults",
    columns: &["time", "component", "message"],
    key: &[],
    update: &[],
};

const UPDATE_SESSION: &str = "UPDATE charge_sessions SET startkWh = ?, vehicleVIN = ?, \
     lastTime = ?, lastkWh = ? WHERE slaveTWC = ? AND startTime = ?";
/// The end also writes the session's metrics; without them (a row closed after a restart, or
/// continued across one) those columns keep what they hold.
const END_SESSION: &str = "UPDATE charge_sessions SET startkWh = ?, vehicleVIN = ?, \
     endTime = ?, endkWh = ?, lastTime = ?, lastkWh = ?, \
     vehicleName = COALESCE(?, vehicleName), startSoC = COALESCE(?, startSoC), \
     endSoC = COALESCE(?, endSoC), integratedkWh = COALESCE(?, integratedkWh), \
     solarkWh = COALESCE(?, solarkWh), unmeteredkWh = COALESCE(?, unmeteredkWh), \
     gridCost = COALESCE(?, gridCost), unpricedkWh = COALESCE(?, unpricedkWh), \
     solarValue = COALESCE(?, solarValue), currency = COALESCE(?, currency) \
     WHERE slaveTWC = ? AND startTime = ?";

/// `sql` with each `?` bound to the next of `values`.
pub(crate) fn query<'a, D: Dialect>(sql: &str, values: Vec<Value>) -> QueryBuilder<'a, D::Db> {
    let mut parts = sql.split('?');
    let mut q = QueryBuilder::new(parts.next().unwrap_or_default());
    let mut values = values.into_iter();
    for part in parts {
        let v = values.next();
        debug_assert!(v.is_some(), "fewer values than placeholders in {sql}");
        if let Some(v) = v {
            D::bind(&mut q, v);
        }
        q.push(part);
    }
    debug_assert!(
        values.next().is_none(),
        "more values than placeholders in {sql}"
    );
    q
}

/// One `INSERT` of `rows` into `table` (an upsert when it has a key).
async fn insert<D: Dialect>(
    conn: &mut Conn<D>,
    table: &Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::<D::Db>::new(format!(
        "INSERT INTO {} ({}) ",
        table.name,
        table.columns.join(", ")
    ));
    q.push("VALUES ");
    for (i, row) in rows.into_iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        for (j, v) in row.into_iter().enumerate() {
            if j > 0 {
                q.push(", ");
            }
            D::bind(&mut q, v);
        }
        q.push(")");
    }
    if !table.key.is_empty() {
        q.push(" ");
        q.push(D::upsert(table.key, table.update));
    }
    D::execute(conn, &mut q).await
}

/// At most `n` characters when the dialect enforces column widths, so a strict server never
/// rejects a record (and blocks the queue) for a string longer than its column.
fn text<D: Dialect>(s: &str, n: usize) -> Value {
    Value::Text(Some(if D::CUT_TEXT {
        s.chars().take(n).collect()
    } else {
        s.to_owned()
    }))
}

fn opt_text<D: Dialect>(s: Option<&str>, n: usize) -> Value {
    s.map_or(Value::Text(None), |s| text::<D>(s, n))
}

fn kwh(v: Option<u32>) -> Value {
    Value::Int(v.map(i64::from))
}

fn at(t: DateTime<Utc>) -> Value {
    Value::Time(Some(t))
}

/// Writes a session row (they depend on each other: in order, one by one).
/// A `load_point_status` row, in [`LOAD_POINT_STATUS`]'s column order.
fn load_point_row<D: Dialect>(
    t: DateTime<Utc>,
    l: &twc_core::model::LoadPointStatus,
) -> Vec<Value> {
    let v = l.view();
    let mut row = vec![
        text::<D>(&l.name, 64),
        at(t),
        text::<D>(&l.kind, 16),
        text::<D>(if l.stale { "stale" } else { l.state.as_str() }, 32),
        Value::Int(Some(i64::from(l.stale))),
        Value::Real(l.draw.filter(|_| !l.stale).map(|d| d.amps())),
        Value::Real(Some(l.allocated.amps())),
        Value::Real(Some(l.reserved.amps())),
        Value::Real(l.power_w()),
    ];
    row.extend(v.currents_a.iter().map(|a| Value::Real(*a)));
    row.extend(v.voltages_v.iter().map(|a| Value::Real(*a)));
    row.push(Value::Real(v.session_energy_wh));
    row.push(Value::Real(v.lifetime_energy_wh));
    row.push(Value::Text(l.problem.clone()));
    row
}

async fn write_session<D: Dialect>(conn: &mut Conn<D>, op: &SessionOp) -> Result<(), sqlx::Error> {
    let mut q = match op {
        SessionOp::Start(s) => {
            let m = s.metrics.as_ref();
            let row = vec![
                Value::Int(Some(s.started_at.timestamp())),
                at(s.started_at),
                kwh(s.start_kwh),
                Value::Text(Some(s.slave.to_string())),
                opt_text::<D>(s.vin.as_deref(), 17),
                at(s.last_at),
                kwh(s.last_kwh),
                opt_text::<D>(m.and_then(|m| m.car_name.as_deref()), 64),
                Value::Real(m.and_then(|m| m.soc_start_pct)),
            ];
            return insert::<D>(conn, &CHARGE_SESSIONS, vec![row]).await;
        }
        SessionOp::Update(s) => query::<D>(
            UPDATE_SESSION,
            vec![
                kwh(s.start_kwh),
                opt_text::<D>(s.vin.as_deref(), 17),
                at(s.last_at),
                kwh(s.last_kwh),
                Value::Text(Some(s.slave.to_string())),
                at(s.started_at),
            ],
        ),
        SessionOp::End {
            session: s,
            ended_at,
            end_kwh,
        } => {
            let m = s.metrics.as_ref();
            let real = |f: fn(&twc_core::model::SessionMetrics) -> f64| Value::Real(m.map(f));
            query::<D>(
                END_SESSION,
                vec![
                    kwh(s.start_kwh),
                    opt_text::<D>(s.vin.as_deref(), 17),
                    at(*ended_at),
                    kwh(*end_kwh),
                    at(*ended_at),
                    kwh(*end_kwh),
                    opt_text::<D>(m.and_then(|m| m.car_name.as_deref()), 64),
                    Value::Real(m.and_then(|m| m.soc_start_pct)),
                    Value::Real(m.and_then(|m| m.soc_end_pct)),
                    real(|m| m.integrated_kwh),
                    real(|m| m.solar_kwh),
                    real(|m| m.unmetered_kwh),
                    real(|m| m.grid_cost),
                    real(|m| m.unpriced_kwh),
                    Value::Real(m.and_then(|m| m.solar_value)),
                    opt_text::<D>(m.and_then(|m| m.currency.as_deref()), 3),
                    Value::Text(Some(s.slave.to_string())),
                    at(s.started_at),
                ],
            )
        }
    };
    D::execute(conn, &mut q).await
}

/// Writes `rows` on `conn` (inside the dialect's transaction): session rows in order, one by one;
/// the rows of each other table gathered into multi-row `INSERT`s of up to
/// [`Dialect::ROWS_PER_INSERT`] rows.
pub async fn write_rows<D: Dialect>(conn: &mut Conn<D>, rows: &[Row]) -> Result<(), sqlx::Error> {
    let mut green = Vec::new();
    let mut status = Vec::new();
    let mut power = Vec::new();
    let mut policy = Vec::new();
    let mut faults = Vec::new();
    let mut load_points = Vec::new();
    for r in rows {
        match r {
            Row::Session(op) => write_session::<D>(conn, op).await?,
            Row::GreenEnergy(g) => green.push(vec![
                at(g.at),
                Value::Real(g.generation_w),
                Value::Real(g.consumption_w),
                Value::Real(Some(g.charger_w)),
                Value::Real(g.grid_w),
                Value::Real(g.battery_w),
            ]),
            Row::SlaveStatus {
                slave,
                at: t,
                kwh: k,
                volts,
            } => status.push(vec![
                Value::Text(Some(slave.to_string())),
                at(*t),
                kwh(*k),
                Value::Int(Some(i64::from(volts[0]))),
                Value::Int(Some(i64::from(volts[1]))),
                Value::Int(Some(i64::from(volts[2]))),
            ]),
            Row::SlavePower {
                slave,
                at: t,
                kind,
                state,
                actual,
                offered,
                power_w,
            } => power.push(vec![
                Value::Text(Some(slave.to_string())),
                at(*t),
                text::<D>(kind, 16),
                opt_text::<D>(state.as_deref(), 32),
                Value::Real(actual.map(|a| a.amps())),
                Value::Real(offered.map(|a| a.amps())),
                Value::Real(*power_w),
            ]),
            Row::LoadPoint {
                at: t,
                load_point: l,
            } => load_points.push(load_point_row::<D>(*t, l)),
            Row::Policy {
                at: t,
                from,
                to,
                reason,
            } => policy.push(vec![
                at(*t),
                text::<D>(from, 64),
                text::<D>(to, 64),
                Value::Text(Some(reason.clone())),
            ]),
            Row::Fault {
                at: t,
                component,
                message,
            } => faults.push(vec![
                at(*t),
                text::<D>(component, 64),
                Value::Text(Some(message.clone())),
            ]),
            _ => {}
        }
    }
    for (table, rows) in [
        (&GREEN_ENERGY, green),
        (&SLAVE_STATUS, status),
        (&SLAVE_POWER, power),
        (&LOAD_POINT_STATUS, load_points),
        (&POLICY_CHANGES, policy),
        (&FAULTS, faults),
    ] {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk = rows.by_ref().take(D::ROWS_PER_INSERT.max(1)).collect();
            insert::<D>(conn, table, chunk).await?;
        }
    }
    Ok(())
}
