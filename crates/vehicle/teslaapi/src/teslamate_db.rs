//! The Tesla tokens TeslaMate keeps in its PostgreSQL database, read (never written).
//!
//! TeslaMate stores them in the table `tokens` (columns `access` and `refresh`, `bytea`),
//! encrypted by Cloak's `AES.GCM` cipher with the key SHA-256(`ENCRYPTION_KEY`) and Cloak's
//! fixed additional data `AES256GCM`. A value is laid out as
//! `0x01 | tag length | "AES.GCM.V1" | IV (12 bytes) | GCM tag (16 bytes) | ciphertext`.

use crate::auth::Tokens;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sqlx::Row;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

/// The key tag TeslaMate's vault writes before every value.
pub const CLOAK_TAG: &[u8] = b"AES.GCM.V1";
/// Cloak's additional authenticated data for `AES.GCM`.
pub const CLOAK_AAD: &[u8] = b"AES256GCM";
const IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

/// Why TeslaMate's tokens could not be read; each names the key to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TeslaMateError {
    /// The database cannot be reached or queried.
    #[error("TeslaMate's database (teslamate.url): {0}")]
    Database(String),
    /// No row in `tokens`.
    #[error(
        "TeslaMate's database (teslamate.url) holds no tokens (table `tokens` is empty): log in to \
         TeslaMate first"
    )]
    NoTokens,
    /// A value is not in Cloak's layout.
    #[error("TeslaMate's token column `{0}` is not Cloak AES.GCM.V1 data: {1}")]
    Format(&'static str, String),
    /// It does not decrypt: another key.
    #[error(
        "TeslaMate's tokens do not decrypt with teslamate.encryption_key: set it to the \
         ENCRYPTION_KEY TeslaMate runs with"
    )]
    WrongKey,
}

/// Cloak's key for an `ENCRYPTION_KEY`: its SHA-256.
pub fn cloak_key(encryption_key: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, encryption_key.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

/// Decrypts one Cloak `AES.GCM.V1` value of column `column`.
pub fn cloak_decrypt(
    key: &[u8; 32],
    column: &'static str,
    data: &[u8],
) -> Result<Vec<u8>, TeslaMateError> {
    let bad = |m: String| TeslaMateError::Format(column, m);
    let [kind, len, rest @ ..] = data else {
        return Err(bad("shorter than its header".into()));
    };
    if *kind != 1 || usize::from(*len) >= 128 {
        return Err(bad(format!(
            "header {kind:#04x} {len:#04x} is not a key tag"
        )));
    }
    let (tag, rest) = rest
        .split_at_checked(usize::from(*len))
        .ok_or_else(|| bad("shorter than its key tag".into()))?;
    if tag != CLOAK_TAG {
        return Err(bad(format!(
            "key tag {:?}, expected \"AES.GCM.V1\"",
            String::from_utf8_lossy(tag)
        )));
    }
    if rest.len() < IV_LEN + GCM_TAG_LEN {
        return Err(bad("shorter than IV and GCM tag".into()));
    }
    let (iv, rest) = rest.split_at(IV_LEN);
    let (gcm_tag, ciphertext) = rest.split_at(GCM_TAG_LEN);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte key"));
    let nonce = Nonce::try_assume_unique_for_key(iv).expect("12-byte IV");
    // ring wants the tag after the ciphertext.
    let mut buf = Vec::with_capacity(ciphertext.len() + GCM_TAG_LEN);
    buf.extend_from_slice(ciphertext);
    buf.extend_from_slice(gcm_tag);
    let plain = k
        .open_in_place(nonce, Aad::from(CLOAK_AAD), &mut buf)
        .map_err(|_| TeslaMateError::WrongKey)?;
    Ok(plain.to_vec())
}

/// The expiry (`exp`, Unix seconds) of a JWT access token, when it has one.
pub fn jwt_exp(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// Reads the newest tokens from TeslaMate's database at `url` (read only: one `SELECT`).
/// The access token's expiry comes from its JWT; unknown counts as expiring now (refreshed
/// before use).
pub async fn read_tokens(url: &str, encryption_key: &str) -> Result<Tokens, TeslaMateError> {
    let db = |e: sqlx::Error| TeslaMateError::Database(scrub(&e.to_string()));
    let opts = PgConnectOptions::from_str(url).map_err(db)?;
    let mut conn = sqlx::ConnectOptions::connect(&opts).await.map_err(db)?;
    let row = sqlx::query("SELECT access, refresh FROM tokens ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut conn)
        .await
        .map_err(db)?
        .ok_or(TeslaMateError::NoTokens)?;
    let _ = sqlx::Connection::close(conn).await;
    let access: Vec<u8> = row.try_get("access").map_err(db)?;
    let refresh: Vec<u8> = row.try_get("refresh").map_err(db)?;
    let key = cloak_key(encryption_key);
    let text = |column: &'static str, v: Vec<u8>| {
        String::from_utf8(v).map_err(|_| TeslaMateError::Format(column, "not UTF-8".into()))
    };
    let access_token = text("access", cloak_decrypt(&key, "access", &access)?)?;
    let refresh_token = text("refresh", cloak_decrypt(&key, "refresh", &refresh)?)?;
    let expires_unix = jwt_exp(&access_token).unwrap_or_else(|| chrono::Utc::now().timestamp());
    Ok(Tokens {
        access_token,
        refresh_token,
        expires_unix,
    })
}

/// A database error without the password of the URL it may quote.
fn scrub(msg: &str) -> String {
    match (msg.find("://"), msg.find('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…{}", &msg[..a], &msg[b..]),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cloak_key_is_the_sha256_of_the_encryption_key() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            cloak_key("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "{:02x?}",
            cloak_key("abc")
        );
    }

    #[test]
    fn a_value_that_is_not_cloak_data_is_named() {
        let k = cloak_key("k");
        assert!(matches!(
            cloak_decrypt(&k, "access", b"plain token"),
            Err(TeslaMateError::Format("access", _))
        ));
        let mut v = vec![1, 10];
        v.extend_from_slice(b"AES.CTR.V1");
        v.extend_from_slice(&[0; 40]);
        let e = cloak_decrypt(&k, "refresh", &v).unwrap_err().to_string();
        assert!(e.contains("AES.CTR.V1") && e.contains("refresh"), "{e}");
    }

    #[test]
    fn a_jwt_gives_its_expiry() {
        // {"alg":"none"} . {"exp":1700000000}
        assert_eq!(
            jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.sig"),
            Some(1_700_000_000)
        );
        assert_eq!(jwt_exp("opaque"), None);
    }
}
