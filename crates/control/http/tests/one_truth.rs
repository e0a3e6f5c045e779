//! Issue #13, item 6: every surface shows the numbers the policy uses. A single-phase site whose
//! meter reports generation and house consumption without the chargers
//! (`consumption_includes_chargers = false`), and slaves that report three phase voltages.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use twc_core::async_trait;
use twc_core::model::{EnergyReading, Settings};
use twc_core::plugin::{EmsSource, PluginError};

struct HouseMeter;

#[async_trait]
impl EmsSource for HouseMeter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        Ok(EnergyReading {
            generation_w: Some(5000.0),
            consumption_w: Some(2000.0),
            ..EnergyReading::default()
        })
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test]
async fn grid_and_charger_power_are_the_policys_on_every_surface() {
    let mut ec = engine_config();
    ec.consumption_includes_chargers = false;
    ec.phases = 1;
    let settings = Settings {
        non_scheduled_amps: 16.0,
        ..Settings::default()
    };
    let d = demo_with_meter(1, settings, ec, Box::new(HouseMeter)).await;
    d.wait_slaves(1).await;
    // Let the car ramp to its 16 A offer (it draws 15.2 A) and the readings pair with it.
    let mut st = Value::Null;
    for _ in 0..100 {
        st = d.json("/api/v2/status").await;
        if st["slaves"][0]["actual_amps"].as_f64().unwrap_or(0.0) >= 15.0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            st = d.json("/api/v2/status").await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let actual = st["slaves"][0]["actual_amps"].as_f64().unwrap();
    assert!(actual >= 15.0, "{st}");
    // 230 V per phase × 1 phase, not the sum of the three voltages the slave reports.
    let charger_w = st["site"]["charger_w"].as_f64().unwrap();
    assert!((charger_w - actual * 230.0).abs() < 1.0, "{st}");
    assert!(
        (st["slaves"][0]["power_w"].as_f64().unwrap() - charger_w).abs() < 1.0,
        "{st}"
    );
    // The house (2 kW) plus the chargers minus PV (5 kW): about 0.5 kW import, not 3 kW export.
    let grid_w = st["site"]["grid_w"].as_f64().unwrap();
    assert!(
        (grid_w - (2000.0 + charger_w - 5000.0)).abs() < 50.0,
        "{st}"
    );
    // /metrics and TWCManager's getStatus say the same.
    let m = d.get("/metrics").await.text().await.unwrap();
    assert!(
        (metric(&m, "twc_charger_watts") - charger_w).abs() < 50.0,
        "{m}"
    );
    assert!(
        (metric(&m, "twc_reading_watts{quantity=\"grid\"}") - grid_w).abs() < 50.0,
        "{m}"
    );
    let compat = d.json("/api/getStatus").await;
    let load: f64 = compat["chargerLoadWatts"]
        .as_str()
        .map(|s| s.parse().unwrap())
        .or_else(|| compat["chargerLoadWatts"].as_f64())
        .unwrap();
    assert!((load - charger_w).abs() < 50.0, "{compat}");
}
