//! The Tesla tokens TeslaMate stores, read from a real PostgreSQL (`TWC_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; with `CI=true` it must be reachable): a
//! TeslaMate-shaped `tokens` table whose values are encrypted as TeslaMate's Cloak vault does
//! (independently of the plugin's decryption: ring's AES-256-GCM with the key
//! SHA-256(ENCRYPTION_KEY), the `AES256GCM` AAD and the `AES.GCM.V1` key tag), read back,
//! used against a mock Fleet API, refreshed there, and never written back.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sqlx::{Connection, PgConnection};
use twc_core::plugin::{ErrorKind, PluginConfig, VehicleApi};
use twc_testkit::fixture;
use twc_testkit::wiremock::matchers::{body_string_contains, header, method, path};
use twc_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use twc_vehicle_teslaapi::build_api;
use twc_vehicle_teslaapi::teslamate_db::{TeslaMateError, read_tokens};

const KEY: &str = "a-teslamate-encryption-key-of-some-length";

/// Encrypts `plain` as Cloak's `AES.GCM` cipher in TeslaMate's vault does.
fn cloak(encryption_key: &str, plain: &str, iv: [u8; 12]) -> Vec<u8> {
    let k = ring::digest::digest(&ring::digest::SHA256, encryption_key.as_bytes());
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.as_ref()).unwrap());
    let mut buf = plain.as_bytes().to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(b"AES256GCM"),
            &mut buf,
        )
        .unwrap();
    let mut out = vec![1u8, 10];
    out.extend_from_slice(b"AES.GCM.V1");
    out.extend_from_slice(&iv);
    out.extend_from_slice(tag.as_ref());
    out.extend_from_slice(&buf);
    out
}

/// A JWT-shaped access token expiring at `exp`.
fn jwt(name: &str, exp: i64) -> String {
    use base64::Engine;
    let b = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{name}",
        b(r#"{"alg":"RS256"}"#.into()),
        b(format!(r#"{{"exp":{exp},"sub":"{name}"}}"#))
    )
}

/// A schema of its own with TeslaMate's `tokens` table; the URL that reads it. `None` (after a
/// loud line) when PostgreSQL is unreachable outside CI.
async fn teslamate_db() -> Option<(String, PgConnection)> {
    let base = std::env::var("TWC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut c = match PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL {base} is not reachable and CI=true: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: PostgreSQL {base} is not reachable ({e}); set TWC_TEST_PG_URL");
            return None;
        }
    };
    let schema = format!(
        "tm_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    for q in [
        format!("CREATE SCHEMA {schema}"),
        // As TeslaMate's migrations leave it (create_tokens, encrypt_api_tokens).
        format!(
            "CREATE TABLE {schema}.tokens (id bigserial PRIMARY KEY, access bytea, refresh bytea, \
             inserted_at timestamp(0) NOT NULL DEFAULT now(), \
             updated_at timestamp(0) NOT NULL DEFAULT now())"
        ),
    ] {
        sqlx::query(&q).execute(&mut c).await.unwrap();
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    sqlx::query(&format!("SET search_path TO {schema}"))
        .execute(&mut c)
        .await
        .unwrap();
    Some((url, c))
}

async fn insert(c: &mut PgConnection, access: &str, refresh: &str) {
    sqlx::query("INSERT INTO tokens (access, refresh) VALUES ($1, $2)")
        .bind(cloak(KEY, access, [7; 12]))
        .bind(cloak(KEY, refresh, [9; 12]))
        .execute(c)
        .await
        .unwrap();
}

#[tokio::test]
async fn tokens_are_read_back_and_a_wrong_key_or_an_empty_table_is_named() {
    let Some((url, mut c)) = teslamate_db().await else {
        return;
    };
    // No row yet.
    let e = read_tokens(&url, KEY).await.unwrap_err();
    assert_eq!(e, TeslaMateError::NoTokens);
    assert!(e.to_string().contains("no tokens"), "{e}");
    let exp = chrono::Utc::now().timestamp() + 8 * 3600;
    insert(&mut c, &jwt("ACCESS1", exp), "REFRESH1").await;
    let t = read_tokens(&url, KEY).await.unwrap();
    assert_eq!(
        (
            t.access_token.as_str(),
            t.refresh_token.as_str(),
            t.expires_unix
        ),
        (jwt("ACCESS1", exp).as_str(), "REFRESH1", exp)
    );
    // Another key: named, and no token text in the message.
    let e = read_tokens(&url, "not-the-key").await.unwrap_err();
    assert_eq!(e, TeslaMateError::WrongKey);
    let m = e.to_string();
    assert!(
        m.contains("encryption_key") && m.contains("ENCRYPTION_KEY"),
        "{m}"
    );
    assert!(!m.contains("REFRESH1"));
    // The newest row wins (TeslaMate keeps one; a re-login may add one).
    insert(&mut c, &jwt("ACCESS2", exp), "REFRESH2").await;
    assert_eq!(
        read_tokens(&url, KEY).await.unwrap().refresh_token,
        "REFRESH2"
    );
    // A database that is not there: the URL's password is not repeated.
    let e = read_tokens("postgres://u:SECRETPW@127.0.0.1:1/teslamate", KEY)
        .await
        .unwrap_err();
    assert!(matches!(e, TeslaMateError::Database(_)), "{e}");
    assert!(!e.to_string().contains("SECRETPW"), "{e}");
}

#[tokio::test]
async fn the_plugin_uses_teslamates_tokens_refreshes_them_itself_and_never_writes_back() {
    let Some((url, mut c)) = teslamate_db().await else {
        return;
    };
    let fleet = MockServer::start().await;
    let auth = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let soon = chrono::Utc::now().timestamp() + 60;
    insert(&mut c, &jwt("OLD", soon), "TM-REFRESH").await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT refresh FROM tokens")
        .fetch_one(&mut c)
        .await
        .unwrap();
    // The access token expires within the hour: refreshed with TeslaMate's refresh token.
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .and(body_string_contains("refresh_token=TM-REFRESH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "NEW", "refresh_token": "NEW-REFRESH", "expires_in": 28800
        })))
        .expect(1)
        .mount(&auth)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1/vehicles"))
        .and(header("authorization", "Bearer NEW"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(fixture!("vehicles_list_doc_example.json")),
        )
        .mount(&fleet)
        .await;
    let cfg = |key: &str| {
        format!(
            "url = \"{}\"\nclient_id = \"ownerapi\"\ntoken_url = \"{}/oauth2/v3/token\"\n\
             token_file = \"{}\"\nkey_file = \"{}\"\ntimeout_secs = 2\n\
             teslamate = {{ url = \"{url}\", encryption_key = \"{key}\" }}\n",
            fleet.uri(),
            auth.uri(),
            dir.path().join("t.bin").display(),
            dir.path().join("k.bin").display(),
        )
    };
    let api = build_api(&PluginConfig::from_toml("vehicle.teslaapi", &cfg(KEY)).unwrap()).unwrap();
    let cars = api.list().await.unwrap();
    assert_eq!(cars.len(), 1);
    // Never written back: TeslaMate's row is as it was.
    let after: Vec<u8> = sqlx::query_scalar("SELECT refresh FROM tokens")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(after, stored);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tokens")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // With the wrong key the plugin says which key, as a configuration error.
    let dir2 = tempfile::tempdir().unwrap();
    let text = cfg("wrong").replace(dir.path().to_str().unwrap(), dir2.path().to_str().unwrap());
    let api = build_api(&PluginConfig::from_toml("vehicle.teslaapi", &text).unwrap()).unwrap();
    let e = api.list().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{}", e.chain());
    assert!(e.chain().contains("encryption_key"), "{}", e.chain());
    assert!(api.account().last_error.is_some());
    // A bad URL in the section is a configuration error naming the key.
    let bad = cfg(KEY).replace(&url, "mysql://x");
    let e = build_api(&PluginConfig::from_toml("vehicle.teslaapi", &bad).unwrap())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("teslamate.url"), "{e}");
}
