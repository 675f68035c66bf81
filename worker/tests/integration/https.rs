//! https fetches: rustls with the system's roots plus `tls_ca_file`. A local
//! TLS server with a certificate made in the test stands in for a site; its
//! name resolves through a table, to 127.0.0.1 only.

use std::sync::Arc;

use crate::common::{policy, Table};
use rpcsupport::FetchError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use worker::fetch::Fetcher;
use worker::parse::Content;
use worker::WorkerConfig;

/// `secure.test` is loopback; no other name resolves.
fn names() -> Arc<Table> {
    Table::new(&[("secure.test", "127.0.0.1")])
}

/// Starts an https server for `secure.test` answering every request with a
/// small page; returns its port and the CA certificate (PEM) to trust.
async fn start_tls_site() -> (u16, String) {
    let ca = rcgen::generate_simple_self_signed(vec!["secure.test".to_string()]).unwrap();
    let cert_pem = ca.cert.pem();
    let certs = vec![ca.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(ca.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = "<html><body><a href=\"/next\">next</a></body></html>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, cert_pem)
}

/// `secure.test` resolves to loopback, which only the worker's own config
/// can allow.
fn local() -> WorkerConfig {
    WorkerConfig {
        allow_internal: vec!["secure.test".into()],
        ..WorkerConfig::default()
    }
}

/// A site whose CA is in `tls_ca_file` is fetched over https.
#[tokio::test]
async fn fetches_over_https_with_extra_ca() {
    let (port, ca_pem) = start_tls_site().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let config = WorkerConfig {
        tls_ca_file: ca_file.to_str().unwrap().into(),
        ..local()
    };
    let fetcher = Fetcher::with_lookup(&config, names(), None).unwrap();
    let page = fetcher
        .fetch(
            &format!("https://secure.test:{port}/"),
            &policy(&["secure.test"]),
            Content::Html,
        )
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&page.body).contains("href=\"/next\""));
}

/// A certificate nobody vouches for is a failed fetch with the reason.
#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let (port, _ca) = start_tls_site().await;
    let fetcher = Fetcher::with_lookup(&local(), names(), None).unwrap();
    let err = fetcher
        .fetch(
            &format!("https://secure.test:{port}/"),
            &policy(&["secure.test"]),
            Content::Html,
        )
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(matches!(err, FetchError::Connect { .. }), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}
