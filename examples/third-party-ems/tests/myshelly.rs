use twc_core::plugin::{EmsPlugin, PluginConfig};
use twc_example_third_party_ems::{build, parse_status};
use twc_testkit::assert_reading;

const STATUS: &[u8] = br#"{"emeters":[{"power":512.3,"voltage":231.2,"is_valid":true},{"power":-20.5,"voltage":230.8,"is_valid":true},{"power":0.0,"voltage":229.9,"is_valid":true}],"total_power":491.8}"#;

#[test]
fn parses_a_3em_status() {
    let r = parse_status(STATUS).unwrap();
    assert_reading(&r, None, None, Some(491.8));
    assert_eq!(r.phase_voltages, Some(vec![231.2, 230.8, 229.9]));
    assert!(parse_status(b"{}").is_err());
}

#[test]
fn registered_and_example_builds() {
    let d = inventory::iter::<EmsPlugin>()
        .find(|d| d.name == "myshelly")
        .expect("registered");
    (d.build)(&PluginConfig::from_toml("ems.myshelly", d.example).unwrap()).unwrap();
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        |base| {
            build(
                &PluginConfig::from_toml(
                    "ems.myshelly",
                    &format!("url = \"{base}\"\nhttp = {{ timeout_secs = 0.5, retries = 0 }}"),
                )
                .unwrap(),
            )
            .unwrap()
        },
        &[("/status", STATUS.to_vec())],
    )
    .await;
}
