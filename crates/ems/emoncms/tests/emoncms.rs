//! EmonCMS against its recorded feed replies, served by a mock server.

use tokio::time::Instant;
use twc_core::model::Quantity;
use twc_core::plugin::{EmsSource, ErrorKind, Kind, PluginConfig, Registry};
use twc_ems_emoncms::{self as plugin, Feed, build, parse_fetch, parse_timevalue, reading};
use twc_testkit::wiremock::matchers::{header, path, query_param};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_testkit::{assert_reading, fixture};

const CONS_GEN: [Feed; 2] = [
    Feed {
        quantity: Quantity::Consumption,
        id: 1,
    },
    Feed {
        quantity: Quantity::Generation,
        id: 2,
    },
];

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn timevalue(age_secs: u64) -> Vec<u8> {
    format!("{{\"time\":{},\"value\":2814.7}}", unix_now() - age_secs).into_bytes()
}

#[test]
fn both_feeds_land_on_their_own_quantity_not_swapped() {
    let body = fixture!("feed_fetch_json_ids_consumption_generation_RECONSTRUCTED.json");
    let v = parse_fetch(&body, &CONS_GEN).unwrap();
    let r = reading(&CONS_GEN, &v, false);
    // TWCManager pops from the end and would report generation 2814.7, consumption 1111.
    assert_reading(&r, Some(1111.0), Some(2814.7), None);
}

#[test]
fn a_missing_feed_is_a_config_error_and_a_null_value_is_transient() {
    let e = parse_fetch(
        &fixture!("feed_fetch_json_ids_missing_feed_RECONSTRUCTED.json"),
        &CONS_GEN,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("feed 2") && e.message.contains("generation_feed"),
        "{e}"
    );
    let e = parse_fetch(
        &fixture!("feed_fetch_json_ids_null_value_RECONSTRUCTED.json"),
        &CONS_GEN,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(
        e.message.contains("feed 1") && e.message.contains("consumption_feed"),
        "{e}"
    );
}

#[test]
fn r12_garbage_and_refusals_never_read_as_zero() {
    let refusal = fixture!("feed_value_json_missing_feed_source.json");
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("EmonCMS refusal", refusal.clone(), ErrorKind::Config),
        (
            "bad key",
            br#"{"success":false,"message":"Username or password empty"}"#.to_vec(),
            ErrorKind::Auth,
        ),
        (
            "one value for two feeds",
            b"[2814.7]".to_vec(),
            ErrorKind::Protocol,
        ),
        (
            "a bare number",
            fixture!("feed_value_json_RECONSTRUCTED.json"),
            ErrorKind::Protocol,
        ),
        ("text", b"[\"n/a\",1111]".to_vec(), ErrorKind::Protocol),
        ("true", b"[true,1111]".to_vec(), ErrorKind::Protocol),
    ];
    for (what, body, kind) in cases {
        match parse_fetch(&body, &CONS_GEN) {
            Ok(v) => panic!("{what}: gave values {v:?}"),
            Err(e) => assert_eq!(e.kind, kind, "{what}: {e}"),
        }
    }
    assert_eq!(
        parse_timevalue(&refusal).unwrap_err().kind,
        ErrorKind::Config
    );
    assert_eq!(
        parse_timevalue(br#"{"time":null,"value":null}"#)
            .unwrap_err()
            .kind,
        ErrorKind::Transient
    );
    assert_eq!(
        parse_timevalue(&fixture!("feed_value_json_RECONSTRUCTED.json"))
            .unwrap_err()
            .kind,
        ErrorKind::Protocol
    );
}

#[test]
fn signs_grid_inversion_and_night_noise() {
    let feeds = [
        Feed {
            quantity: Quantity::Generation,
            id: 2,
        },
        Feed {
            quantity: Quantity::Grid,
            id: 3,
        },
    ];
    let r = reading(&feeds, &[-4.0, 1500.0], false);
    assert_reading(&r, Some(0.0), None, Some(1500.0));
    let r = reading(&feeds, &[3000.0, 1500.0], true);
    assert_reading(&r, Some(3000.0), None, Some(-1500.0));
}

fn cfg(body: &str) -> PluginConfig {
    PluginConfig::from_toml("ems.emoncms", body).unwrap()
}

fn source(base: &str, extra: &str) -> Box<dyn EmsSource> {
    build(&cfg(&format!(
        "url = \"{base}\"\napi_key = \"KEY\"\nconsumption_feed = 1\ngeneration_feed = 2\nhttp = {{ timeout_secs = 0.5, retries = 0 }}\n{extra}"
    )))
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    twc_testkit::check_http_source(
        |base| source(&format!("{base}/emoncms"), ""),
        &[
            (
                "/emoncms/feed/fetch.json",
                fixture!("feed_fetch_json_ids_consumption_generation_RECONSTRUCTED.json"),
            ),
            ("/emoncms/feed/timevalue.json", timevalue(1)),
        ],
    )
    .await;
}

async fn server(age_1: u64, age_2: u64) -> MockServer {
    let s = MockServer::start().await;
    Mock::given(path("/feed/fetch.json"))
        .and(query_param("ids", "1,2"))
        .and(header("authorization", "Bearer KEY"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture!(
            "feed_fetch_json_ids_consumption_generation_RECONSTRUCTED.json"
        )))
        .mount(&s)
        .await;
    for (id, age) in [("1", age_1), ("2", age_2)] {
        Mock::given(path("/feed/timevalue.json"))
            .and(query_param("id", id))
            .and(header("authorization", "Bearer KEY"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(timevalue(age)))
            .mount(&s)
            .await;
    }
    s
}

#[tokio::test]
async fn the_oldest_feed_write_dates_the_reading() {
    let s = server(5, 300).await;
    let r = source(&s.uri(), "").read().await.unwrap();
    assert_reading(&r, Some(1111.0), Some(2814.7), None);
    let age = r.age_secs(Instant::now());
    assert!((299.0..306.0).contains(&age), "age {age}");
    // Without the time check the answer's arrival counts.
    let r = source(&s.uri(), "check_time = false").read().await.unwrap();
    assert!(r.age_secs(Instant::now()) < 5.0);
    assert_eq!(
        s.received_requests().await.unwrap().len(),
        4,
        "3 requests with check_time, 1 without"
    );
}

#[test]
fn registers_itself_under_its_section_name() {
    let registry = Registry::collect().expect("no duplicate plugin names");
    assert!(
        registry
            .list()
            .iter()
            .any(|(k, n, s)| *k == Kind::Ems && *n == plugin::NAME && !s.is_empty())
    );
}

#[test]
fn the_examples_build_and_bad_config_is_named() {
    build(&cfg(include_str!("../example.toml"))).expect("example.toml");
    build(&twc_testkit::example_file_section(
        "emoncms.toml",
        "ems",
        plugin::NAME,
    ))
    .expect("config/examples/emoncms.toml");
    let e = build(&twc_testkit::default_toml_section("ems", plugin::NAME))
        .err()
        .unwrap();
    assert!(e.to_string().contains("url"), "{e}");
    for (body, key) in [
        ("url = \"http://e\"", "generation_feed"),
        ("url = \"emonpi.local\"\ngrid_feed = 1", "url"),
        (
            "url = \"http://e\"\ngrid_feed = 1\ngeneration_feed = 1",
            "feed 1",
        ),
        (
            "url = \"http://e\"\ngeneration_feed = 1\ninvert_grid = true",
            "invert_grid",
        ),
        (
            "url = \"http://e\"\ngeneration_feed = \"solar\"",
            "expected u32",
        ),
        (
            "url = \"http://e\"\ngeneration_feed = 1\napi_key = \"\"",
            "api_key",
        ),
        (
            "url = \"http://e\"\ngeneration_feed = 1\napikey = \"k\"",
            "apikey",
        ),
    ] {
        let e = build(&cfg(body))
            .err()
            .unwrap_or_else(|| panic!("{body} built"));
        assert!(e.to_string().contains(key), "{body}: {e}");
    }
}
