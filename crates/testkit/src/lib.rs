//! Test helpers for twcmanager plugins (dev-dependency only): fixtures, mock HTTP servers serving
//! them, value assertions, and the one-line conformance check every HTTP energy source calls.
//!
//! ```text
//! let good = [("/solar_api/v1/GetPowerFlowRealtimeData.fcgi", twc_testkit::fixture!("powerflow_symo_day_importing.json"))];
//! twc_testkit::check_http_source(|base| build_for(base), &good).await;
//! ```

use std::time::Duration;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, ErrorKind};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use wiremock;

pub mod engine;
pub mod events;
pub mod load_points;
pub mod logs;
pub mod modbus;
pub mod mqtt;
pub mod notify;
pub mod settings;
pub mod sinks;

/// Read `tests/fixtures/<name>` of the calling crate.
#[macro_export]
macro_rules! fixture {
    ($name:expr) => {
        $crate::read_fixture(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}

/// Read a fixture file; panics with the path when missing (tests only).
pub fn read_fixture(path: &str) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => panic!("cannot read fixture {path}: {e}"),
    }
}

/// Serve `body` with status 200 for any method on `p`.
pub async fn serve_fixture(server: &MockServer, p: &str, body: Vec<u8>) {
    Mock::given(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(server)
        .await;
}

/// Serve `status` and `body` for `verb` (`"GET"`, `"POST"`) on `p`.
pub async fn serve_status(server: &MockServer, verb: &str, p: &str, status: u16, body: &[u8]) {
    Mock::given(method(verb))
        .and(path(p))
        .respond_with(ResponseTemplate::new(status).set_body_bytes(body.to_vec()))
        .mount(server)
        .await;
}

/// Assert that a quantity is present and within 0.01 W of `expected`.
#[track_caller]
pub fn assert_w(what: &str, actual: Option<f64>, expected: f64) {
    match actual {
        Some(a) if (a - expected).abs() < 0.01 => {}
        other => panic!("{what}: expected {expected}, got {other:?}"),
    }
}

/// Assert a reading's generation, consumption and grid (`None` = must be absent).
#[track_caller]
pub fn assert_reading(
    r: &EnergyReading,
    gen_w: Option<f64>,
    cons_w: Option<f64>,
    grid_w: Option<f64>,
) {
    for (what, actual, expected) in [
        ("generation_w", r.generation_w, gen_w),
        ("consumption_w", r.consumption_w, cons_w),
        ("grid_w", r.grid_w, grid_w),
    ] {
        match expected {
            Some(e) => assert_w(what, actual, e),
            None => assert!(actual.is_none(), "{what}: expected none, got {actual:?}"),
        }
    }
}

/// What [`check_http_source`] verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// Failure cases checked (each one an error of the right kind, never a reading).
    pub failure_cases: usize,
}

/// The conformance check for an HTTP energy source.
///
/// `build` gets the mock server's base URL and must return the source configured with
/// `http = { timeout_secs = 0.5, retries = 0 }`. `good` lists (path, body) pairs that together make
/// a successful read; the check first requires a good reading, then serves each failure on every
/// path and requires the right error kind: 401/403 → `Auth`, 500/503 → `Transient`, garbage,
/// empty and truncated bodies → `Protocol`, a reply slower than the timeout → `Transient` within
/// about the timeout. A failure never yields a reading (so never a 0 W one).
pub async fn check_http_source<B>(build: B, good: &[(&str, Vec<u8>)]) -> ConformanceReport
where
    B: Fn(&str) -> Box<dyn EmsSource>,
{
    let server = MockServer::start().await;
    // 1. The good case must work, or the failure checks below prove nothing.
    for (p, body) in good {
        serve_fixture(&server, p, body.clone()).await;
    }
    let src = build(&server.uri());
    let r = match src.read().await {
        Ok(r) => r,
        Err(e) => panic!(
            "conformance: the good fixtures did not give a reading: {}",
            e.chain()
        ),
    };
    assert!(
        r.generation_w.is_some() || r.consumption_w.is_some() || r.grid_w.is_some(),
        "conformance: the good reading is empty: {r:?}"
    );

    let first = good.first().map(|(_, b)| b.clone()).unwrap_or_default();
    let mut cases: Vec<(&str, ResponseTemplate, ErrorKind)> = vec![
        ("HTTP 401", ResponseTemplate::new(401), ErrorKind::Auth),
        ("HTTP 403", ResponseTemplate::new(403), ErrorKind::Auth),
        ("HTTP 500", ResponseTemplate::new(500), ErrorKind::Transient),
        (
            "HTTP 503",
            ResponseTemplate::new(503).set_body_string("busy"),
            ErrorKind::Transient,
        ),
        (
            "garbage body",
            ResponseTemplate::new(200).set_body_string("<html>NaN-garbage</html>"),
            ErrorKind::Protocol,
        ),
        (
            "empty body",
            ResponseTemplate::new(200),
            ErrorKind::Protocol,
        ),
    ];
    if serde_json::from_slice::<serde_json::Value>(&first).is_ok() && first.len() > 4 {
        let cut = first[..first.len() / 2].to_vec();
        cases.push((
            "truncated body",
            ResponseTemplate::new(200).set_body_bytes(cut),
            ErrorKind::Protocol,
        ));
    }
    let n = cases.len() + 1;
    for (name, template, kind) in cases {
        server.reset().await;
        Mock::given(any())
            .respond_with(template)
            .mount(&server)
            .await;
        let src = build(&server.uri());
        match src.read().await {
            Ok(r) => panic!("conformance: {name} gave a reading instead of an error: {r:?}"),
            Err(e) => assert_eq!(
                e.kind(),
                kind,
                "conformance: {name} gave the wrong error kind: {}",
                e.chain()
            ),
        }
    }

    // Slow: every path answers correctly but too late.
    server.reset().await;
    for (p, body) in good {
        Mock::given(path(*p))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(body.clone())
                    .set_delay(Duration::from_secs(3)),
            )
            .mount(&server)
            .await;
    }
    let src = build(&server.uri());
    let t0 = Instant::now();
    match src.read().await {
        Ok(r) => panic!("conformance: a slow reply gave a reading: {r:?}"),
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::Transient,
                "conformance: slow reply: {}",
                e.chain()
            );
            let took = t0.elapsed();
            assert!(
                took < Duration::from_millis(2500),
                "conformance: a slow reply took {took:?}; build with http.timeout_secs = 0.5 and retries = 0"
            );
        }
    }
    ConformanceReport { failure_cases: n }
}

/// The MQTT broker URL for tests: `TWC_TEST_MQTT_URL` or `mqtt://127.0.0.1:1883`. Returns `None`
/// (after one loud line) when the broker is unreachable outside CI; panics under `CI=true`.
pub async fn mqtt_broker() -> Option<(String, u16)> {
    let url = std::env::var("TWC_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(1883)),
        None => (rest.to_string(), 1883),
    };
    let ok = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if ok {
        return Some((host, port));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("MQTT broker {url} is not reachable and CI=true");
    }
    eprintln!("!!!!! SKIPPING: MQTT broker {url} is not reachable (set TWC_TEST_MQTT_URL) !!!!!");
    None
}

/// A topic prefix unique to this test run, so parallel tests never see each other's messages.
pub fn unique_topic_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("twc-test/{test}/{}-{nanos}", std::process::id())
}

/// The `[<kind>.<name>]` section of the project's `config/default.toml` (embedded in the binary),
/// checked to be disabled by default, as a `PluginConfig` for the plugin's own config struct:
/// a test that parses it keeps the documented keys from drifting away from the code.
pub fn default_toml_section(kind: &str, name: &str) -> twc_core::plugin::PluginConfig {
    let text = include_str!("../../../config/default.toml");
    let root: toml::Value = toml::from_str(text).expect("config/default.toml is valid TOML");
    let section = root
        .get(kind)
        .and_then(|k| k.get(name))
        .unwrap_or_else(|| panic!("config/default.toml has no [{kind}.{name}] section"))
        .clone();
    assert_eq!(
        section.get("enabled").and_then(toml::Value::as_bool),
        Some(false),
        "[{kind}.{name}] must be disabled by default"
    );
    let body = toml::to_string(&section).expect("a TOML table serialises");
    twc_core::plugin::PluginConfig::from_toml(&format!("{kind}.{name}"), &body)
        .expect("the section is a table")
}

/// The `[<kind>.<name>]` section of the project's `config/examples/<file>`, checked to be
/// enabled, as a `PluginConfig` for the plugin's own config struct: a test that builds it keeps
/// the complete example set-up working.
pub fn example_file_section(file: &str, kind: &str, name: &str) -> twc_core::plugin::PluginConfig {
    let path = format!(
        "{}/../../config/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let root: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid TOML: {e}"));
    let section = root
        .get(kind)
        .and_then(|k| k.get(name))
        .unwrap_or_else(|| panic!("{path} has no [{kind}.{name}] section"))
        .clone();
    assert_eq!(
        section.get("enabled").and_then(toml::Value::as_bool),
        Some(true),
        "[{kind}.{name}] in {path} must be enabled"
    );
    let body = toml::to_string(&section).expect("a TOML table serialises");
    twc_core::plugin::PluginConfig::from_toml(&format!("{kind}.{name}"), &body)
        .expect("the section is a table")
}
