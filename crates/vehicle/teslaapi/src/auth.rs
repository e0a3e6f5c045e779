//! OAuth with PKCE, and the tokens stored encrypted at rest (ChaCha20-Poly1305, key file).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The tokens, as stored (encrypted) and held in memory. Never serialised anywhere else.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// When the access token expires, Unix seconds.
    pub expires_unix: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens {{ expires_unix: {}, .. }}", self.expires_unix)
    }
}

/// A failure of the token store, naming the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The token file does not decrypt with the key file (another key, or damaged).
    #[error("{0}: cannot decrypt with the key file (another key, or damaged); log in again")]
    Decrypt(String),
    /// The key file is not 32 bytes.
    #[error("{0}: a key file holds 32 bytes; delete it (and the token file) and log in again")]
    BadKey(String),
}

const MAGIC: &[u8] = b"TWCT1";

/// Where the tokens live: an encrypted token file and the key file that opens it.
#[derive(Debug, Clone)]
pub struct TokenStore {
    token_file: PathBuf,
    key_file: PathBuf,
}

impl TokenStore {
    /// A store at these paths (nothing is read yet).
    pub fn new(token_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        TokenStore {
            token_file: token_file.into(),
            key_file: key_file.into(),
        }
    }

    /// The stored tokens, or `None` when there is no token file yet.
    pub fn load(&self) -> Result<Option<Tokens>, StoreError> {
        let data = match std::fs::read(&self.token_file) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&self.token_file, "read", e)),
        };
        let key = self.key(false)?;
        let name = self.token_file.display().to_string();
        let plain = open(&key, &data).ok_or_else(|| StoreError::Decrypt(name.clone()))?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|_| StoreError::Decrypt(name))
    }

    /// Store the tokens, encrypted, atomically (temporary file, then rename), mode 0600.
    pub fn save(&self, t: &Tokens) -> Result<(), StoreError> {
        let key = self.key(true)?;
        let plain = serde_json::to_vec(t).expect("tokens serialise");
        let data = seal(&key, &plain);
        let tmp = self.token_file.with_extension("tmp");
        write_private(&tmp, &data)?;
        std::fs::rename(&tmp, &self.token_file).map_err(|e| io(&self.token_file, "rename", e))
    }

    /// Forget the tokens (a refused refresh: the user must log in again).
    pub fn clear(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.token_file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&self.token_file, "delete", e)),
        }
    }

    fn key(&self, create: bool) -> Result<LessSafeKey, StoreError> {
        let bytes = match std::fs::read(&self.key_file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut k = [0u8; 32];
                SystemRandom::new().fill(&mut k).expect("system randomness");
                write_private(&self.key_file, &k)?;
                k.to_vec()
            }
            Err(e) => return Err(io(&self.key_file, "read", e)),
        };
        let name = self.key_file.display().to_string();
        let k =
            UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| StoreError::BadKey(name))?;
        Ok(LessSafeKey::new(k))
    }
}

fn io(p: &Path, what: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: p.display().to_string(),
        what,
        source,
    }
}

fn write_private(p: &Path, data: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(p).map_err(|e| io(p, "create", e))?;
    f.write_all(data).map_err(|e| io(p, "write", e))?;
    f.sync_all().map_err(|e| io(p, "sync", e))
}

fn seal(key: &LessSafeKey, plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("system randomness");
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(MAGIC),
        &mut buf,
    )
    .expect("sealing cannot fail for small inputs");
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    out
}

fn open(key: &LessSafeKey, data: &[u8]) -> Option<Vec<u8>> {
    let rest = data.strip_prefix(MAGIC)?;
    if rest.len() < 12 {
        return None;
    }
    let (nonce, ct) = rest.split_at(12);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = ct.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(MAGIC), &mut buf).ok()?;
    Some(plain.to_vec())
}

/// A PKCE verifier (RFC 7636, 43 characters) and a random `state`.
pub fn pkce_pair() -> (String, String, String) {
    let rng = SystemRandom::new();
    let mut v = [0u8; 32];
    let mut s = [0u8; 16];
    rng.fill(&mut v).expect("system randomness");
    rng.fill(&mut s).expect("system randomness");
    let verifier = base64url(&v);
    let challenge = challenge_of(&verifier);
    (verifier, challenge, base64url(&s))
}

/// The S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    base64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Base64url without padding (RFC 4648 §5).
pub fn base64url(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Percent-encode for a query string or form body (RFC 3986 unreserved kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (v, c, s) = pkce_pair();
        assert_eq!(v.len(), 43);
        assert_eq!(challenge_of(&v), c);
        assert_eq!(s.len(), 22);
    }

    #[test]
    fn tokens_are_encrypted_at_rest_and_need_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("t.bin"), dir.path().join("k.bin"));
        assert!(store.load().unwrap().is_none());
        let t = Tokens {
            access_token: "ACCESS-SECRET".into(),
            refresh_token: "REFRESH-SECRET".into(),
            expires_unix: 1_700_000_000,
        };
        store.save(&t).unwrap();
        let raw = std::fs::read(dir.path().join("t.bin")).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("SECRET"), "stored in clear: {text}");
        assert_eq!(store.load().unwrap(), Some(t.clone()));
        assert!(!format!("{t:?}").contains("SECRET"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k.bin"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
        }
        // Another key cannot open it.
        std::fs::write(dir.path().join("k.bin"), [7u8; 32]).unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(
            e.contains("cannot decrypt") && e.contains("log in again"),
            "{e}"
        );
        store.clear().unwrap();
        assert!(store.load().unwrap().is_none());
    }
}
