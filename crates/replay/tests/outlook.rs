//! `Command::SetPrices` and `Command::SetForecast` inside the running engine (paused time): valid
//! prices and forecasts show in `Status.outlook`, invalid ones are refused with a reason and leave
//! the last good ones in place, and `None` clears them.

use twc_core::engine::{self, Command, CommandError, EngineConfig};
use twc_core::model::Settings;
use twc_core::plugin::{Forecast, ForecastSlot, PriceSlot, Prices};
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

fn prices(p: f64) -> Prices {
    Prices {
        source: "fixed".into(),
        currency: "EUR".into(),
        slots: vec![PriceSlot {
            start_unix: 1_700_000_000,
            end_unix: 1_700_003_600,
            price_per_kwh: p,
            co2_g_per_kwh: Some(320.0),
        }],
        feed_in_per_kwh: Some(0.08),
    }
}

#[tokio::test(start_paused = true)]
async fn prices_and_forecast_reach_status_and_bad_ones_are_refused() {
    let (comms, _sim) = duplex_pair(vec![SimSlave {
        slave: SlaveConfig::eu(),
        car: CarConfig::tesla(),
    }]);
    let eng = engine::spawn(
        EngineConfig::default(),
        Box::new(comms),
        Vec::new(),
        Settings::default(),
    );
    let h = eng.handle;
    assert_eq!(h.status().outlook.prices, None);

    h.command(Command::SetPrices(Some(prices(0.25))))
        .await
        .unwrap();
    assert_eq!(h.status().outlook.prices, Some(prices(0.25)));

    let err = h
        .command(Command::SetPrices(Some(prices(f64::NAN))))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CommandError::Invalid(m) if m.contains("fixed") && m.contains("finite")),
        "{err}"
    );
    assert_eq!(
        h.status().outlook.prices,
        Some(prices(0.25)),
        "kept the last good prices"
    );

    let f = Forecast {
        source: "open_meteo".into(),
        slots: vec![ForecastSlot {
            start_unix: 1_700_000_000,
            end_unix: 1_700_003_600,
            watts: 2500.0,
        }],
    };
    h.command(Command::SetForecast(Some(f.clone())))
        .await
        .unwrap();
    assert_eq!(h.status().outlook.forecast, Some(f.clone()));
    let mut bad = f;
    bad.slots[0].watts = -5.0;
    assert!(h.command(Command::SetForecast(Some(bad))).await.is_err());

    h.command(Command::SetPrices(None)).await.unwrap();
    h.command(Command::SetForecast(None)).await.unwrap();
    let s = h.status();
    assert_eq!((s.outlook.prices, s.outlook.forecast), (None, None));
}
