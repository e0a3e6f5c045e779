use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_iotawatt::{Outputs, build, parse_query, parse_query_value, parse_status};
use twc_testkit::{assert_reading, assert_w, fixture};

fn outputs() -> Outputs {
    Outputs {
        generation: Some("Solar".into()),
        consumption: Some("Total_Consumption".into()),
        grid: Some("Grid".into()),
        invert_grid: false,
        voltage: Some("Voltage".into()),
    }
}

#[test]
fn status_outputs() {
    let r = parse_status(&fixture!("status_outputs_RECONSTRUCTED.json"), &outputs()).unwrap();
    assert_reading(&r, Some(1111.2), Some(2814.7), Some(1703.5));
    assert_eq!(r.phase_voltages, Some(vec![229.8]));
}

#[test]
fn status_full_with_empty_outputs_is_a_config_error() {
    let e = parse_status(
        &fixture!("status_full_openhab_test_resource.json"),
        &outputs(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("\"Solar\"") && e.message.contains("none"),
        "{e}"
    );
}

#[test]
fn unknown_output_lists_the_real_ones() {
    let want = Outputs {
        generation: Some("PV".into()),
        ..Outputs::default()
    };
    let e = parse_status(&fixture!("status_outputs_RECONSTRUCTED.json"), &want).unwrap_err();
    assert!(
        e.message
            .contains("Total_Consumption, Solar, Grid, Voltage"),
        "{e}"
    );
    let want = Outputs {
        generation: Some("Voltage".into()),
        ..Outputs::default()
    };
    assert_eq!(
        parse_status(&fixture!("status_outputs_RECONSTRUCTED.json"), &want)
            .unwrap_err()
            .kind,
        ErrorKind::Config
    );
}

#[test]
fn query_select_watts_group_all() {
    assert_w(
        "value",
        Some(
            parse_query_value(&fixture!("query_select_watts_group_all_RECONSTRUCTED.json"))
                .unwrap(),
        ),
        1111.2,
    );
}

#[test]
fn query_select_json_header_doc_example() {
    let (labels, rows) =
        parse_query(&fixture!("query_select_json_header_doc_example.json")).unwrap();
    assert_eq!(labels, vec!["Time", "Heat_Pump", "misc"]);
    assert_eq!(rows.len(), 24);
    assert_eq!(rows[0][1].as_f64(), Some(333.0));
}

#[test]
fn query_error_400_doc_example() {
    let e = parse_query(&fixture!("query_error_400_doc_example.json")).unwrap_err();
    assert!(e.message.contains("heap_pump"), "{e}");
}

fn cfg(t: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.iotawatt", t).unwrap()
}

#[test]
fn example_config_builds_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).unwrap();
    let e = build(&cfg("url = \"http://h\"")).err().unwrap();
    assert!(e.to_string().contains("generation_output"), "{e}");
    let e = build(&cfg("url = \"http://h\"\noutputGeneration = \"x\""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("outputGeneration"), "{e}");
}

fn source(base: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\ngeneration_output = \"Solar\"\nconsumption_output = \"Total_Consumption\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        source,
        &[("/status", fixture!("status_outputs_RECONSTRUCTED.json"))],
    )
    .await;
}

#[tokio::test]
async fn sends_the_outputs_query_and_reports_missing_outputs() {
    let s = twc_testkit::wiremock::MockServer::start().await;
    twc_testkit::serve_fixture(
        &s,
        "/status",
        fixture!("status_full_openhab_test_resource.json"),
    )
    .await;
    let e = source(&s.uri()).read().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("GET /status: no output named"),
        "{e}"
    );
    let reqs = s.received_requests().await.unwrap();
    assert_eq!(reqs[0].url.query(), Some("outputs"));
}
