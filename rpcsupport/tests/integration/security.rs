//! Issue 8: only our own processes may talk to workers and the itemsaver.
//! A real tarpc server (`rpcsupport::serve` with a stub `Crawl` service) on
//! 127.0.0.1:0, and clients that are right, wrong or hostile.

use std::io;
use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rpcsupport::{
    ClientSecurity, ConnectOptions, Crawl, CrawlClient, CrawlError, HostAddr, ParseError,
    ParseResult, PolicyRef, Request, RpcConfig, ServeOptions, ServerSecurity, Service, Shared,
    Token, WorkerStatus,
};
use tarpc::context::{self, Context};
use tarpc::server::Channel;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A worker that does nothing: only `status` is called.
#[derive(Clone)]
struct Stub;

impl Crawl for Stub {
    async fn process(
        self,
        _: Context,
        _request: Shared<Request>,
        _policy: PolicyRef,
    ) -> Result<ParseResult, CrawlError> {
        Ok(ParseResult::default())
    }

    async fn status(self, _: Context) -> WorkerStatus {
        WorkerStatus {
            in_flight: 0,
            served: 7,
            parsers: Vec::new(),
            can_render: false,
        }
    }

    async fn load_rules(self, _: Context, _rules_json: String) -> Result<String, ParseError> {
        Err(ParseError::UnknownParser("stub".into()))
    }
}

/// A running stub server; stops when dropped.
struct Server {
    addr: HostAddr,
    _stop: oneshot::Sender<()>,
}

/// Serves the stub on 127.0.0.1:0 with `options`.
async fn start_server(options: ServeOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = HostAddr::from(listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(rpcsupport::serve(
        listener,
        options,
        shutdown,
        |channel| async move {
            channel
                .execute(Stub.serve())
                .for_each(|response| async move {
                    tokio::spawn(response);
                })
                .await
        },
    ));
    Server { addr, _stop: stop }
}

fn serve_with(security: ServerSecurity) -> ServeOptions {
    ServeOptions {
        security,
        ..ServeOptions::default()
    }
}

async fn connect(server: &Server, security: ClientSecurity) -> io::Result<CrawlClient> {
    let opts = ConnectOptions {
        security: security.leak(),
        ..ConnectOptions::default()
    };
    rpcsupport::connect_crawl(&server.addr, opts).await
}

/// Asserts `client` still gets answers.
async fn assert_serves(client: &CrawlClient) {
    let status = client
        .status(context::current())
        .await
        .expect("status call");
    assert_eq!(status.served, 7);
}

fn with_token(token: &str) -> ClientSecurity {
    ClientSecurity::with_token(Token::new(token).unwrap())
}

/// A raw TCP connection to `server`, for speaking nonsense.
async fn raw(server: &Server) -> TcpStream {
    TcpStream::connect((server.addr.host.as_str(), server.addr.port))
        .await
        .unwrap()
}

/// A raw connection past the handshake, where tarpc frames are expected.
async fn raw_past_handshake(server: &Server) -> TcpStream {
    let mut stream = raw(server).await;
    rpcsupport::handshake::client(&mut stream, None)
        .await
        .expect("handshake");
    stream
}

/// Waits until the server closes `stream` (EOF or reset). The timeout only
/// keeps a broken server from hanging the test; it asserts no speed.
async fn assert_closed_by_server(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 256];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), closed)
        .await
        .unwrap_or_else(|_| panic!("the server kept the connection open after {what}"));
}

/// A wrong or missing token is refused before any request is served, and
/// the server goes on serving a client with the right one.
#[tokio::test]
async fn wrong_or_missing_token_is_refused() {
    let server = start_server(serve_with(ServerSecurity {
        token: Some(Token::new("right token").unwrap()),
        ..ServerSecurity::default()
    }))
    .await;
    let good = connect(&server, with_token("right token")).await.unwrap();
    assert_serves(&good).await;

    let wrong = connect(&server, with_token("wrong token"))
        .await
        .expect_err("refused");
    assert_eq!(wrong.kind(), io::ErrorKind::PermissionDenied, "{wrong}");
    let missing = connect(&server, ClientSecurity::OPEN)
        .await
        .expect_err("refused");
    assert_eq!(missing.kind(), io::ErrorKind::PermissionDenied, "{missing}");
    assert!(missing.to_string().contains("requires"), "{missing}");

    assert_serves(&good).await;
    let again = connect(&server, with_token("right token")).await.unwrap();
    assert_serves(&again).await;
}

/// With no token configured the server is open, whatever the client sends.
#[tokio::test]
async fn server_without_token_is_open() {
    let server = start_server(ServeOptions::default()).await;
    assert_serves(&connect(&server, ClientSecurity::OPEN).await.unwrap()).await;
    assert_serves(&connect(&server, with_token("anything")).await.unwrap()).await;
}

/// PEM files for a CA, a server certificate for 127.0.0.1 and a client
/// certificate, all signed by the CA; made here, never downloaded.
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "crawler test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

    for (name, purpose) in [
        ("server", ExtendedKeyUsagePurpose::ServerAuth),
        ("client", ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// The `[rpc]` settings of a TLS deployment, as a config file would give them.
fn tls_config(dir: &Path) -> RpcConfig {
    RpcConfig {
        tls_cert: dir.join("server.pem"),
        tls_key: dir.join("server.key"),
        tls_ca: dir.join("ca.pem"),
        ..RpcConfig::default()
    }
}

/// Over TLS a client trusting our CA gets answers (token included); a
/// plain-TCP client is refused, and the TLS client keeps working.
#[tokio::test]
async fn tls_round_trip_and_plain_client_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let config = RpcConfig {
        token: "tls and token".into(),
        ..tls_config(dir.path())
    };
    let server = start_server(serve_with(config.server(Service::Worker).unwrap())).await;
    let tls_client = connect(&server, config.client().unwrap()).await.unwrap();
    assert_serves(&tls_client).await;

    let plain = ClientSecurity {
        tls: None,
        ..config.client().unwrap()
    };
    let e = connect(&server, plain)
        .await
        .expect_err("plain TCP refused");
    assert!(e.to_string().contains("expects TLS"), "{e}");
    assert_serves(&tls_client).await;
}

/// A TLS client that does not trust the server's CA refuses the server.
#[tokio::test]
async fn tls_client_refuses_unknown_server() {
    let ours = tempfile::tempdir().unwrap();
    write_pki(ours.path());
    let theirs = tempfile::tempdir().unwrap();
    write_pki(theirs.path());
    let server = start_server(serve_with(
        tls_config(ours.path()).server(Service::Worker).unwrap(),
    ))
    .await;
    let e = connect(&server, tls_config(theirs.path()).client().unwrap())
        .await
        .expect_err("untrusted server refused");
    assert!(e.to_string().contains("TLS"), "{e}");
}

/// With `require_client_cert`, a client without a certificate is refused
/// and one with a certificate signed by the CA is served.
#[tokio::test]
async fn mutual_tls_refuses_client_without_certificate() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let config = RpcConfig {
        require_client_cert: true,
        tls_client_cert: dir.path().join("client.pem"),
        tls_client_key: dir.path().join("client.key"),
        ..tls_config(dir.path())
    };
    let server = start_server(serve_with(config.server(Service::Worker).unwrap())).await;
    let with_cert = connect(&server, config.client().unwrap()).await.unwrap();
    assert_serves(&with_cert).await;

    let without_cert = RpcConfig {
        tls_client_cert: Default::default(),
        tls_client_key: Default::default(),
        ..config.clone()
    };
    connect(&server, without_cert.client().unwrap())
        .await
        .expect_err("client without a certificate refused");
    assert_serves(&with_cert).await;
}

/// Random bytes, a truncated frame, an oversized frame and a valid frame of
/// the wrong type each close only their own connection; a good client on
/// the same server keeps working throughout, and new ones connect.
#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let server = start_server(ServeOptions {
        max_frame_bytes: 64 * 1024,
        ..ServeOptions::default()
    })
    .await;
    let good = connect(&server, ClientSecurity::OPEN).await.unwrap();
    // Bytes no generator of ours would produce, fixed so a failure repeats.
    let junk: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    // Random bytes where the handshake should be.
    let mut s = raw(&server).await;
    s.write_all(&junk).await.unwrap();
    assert_closed_by_server(&mut s, "random bytes before the handshake").await;
    assert_serves(&good).await;

    // Random bytes in a frame, past the handshake.
    let mut s = raw_past_handshake(&server).await;
    s.write_all(&(junk.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&junk).await.unwrap();
    assert_closed_by_server(&mut s, "a frame of random bytes").await;
    assert_serves(&good).await;

    // A frame cut short: the header promises 1000 bytes, 10 come, then EOF.
    let mut s = raw_past_handshake(&server).await;
    s.write_all(&1000u32.to_be_bytes()).await.unwrap();
    s.write_all(&junk[..10]).await.unwrap();
    s.shutdown().await.unwrap();
    assert_closed_by_server(&mut s, "a truncated frame").await;
    assert_serves(&good).await;

    // A frame header over max_frame_bytes: refused before it is read.
    let mut s = raw_past_handshake(&server).await;
    s.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    assert_closed_by_server(&mut s, "an oversized frame").await;
    assert_serves(&good).await;

    // A well-formed bincode frame holding a String, not a ClientMessage (its
    // length, 5, reads as an enum variant tarpc does not have).
    let s = raw_past_handshake(&server).await;
    let framed = LengthDelimitedCodec::builder().new_framed(s);
    let mut wrong = tarpc::serde_transport::new(framed, Bincode::<(), String>::default());
    wrong.send("hello".to_owned()).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(20), wrong.next())
        .await
        .expect("the server kept the connection open after a frame of the wrong type");
    assert!(!matches!(end, Some(Ok(()))), "no answer expected");
    assert_serves(&good).await;

    // A peer that connects and says nothing is dropped at the handshake
    // timeout (set short here).
    let short = start_server(serve_with(ServerSecurity {
        handshake_timeout: Duration::from_millis(200),
        ..ServerSecurity::default()
    }))
    .await;
    let mut silent = raw(&short).await;
    assert_closed_by_server(&mut silent, "no handshake").await;

    assert_serves(&connect(&server, ClientSecurity::OPEN).await.unwrap()).await;
}

/// Connections beyond `max_connections` are closed at once; the ones
/// admitted keep working, and a freed slot admits a new client.
#[tokio::test]
async fn max_connections_closes_the_excess() {
    let server = start_server(serve_with(ServerSecurity {
        max_connections: 2,
        ..ServerSecurity::default()
    }))
    .await;
    let first = connect(&server, ClientSecurity::OPEN).await.unwrap();
    let second = connect(&server, ClientSecurity::OPEN).await.unwrap();
    assert_serves(&first).await;
    assert_serves(&second).await;

    connect(&server, ClientSecurity::OPEN)
        .await
        .expect_err("third connection refused");
    assert_serves(&first).await;

    // The slot is freed once the server sees the second client go.
    drop(second);
    let mut admitted = None;
    for _ in 0..200 {
        if let Ok(client) = connect(&server, ClientSecurity::OPEN).await {
            admitted = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_serves(&admitted.expect("a freed slot admits a new client")).await;
    assert_serves(&first).await;
}

/// A connection with no traffic for `idle_timeout` is closed; one in use is
/// not, however long it lives.
#[tokio::test]
async fn idle_connection_is_closed() {
    let idle_timeout = Duration::from_millis(1000);
    let server = start_server(serve_with(ServerSecurity {
        idle_timeout: Some(idle_timeout),
        ..ServerSecurity::default()
    }))
    .await;
    let busy = connect(&server, ClientSecurity::OPEN).await.unwrap();
    let mut idle = raw_past_handshake(&server).await;

    // Calls spaced well under the timeout, for three times its length.
    for _ in 0..30 {
        assert_serves(&busy).await;
        tokio::time::sleep(idle_timeout / 10).await;
    }
    assert_closed_by_server(&mut idle, "the idle timeout").await;
    assert_serves(&busy).await;
}

/// The shipped `config.toml` has an `[rpc]` section listing every key with
/// its default.
#[test]
fn shipped_config_lists_every_rpc_key() {
    let shipped = include_str!("../../../config.toml");
    let rpc: RpcConfig = rpcsupport::config::parse_section(shipped, "rpc").unwrap();
    assert_eq!(rpc, RpcConfig::default());
    let file: toml::Table = toml::from_str(shipped).unwrap();
    let mut listed: Vec<String> = file["rpc"].as_table().unwrap().keys().cloned().collect();
    let mut all: Vec<String> = toml::Table::try_from(RpcConfig::default())
        .unwrap()
        .keys()
        .cloned()
        .collect();
    listed.sort();
    all.sort();
    assert_eq!(listed, all);
}

/// A TCP connection to `server` from the loopback address `from`
/// (127.0.0.0/8 is all loopback), so tests can play several peers.
async fn raw_from(server: &Server, from: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    let to: std::net::SocketAddr = server.addr.to_string().parse().unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closes `stream` within `within`.
async fn closed_within(mut stream: TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Issue 11: sockets that connect and say nothing have their own budget
/// (per address and in total), are closed at once past it, and never take
/// the `max_connections` places: clients that authenticate still connect
/// and are served while the silent sockets wait; past `max_connections`
/// the client hears that the server is busy.
#[tokio::test]
async fn silent_sockets_cannot_lock_out_clients() {
    let server = start_server(serve_with(ServerSecurity {
        max_connections: 4,
        max_handshakes: 8,
        max_handshakes_per_ip: 4,
        ..ServerSecurity::default()
    }))
    .await;
    let first = connect(&server, ClientSecurity::OPEN).await.unwrap();

    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(raw_from(&server, [127, 0, 0, 2]).await);
    }
    // All but the 4 this address may have in the handshake are closed at
    // once; the 4 stay open until the handshake timeout (10 s here).
    let closed = futures::future::join_all(
        silent
            .into_iter()
            .map(|s| closed_within(s, Duration::from_millis(800))),
    )
    .await;
    let open: Vec<usize> = closed
        .iter()
        .enumerate()
        .filter(|(_, c)| !**c)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(open.len(), 4, "still open: {open:?}");
    // Reopen them (the check above dropped them) and keep them silent.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(raw_from(&server, [127, 0, 0, 2]).await);
    }

    // Three more clients fill max_connections; none waits on the silent ones.
    let mut clients = vec![first];
    for _ in 0..3 {
        clients.push(connect(&server, ClientSecurity::OPEN).await.unwrap());
    }
    for client in &clients {
        assert_serves(client).await;
    }
    let busy = connect(&server, ClientSecurity::OPEN)
        .await
        .expect_err("past max_connections");
    assert_eq!(busy.kind(), io::ErrorKind::ConnectionRefused, "{busy}");
    assert!(busy.to_string().contains("max_connections"), "{busy}");
    drop(silent);
    assert_serves(&clients[0]).await;
}

/// Issue 11: a worker with its own worker_token refuses the itemsaver's
/// token and serves the engine's settings; with only the shared `token`
/// the engine's settings serve too.
#[tokio::test]
async fn worker_checks_its_own_token() {
    let split = RpcConfig {
        worker_token: "worker secret".into(),
        itemsaver_token: "store secret".into(),
        ..RpcConfig::default()
    };
    let server = start_server(serve_with(split.server(Service::Worker).unwrap())).await;
    assert_serves(&connect(&server, split.client().unwrap()).await.unwrap()).await;
    let e = connect(&server, with_token("store secret"))
        .await
        .expect_err("the itemsaver token is not the worker's");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");

    let shared = RpcConfig {
        token: "one secret".into(),
        ..RpcConfig::default()
    };
    let server = start_server(serve_with(shared.server(Service::Worker).unwrap())).await;
    assert_serves(&connect(&server, shared.client().unwrap()).await.unwrap()).await;
}
