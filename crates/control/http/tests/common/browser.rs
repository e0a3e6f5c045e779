//! Headless Chromium driven through chromedriver's W3C WebDriver API with reqwest, for the
//! browser tests. Needs Debian's `chromium` and `chromium-driver`: outside CI a missing browser
//! skips with one loud line; with `CI=true` it fails. Set `TWC_UPDATE_SCREENSHOTS=1` to write
//! the screenshots into docs/ (otherwise they go to the temp dir).

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const CHROMIUM: &[&str] = &[
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];
const DRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn find(c: &[&str]) -> Option<PathBuf> {
    c.iter().map(PathBuf::from).find(|p| p.exists())
}

/// The chromedriver process, ended (by its own id) when the test ends.
pub struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    _child: KillOnDrop,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub async fn start() -> Option<Driver> {
        let (Some(browser), Some(driver)) = (find(CHROMIUM), find(DRIVER)) else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "CI=true but chromium/chromedriver are not installed (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!(
                "!!! SKIPPING browser tests: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = KillOnDrop(
            std::process::Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": browser.to_string_lossy(),
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Some(Driver {
            http,
            base,
            session,
            _child: child,
            _profile: profile,
        })
    }

    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn js(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    pub async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .and_then(|m| m.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let v = self
            .js(&format!(
                "const e = document.querySelector({css:?}); return e ? e.textContent : null;"
            ))
            .await;
        v.as_str().unwrap_or("").to_string()
    }

    /// Poll `script` (returning a boolean) until true.
    pub async fn wait_js(&self, script: &str, limit: Duration, what: &str) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn resize(&self, w: u32, h: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": w, "height": h})),
        )
        .await;
    }

    pub async fn screenshot(&self, name: &str) {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64_decode(b64.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = if std::env::var("TWC_UPDATE_SCREENSHOTS").is_ok() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../docs")
        } else {
            std::env::temp_dir()
        };
        std::fs::write(dir.join(name), png).unwrap();
    }

    /// Console messages of level SEVERE since the last call (JavaScript errors, failed loads).
    pub async fn console_errors(&self) -> Vec<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The viewport exactly `w` × `h` CSS pixels (a phone's when narrow), whatever the window.
    pub async fn viewport(&self, w: u32, h: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 600}}),
            ),
        )
        .await;
    }

    /// Press one key (a WebDriver key code such as `\u{E004}` for Tab) on the focused element.
    pub async fn press(&self, key: &str) {
        self.cmd(
            reqwest::Method::POST,
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
            ),
        )
        .await;
    }

    /// Tab forward until the element matching `css` has the focus (at most `limit` presses).
    pub async fn tab_to(&self, css: &str, limit: usize) {
        for _ in 0..limit {
            self.press(TAB).await;
            if self
                .js(&format!(
                    "return document.activeElement === document.querySelector({css:?})"
                ))
                .await
                == Value::Bool(true)
            {
                return;
            }
        }
        let at = self
            .js("const a = document.activeElement; return a ? a.outerHTML.slice(0, 120) : null")
            .await;
        panic!("{css} not reached with {limit} Tab presses; focus is on {at}");
    }

    /// End the session (also done on drop, for tests that panic).
    pub async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";

impl Drop for Driver {
    /// End the browser session even when a test panics: killing chromedriver alone leaves its
    /// Chromium running (and eating the shared CPU). A plain blocking request, as `Drop` cannot
    /// await; chromedriver itself is then killed by `_child`.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(addr) = self.base.strip_prefix("http://") else {
            return;
        };
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = s.read(&mut [0u8; 512]);
        }
    }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A script returning what sticks out to the right of the viewport (empty when nothing does),
/// so a failure says where to look.
pub const OVERFLOW: &str = "const w = document.documentElement.clientWidth; \
    if (document.documentElement.scrollWidth <= w) return []; \
    return Array.from(document.querySelectorAll('body *')).filter(e => e.getClientRects().length && e.getBoundingClientRect().right > w + 1) \
        .slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' right=' + Math.round(e.getBoundingClientRect().right));";
