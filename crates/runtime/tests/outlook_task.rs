//! The tariff/forecast task on paused time: good prices reach the engine, failures are retried
//! with backoff while the last good prices stay, and prices are cleared once they have run out.

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twc_core::engine::{self, EngineConfig};
use twc_core::model::Settings;
use twc_core::plugin::{
    ErrorKind, Forecast, ForecastSlot, PluginError, PriceSlot, Prices, SolarForecast, TariffSource,
};
use twc_runtime::outlook::{FIRST_RETRY, WallClock, spawn_forecast, spawn_tariff};
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

const T0: i64 = 1_700_000_000;

/// Answers from a script, one per call; the last is repeated. Counts the calls.
struct Scripted {
    answers: Vec<Result<(i64, i64, f64), ErrorKind>>,
    calls: Arc<Mutex<usize>>,
}

#[async_trait]
impl TariffSource for Scripted {
    async fn prices(&self) -> Result<Prices, PluginError> {
        let mut n = self.calls.lock().unwrap();
        let a = self.answers[(*n).min(self.answers.len() - 1)];
        *n += 1;
        match a {
            Ok((start, end, p)) => Ok(Prices {
                source: "scripted".into(),
                currency: "EUR".into(),
                slots: vec![PriceSlot {
                    start_unix: start,
                    end_unix: end,
                    price_per_kwh: p,
                    co2_g_per_kwh: None,
                }],
                feed_in_per_kwh: None,
            }),
            Err(kind) => Err(PluginError::new(kind, "scripted", "HTTP 500")),
        }
    }
    fn refresh_interval(&self) -> Duration {
        Duration::from_secs(900)
    }
}

fn engine() -> engine::EngineHandle {
    let (comms, sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig::eu(),
        car: CarConfig::tesla(),
    }]);
    std::mem::forget(sim);
    engine::spawn(
        EngineConfig::default(),
        Box::new(comms),
        Vec::new(),
        Settings::default(),
    )
    .handle
}

async fn settle(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn prices_arrive_failures_back_off_and_run_out_clears_them() {
    let h = engine();
    let calls = Arc::new(Mutex::new(0));
    // First a good hour of prices, then only failures.
    let src = Scripted {
        answers: vec![Ok((T0, T0 + 3600, 0.25)), Err(ErrorKind::Transient)],
        calls: calls.clone(),
    };
    spawn_tariff(
        h.clone(),
        "scripted".into(),
        Box::new(src),
        WallClock::starting_at(T0),
    );
    settle(1).await;
    let p = h
        .status()
        .outlook
        .prices
        .expect("the first answer reaches the engine");
    assert_eq!(p.slots[0].price_per_kwh, 0.25);
    assert_eq!(*calls.lock().unwrap(), 1);
    // Next poll after the refresh interval (900 s) fails; retries after 30 s, 60 s, 120 s …
    settle(900).await;
    assert_eq!(*calls.lock().unwrap(), 2);
    assert!(
        h.status().outlook.prices.is_some(),
        "kept while it covers now"
    );
    settle(FIRST_RETRY.as_secs()).await;
    assert_eq!(*calls.lock().unwrap(), 3);
    settle(2 * FIRST_RETRY.as_secs() - 1).await;
    assert_eq!(
        *calls.lock().unwrap(),
        3,
        "the second retry waits twice as long"
    );
    settle(1).await;
    assert_eq!(*calls.lock().unwrap(), 4);
    // The hour ends at T0 + 3600: the prices are cleared then, not at the next poll.
    let elapsed_now = 1 + 900 + 30 + 60;
    settle(3600 - elapsed_now - 2).await;
    assert!(h.status().outlook.prices.is_some(), "still covers now");
    settle(3).await;
    assert_eq!(h.status().outlook.prices, None, "cleared once run out");
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped_at_the_refresh_interval() {
    let h = engine();
    let calls = Arc::new(Mutex::new(0));
    let src = Scripted {
        answers: vec![Err(ErrorKind::Auth)],
        calls: calls.clone(),
    };
    spawn_tariff(
        h.clone(),
        "scripted".into(),
        Box::new(src),
        WallClock::starting_at(T0),
    );
    // Calls at 0, 30, 90, 210, 450, 900 (capped at 450 s wait? no: 900 s refresh), …
    settle(1).await;
    assert_eq!(*calls.lock().unwrap(), 1);
    // 30 + 60 + 120 + 240 + 480 + 900 + 900 = 2730 s → 8 calls by 2731 s.
    settle(2730).await;
    assert_eq!(*calls.lock().unwrap(), 8);
    settle(899).await;
    assert_eq!(*calls.lock().unwrap(), 8);
    settle(1).await;
    assert_eq!(*calls.lock().unwrap(), 9);
    assert_eq!(h.status().outlook.prices, None, "never any price");
}

struct OneForecast;

#[async_trait]
impl SolarForecast for OneForecast {
    async fn forecast(&self) -> Result<Forecast, PluginError> {
        Ok(Forecast {
            source: "one".into(),
            slots: vec![ForecastSlot {
                start_unix: T0,
                end_unix: T0 + 7200,
                watts: 1500.0,
            }],
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_forecast_reaches_the_engine() {
    let h = engine();
    spawn_forecast(
        h.clone(),
        "one".into(),
        Box::new(OneForecast),
        WallClock::starting_at(T0),
    );
    settle(1).await;
    let f = h.status().outlook.forecast.unwrap();
    assert_eq!(f.energy_kwh(T0, T0 + 7200), Some(3.0));
    settle(7200).await;
    assert_eq!(h.status().outlook.forecast, None, "run out after two hours");
}
