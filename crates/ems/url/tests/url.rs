use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_url::build;
use twc_plugin_kit::ValueSpec;
use twc_testkit::wiremock::MockServer;
use twc_testkit::{assert_reading, fixture, serve_fixture};

fn plain() -> ValueSpec {
    ValueSpec::default()
}

#[test]
fn consumption_plain_number() {
    assert_eq!(
        plain()
            .extract(&fixture!("consumption_plain_number_RECONSTRUCTED.txt"))
            .unwrap(),
        2814.7
    );
}

#[test]
fn generation_number_with_unit() {
    assert_eq!(
        plain()
            .extract(&fixture!("generation_number_with_unit_RECONSTRUCTED.txt"))
            .unwrap(),
        1111.0
    );
}

#[test]
fn generation_whitespace_newline() {
    assert_eq!(
        plain()
            .extract(&fixture!("generation_whitespace_newline_RECONSTRUCTED.txt"))
            .unwrap(),
        1111.0
    );
}

#[test]
fn invalid_non_numeric_is_an_error() {
    assert_eq!(
        plain()
            .extract(&fixture!("invalid_non_numeric_RECONSTRUCTED.txt"))
            .unwrap_err()
            .kind,
        ErrorKind::Protocol
    );
    assert!(plain().extract(b"unavailable").is_err());
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.url", t).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("")).err().unwrap();
    assert!(e.to_string().contains("generation"), "{e}");
    let e = build(&cfg("grid = { url = \"http://h\", pointer = \"power\" }"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("grid.pointer"), "{e}");
    let e = build(&cfg("grid = { url = \"h\" }")).err().unwrap();
    assert!(e.to_string().contains("grid.url"), "{e}");
    let e = build(&cfg("grid = { url = \"http://h\", scael = 2 }"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("scael"), "{e}");
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "generation = {{ url = \"{base}/solar\" }}\nconsumption = {{ url = \"{base}/house\" }}\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance_plain() {
    twc_testkit::check_http_source(
        source,
        &[
            (
                "/solar",
                fixture!("generation_number_with_unit_RECONSTRUCTED.txt"),
            ),
            (
                "/house",
                fixture!("consumption_plain_number_RECONSTRUCTED.txt"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn conformance_json_pointer() {
    twc_testkit::check_http_source(
        |base| {
            build(&cfg(&format!(
                "grid = {{ url = \"{base}/meter\", pointer = \"/data/grid\", scale = 1000.0, invert = true }}\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
            )))
            .unwrap()
        },
        &[("/meter", br#"{"data": {"grid": "1.5"}}"#.to_vec())],
    )
    .await;
}

#[tokio::test]
async fn json_pointer_scale_and_sign() {
    let s = MockServer::start().await;
    serve_fixture(
        &s,
        "/meter",
        br#"{"data": {"grid": 1.5, "pv": "2.5 kW"}}"#.to_vec(),
    )
    .await;
    let src = build(&cfg(&format!(
        "grid = {{ url = \"{0}/meter\", pointer = \"/data/grid\", scale = 1000.0, invert = true }}\ngeneration = {{ url = \"{0}/meter\", pointer = \"/data/pv\" }}",
        s.uri()
    )))
    .unwrap();
    assert_reading(
        &src.read().await.unwrap(),
        Some(2500.0),
        None,
        Some(-1500.0),
    );
}

#[tokio::test]
async fn r12_timestamp_pointer_dates_the_value() {
    let s = MockServer::start().await;
    let ten_min_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 600_000;
    // A generic JSON endpoint (no vendor format) whose value says when it was measured, in ms.
    serve_fixture(
        &s,
        "/meter",
        format!(r#"{{"power": 1703.5, "time": {ten_min_ago}}}"#).into_bytes(),
    )
    .await;
    serve_fixture(
        &s,
        "/pv",
        fixture!("generation_number_with_unit_RECONSTRUCTED.txt"),
    )
    .await;
    let src = build(&cfg(&format!(
        "grid = {{ url = \"{0}/meter\", pointer = \"/power\", timestamp_pointer = \"/time\" }}\ngeneration = {{ url = \"{0}/pv\" }}",
        s.uri()
    )))
    .unwrap();
    let r = src.read().await.unwrap();
    assert_reading(&r, Some(1111.0), None, Some(1703.5));
    let age = r.measured_at.elapsed().as_secs_f64();
    assert!((age - 600.0).abs() < 3.0, "age {age}");

    let e = build(&cfg(&format!(
        "grid = {{ url = \"{}/meter\", timestamp_pointer = \"time\" }}",
        s.uri()
    )))
    .err()
    .unwrap();
    assert!(e.to_string().contains("grid.timestamp_pointer"), "{e}");
}
