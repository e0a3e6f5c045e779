//! The price tiles, the Plans page and the Sessions page in real headless Chromium, with real
//! data: prices from the time-of-use tariff plugin, a plan saved from the Plans page's form and
//! one through the API, and sessions the engine charged on simulated TWCs over the last days
//! (in paused time), stored by the SQLite logger. Every page must fit a 360 px and a 390 px
//! phone. Set `TWC_UPDATE_SCREENSHOTS=1` to refresh
//! docs/web-{prices,plans,sessions}-{desktop,phone}.png.

mod common;

use chrono::{Duration as ChronoDuration, Utc};
use common::browser::*;
use common::past::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use twc_core::engine::Command;
use twc_core::model::{Event, Settings};
use twc_core::plugin::TariffSource;

/// The last three days at the test site: a sunny late morning on solar alone, an evening and a
/// night at 16 A from the grid, and both cars at noon (16 A each, more than the PV gives).
fn stretches() -> Vec<Stretch> {
    vec![
        Stretch {
            start: local_at(3, 9, 30),
            hours: 4.0,
            slaves: &[0],
            action: "green",
            amps: 0.0,
        },
        Stretch {
            start: local_at(3, 18, 30),
            hours: 4.0,
            slaves: &[1],
            action: "charge",
            amps: 16.0,
        },
        Stretch {
            start: local_at(2, 22, 30),
            hours: 4.5,
            slaves: &[0],
            action: "charge",
            amps: 16.0,
        },
        Stretch {
            start: local_at(1, 11, 0),
            hours: 3.0,
            slaves: &[0, 1],
            action: "charge",
            amps: 32.0,
        },
    ]
}

/// Resize the viewport to the page's whole height (at `w` px) and take the screenshot.
async fn full_page(b: &Driver, w: u32, name: &str) {
    b.viewport(w, 800).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = b
        .js("return document.documentElement.scrollHeight")
        .await
        .as_u64()
        .unwrap_or(800) as u32;
    b.viewport(w, h.clamp(400, 4000)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.screenshot(name).await;
}

async fn fits_phone(b: &Driver, what: &str) {
    // The narrowest phone the project checks (360 px), then a common one (390 px).
    for w in [360, 390] {
        b.viewport(w, 844).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            b.js(OVERFLOW).await,
            json!([]),
            "{what} overflows a {w} px phone"
        );
    }
}

fn money(v: &Value, cur: &str) -> String {
    format!("{:.2} {cur}", v.as_f64().expect("a number"))
}

fn share(v: &Value) -> String {
    format!("{} %", (v.as_f64().expect("a number") * 100.0).round())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_tiles_plans_and_sessions_with_a_tariff_and_real_charging() {
    let Some(b) = Driver::start().await else {
        return;
    };
    // The past days, charged by the engine on a paused clock of its own (its own runtime, on a
    // blocking thread), then stored by the SQLite logger as the daemon's sink stores them.
    let events = tokio::task::spawn_blocking(|| charge(&stretches()))
        .await
        .expect("the past days ran");
    let ended: Vec<&twc_core::model::ChargeSession> = events
        .iter()
        .filter_map(|e| match e {
            Event::SessionEnded { session, .. } => Some(session),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 5, "one session per car and stretch");
    let dir = tempfile::tempdir().unwrap();
    let (history, _sink, _tx) = stored(dir.path(), events).await;
    let d = demo_full(2, Settings::default(), http_config(), Some(history)).await;
    d.wait_slaves(2).await;
    d.sim
        .plug_in(1, twc_sim::CarConfig::tesla().with_vin(Some(&vin(1))))
        .unwrap();
    // Prices and a forecast, as the tariff and forecast plugins' tasks hand them to the engine.
    let tou = tariff();
    let prices = tou.prices().await.expect("prices now");
    d.engine
        .command(Command::SetPrices(Some(prices)))
        .await
        .unwrap();
    d.engine
        .command(Command::SetForecast(Some(forecast())))
        .await
        .unwrap();
    let _ = b.console_errors().await;

    // Dashboard: the grid price now and the forecast for today.
    b.viewport(1280, 900).await;
    b.goto(&d.base).await;
    b.wait_js(
        "return document.querySelectorAll('#slaves .slave').length === 2 && !document.querySelector('#tile-price').hidden \
         && !document.querySelector('#tile-forecast').hidden",
        Duration::from_secs(20),
        "the price and forecast tiles",
    )
    .await;
    let price = b.text("#tile-price [data-v]").await;
    // The price when the tile was drawn (a few seconds ago at most) or now.
    let now = Utc::now();
    let want: Vec<String> = [now - ChronoDuration::seconds(30), now]
        .iter()
        .map(|t| format!("{:.3} EUR/kWh", tou.price_at(*t)))
        .collect();
    assert!(want.contains(&price), "price tile {price:?}, want {want:?}");
    let today = b.text("#tile-forecast [data-v]").await;
    assert!(
        today.ends_with(" kWh") && today != "0.0 kWh",
        "forecast tile {today:?}"
    );
    fits_phone(&b, "the dashboard").await;
    // On a phone the tiles come below the energy flow and the current's reason: scroll to them.
    b.js("const t = document.querySelector('.tiles'); window.scrollTo(0, t.getBoundingClientRect().top + window.scrollY - 64); return true").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.screenshot("web-prices-phone.png").await;
    b.js("window.scrollTo(0, 0); return true").await;
    // The tiles and the live chart, without the cards below.
    b.viewport(1280, 720).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.screenshot("web-prices-desktop.png").await;

    // Plans: a weekly plan from the form, a one-off trip through the API.
    b.viewport(1280, 900).await;
    b.goto(&d.url("/plans")).await;
    b.wait_js(
        "return document.querySelector('#page-plans').hidden === false && document.querySelector('#plans tr') !== null",
        Duration::from_secs(10),
        "the plans page",
    )
    .await;
    b.type_into("#plan-who", "1111").await;
    b.type_into("#plan-value", "20").await;
    b.click("#plan-save").await;
    b.wait_js(
        "return document.querySelector('#plan-status').textContent === 'Saved.'",
        Duration::from_secs(10),
        "the weekly plan saved",
    )
    .await;
    // Six hours from now, on a quarter hour: the sun (if any) cannot give it all.
    let trip = (Utc::now().timestamp() / 900 + 24) * 900;
    let r = d
        .http
        .put(d.url("/api/v2/plans/trip"))
        .json(
            &json!({"twc": "2222", "target": {"kind": "energy", "kwh": 15},
            "departure": {"kind": "once", "at_unix": trip}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let plans = d.json("/api/v2/plans").await;
    let plans = plans.as_array().unwrap();
    assert_eq!(plans.len(), 2);
    for p in plans {
        assert!(
            !p["slots"].as_array().unwrap().is_empty(),
            "the planner chose slots: {p}"
        );
        assert!(p["expected_cost"].as_f64().is_some(), "{p}");
    }
    b.goto(&d.url("/plans")).await;
    b.wait_js(
        // Each plan shows its slots (merged into ranges: how many depends on the time of day
        // the test runs at, against the tariff's windows).
        "const rows = Array.from(document.querySelectorAll('#plans > tr')); return rows.length === 2 && rows.every(r => r.querySelectorAll('.plan-slots li').length >= 1)",
        Duration::from_secs(10),
        "both plans with their slots",
    )
    .await;
    let cells: Vec<Vec<String>> = serde_json::from_value(
        b.js("return Array.from(document.querySelectorAll('#plans > tr')).map(r => Array.from(r.children).map(c => c.textContent))")
            .await,
    )
    .unwrap();
    for p in plans {
        let id = p["id"].as_str().unwrap();
        let row = cells
            .iter()
            .find(|r| r[0].starts_with(&format!("{id}: ")))
            .unwrap_or_else(|| panic!("no row for {id}: {cells:?}"));
        assert_eq!(row[2], money(&p["expected_cost"], "EUR"), "{id}");
        assert_eq!(row[3], share(&p["solar_share"]), "{id}");
        assert!(
            row[4].contains("grid") || row[4].contains("solar"),
            "{row:?}"
        );
    }
    assert!(
        cells
            .iter()
            .any(|r| r[0].contains("20 kWh · Mon, Tue, Wed, Thu, Fri 07:00"))
    );
    full_page(&b, 1280, "web-plans-desktop.png").await;
    fits_phone(&b, "the plans page").await;
    full_page(&b, 390, "web-plans-phone.png").await;

    // Sessions: what the engine measured, as the logger stored it, with the month's totals.
    b.viewport(1280, 900).await;
    b.goto(&d.url("/sessions")).await;
    b.wait_js(
        "return document.querySelectorAll('#sessions tr').length === 5 && document.querySelectorAll('#sess-months tr').length >= 1",
        Duration::from_secs(15),
        "the five sessions and the month's totals",
    )
    .await;
    let api = d.json("/api/v2/sessions").await;
    let stored = api["sessions"].as_array().unwrap();
    assert_eq!(stored.len(), 5);
    let col = |label: &str| {
        format!(
            "return Array.from(document.querySelectorAll('#sessions td[data-label=\"{label}\"]')).map(c => c.textContent)"
        )
    };
    let costs: Vec<String> = serde_json::from_value(b.js(&col("Cost")).await).unwrap();
    let shares: Vec<String> = serde_json::from_value(b.js(&col("Solar share")).await).unwrap();
    let want_costs: Vec<String> = stored.iter().map(|s| money(&s["cost"], "EUR")).collect();
    let want_shares: Vec<String> = stored.iter().map(|s| share(&s["solar_share"])).collect();
    assert_eq!(costs, want_costs);
    assert_eq!(shares, want_shares);
    // The engine's numbers make sense: the sunny morning came from the sun and cost little,
    // the evening came from the grid at the evening's price, noon was in between.
    let kwh = |s: &Value| s["energy_kwh"].as_f64().unwrap();
    assert!(stored.iter().all(|s| kwh(s) > 5.0), "{stored:?}");
    assert!(
        stored
            .iter()
            .any(|s| s["solar_share"].as_f64().unwrap() > 0.9 && s["cost"].as_f64().unwrap() < 0.5),
        "a solar session: {stored:?}"
    );
    assert!(
        stored
            .iter()
            .any(|s| s["solar_share"].as_f64().unwrap() == 0.0
                && s["cost"].as_f64().unwrap() > 0.2 * kwh(s)),
        "a grid session: {stored:?}"
    );
    assert!(
        stored.iter().any(|s| {
            let x = s["solar_share"].as_f64().unwrap();
            x > 0.3 && x < 0.95
        }),
        "a session partly from the sun: {stored:?}"
    );
    let month = b.text("#sess-months tr").await;
    assert!(month.contains("EUR"), "{month}");
    full_page(&b, 1280, "web-sessions-desktop.png").await;
    fits_phone(&b, "the sessions page").await;
    full_page(&b, 390, "web-sessions-phone.png").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors {errors:?}");
    b.quit().await;
}
