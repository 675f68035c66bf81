//! Tokens, peer limits and the address guard's decisions.

use super::*;

/// The token compares equal only to itself, whatever the length of the guess.
#[test]
fn token_matches_only_itself() {
    let t = Token::new("s3cret").unwrap();
    assert!(t.matches(b"s3cret"));
    assert!(!t.matches(b"s3cre"));
    assert!(!t.matches(b"s3cret "));
    assert!(!t.matches(b""));
    assert_eq!(Token::new(""), Err(TokenError::Empty));
    assert_eq!(
        Token::new(vec![b'x'; MAX_TOKEN_BYTES + 1]),
        Err(TokenError::TooLong)
    );
}

/// Neither the config nor the settings print the secret.
#[test]
fn debug_never_shows_the_token() {
    let c = RpcConfig {
        token: "hunter2".into(),
        ..RpcConfig::default()
    };
    assert!(!format!("{c:?}").contains("hunter2"));
    let s = c.server(Service::Worker).unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
    let s = c.client().unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
}

/// Each inconsistent combination is an error naming the key to fix.
#[test]
fn bad_combinations_name_the_key() {
    let key = |c: RpcConfig, server: bool| {
        if server {
            c.server(Service::Itemsaver).unwrap_err().key
        } else {
            c.client().unwrap_err().key
        }
    };
    let d = RpcConfig::default;
    let both = RpcConfig {
        token: "a".into(),
        token_file: "f".into(),
        ..d()
    };
    assert_eq!(key(both, true), "token");
    let missing = RpcConfig {
        token_file: "/nonexistent/token".into(),
        ..d()
    };
    assert_eq!(key(missing, false), "token_file");
    let cert_only = RpcConfig {
        tls_cert: "c.pem".into(),
        ..d()
    };
    assert_eq!(key(cert_only, true), "tls_key");
    let mtls_no_tls = RpcConfig {
        require_client_cert: true,
        ..d()
    };
    assert_eq!(key(mtls_no_tls, true), "require_client_cert");
    let client_cert_no_ca = RpcConfig {
        tls_client_cert: "c.pem".into(),
        tls_client_key: "k.pem".into(),
        ..d()
    };
    assert_eq!(key(client_cert_no_ca, false), "tls_ca");
    let zero = RpcConfig {
        max_connections: 0,
        ..d()
    };
    assert_eq!(key(zero, true), "max_connections");
    let e = RpcConfig {
        tls_ca: "/nonexistent/ca.pem".into(),
        ..d()
    }
    .client()
    .unwrap_err();
    assert_eq!(e.key, "tls_ca");
    assert!(e.to_string().starts_with("rpc.tls_ca: "), "{e}");
}

/// Flags replace the file's values; a token flag replaces both token keys.
#[test]
fn flags_win() {
    let mut c = RpcConfig {
        token_file: "/etc/token".into(),
        ..RpcConfig::default()
    };
    let flags = RpcFlags {
        rpc_token: Some("t".into()),
        idle_timeout_ms: Some(5),
        ..RpcFlags::default()
    };
    flags.apply(&mut c);
    assert_eq!(c.token, "t");
    assert!(c.token_file.as_os_str().is_empty());
    assert_eq!(c.idle_timeout_ms, 5);
}

/// A service's own token wins over the shared one for that service
/// only; without it the shared token serves both.
#[test]
fn own_token_wins_for_its_service() {
    let t = |s: &str| Some(Token::new(s).unwrap());
    let shared = RpcConfig {
        token: "shared".into(),
        ..RpcConfig::default()
    };
    assert_eq!(shared.token_for(Service::Worker).unwrap(), t("shared"));
    assert_eq!(shared.token_for(Service::Itemsaver).unwrap(), t("shared"));
    let split = RpcConfig {
        itemsaver_token: "store".into(),
        ..shared.clone()
    };
    assert_eq!(split.token_for(Service::Worker).unwrap(), t("shared"));
    assert_eq!(split.token_for(Service::Itemsaver).unwrap(), t("store"));
    assert_eq!(split.server(Service::Itemsaver).unwrap().token, t("store"));
    let client = split.client().unwrap();
    assert_eq!(client.worker_token, t("shared"));
    assert_eq!(client.itemsaver_token, t("store"));
    // A tool that only talks to the itemsaver never reads the worker's file.
    let store_only = RpcConfig {
        itemsaver_token: "store".into(),
        worker_token_file: "/nonexistent/worker-token".into(),
        ..RpcConfig::default()
    };
    let c = store_only.client_for(&[Service::Itemsaver]).unwrap();
    assert_eq!((c.worker_token, c.itemsaver_token), (None, t("store")));
    assert_eq!(store_only.client().unwrap_err().key, "worker_token_file");
    let both = RpcConfig {
        worker_token: "a".into(),
        worker_token_file: "f".into(),
        ..RpcConfig::default()
    };
    assert_eq!(
        both.server(Service::Worker).unwrap_err().key,
        "worker_token"
    );
    let mut flagged = RpcConfig::default();
    RpcFlags {
        itemsaver_token_file: Some("/etc/store-token".into()),
        ..RpcFlags::default()
    }
    .apply(&mut flagged);
    assert_eq!(
        flagged.itemsaver_token_file,
        PathBuf::from("/etc/store-token")
    );
}
