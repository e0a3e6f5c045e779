//! The fixed tariff: hourly slots of one price from the current hour, and its config errors.

use twc_core::plugin::{PluginConfig, Registry};
use twc_tariff_fixed::{build, build_fixed};

fn cfg(v: serde_json::Value) -> PluginConfig {
    PluginConfig::new("tariff.fixed", v.as_object().unwrap().clone())
}

#[test]
fn hourly_slots_of_one_price_from_the_current_hour() {
    let t = build_fixed(&cfg(serde_json::json!({
        "price_per_kwh": 0.31, "feed_in_per_kwh": 0.08, "co2_g_per_kwh": 380.0, "horizon_hours": 24
    })))
    .unwrap();
    // 2024-03-31T01:20:00Z.
    let now = 1_711_848_000;
    let p = t.prices_at(now).unwrap();
    assert_eq!(p.slots.len(), 24);
    assert_eq!(p.slots[0].start_unix, 1_711_846_800);
    assert_eq!(p.slots[23].end_unix, 1_711_846_800 + 24 * 3600);
    assert!(p.slots.iter().all(|s| s.price_per_kwh == 0.31));
    assert_eq!(p.at(now).unwrap().co2_g_per_kwh, Some(380.0));
    assert_eq!(p.feed_in_per_kwh, Some(0.08));
    assert_eq!(p.currency, "EUR");
    assert_eq!(p.validate(), Ok(()));
}

#[tokio::test]
async fn the_trait_answers_with_a_price_for_now() {
    let t = build(&cfg(
        serde_json::json!({"price_per_kwh": 0.25, "currency": "GBP"}),
    ))
    .unwrap();
    let p = t.prices().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(p.at(now).map(|s| s.price_per_kwh), Some(0.25));
    assert_eq!(p.currency, "GBP");
    assert_eq!(p.slots.len(), 48);
}

#[test]
fn bad_keys_name_the_key() {
    let e = |v| build(&cfg(v)).err().unwrap().to_string();
    assert!(e(serde_json::json!({})).contains("price_per_kwh"));
    assert!(e(serde_json::json!({"price_per_kwh": 0.3, "currency": "euro"})).contains("currency"));
    assert!(
        e(serde_json::json!({"price_per_kwh": 0.3, "horizon_hours": 0})).contains("horizon_hours")
    );
    assert!(
        e(serde_json::json!({"price_per_kwh": 0.3, "co2_g_per_kwh": -1.0}))
            .contains("co2_g_per_kwh")
    );
    assert!(e(serde_json::json!({"price_per_kwh": 0.3, "pirce": 1})).contains("pirce"));
}

#[test]
fn registered_as_a_tariff() {
    let r = Registry::collect().unwrap();
    assert!(r.tariff.contains_key("fixed"));
}
