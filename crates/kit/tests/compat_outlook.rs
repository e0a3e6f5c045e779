//! The price keys of the compat status list (MQTT and HASS status topics): present with a
//! tariff, `unknown` when no slot covers now, absent without a tariff.

use chrono::{TimeZone, Utc};
use twc_core::model::Status;
use twc_core::plugin::{PriceSlot, Prices};
use twc_plugin_kit::compat::status_values;

fn value(s: &Status, key: &str) -> Option<String> {
    status_values(s)
        .into_iter()
        .find(|v| v.ident == "all" && v.key == key)
        .map(|v| v.value)
}

#[test]
fn grid_price_and_co2_topics() {
    let mut s = Status {
        updated_at: Some(Utc.timestamp_opt(1_700_000_100, 0).unwrap()),
        ..Status::default()
    };
    assert_eq!(value(&s, "gridPrice"), None, "no tariff: no topic");
    s.outlook.prices = Some(Prices {
        source: "awattar".into(),
        currency: "EUR".into(),
        slots: vec![PriceSlot {
            start_unix: 1_700_000_000,
            end_unix: 1_700_003_600,
            price_per_kwh: 0.2345,
            co2_g_per_kwh: Some(312.4),
        }],
        feed_in_per_kwh: None,
    });
    assert_eq!(value(&s, "gridPrice").as_deref(), Some("0.2345"));
    assert_eq!(value(&s, "gridPriceCurrency").as_deref(), Some("EUR"));
    assert_eq!(value(&s, "gridCo2").as_deref(), Some("312"));
    s.updated_at = Some(Utc.timestamp_opt(1_700_003_600, 0).unwrap());
    assert_eq!(
        value(&s, "gridPrice").as_deref(),
        Some("unknown"),
        "the slot has ended"
    );
    assert_eq!(value(&s, "gridCo2").as_deref(), Some("unknown"));
}
