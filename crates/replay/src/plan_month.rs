//! A weekday charge plan over a price series (`cargo xtask sim --prices FILE --plan-kwh …`):
//! every weekday night the car arrives with the same need and leaves in the morning. Each night
//! runs through the real engine (paused time) with a simulated TWC and car, the prices given to
//! it with `SetPrices` and the plan with `SetPlan`; the energy and cost are measured from what
//! the car drew, and compared with charging at full current on arrival.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, TimeZone};
use twc_core::plugin::{PriceSlot, Prices};

/// A price series: `timestamp,price_per_kwh` rows (RFC 3339 with offset), each holding until
/// the next (the last for as long as the one before it).
pub fn parse_prices(text: &str) -> Result<(Prices, FixedOffset), String> {
    let mut rows: Vec<(i64, f64, FixedOffset)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("timestamp") {
            continue;
        }
        let (t, p) = line
            .split_once(',')
            .ok_or_else(|| format!("line {}: expected timestamp,price_per_kwh", n + 1))?;
        let t = DateTime::parse_from_rfc3339(t.trim())
            .map_err(|e| format!("line {}: timestamp {t:?}: {e}", n + 1))?;
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|e| format!("line {}: price {p:?}: {e}", n + 1))?;
        rows.push((t.timestamp(), p, *t.offset()));
    }
    if rows.len() < 2 {
        return Err("a price series needs at least two rows".into());
    }
    let offset = rows[0].2;
    let mut slots = Vec::new();
    for i in 0..rows.len() {
        let end = if i + 1 < rows.len() {
            rows[i + 1].0
        } else {
            rows[i].0 + (rows[i].0 - rows[i - 1].0)
        };
        slots.push(PriceSlot {
            start_unix: rows[i].0,
            end_unix: end,
            price_per_kwh: rows[i].1,
            co2_g_per_kwh: None,
        });
    }
    let prices = Prices {
        source: "file".into(),
        currency: String::new(),
        slots,
        feed_in_per_kwh: None,
    };
    prices.validate()?;
    Ok((prices, offset))
}

/// The weekday plan and the car.
#[derive(Debug, Clone)]
pub struct PlanMonthOptions {
    /// Energy needed each weekday morning, kWh.
    pub kwh: f64,
    /// Arrival, local time the evening before.
    pub arrive: NaiveTime,
    /// Departure, local time.
    pub depart: NaiveTime,
    /// Most the car may be offered, A.
    pub max_amps: f64,
    /// Least, A.
    pub min_amps: f64,
    /// Volts per phase.
    pub voltage: f64,
    /// Phases.
    pub phases: u8,
}

/// One weekday.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanDay {
    /// The departure's date.
    pub date: chrono::NaiveDate,
    /// Energy the plan delivered by departure, kWh.
    pub planned_kwh: f64,
    /// Its cost.
    pub planned_cost: f64,
    /// Energy charging on arrival delivered, kWh.
    pub arrival_kwh: f64,
    /// Its cost.
    pub arrival_cost: f64,
}

fn cost_of(prices: &Prices, from: i64, to: i64, kw: f64) -> Option<f64> {
    let mut c = 0.0;
    let mut t = from;
    while t < to {
        let s = prices.at(t)?;
        let e = s.end_unix.min(to);
        c += kw * (e - t) as f64 / 3600.0 * s.price_per_kwh;
        t = e;
    }
    Some(c)
}

/// Every weekday departure the series covers from the evening before.
pub fn run_plan_month(
    prices: &Prices,
    offset: FixedOffset,
    o: &PlanMonthOptions,
) -> Result<Vec<PlanDay>, String> {
    let first = prices.slots.first().ok_or("no prices")?.start_unix;
    let last = prices.slots.last().ok_or("no prices")?.end_unix;
    let volts = o.voltage * f64::from(o.phases.max(1));
    let mut day = offset
        .timestamp_opt(first, 0)
        .single()
        .ok_or("bad start")?
        .date_naive();
    let mut out = Vec::new();
    loop {
        let dep_date = day + Duration::days(1);
        let arrive = offset
            .from_local_datetime(&day.and_time(o.arrive))
            .single()
            .ok_or("bad arrival time")?
            .timestamp();
        let depart = offset
            .from_local_datetime(&dep_date.and_time(o.depart))
            .single()
            .ok_or("bad departure time")?
            .timestamp();
        if depart > last {
            break;
        }
        day = dep_date;
        if arrive < first || dep_date.weekday().number_from_monday() > 5 {
            continue;
        }
        let (planned_kwh, planned_cost) = engine_night(prices, arrive, depart, o)?;
        // On arrival: full current until the need is met (or departure).
        let kw = o.max_amps * volts / 1000.0;
        let secs = ((o.kwh / kw) * 3600.0).ceil() as i64;
        let end = (arrive + secs).min(depart);
        let arrival_kwh = kw * (end - arrive) as f64 / 3600.0;
        let arrival_cost = cost_of(prices, arrive, end, kw).ok_or("no price on arrival")?;
        out.push(PlanDay {
            date: dep_date,
            planned_kwh,
            planned_cost,
            arrival_kwh,
            arrival_cost,
        });
    }
    Ok(out)
}

/// The paused single-threaded runtime one plan window runs on.
pub(crate) fn paused_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())
}

/// The one TWC (3003) of a plan replay with `car`, on `o`'s phases and voltage.
pub(crate) fn plan_slave(o: &PlanMonthOptions, car: twc_sim::CarConfig) -> twc_sim::SimSlave {
    use twc_core::protocol::TwcId;
    let v = o.voltage.round() as u16;
    twc_sim::SimSlave {
        slave: twc_sim::SlaveConfig {
            volts: if o.phases > 1 { [v; 3] } else { [v, 0, 0] },
            ..twc_sim::SlaveConfig::eu().with_id(TwcId([0x30, 0x03]))
        },
        car,
    }
}

/// The engine of a plan replay: the wiring at `o`'s maximum, its minimum, voltage and phases,
/// the wall clock starting at `arrive` (the caller adds what is its own).
pub(crate) fn plan_engine_config(
    o: &PlanMonthOptions,
    arrive: i64,
) -> twc_core::engine::EngineConfig {
    use twc_core::model::CentiAmps;
    let amps = CentiAmps::from_f64(o.max_amps);
    twc_core::engine::EngineConfig {
        master: twc_core::master::MasterConfig {
            wiring_max_all: amps,
            wiring_max_per_twc: amps,
            ..Default::default()
        },
        min_amps_per_twc: CentiAmps::from_f64(o.min_amps),
        voltage: o.voltage,
        phases: o.phases,
        start_wall: chrono::DateTime::from_timestamp(arrive, 0),
        ..Default::default()
    }
}

/// The weekday plan of a replay window: `kwh` into TWC 3003 by `depart`.
pub(crate) fn weekday_plan(kwh: f64, depart: i64) -> twc_core::engine::Command {
    use twc_core::planner::{ChargePlan, Departure, PlanTarget};
    twc_core::engine::Command::SetPlan(Box::new(ChargePlan {
        id: "weekday".into(),
        vin: None,
        twc: Some("3003".into()),
        target: PlanTarget::Energy { kwh },
        departure: Departure::Once { at_unix: depart },
        battery_kwh: None,
        enabled: true,
    }))
}

/// One night through the real engine: a TWC with a car that draws what it is offered, the
/// policy "green" without a meter (so only the plan makes it charge), the prices and the plan
/// as commands. Returns the energy the car drew by departure, kWh, and its cost.
fn engine_night(
    prices: &Prices,
    arrive: i64,
    depart: i64,
    o: &PlanMonthOptions,
) -> Result<(f64, f64), String> {
    use std::time::Duration as StdDuration;
    use twc_core::engine::{self, Command};
    use twc_core::model::Settings;
    use twc_sim::{CarConfig, duplex_pair};
    let rt = paused_runtime()?;
    rt.block_on(async move {
        let (comms, _sim) = duplex_pair(vec![plan_slave(o, CarConfig::tesla())]);
        let cfg = plan_engine_config(o, arrive);
        let settings = Settings {
            non_scheduled_action: "green".into(),
            ..Settings::default()
        };
        let eng = engine::spawn(cfg, Box::new(comms), Vec::new(), settings);
        let h = eng.handle;
        let err = |e: twc_core::engine::CommandError| e.to_string();
        h.command(Command::SetPrices(Some(prices.clone())))
            .await
            .map_err(err)?;
        h.command(weekday_plan(o.kwh, depart)).await.map_err(err)?;
        let step = 10i64;
        let volts = o.voltage * f64::from(o.phases.max(1));
        let (mut kwh, mut cost) = (0.0, 0.0);
        let mut t = arrive;
        while t + step <= depart {
            tokio::time::sleep(StdDuration::from_secs(step as u64)).await;
            let st = h.status();
            let a: f64 = st.slaves.iter().map(|s| s.actual.amps()).sum();
            let e = a * volts * step as f64 / 3.6e6;
            kwh += e;
            cost += e * prices
                .at(t)
                .ok_or("no price during the night")?
                .price_per_kwh;
            t += step;
        }
        let _ = h.command(Command::Shutdown).await;
        Ok((kwh, cost))
    })
}

/// The table for docs/plans.md.
pub fn table(days: &[PlanDay], need: f64) -> String {
    let mut s = String::from(
        "| departure | plan kWh | plan cost | on arrival kWh | on arrival cost | target met |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for d in days {
        s += &format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
            d.date,
            d.planned_kwh,
            d.planned_cost,
            d.arrival_kwh,
            d.arrival_cost,
            if d.planned_kwh + 1e-6 >= need {
                "yes"
            } else {
                "NO"
            }
        );
    }
    let (pc, ac): (f64, f64) = days.iter().fold((0.0, 0.0), |(a, b), d| {
        (a + d.planned_cost, b + d.arrival_cost)
    });
    let met = days.iter().filter(|d| d.planned_kwh + 1e-6 >= need).count();
    s += &format!(
        "| **{} weekdays** | | **{pc:.2}** | | **{ac:.2}** | {met} of {} |\n",
        days.len(),
        days.len()
    );
    s
}

/// A synthetic day-ahead-like hourly series (no public price source is reachable from the
/// build machines): a two-peak daily shape (morning and evening), cheap nights and a midday dip,
/// a weekly pattern (weekends cheaper) and a deterministic pseudo-random day level and hour
/// noise (fixed seed). EUR/kWh including a fixed 0.20 of fees and taxes.
pub fn synthetic_prices(start: DateTime<FixedOffset>, days: u32) -> String {
    let mut seed: u64 = 0x5eed_2026;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f64) / f64::from(u32::MAX >> 1)
    };
    let mut s = String::from("timestamp,price_per_kwh\n");
    for d in 0..days {
        let level = 0.06 + 0.06 * rnd();
        for h in 0..24 {
            let t = start + Duration::hours(i64::from(d * 24 + h));
            let hf = f64::from(h);
            let shape = 0.05 * (-((hf - 8.0).powi(2)) / 4.0).exp()
                + 0.08 * (-((hf - 19.0).powi(2)) / 6.0).exp()
                - 0.03 * (-((hf - 13.0).powi(2)) / 5.0).exp()
                - 0.03 * (-((hf - 3.0).powi(2)) / 6.0).exp();
            let weekend = if t.weekday().number_from_monday() > 5 {
                -0.02
            } else {
                0.0
            };
            let p = 0.20 + level + shape + weekend + 0.02 * (rnd() - 0.5);
            s += &format!("{},{p:.4}\n", t.to_rfc3339());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weekday_plan_meets_its_target_each_day_and_costs_less_than_on_arrival() {
        // Monday to Wednesday: two nights through the engine (the month is `cargo xtask sim`).
        let start = DateTime::parse_from_rfc3339("2026-11-02T00:00:00+01:00").unwrap();
        let (p, off) = parse_prices(&synthetic_prices(start, 3)).unwrap();
        let o = PlanMonthOptions {
            kwh: 20.0,
            arrive: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            depart: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            max_amps: 16.0,
            min_amps: 6.0,
            voltage: 230.0,
            phases: 3,
        };
        let days = run_plan_month(&p, off, &o).unwrap();
        assert_eq!(days.len(), 2, "{days:?}");
        for d in &days {
            assert!(d.planned_kwh >= 20.0, "{d:?}");
            assert!(d.planned_cost < d.arrival_cost, "{d:?}");
        }
        assert!(parse_prices("timestamp,price\nx,1\n").is_err());
    }

    #[test]
    fn the_committed_price_series_is_the_generators_output() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/traces/prices-synthetic-2026-11.csv"
        );
        let committed = std::fs::read_to_string(path).unwrap();
        let start = DateTime::parse_from_rfc3339("2026-11-01T00:00:00+01:00").unwrap();
        assert_eq!(committed, synthetic_prices(start, 30));
    }
}
