//! A client that leaves a request unfinished is disconnected after `read_timeout_secs`, so idle
//! and half-sent connections cannot pile up.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the server closes the connection; what it sent, or `None` if it is still open
/// after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    r.ok().map(|_| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_half_sent_requests_are_closed_after_the_read_timeout() {
    let cfg = twc_control_http::HttpConfig {
        read_timeout_secs: 1,
        ..http_config()
    };
    let d = demo_with(0, Default::default(), cfg).await;
    let half_sent: [&[u8]; 4] = [
        // Nothing at all.
        b"",
        // Half the headers.
        b"GET /api/getStatus HTTP/1.1\r\nHost: x\r\n",
        // Headers, then half the body.
        b"POST /api/chargeNow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"chargeNowRate\"",
        b"PATCH /api/v2/settings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{",
    ];
    let t0 = Instant::now();
    let mut socks = Vec::new();
    for (i, bytes) in half_sent.iter().enumerate() {
        // Many of each, as a slow-loris client would open.
        for _ in 0..25 {
            let mut s = TcpStream::connect(d.addr).await.unwrap();
            s.write_all(bytes).await.unwrap();
            socks.push((i, s));
        }
    }
    for (i, s) in socks.iter_mut() {
        let left = Duration::from_secs(6).saturating_sub(t0.elapsed());
        let got = closed_within(s, left)
            .await
            .unwrap_or_else(|| panic!("half-sent request #{i} still open after 6 s"));
        if *i >= 2 {
            // A half-sent body gets an answer (a JSON refusal) before the close.
            assert!(got.starts_with("HTTP/1.1 400"), "#{i}: {got}");
            assert!(got.contains("application/json"), "#{i}: {got}");
        }
    }
    // Not before the timeout: a slow but steady client is not cut off.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    for chunk in [
        "GET /api/getUUID HTTP/1.1\r\n",
        "Host: x\r\n",
        "Connection: close\r\n\r\n",
    ] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(chunk.as_bytes()).await.unwrap();
    }
    let got = closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // And the server still serves.
    assert_eq!(d.get("/api/getUUID").await.status(), 200);
}

#[test]
fn read_timeout_is_checked() {
    let cfg =
        twc_core::plugin::PluginConfig::from_toml("control.http", "read_timeout_secs = 0").unwrap();
    let e = twc_control_http::HttpConfig::from_plugin_config(&cfg).unwrap_err();
    assert!(e.to_string().contains("read_timeout_secs"), "{e}");
}
