//! Self-signed gateways: refused by default with a config error that says how to opt in, and
//! accepted only with `accept_invalid_certs = true`. A real TLS server (rustls) on loopback.

use rumqttc::tokio_rustls::{TlsAcceptor, rustls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use twc_core::plugin::ErrorKind;
use twc_plugin_kit::{HttpClient, HttpOptions, Request};

async fn https_server() -> u16 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let cert = CertificateDer::from_pem_file(format!("{dir}selfsigned_cert_TEST.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}selfsigned_key_TEST.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n1111 W",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn client(accept: bool) -> HttpClient {
    let o = HttpOptions {
        timeout_secs: 2.0,
        retries: 0,
        accept_invalid_certs: accept,
        ..HttpOptions::default()
    };
    HttpClient::new("gateway", "ems.gateway", &o).unwrap()
}

#[tokio::test]
async fn self_signed_needs_the_explicit_opt_in() {
    let port = https_server().await;
    let req = Request::get(format!("https://127.0.0.1:{port}/api/meters/aggregates"));
    let e = client(false).text(&req).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{}", e.chain());
    assert!(
        e.to_string().contains("http.accept_invalid_certs = true"),
        "{e}"
    );
    assert!(e.to_string().contains("GET /api/meters/aggregates"), "{e}");
    assert_eq!(client(true).text(&req).await.unwrap(), "1111 W");
}
