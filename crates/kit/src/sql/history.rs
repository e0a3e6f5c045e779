//! Reading back: sessions open at a restart, and the history queries for graphs.

use super::tables::{Kind, Value, query};
use super::{Dialect, err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use twc_core::history::{HistoryQuery, PowerPoint, SessionRecord};
use twc_core::logging::OpenSession;
use twc_core::model::SessionMetrics;
use twc_core::plugin::PluginError;
use twc_core::protocol::TwcId;

/// The history queries of database `D`.
pub struct History<D>(pub Arc<D>);

fn kwh(v: &Value) -> Option<u32> {
    v.int().and_then(|v| u32::try_from(v).ok())
}

/// The sessions without an end, to continue or close after a restart.
pub(crate) async fn open_sessions<D: Dialect>(db: &D) -> Result<Vec<OpenSession>, PluginError> {
    let (pool, _) = db.pool().await?;
    let mut q = query::<D>(
        "SELECT slaveTWC, startTime, startkWh, vehicleVIN, lastTime, lastkWh \
         FROM charge_sessions WHERE endTime IS NULL",
        vec![],
    );
    use Kind::*;
    let rows = D::fetch(&pool, &mut q, &[Text, Time, Int, Text, Time, Int])
        .await
        .map_err(err::<D>("reading open sessions"))?;
    let mut out = Vec::new();
    for r in rows {
        let (Some(slave), Some(started_at)) = (
            r[0].text().and_then(|s| s.parse::<TwcId>().ok()),
            r[1].time(),
        ) else {
            continue;
        };
        out.push(OpenSession {
            slave,
            started_at,
            start_kwh: kwh(&r[2]),
            vin: r[3].text().map(str::to_owned),
            last_at: r[4].time().unwrap_or(started_at),
            last_kwh: kwh(&r[5]),
            metrics: None,
        });
    }
    Ok(out)
}

#[async_trait]
impl<D: Dialect> HistoryQuery for History<D> {
    async fn power(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<PowerPoint>, PluginError> {
        let (pool, _) = self.0.pool().await?;
        let real = D::REAL;
        let mut q = query::<D>(
            &format!(
                "SELECT time, CAST(genW AS {real}), CAST(conW AS {real}), CAST(chgW AS {real}), \
                 CAST(gridW AS {real}) FROM green_energy WHERE time >= ? AND time < ? \
                 ORDER BY time"
            ),
            vec![Value::Time(Some(from)), Value::Time(Some(to))],
        );
        use Kind::*;
        let rows = D::fetch(&pool, &mut q, &[Time, Real, Real, Real, Real])
            .await
            .map_err(err::<D>("querying green_energy"))?;
        let pts = rows
            .iter()
            .filter_map(|r| {
                Some(PowerPoint {
                    at: r[0].time()?,
                    generation_w: r[1].real(),
                    consumption_w: r[2].real(),
                    charger_w: r[3].real(),
                    grid_w: r[4].real(),
                })
            })
            .collect();
        Ok(twc_core::history::thin(pts, max_points))
    }

    async fn sessions(
        &self,
        vin: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, PluginError> {
        let (pool, _) = self.0.pool().await?;
        let vin = Value::Text(vin.map(str::to_owned));
        let real = D::REAL;
        let cols: Vec<String> = [
            "startSoC",
            "endSoC",
            "integratedkWh",
            "solarkWh",
            "unmeteredkWh",
            "gridCost",
            "unpricedkWh",
            "solarValue",
        ]
        .iter()
        .map(|c| format!("CAST({c} AS {real})"))
        .collect();
        let mut q = query::<D>(
            &format!(
                "SELECT slaveTWC, vehicleVIN, startTime, endTime, startkWh, \
                 COALESCE(endkWh, lastkWh), vehicleName, currency, {} FROM charge_sessions \
                 WHERE startTime >= ? AND startTime < ? AND (? IS NULL OR vehicleVIN = ?) \
                 ORDER BY startTime",
                cols.join(", ")
            ),
            vec![
                Value::Time(Some(from)),
                Value::Time(Some(to)),
                vin.clone(),
                vin,
            ],
        );
        use Kind::*;
        let rows = D::fetch(
            &pool,
            &mut q,
            &[
                Text, Text, Time, Time, Int, Int, Text, Text, Real, Real, Real, Real, Real, Real,
                Real, Real,
            ],
        )
        .await
        .map_err(err::<D>("querying charge_sessions"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let metrics = r[10].real().map(|integrated_kwh| SessionMetrics {
                    car_name: r[6].text().map(str::to_owned),
                    soc_start_pct: r[8].real(),
                    soc_end_pct: r[9].real(),
                    integrated_kwh,
                    solar_kwh: r[11].real().unwrap_or(0.0),
                    unmetered_kwh: r[12].real().unwrap_or(0.0),
                    grid_cost: r[13].real().unwrap_or(0.0),
                    unpriced_kwh: r[14].real().unwrap_or(0.0),
                    solar_value: r[15].real(),
                    currency: r[7].text().map(str::to_owned),
                });
                Some(SessionRecord {
                    slave: r[0].text()?.parse().ok()?,
                    vin: r[1].text().map(str::to_owned),
                    started_at: r[2].time()?,
                    ended_at: r[3].time(),
                    start_kwh: kwh(&r[4]),
                    end_kwh: kwh(&r[5]),
                    car_name: r[6].text().map(str::to_owned),
                    soc_start_pct: r[8].real(),
                    soc_end_pct: r[9].real(),
                    metrics,
                })
            })
            .collect())
    }
}
