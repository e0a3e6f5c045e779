//! Engine events for sink tests and benchmarks, so every logging crate records the same inputs.

use chrono::{DateTime, TimeZone, Utc};
use twc_core::model::{
    CentiAmps, ChargeSession, EnergyReading, Event, SessionMetrics, SlaveStatus,
};
use twc_core::protocol::{ProtocolVersion, TwcId};

/// A VIN with a valid check digit.
pub const VIN: &str = "5YJ3E1EA7KF000001";

/// A fixed wall-clock time `s` seconds after a base instant.
pub fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0)
        .single()
        .expect("a valid timestamp")
}

/// The slave the events are about (`4142`).
pub fn id() -> TwcId {
    TwcId::from_u16(0x4142)
}

/// A charging protocol-2 slave with `kwh` on its counter drawing `amps`.
pub fn slave(kwh: u32, amps: u16, charging: bool) -> SlaveStatus {
    SlaveStatus {
        id: id(),
        sign: 0x77,
        version: ProtocolVersion::V2,
        max_amps: CentiAmps::from_amps(32),
        cap_amps: CentiAmps::from_amps(32),
        state: 1,
        state_name: "charging".into(),
        reported_limit: CentiAmps::from_amps(16),
        actual: CentiAmps::from_amps(amps),
        offered: CentiAmps::from_amps(16),
        target: CentiAmps::from_amps(16),
        lifetime_kwh: Some(kwh),
        volts: [230, 231, 229],
        vin: None,
        last_vin: None,
        last_heartbeat_secs: 0.5,
        timed_out: false,
        charging,
        session_kwh: 0.0,
        session_secs: None,
        firmware: None,
        overdraw: false,
        power_w: 0.0,
    }
}

/// A session on [`id`] that started at `t(start)` with the counter at `start_kwh`.
pub fn session(start: i64, start_kwh: u32, energy: f64) -> ChargeSession {
    ChargeSession {
        slave: id(),
        vin: None,
        started_at: t(start),
        start_kwh: Some(start_kwh),
        energy_kwh: energy,
        metrics: Default::default(),
    }
}

/// What the engine integrated for a finished 10 kWh session: half of it solar, the grid half
/// at 0.30 EUR/kWh, a feed-in of 0.08 EUR/kWh forgone on the solar half, 40 % → 80 %.
pub fn metrics() -> SessionMetrics {
    SessionMetrics {
        car_name: Some("Red car".into()),
        soc_start_pct: Some(40.0),
        soc_end_pct: Some(80.0),
        integrated_kwh: 10.0,
        solar_kwh: 5.0,
        unmetered_kwh: 0.0,
        grid_cost: 1.5,
        unpriced_kwh: 0.0,
        solar_value: Some(0.4),
        currency: Some("EUR".into()),
    }
}

/// The start and end of a 10 kWh session on [`id`] from `t(start)` to `t(end)` with
/// [`metrics`] (the start carries only the car's name and start SoC, as the engine sends it).
pub fn session_with_metrics(start: i64, end: i64) -> [Event; 2] {
    let m = metrics();
    let at_start = SessionMetrics {
        car_name: m.car_name.clone(),
        soc_start_pct: m.soc_start_pct,
        soc_end_pct: m.soc_start_pct,
        ..SessionMetrics::default()
    };
    [
        Event::SessionStarted {
            at: t(start),
            session: ChargeSession {
                metrics: at_start,
                ..session(start, 2000, 0.0)
            },
        },
        Event::SessionEnded {
            at: t(end),
            session: ChargeSession {
                metrics: m,
                ..session(start, 2000, 10.0)
            },
        },
    ]
}

/// A meter reading at `t(at)`: `gen_w` of PV, 800 W of house load.
pub fn reading(at: i64, gen_w: f64) -> Event {
    Event::Reading {
        at: t(at),
        source: "sim".into(),
        reading: EnergyReading {
            generation_w: Some(gen_w),
            consumption_w: Some(800.0),
            grid_w: Some(800.0 - gen_w),
            ..EnergyReading::default()
        },
    }
}

/// Event number `i` of a benchmark stream: readings and faults alternating.
pub fn bench_event(i: i64) -> Event {
    let at = t(i);
    if i % 2 == 0 {
        Event::Reading {
            at,
            source: "bench".into(),
            reading: EnergyReading {
                generation_w: Some(i as f64),
                consumption_w: Some(500.0),
                ..EnergyReading::default()
            },
        }
    } else {
        Event::Fault {
            at,
            component: "bench".into(),
            message: format!("{i}"),
        }
    }
}
