//! The web UI in real headless Chromium, driven through chromedriver's W3C WebDriver API with
//! reqwest: load the dashboard against two simulated TWCs, see both and live numbers change,
//! set Charge Now from the form and see the offered amps follow, save a schedule that survives
//! a restart. Set `TWC_UPDATE_SCREENSHOTS=1` to refresh the screenshots in docs/. The driver
//! is in `common::browser` (needs Debian's `chromium` and `chromium-driver`).

mod common;

use common::browser::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_live_charge_now_and_schedule_survive_restart() {
    let Some(b) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    let d = demo_persistent(2, &path).await;
    d.wait_slaves(2).await;
    b.goto(&d.base).await;

    // Both slaves show up, and live numbers change without a reload.
    b.wait_js(
        "return document.querySelectorAll('#slaves .slave').length === 2",
        Duration::from_secs(20),
        "two slave cards",
    )
    .await;
    assert!(b.text("#slave-1111 h3").await.contains("1111"));
    assert!(b.text("#slave-2222 h3").await.contains("2222"));
    b.wait_js(
        "return document.querySelector('#conn').textContent === 'live'",
        Duration::from_secs(10),
        "live connection",
    )
    .await;
    let first = b.text("#tile-generation [data-v]").await;
    assert!(first.ends_with('W'), "generation tile shows {first:?}");
    b.wait_js(
        &format!(
            "return document.querySelector('#tile-generation [data-v]').textContent !== {first:?}"
        ),
        Duration::from_secs(15),
        "the generation number to change",
    )
    .await;
    assert!(
        b.text("#policy-name")
            .await
            .contains("Non Scheduled Charging")
    );

    // Charge Now from the form: the engine takes it and the card's offered amps follow.
    b.type_into("#cn-amps", "10").await;
    b.type_into("#cn-hours", "1").await;
    b.click("#cn-start").await;
    d.wait_until(Duration::from_secs(10), |s| {
        s.settings.charge_now.is_some_and(|c| c.amps == 10.0)
    })
    .await
    .expect("charge now set from the form");
    b.wait_js(
        "const t = document.querySelector('#slave-1111 [data-f=offered]').textContent; return t.startsWith('10.00 A');",
        Duration::from_secs(20),
        "offered amps to follow Charge Now",
    )
    .await;
    assert!(b.text("#policy-name").await.contains("Charge Now"));
    // Let the simulated car ramp up so the screenshots show a charging session.
    d.wait_until(Duration::from_secs(20), |s| {
        s.slaves.iter().any(|x| x.actual.amps() >= 9.0)
    })
    .await
    .expect("the car draws");
    b.wait_js(
        "return !document.querySelector('#slave-1111 [data-f=actual]').textContent.startsWith('0.00')",
        Duration::from_secs(10),
        "the card to show the car drawing",
    )
    .await;
    b.resize(1280, 1900).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.screenshot("web-dashboard-desktop.png").await;
    b.resize(390, 1400).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let overflow = b
        .js("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(
        overflow,
        Value::Bool(true),
        "the dashboard must fit a phone's width"
    );
    b.screenshot("web-dashboard-phone.png").await;
    b.resize(1280, 1000).await;

    // Cancel from the form.
    b.click("#cn-cancel").await;
    d.wait_until(Duration::from_secs(10), |s| s.settings.charge_now.is_none())
        .await
        .expect("cancelled");

    // The schedule editor saves per-weekday windows.
    b.goto(&d.url("/schedule")).await;
    b.wait_js("return document.querySelector('#page-schedule').hidden === false && document.querySelector('#sched-on-1') !== null", Duration::from_secs(10), "schedule page").await;
    b.click("#sched-enabled").await;
    b.type_into("#sched-amps", "16").await;
    b.click("#sched-on-2").await;
    b.click("#sched-on-6").await;
    b.js("document.querySelector('#sched-from-2').value = '22:30'; document.querySelector('#sched-to-2').value = '06:15'; return true").await;
    b.type_into("#sched-damps-6", "10").await;
    b.click("#sched-save").await;
    b.wait_js(
        "return document.querySelector('#sched-status').textContent === 'Schedule saved.'",
        Duration::from_secs(10),
        "schedule saved",
    )
    .await;
    let s = d.settings().await.schedule;
    assert!(s.enabled);
    assert_eq!(s.amps, 16.0);
    assert_eq!(
        s.windows
            .iter()
            .map(|w| (w.weekday, w.start_minute, w.end_minute))
            .collect::<Vec<_>>()[0],
        (2, 1350, 375)
    );
    assert_eq!(s.windows.len(), 2);
    assert_eq!(s.day_amps.get(&6), Some(&10.0));

    // Restart: the engine saved its settings file on every change; stop it (and the server),
    // and start a new engine and server from the same file.
    d.engine
        .command(twc_core::engine::Command::Shutdown)
        .await
        .unwrap();
    d.server.abort();
    assert!(path.exists(), "the engine wrote its settings file");
    let d2 = demo_persistent(2, &path).await;
    b.goto(&d2.url("/schedule")).await;
    b.wait_js(
        "return document.querySelector('#sched-enabled').checked === true",
        Duration::from_secs(10),
        "schedule loaded after restart",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('#sched-amps').value")
            .await,
        json!("16")
    );
    assert_eq!(
        b.js("return document.querySelector('#sched-on-2').checked")
            .await,
        json!(true)
    );
    assert_eq!(
        b.js("return document.querySelector('#sched-on-1').checked")
            .await,
        json!(false)
    );
    assert_eq!(
        b.js("return document.querySelector('#sched-from-2').value")
            .await,
        json!("22:30")
    );
    assert_eq!(
        b.js("return document.querySelector('#sched-damps-6').value")
            .await,
        json!("10")
    );

    // Settings: a runtime grid-import limit from the form.
    b.goto(&d2.url("/settings")).await;
    b.wait_js(
        "return document.querySelector('#ns-action').value === 'charge'",
        Duration::from_secs(10),
        "settings loaded",
    )
    .await;
    b.type_into("#grid-value", "20").await;
    b.click("#grid-save").await;
    b.wait_js(
        "return document.querySelector('#grid-status').textContent === 'Saved.'",
        Duration::from_secs(10),
        "grid limit saved",
    )
    .await;
    assert_eq!(
        d2.settings().await.max_grid_import.map(|g| g.value),
        Some(20.0)
    );

    // Vehicles: the simulated Tesla's VIN shows up.
    d2.wait_until(Duration::from_secs(30), |s| {
        s.slaves.iter().any(|x| x.vin.is_some())
    })
    .await
    .expect("vin read");
    b.goto(&d2.url("/vehicles")).await;
    b.wait_js(
        &format!(
            "return document.querySelector('#vehicles').textContent.includes({:?})",
            twc_sim::SAMPLE_VIN
        ),
        Duration::from_secs(10),
        "the VIN on the vehicles page",
    )
    .await;

    // Debug: bus counters render and only safe commands are offered.
    b.goto(&d2.url("/debug")).await;
    b.wait_js(
        "return document.querySelector('#bus').textContent.includes('Frames sent')",
        Duration::from_secs(10),
        "bus counters",
    )
    .await;
    let options = b.js("return Array.from(document.querySelectorAll('#dbg-cmd option')).map(o => o.textContent).join(',')").await;
    assert!(!options.as_str().unwrap().contains("Custom"), "{options}");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trouble_banner_and_dark_mode() {
    let Some(b) = Driver::start().await else {
        return;
    };
    let d = demo_failing_meter(1).await;
    d.wait_slaves(1).await;
    b.goto(&d.base).await;
    // A meter that stopped answering: a banner says so, and the tiles show no number.
    b.wait_js(
        "const t = document.querySelector('#trouble'); return !t.hidden && t.textContent.includes('meter has no fresh reading');",
        Duration::from_secs(20),
        "the stale-meter banner",
    )
    .await;
    b.wait_js(
        "return document.querySelector('#tile-generation [data-v]').textContent === '—'",
        Duration::from_secs(10),
        "no generation number without a fresh reading",
    )
    .await;
    // Dark mode follows the system setting.
    let light = b
        .js("return getComputedStyle(document.body).backgroundColor")
        .await;
    b.cmd(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    )
    .await;
    let dark = b
        .js("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_ne!(light, dark, "the page must change colours in dark mode");
    assert_eq!(dark, json!("rgb(15, 18, 22)"));
    b.screenshot("web-dashboard-dark.png").await;
    b.quit().await;
}

/// Every page at 360, 768 and 1280 px in one browser session against one daemon: no horizontal
/// overflow, no console error, touch targets of at least 44 px on the phone, a screenshot of
/// each (in the temp dir). Set `TWC_UI_SERVE_SECS=N` to keep the demo daemon up N seconds
/// afterwards (its address is printed), e.g. for Lighthouse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_360_768_1280_without_console_errors() {
    let Some(b) = Driver::start().await else {
        return;
    };
    // Stored sessions (as a database logger answers them), so the Sessions page has rows,
    // months and pages to lay out.
    let d = demo_full(
        2,
        Default::default(),
        http_config(),
        Some(std::sync::Arc::new(StoredSessions(sample_sessions(60)))),
    )
    .await;
    d.wait_slaves(2).await;
    const SMALL_TARGETS: &str = "return Array.from(document.querySelectorAll('button, select, input:not([type=checkbox]), nav a, .brand')) \
        .filter(e => e.getClientRects().length && !e.closest('[hidden]')) \
        .filter(e => { const r = e.getBoundingClientRect(); return r.height < 43.5 || r.width < 43.5; }) \
        .slice(0, 8).map(e => e.tagName + '#' + e.id + ' ' + e.textContent.trim().slice(0, 20) + ' ' + Math.round(e.getBoundingClientRect().width) + 'x' + Math.round(e.getBoundingClientRect().height));";
    let pages = [
        (
            "/",
            "dashboard",
            "document.querySelectorAll('#slaves .slave').length === 2 && document.querySelector('#live-chart .uplot') !== null",
        ),
        (
            "/schedule",
            "schedule",
            "document.querySelector('#sched-on-7') !== null",
        ),
        (
            "/settings",
            "settings",
            "document.querySelectorAll('#pol-rules li').length > 0",
        ),
        (
            "/vehicles",
            "vehicles",
            "document.querySelector('#vehicles tr') !== null",
        ),
        (
            "/plans",
            "plans",
            "document.querySelector('#plans tr') !== null",
        ),
        (
            "/sessions",
            "sessions",
            "document.querySelectorAll('#sessions tr').length === 30 && document.querySelectorAll('#sess-months tr').length >= 1",
        ),
        (
            "/events",
            "events",
            "document.querySelectorAll('#events li').length > 0",
        ),
        (
            "/debug",
            "debug",
            "document.querySelector('#bus').textContent.includes('Frames sent')",
        ),
    ];
    let _ = b.console_errors().await;
    for (w, h) in [(360u32, 800u32), (768, 1024), (1280, 900)] {
        b.viewport(w, h).await;
        for (path, name, ready) in pages {
            b.goto(&d.url(path)).await;
            b.wait_js(
                &format!(
                    "return document.querySelector('#page-{name}').hidden === false && document.querySelector('#conn').classList.contains('on') && ({ready})"
                ),
                Duration::from_secs(15),
                &format!("{path} at {w} px"),
            )
            .await;
            let over = b.js(OVERFLOW).await;
            assert_eq!(over, json!([]), "{path} overflows at {w} px");
            if w == 360 {
                let small = b.js(SMALL_TARGETS).await;
                assert_eq!(
                    small,
                    json!([]),
                    "{path}: touch targets under 44 px at {w} px"
                );
            }
            let errors = b.console_errors().await;
            assert!(
                errors.is_empty(),
                "{path} at {w} px: console errors {errors:?}"
            );
            b.screenshot(&format!("twc-ui-{name}-{w}.png")).await;
        }
    }
    // Sessions: a filter narrows the rows and the CSV link; the pages move; unknown values
    // read as unknown.
    b.viewport(360, 800).await;
    b.goto(&d.url("/sessions")).await;
    b.wait_js(
        "return document.querySelectorAll('#sessions tr').length === 30",
        Duration::from_secs(15),
        "the last 30 days of sessions",
    )
    .await;
    let from = (chrono::Local::now() - chrono::Duration::days(65))
        .format("%Y-%m-%d")
        .to_string();
    b.js(&format!(
        "document.querySelector('#sess-from').value = '{from}'; return true"
    ))
    .await;
    b.click("#sess-apply").await;
    b.wait_js(
        "return document.querySelectorAll('#sessions tr').length === 50 && document.querySelector('#sess-next').disabled === false",
        Duration::from_secs(15),
        "the first page of 60 sessions",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('#sessions').textContent.includes('unknown')")
            .await,
        json!(true),
        "sessions without meter data or price show unknown"
    );
    b.click("#sess-next").await;
    b.wait_js(
        "return document.querySelectorAll('#sessions tr').length === 10 && document.querySelector('#sess-page').textContent.startsWith('2 / 2')",
        Duration::from_secs(15),
        "the second page",
    )
    .await;
    b.type_into("#sess-twc", "2222").await;
    b.click("#sess-apply").await;
    b.wait_js(
        &format!("return document.querySelectorAll('#sessions tr').length === 30 && Array.from(document.querySelectorAll('#sessions td[data-label=TWC]')).every(td => td.textContent === '2222') \
            && document.querySelector('#sess-csv').getAttribute('href') === '/api/v2/sessions?from={from}&twc=2222&format=csv'"),
        Duration::from_secs(15),
        "only TWC 2222, and the CSV link with the same filter",
    )
    .await;
    let over = b.js(OVERFLOW).await;
    assert_eq!(over, json!([]), "filtered sessions overflow at 360 px");
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "sessions: console errors {errors:?}");
    b.viewport(1280, 900).await;
    // The dashboard's numbers as the server reported them: the binding limit, and the energy
    // chart either drawn or in its empty state (never both, never a row of zeros).
    b.goto(&d.base).await;
    b.wait_js(
        "return document.querySelector('#binding').textContent === 'policy' && document.querySelector('#budget').textContent === '6.00 A'",
        Duration::from_secs(10),
        "the binding limit and budget from Status",
    )
    .await;
    b.wait_js(
        "return document.querySelector('#hist-empty').hidden === (document.querySelector('#hist-chart .uplot') !== null)",
        Duration::from_secs(10),
        "the energy chart or its empty state",
    )
    .await;
    // The header is one line on a phone: the menu button opens the navigation.
    b.viewport(360, 800).await;
    b.goto(&d.base).await;
    b.wait_js(
        "return document.querySelector('#conn').classList.contains('on')",
        Duration::from_secs(10),
        "dashboard",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('header').getBoundingClientRect().height <= 60 && getComputedStyle(document.querySelector('nav')).display === 'none'").await,
        json!(true),
        "the phone header is one line with the navigation collapsed"
    );
    // The language follows the override: German, then back to the browser's.
    b.js("const s = document.querySelector('#lang'); s.value = 'de'; s.dispatchEvent(new Event('change')); return true").await;
    b.wait_js(
        "return document.querySelector('[data-nav=schedule]').textContent === 'Zeitplan' && document.documentElement.lang === 'de'",
        Duration::from_secs(15),
        "German text",
    )
    .await;
    b.js("const s = document.querySelector('#lang'); s.value = ''; s.dispatchEvent(new Event('change')); return true").await;
    b.wait_js(
        "return document.querySelector('[data-nav=schedule]').textContent === 'Schedule'",
        Duration::from_secs(15),
        "English again",
    )
    .await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors {errors:?}");
    if let Some(secs) = std::env::var("TWC_UI_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        eprintln!("demo daemon at {} for {secs} s", d.base);
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    b.quit().await;
}

/// The main actions by keyboard alone on a phone: open the menu, go to a page, start and stop
/// Charge Now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_menu_pages_and_charge_now() {
    let Some(b) = Driver::start().await else {
        return;
    };
    let d = demo(1).await;
    d.wait_slaves(1).await;
    b.viewport(360, 800).await;
    b.goto(&d.url("/settings")).await;
    b.wait_js(
        "return document.querySelector('#conn').classList.contains('on')",
        Duration::from_secs(10),
        "page loaded",
    )
    .await;
    // The skip link comes first, then the brand, then the menu button.
    b.press(TAB).await;
    assert_eq!(
        b.js("return document.activeElement.className").await,
        json!("skip")
    );
    b.tab_to("#nav-toggle", 4).await;
    b.press(ENTER).await;
    assert_eq!(
        b.js("return document.querySelector('#nav-toggle').getAttribute('aria-expanded')")
            .await,
        json!("true")
    );
    b.tab_to("nav a[data-nav=dashboard]", 3).await;
    b.press(ENTER).await;
    b.wait_js(
        "return document.querySelector('#page-dashboard').hidden === false && document.querySelector('#nav-toggle').getAttribute('aria-expanded') === 'false'",
        Duration::from_secs(5),
        "the dashboard from the menu",
    )
    .await;
    // From the page's start, Tab reaches Charge Now; Enter starts it with the form's amps.
    b.tab_to("#cn-start", 30).await;
    b.press(ENTER).await;
    d.wait_until(Duration::from_secs(10), |s| {
        s.settings.charge_now.is_some_and(|c| c.amps == 16.0)
    })
    .await
    .expect("Charge Now started from the keyboard");
    b.wait_js(
        "return document.querySelector('#cn-cancel').disabled === false",
        Duration::from_secs(10),
        "the stop button enabled",
    )
    .await;
    b.tab_to("#cn-cancel", 3).await;
    b.press(ENTER).await;
    d.wait_until(Duration::from_secs(10), |s| s.settings.charge_now.is_none())
        .await
        .expect("Charge Now stopped from the keyboard");
    // Escape closes the menu and gives the focus back to its button.
    b.js("document.querySelector('#nav-toggle').focus(); return true")
        .await;
    b.press(ENTER).await;
    b.press("\u{E00C}").await;
    assert_eq!(
        b.js("return document.querySelector('#nav-toggle').getAttribute('aria-expanded') === 'false' && document.activeElement.id === 'nav-toggle'").await,
        json!(true)
    );
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors {errors:?}");
    b.quit().await;
}

/// A Wall Connector Gen3 (an external load point) gets a card next to the Gen2 slave's, with
/// its state, power, per-phase currents and voltages, session energy, temperatures, alerts,
/// firmware and Wi-Fi, fitting 360, 768 and 1280 px without console errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen3_card_next_to_the_slaves_at_360_768_1280() {
    let Some(b) = Driver::start().await else {
        return;
    };
    let d = demo(1).await;
    d.wait_slaves(1).await;
    report_gen3(&d.engine).await;
    let _ = b.console_errors().await;
    for (w, h) in [(360u32, 800u32), (768, 1024), (1280, 900)] {
        b.viewport(w, h).await;
        b.goto(&d.base).await;
        b.wait_js(
            "return document.querySelectorAll('#slaves .slave').length === 1 && document.querySelector('#lp-gen3_garage [data-f=power]') !== null \
             && document.querySelector('#lp-gen3_garage [data-f=power]').textContent !== ''",
            Duration::from_secs(20),
            &format!("the slave's and the Gen3's cards at {w} px"),
        )
        .await;
        let f = |k: &str| format!("#lp-gen3_garage [data-f={k}]");
        assert!(b.text("#lp-gen3_garage h3").await.contains("gen3.garage"));
        assert!(
            b.text("#lp-gen3_garage h3")
                .await
                .contains("Wall Connector Gen3")
        );
        assert_eq!(b.text(&f("state")).await, "charging");
        assert_eq!(b.text(&f("power")).await, "7.70 kW");
        assert_eq!(b.text(&f("draw")).await, "31.90 A");
        assert_eq!(b.text(&f("phases")).await, "31.8 / 31.9 / 0.1 A");
        assert_eq!(b.text(&f("volts")).await, "242 / 242 / 119 V");
        assert_eq!(b.text(&f("session")).await, "11.56 kWh · 1:30:21");
        assert_eq!(b.text(&f("lifetime")).await, "386.2 kWh");
        assert_eq!(
            b.text(&f("temps")).await,
            "handle 30.6 °C, mcu 45.1 °C, pcba 41.2 °C"
        );
        assert_eq!(b.text(&f("alerts")).await, "none");
        assert_eq!(b.text(&f("firmware")).await, "21.29.1+g4152353e50f744");
        assert_eq!(b.text(&f("wifi")).await, "44 % · -68 dBm");
        assert_eq!(b.text(&f("max")).await, "48.00 A");
        assert_eq!(b.text(&f("badge")).await, "charging");
        assert_eq!(
            b.js(OVERFLOW).await,
            json!([]),
            "the dashboard overflows at {w} px"
        );
        let errors = b.console_errors().await;
        assert!(errors.is_empty(), "console errors at {w} px: {errors:?}");
        b.screenshot(&format!("twc-ui-gen3-{w}.png")).await;
    }
    b.quit().await;
}
