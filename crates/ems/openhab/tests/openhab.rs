use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_openhab::{build, parse_item_state};
use twc_testkit::wiremock::MockServer;
use twc_testkit::{assert_reading, fixture, serve_fixture};

#[test]
fn rest_items_house_consumption_state_quantity() {
    let w = parse_item_state(&fixture!(
        "rest_items_House_Consumption_state_quantity_RECONSTRUCTED.txt"
    ))
    .unwrap();
    assert!((w - 2814.74).abs() < 1e-9);
}

#[test]
fn rest_items_pv_power_state_plain() {
    assert_eq!(
        parse_item_state(&fixture!(
            "rest_items_PV_Power_state_plain_RECONSTRUCTED.txt"
        ))
        .unwrap(),
        1111.0
    );
}

#[test]
fn rest_items_state_quantity_kw_is_converted() {
    let w = parse_item_state(&fixture!("rest_items_state_quantity_kW_RECONSTRUCTED.txt")).unwrap();
    assert!((w - 1234.0).abs() < 1e-9, "{w}");
}

#[test]
fn rest_items_state_null_and_undef_are_errors() {
    for f in [
        fixture!("rest_items_state_NULL_RECONSTRUCTED.txt"),
        fixture!("rest_items_state_UNDEF_RECONSTRUCTED.txt"),
    ] {
        assert_eq!(parse_item_state(&f).unwrap_err().kind, ErrorKind::Transient);
    }
    assert!(parse_item_state(b"230 V").is_err());
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.openhab", t).unwrap()
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\ngeneration_item = \"PV_Power\"\nconsumption_item = \"House_Consumption\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("url = \"http://h\"")).err().unwrap();
    assert!(e.to_string().contains("generation_item"), "{e}");
    let e = build(&cfg("url = \"http://h\"\ngeneration_item = \"a/b\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("generation_item"), "{e}");
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        source,
        &[
            (
                "/rest/items/PV_Power/state",
                fixture!("rest_items_PV_Power_state_plain_RECONSTRUCTED.txt"),
            ),
            (
                "/rest/items/House_Consumption/state",
                fixture!("rest_items_House_Consumption_state_quantity_RECONSTRUCTED.txt"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn reads_items_and_null_fails_the_read() {
    let s = MockServer::start().await;
    serve_fixture(
        &s,
        "/rest/items/PV_Power/state",
        fixture!("rest_items_state_quantity_kW_RECONSTRUCTED.txt"),
    )
    .await;
    serve_fixture(
        &s,
        "/rest/items/House_Consumption/state",
        fixture!("rest_items_House_Consumption_state_quantity_RECONSTRUCTED.txt"),
    )
    .await;
    let src = source(&s.uri());
    assert_reading(
        &src.read().await.unwrap(),
        Some(1234.0),
        Some(2814.74),
        None,
    );
    s.reset().await;
    serve_fixture(
        &s,
        "/rest/items/PV_Power/state",
        fixture!("rest_items_state_NULL_RECONSTRUCTED.txt"),
    )
    .await;
    let e = src.read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.to_string().contains("/rest/items/PV_Power/state"), "{e}");
}
