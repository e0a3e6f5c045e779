//! The Fleet API plugin against recorded answers and a local mock Fleet API, token endpoint
//! and Vehicle Command proxy (wiremock, real time).

use twc_core::plugin::{ErrorKind, PluginConfig, VehicleApi};
use twc_testkit::fixture;
use twc_testkit::wiremock::matchers::{body_json, body_string_contains, header, method, path};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_vehicle_teslaapi::auth::{TokenStore, Tokens};
use twc_vehicle_teslaapi::parse::{
    CommandResult, parse_command, parse_vehicle_data, parse_vehicles,
};
use twc_vehicle_teslaapi::{TeslaApi, build_api};

const VIN: &str = "5YJSA11111111111";

#[test]
fn vehicles_list_doc_example() {
    let l = parse_vehicles(&fixture!("vehicles_list_doc_example.json")).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].0.vin, VIN);
    assert_eq!(l[0].0.name.as_deref(), Some("Nikola 2.0"));
    assert_eq!(l[0].1.as_deref(), Some("online"));
}

#[test]
fn vehicle_data_doc_example_charging() {
    let d = parse_vehicle_data(&fixture!("vehicle_data_doc_example.json"), 1_607_623_900).unwrap();
    assert_eq!(d.soc_pct, Some(59.0));
    assert_eq!(d.limit_pct, Some(90.0));
    assert_eq!(d.charging, Some(true));
    assert_eq!(d.plugged_in, Some(true));
    assert_eq!(d.actual_amps, Some(40.0));
    assert!(d.latitude.is_some() && d.longitude.is_some());
}

#[test]
fn vehicle_data_plugged_stopped_and_disconnected_driving() {
    let d = parse_vehicle_data(
        &fixture!("vehicle_data_plugged_stopped_RECONSTRUCTED.json"),
        0,
    )
    .unwrap();
    assert_eq!(d.charging_state.as_deref(), Some("Stopped"));
    assert_eq!((d.plugged_in, d.charging), (Some(true), Some(false)));
    let d = parse_vehicle_data(
        &fixture!("vehicle_data_disconnected_driving_RECONSTRUCTED.json"),
        0,
    )
    .unwrap();
    assert_eq!(d.plugged_in, Some(false));
}

#[test]
fn command_answers_as_twcmanager_reads_them() {
    assert_eq!(
        parse_command(&fixture!("command_charge_start_success.json")).unwrap(),
        CommandResult::Done
    );
    assert_eq!(
        parse_command(&fixture!("command_set_charge_limit_success.json")).unwrap(),
        CommandResult::Done
    );
    assert_eq!(
        parse_command(&fixture!(
            "command_set_charge_limit_already_set_RECONSTRUCTED.json"
        ))
        .unwrap(),
        CommandResult::Done
    );
    assert_eq!(
        parse_command(&fixture!(
            "command_charge_stop_not_charging_RECONSTRUCTED.json"
        ))
        .unwrap(),
        CommandResult::Done
    );
    let all: serde_json::Value = serde_json::from_slice(&fixture!(
        "command_responses_observed_twcmanager_source_comments.json"
    ))
    .unwrap();
    let p = |k: &str| parse_command(all[k].to_string().as_bytes());
    assert_eq!(
        p("charge_start_or_stop_success").unwrap(),
        CommandResult::Done
    );
    assert_eq!(p("car_done_charging").unwrap(), CommandResult::Done);
    assert!(matches!(
        p("transient_could_not_wake_buses").unwrap(),
        CommandResult::Retry(_)
    ));
    let e = p("car_not_reachable").unwrap_err().to_string();
    assert!(e.contains("vehicle unavailable"), "{e}");
    assert!(p("upstream_internal_error").is_err());
    assert!(p("operation_timedout").is_err());
}

struct Rig {
    fleet: MockServer,
    proxy: MockServer,
    auth: MockServer,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn new() -> Rig {
        Rig {
            fleet: MockServer::start().await,
            proxy: MockServer::start().await,
            auth: MockServer::start().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn store(&self) -> TokenStore {
        TokenStore::new(self.dir.path().join("t.bin"), self.dir.path().join("k.bin"))
    }
    fn seed(&self, access: &str, expires_in: i64) {
        self.store()
            .save(&Tokens {
                access_token: access.into(),
                refresh_token: "REFRESH1".into(),
                expires_unix: chrono::Utc::now().timestamp() + expires_in,
            })
            .unwrap();
    }
    fn api(&self, extra: &str) -> TeslaApi {
        let text = format!(
            "url = \"{}\"\nproxy_url = \"{}\"\nclient_id = \"my-app\"\nauthorize_url = \"{}/oauth2/v3/authorize\"\ntoken_url = \"{}/oauth2/v3/token\"\ntoken_file = \"{}\"\nkey_file = \"{}\"\nwake_delay_secs = 0\nmin_data_interval_secs = 0\ntimeout_secs = 2\n{extra}",
            self.fleet.uri(),
            self.proxy.uri(),
            self.auth.uri(),
            self.auth.uri(),
            self.dir.path().join("t.bin").display(),
            self.dir.path().join("k.bin").display(),
        );
        build_api(&PluginConfig::from_toml("vehicle.teslaapi", &text).unwrap()).unwrap()
    }
}

fn token_answer(access: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": access, "refresh_token": "REFRESH2", "expires_in": 28800, "token_type": "Bearer"
    }))
}

async fn serve(s: &MockServer, verb: &str, p: &str, bearer: &str, r: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("authorization", format!("Bearer {bearer}").as_str()))
        .respond_with(r)
        .mount(s)
        .await;
}

fn ok(body: Vec<u8>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_bytes(body)
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_the_call_and_stored_encrypted() {
    let r = Rig::new().await;
    r.seed("OLD", 60);
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=REFRESH1"))
        .respond_with(token_answer("NEW"))
        .expect(1)
        .mount(&r.auth)
        .await;
    serve(
        &r.fleet,
        "GET",
        "/api/1/vehicles",
        "NEW",
        ok(fixture!("vehicles_list_doc_example.json")),
    )
    .await;
    let api = r.api("");
    let l = api.list().await.unwrap();
    assert_eq!(l[0].vin, VIN);
    let t = r.store().load().unwrap().unwrap();
    assert_eq!(
        (t.access_token.as_str(), t.refresh_token.as_str()),
        ("NEW", "REFRESH2")
    );
    let raw = std::fs::read(r.dir.path().join("t.bin")).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("NEW"));
    // A second call uses the new token without another refresh (expect(1) above).
    api.list().await.unwrap();
    let acc = api.account();
    assert!(acc.logged_in && acc.login_supported && acc.can_command);
    let shown = serde_json::to_string(&acc).unwrap();
    assert!(
        !shown.contains("NEW") && !shown.contains("REFRESH"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_and_a_refused_refresh_asks_for_a_login() {
    let r = Rig::new().await;
    r.seed("OLD", 86_400);
    serve(
        &r.fleet,
        "GET",
        "/api/1/vehicles",
        "OLD",
        ResponseTemplate::new(401),
    )
    .await;
    serve(
        &r.fleet,
        "GET",
        "/api/1/vehicles",
        "NEW",
        ok(fixture!("vehicles_list_doc_example.json")),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .respond_with(token_answer("NEW"))
        .mount(&r.auth)
        .await;
    assert_eq!(r.api("").list().await.unwrap().len(), 1);

    let r = Rig::new().await;
    r.seed("OLD", 86_400);
    serve(
        &r.fleet,
        "GET",
        "/api/1/vehicles",
        "OLD",
        ResponseTemplate::new(401),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"error": "login_required"})),
        )
        .mount(&r.auth)
        .await;
    let api = r.api("");
    let e = api.list().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.chain().contains("log in again"), "{}", e.chain());
    assert!(!api.account().logged_in);
    assert!(
        r.store().load().unwrap().is_none(),
        "refused tokens are forgotten"
    );
    let e = api.list().await.unwrap_err();
    assert!(e.chain().contains("not logged in"), "{}", e.chain());
}

#[tokio::test]
async fn an_asleep_car_408_reads_as_asleep_and_a_command_wakes_it_first() {
    let r = Rig::new().await;
    r.seed("T", 86_400);
    serve(
        &r.fleet,
        "GET",
        &format!("/api/1/vehicles/{VIN}/vehicle_data"),
        "T",
        ResponseTemplate::new(408)
            .set_body_bytes(fixture!("vehicle_unavailable_asleep_evcc_test.json")),
    )
    .await;
    let api = r.api("");
    let cs = api.charge_state(VIN).await.unwrap();
    assert_eq!(cs.state.as_deref(), Some("asleep"));
    assert_eq!(cs.soc_pct, None, "asleep is not 0 %");
    // Asleep is cached: the next read asks the cheap endpoint, which does not wake the car.
    serve(
        &r.fleet,
        "GET",
        &format!("/api/1/vehicles/{VIN}"),
        "T",
        ok(fixture!("wake_up_asleep_RECONSTRUCTED.json")),
    )
    .await;
    assert_eq!(
        api.charge_state(VIN).await.unwrap().state.as_deref(),
        Some("asleep")
    );
    // A command wakes it first; the first wake_up usually answers "asleep".
    Mock::given(method("POST"))
        .and(path(format!("/api/1/vehicles/{VIN}/wake_up")))
        .respond_with(ok(fixture!("wake_up_asleep_RECONSTRUCTED.json")))
        .up_to_n_times(1)
        .mount(&r.fleet)
        .await;
    let e = api.start(VIN).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.chain().contains("waking up"), "{}", e.chain());
    Mock::given(method("POST"))
        .and(path(format!("/api/1/vehicles/{VIN}/wake_up")))
        .respond_with(ok(fixture!("wake_up_doc_example.json")))
        .mount(&r.fleet)
        .await;
    serve(
        &r.proxy,
        "POST",
        &format!("/api/1/vehicles/{VIN}/command/charge_start"),
        "T",
        ok(fixture!("command_charge_start_success.json")),
    )
    .await;
    api.start(VIN).await.unwrap();
}

#[tokio::test]
async fn a_car_away_from_home_is_never_woken() {
    let r = Rig::new().await;
    r.seed("T", 86_400);
    // The plugged-stopped fixture is at 33.11, -88.11; home is elsewhere.
    serve(
        &r.fleet,
        "GET",
        &format!("/api/1/vehicles/{VIN}/vehicle_data"),
        "T",
        ok(fixture!("vehicle_data_plugged_stopped_RECONSTRUCTED.json")),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/1/vehicles/{VIN}/wake_up")))
        .respond_with(ok(fixture!("wake_up_doc_example.json")))
        .expect(0)
        .mount(&r.fleet)
        .await;
    let api = r.api("home = { latitude = 52.52, longitude = 13.40, radius_m = 500 }");
    let cs = api.charge_state(VIN).await.unwrap();
    assert_eq!(cs.at_home, Some(false));
    api.list().await.ok(); // not served: the car stays as it was
    // It falls asleep (408 on a command): no wake while it is away.
    serve(
        &r.proxy,
        "POST",
        &format!("/api/1/vehicles/{VIN}/command/charge_stop"),
        "T",
        ResponseTemplate::new(408)
            .set_body_bytes(fixture!("vehicle_unavailable_asleep_evcc_test.json")),
    )
    .await;
    let e = api.stop(VIN).await.unwrap_err();
    assert!(e.chain().contains("asleep or offline"), "{}", e.chain());
    let e = api.stop(VIN).await.unwrap_err();
    assert!(
        e.chain().contains("not at home: not waking it"),
        "{}",
        e.chain()
    );
}

#[tokio::test]
async fn a_429_backs_off_for_retry_after_without_calling_again() {
    let r = Rig::new().await;
    r.seed("T", 86_400);
    Mock::given(method("GET"))
        .and(path("/api/1/vehicles"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .expect(1)
        .mount(&r.fleet)
        .await;
    let api = r.api("");
    let e = api.list().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.chain().contains("backing off 120 s"), "{}", e.chain());
    let e = api.list().await.unwrap_err();
    assert!(e.chain().contains("backing off for"), "{}", e.chain());
}

#[tokio::test]
async fn a_5xx_is_transient_and_backs_off_a_minute() {
    let r = Rig::new().await;
    r.seed("T", 86_400);
    Mock::given(method("GET"))
        .and(path("/api/1/vehicles"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            serde_json::json!({"response": null, "error": "upstream internal error"}),
        ))
        .expect(1)
        .mount(&r.fleet)
        .await;
    let api = r.api("");
    let e = api.list().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.chain()
            .contains("HTTP 503: upstream internal error; backing off 60 s"),
        "{}",
        e.chain()
    );
    assert!(
        api.list()
            .await
            .unwrap_err()
            .chain()
            .contains("backing off for")
    );
}

#[tokio::test]
async fn commands_go_signed_through_the_proxy_and_its_failures_are_named() {
    let r = Rig::new().await;
    r.seed("T", 86_400);
    Mock::given(method("POST"))
        .and(path(format!(
            "/api/1/vehicles/{VIN}/command/set_charge_limit"
        )))
        .and(header("authorization", "Bearer T"))
        .and(body_json(serde_json::json!({"percent": 80})))
        .respond_with(ok(fixture!("command_set_charge_limit_success.json")))
        .expect(1)
        .mount(&r.proxy)
        .await;
    let api = r.api("");
    api.set_limit(VIN, 80).await.unwrap();
    // The proxy refuses (key not paired): the reason is shown.
    Mock::given(method("POST")).and(path(format!("/api/1/vehicles/{VIN}/command/charge_start")))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({"response": null, "error": "vehicle rejected request: your public key has not been paired with the vehicle"})))
        .mount(&r.proxy).await;
    let e = api.start(VIN).await.unwrap_err();
    assert!(
        e.chain().contains("public key has not been paired"),
        "{}",
        e.chain()
    );
    // The legacy endpoint (proxy_url pointing at the Fleet API itself).
    Mock::given(method("POST"))
        .and(path(format!("/api/1/vehicles/{VIN}/command/charge_stop")))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_bytes(fixture!("command_vcp_required_RECONSTRUCTED.json")),
        )
        .mount(&r.proxy)
        .await;
    let e = api.stop(VIN).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.chain().contains("set proxy_url"), "{}", e.chain());
    // A refusal in the answer.
    Mock::given(method("POST"))
        .and(path(format!(
            "/api/1/vehicles/{VIN}/command/set_charging_amps"
        )))
        .respond_with(ok(
            br#"{"response":{"result":false,"reason":"disconnected"}}"#.to_vec(),
        ))
        .mount(&r.proxy)
        .await;
    assert!(
        api.set_amps(VIN, 5)
            .await
            .unwrap_err()
            .chain()
            .contains("refused: disconnected")
    );
    // The proxy is not running.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let api = r
        .api("")
        .with_proxy_for_tests(&format!("http://127.0.0.1:{port}"));
    let e = api.start(VIN).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.chain().contains("cannot reach the Vehicle Command proxy"),
        "{}",
        e.chain()
    );
}

#[tokio::test]
async fn login_with_pkce_from_start_to_stored_tokens() {
    let r = Rig::new().await;
    let api = r.api("");
    assert!(!api.account().logged_in);
    let url = api
        .login_url("http://twc.local:8080/vehicles/callback")
        .unwrap();
    assert!(
        url.starts_with(&format!("{}/oauth2/v3/authorize?", r.auth.uri())),
        "{url}"
    );
    for part in [
        "response_type=code",
        "client_id=my-app",
        "code_challenge_method=S256",
        "redirect_uri=http%3A%2F%2Ftwc.local%3A8080%2Fvehicles%2Fcallback",
    ] {
        assert!(url.contains(part), "{part} missing in {url}");
    }
    let state = url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    // A wrong state is refused, and the login must start again.
    let e = api.finish_login("CODE", "forged").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let url = api
        .login_url("http://twc.local:8080/vehicles/callback")
        .unwrap();
    let state2 = url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(state, state2);
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=CODE"))
        .and(body_string_contains("code_verifier="))
        .respond_with(token_answer("FIRST"))
        .expect(1)
        .mount(&r.auth)
        .await;
    api.finish_login("CODE", &state2).await.unwrap();
    assert!(api.account().logged_in);
    assert_eq!(r.store().load().unwrap().unwrap().access_token, "FIRST");
}

#[test]
fn bad_config_names_the_key() {
    let e = build_api(&PluginConfig::from_toml("vehicle.teslaapi", "region = \"mars\"").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("region") && e.contains("na, eu or cn"), "{e}");
    let e = build_api(
        &PluginConfig::from_toml("vehicle.teslaapi", "proxy_url = \"localhost:4443\"").unwrap(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("proxy_url"), "{e}");
    let e = build_api(&PluginConfig::from_toml("vehicle.teslaapi", "clientid = \"x\"").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("clientid"), "{e}");
    let ex = PluginConfig::from_toml("vehicle.teslaapi", include_str!("../example.toml")).unwrap();
    build_api(&ex).unwrap();
}

#[tokio::test]
async fn charging_amps_below_5_a_go_twice_within_the_daily_budget_and_a_429_holds_them() {
    let r = Rig::new().await;
    r.seed("T", 86_400);
    let amps = |a: u8| {
        Mock::given(method("POST"))
            .and(path(format!(
                "/api/1/vehicles/{VIN}/command/set_charging_amps"
            )))
            .and(header("authorization", "Bearer T"))
            .and(body_json(serde_json::json!({ "charging_amps": a })))
            .respond_with(ok(fixture!("command_charge_start_success.json")))
    };
    // Below 5 A a car takes the value from the second call only: sent twice.
    amps(3).expect(2).mount(&r.proxy).await;
    // At 5 A and above: once.
    amps(16).expect(1).mount(&r.proxy).await;
    let api = r.api("calls_per_day = 4");
    api.set_amps(VIN, 3).await.unwrap();
    api.set_amps(VIN, 16).await.unwrap();
    // Three calls used of four: a low value needs two, the second is refused by the budget.
    amps(2).expect(1).mount(&r.proxy).await;
    let e = api.set_amps(VIN, 2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.chain().contains("calls_per_day"), "{}", e.chain());
    // A 429 from the proxy: no further call until Retry-After has passed.
    let r = Rig::new().await;
    r.seed("T", 86_400);
    Mock::given(method("POST"))
        .and(path(format!(
            "/api/1/vehicles/{VIN}/command/set_charging_amps"
        )))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "600"))
        .expect(1)
        .mount(&r.proxy)
        .await;
    let api = r.api("");
    assert!(api.set_amps(VIN, 4).await.is_err());
    let e = api.set_amps(VIN, 4).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.chain());
}

#[test]
fn the_cars_own_maximum_is_read_to_set_it_back() {
    let d = parse_vehicle_data(&fixture!("vehicle_data_doc_example.json"), 0).unwrap();
    assert_eq!(d.max_amps, Some(40.0));
}
