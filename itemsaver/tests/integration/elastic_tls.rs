//! The Elasticsearch store over https with credentials: `ca_cert`, basic
//! auth and API keys, against a real server. The test server (noida, see
//! `scripts/noida.sh`) speaks neither TLS nor authentication, so each test
//! puts a front of its own on 127.0.0.1:0 before it: the front ends TLS
//! with a certificate made here, checks the `Authorization` header of the
//! first request on each connection and passes the connection on to the
//! server.
//!
//! Like `contract.rs`: without `CRAWLER_TEST_ES_URL` the tests print a
//! notice and pass, except under CI (`CI` set), where they fail.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use itemsaver::store::elastic::{Auth, Settings};
use itemsaver::ItemStore;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rpcsupport::{Item, SaveAck, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::{crypto::ring, ServerConfig};
use tokio_rustls::TlsAcceptor;
use url::Url;

/// Bound on anything that could hang: a connect that fails must fail, not wait.
const DEADLINE: Duration = Duration::from_secs(30);

/// A TLS-terminating, auth-checking front before the test server. Its
/// tasks end with the test's runtime.
struct Front {
    /// `https://127.0.0.1:PORT/`.
    url: Url,
    /// PEM of the test CA that signed the front's certificate.
    ca_cert: PathBuf,
    /// Request heads whose `Authorization` was checked, right or wrong: a
    /// test asserts some were, so it cannot pass by never reaching us.
    heads_checked: Arc<AtomicUsize>,
    /// The test server behind the front, plain http.
    upstream: String,
    /// The index the test uses, deleted by [`Front::cleanup`].
    index: String,
    /// Holds `ca_cert`.
    _dir: tempfile::TempDir,
}

impl Front {
    /// Starts a front for `test` that lets through connections whose first
    /// request carries `Authorization: {authorization}`; `None` when there
    /// is no server to put it before (outside CI).
    async fn start(test: &str, authorization: String) -> Option<Front> {
        let upstream = testsupport::elasticsearch_url(test)?;
        let upstream_addr = loopback_http(&upstream);

        // A test CA, and a leaf it signs for the names the client may use.
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "elastic_tls test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let ca_cert = dir.path().join("ca.pem");
        std::fs::write(&ca_cert, ca.pem()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let heads_checked = Arc::new(AtomicUsize::new(0));
        let counter = heads_checked.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                let expected = authorization.clone();
                tokio::spawn(async move {
                    // A failed handshake or a dropped connection is the
                    // client's to report; the front only stops.
                    let _ = pass(acceptor, tcp, upstream_addr, &expected, &counter).await;
                });
            }
        });
        Some(Front {
            url: url.parse().unwrap(),
            ca_cert,
            heads_checked,
            upstream,
            index: unique_index(test),
            _dir: dir,
        })
    }

    /// Settings reaching the server through this front.
    fn settings(&self, auth: Auth, trust_test_ca: bool) -> Settings {
        Settings {
            urls: vec![self.url.clone()],
            index: self.index.clone(),
            auth: Some(auth),
            ca_cert: trust_test_ca.then(|| self.ca_cert.clone()),
        }
    }

    fn heads_checked(&self) -> usize {
        self.heads_checked.load(Ordering::SeqCst)
    }

    /// Deletes the test's index, straight on the server; called once the
    /// test passed, so a failing one leaves its index to look at.
    async fn cleanup(self) {
        let transport =
            elasticsearch::http::transport::Transport::single_node(&self.upstream).unwrap();
        let _ = elasticsearch::Elasticsearch::new(transport)
            .indices()
            .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
                &self.index
            ]))
            .send()
            .await;
    }
}

/// One connection through the front: TLS handshake, the first request
/// head, its `Authorization` checked; then 401 and close, or the bytes so
/// far and everything after passed on to `upstream` both ways.
async fn pass(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    upstream: SocketAddr,
    expected: &str,
    heads_checked: &AtomicUsize,
) -> std::io::Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let mut buffered = Vec::new();
    let head_end = loop {
        if let Some(at) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffered.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head over 64 KiB"));
        }
        let mut chunk = [0u8; 4096];
        match tls.read(&mut chunk).await? {
            // An idle pooled connection closed by the client.
            0 => return Ok(()),
            n => buffered.extend_from_slice(&chunk[..n]),
        }
    };
    heads_checked.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&buffered[..head_end]);
    let authorization = head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim())
    });
    if authorization != Some(expected) {
        // Shaped like Elasticsearch's own answer.
        let reason = match authorization {
            Some(_) => "unable to authenticate user for REST request",
            None => "missing authentication credentials for REST request",
        };
        let error = serde_json::json!({"type": "security_exception", "reason": reason});
        let body = serde_json::json!({
            "error": {"root_cause": [error], "type": "security_exception", "reason": reason},
            "status": 401,
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
             www-authenticate: Basic realm=\"security\"\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(response.as_bytes()).await?;
        return tls.shutdown().await;
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&buffered).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
    Ok(())
}

/// The socket address of `url`, which must be plain http on loopback: the
/// front forwards unencrypted, and only ever on this machine.
fn loopback_http(url: &str) -> SocketAddr {
    let parsed: Url = url
        .parse()
        .unwrap_or_else(|e| panic!("CRAWLER_TEST_ES_URL {url:?}: {e}"));
    assert_eq!(
        parsed.scheme(),
        "http",
        "the TLS tests need CRAWLER_TEST_ES_URL to be plain http, got {url}"
    );
    let addrs = parsed.socket_addrs(|| None).unwrap();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "the TLS tests forward only to a loopback server, CRAWLER_TEST_ES_URL is {url}"
    );
    addrs[0]
}

/// An index name no other test (or earlier run) uses.
fn unique_index(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("elastic-tls-{test}-{}-{nanos}", std::process::id())
}

/// Standard base64 with padding (RFC 4648), as in `Authorization` headers.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &b)| bits | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic(username: &str, password: &str) -> Auth {
    Auth::Basic {
        username: username.into(),
        password: password.into(),
    }
}

fn item(id: &str, n: i64) -> Item {
    Item {
        url: format!("http://127.0.0.1:1/profile/{id}"),
        kind: "profile".into(),
        id: Some(id.into()),
        payload: [
            ("name".to_string(), Value::from(format!("user {id}"))),
            ("n".to_string(), Value::Int(n)),
        ]
        .into(),
    }
}

/// Connects within [`DEADLINE`].
async fn connect(settings: &Settings) -> Result<itemsaver::ElasticStore, itemsaver::StoreError> {
    tokio::time::timeout(DEADLINE, itemsaver::open_elastic(settings))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "connect to {:?} did not finish in {DEADLINE:?}",
                settings.urls
            )
        })
}

/// Saves three items through `front` with `auth` and reads them back.
async fn round_trip(front: &Front, auth: Auth) {
    let store = connect(&front.settings(auth, true))
        .await
        .unwrap_or_else(|e| panic!("connect through the TLS front: {e}"));
    let batch: Vec<Item> = (0..3).map(|i| item(&i.to_string(), i)).collect();
    assert_eq!(
        store.put_batch(batch.clone()).await.unwrap(),
        SaveAck::all(3)
    );
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.get("1").await.unwrap().as_ref(), Some(&batch[1]));
    assert_eq!(store.get("missing").await.unwrap(), None);
    assert!(
        front.heads_checked() > 0,
        "no request went through the front"
    );
}

/// The hand-made encoder gives RFC 7617's example, so a mismatch in the
/// tests below is the client's header, not ours.
#[test]
fn base64_matches_rfc_example() {
    assert_eq!(
        base64(b"Aladdin:open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b""), "");
}

/// https with `ca_cert` = the test CA and basic auth: connect, save, count and get work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_ca_cert_and_basic_auth() {
    let expected = format!("Basic {}", base64(b"crawler:s3cret"));
    let Some(front) = Front::start("https_with_ca_cert_and_basic_auth", expected).await else {
        return;
    };
    round_trip(&front, basic("crawler", "s3cret")).await;
    front.cleanup().await;
}

/// An API key as `id:key` is sent as `ApiKey base64(id:key)`, and the
/// encoded form ES prints is sent as it is; both get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_api_key() {
    let encoded = base64(b"key-id:key-secret");
    let Some(front) = Front::start("https_with_api_key", format!("ApiKey {encoded}")).await else {
        return;
    };
    round_trip(&front, Auth::ApiKey("key-id:key-secret".into())).await;
    let store = connect(&front.settings(Auth::ApiKey(encoded), true))
        .await
        .unwrap_or_else(|e| panic!("connect with the encoded API key: {e}"));
    assert_eq!(store.count().await.unwrap(), 3);
    front.cleanup().await;
}

/// A wrong password fails `connect` with a message that points at the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported() {
    let expected = format!("Basic {}", base64(b"crawler:s3cret"));
    let Some(front) = Front::start("wrong_password_is_reported", expected).await else {
        return;
    };
    let error = connect(&front.settings(basic("crawler", "guess"), true))
        .await
        .expect_err("connect with a wrong password must fail")
        .to_string();
    assert!(error.contains("401"), "{error}");
    assert!(
        error.contains("check es_username / es_password / es_api_key"),
        "{error}"
    );
    assert!(front.heads_checked() > 0, "no request reached the front");
    front.cleanup().await;
}

/// Without `ca_cert` the test CA is not trusted: `connect` fails soon, naming the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_reported() {
    let expected = format!("Basic {}", base64(b"crawler:s3cret"));
    let Some(front) = Front::start("untrusted_certificate_is_reported", expected).await else {
        return;
    };
    let error = connect(&front.settings(basic("crawler", "s3cret"), false))
        .await
        .expect_err("connect without trusting the test CA must fail")
        .to_string();
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains(front.url.as_str()), "{error}");
    // Refused at the handshake: no request was ever read.
    assert_eq!(front.heads_checked(), 0);
    front.cleanup().await;
}
