//! rustls configurations built from the PEM files named in `[rpc]`.
//!
//! The crypto provider is always ring, passed explicitly: other crates in
//! the process may enable other providers, and rustls refuses to guess.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::security::{invalid, RpcConfigError};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, RpcConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            format!("{}: no PEM certificate in the file", path.display()),
        ));
    }
    Ok(certs)
}

fn private_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, RpcConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| invalid(key, format!("{}: {e}", path.display())))
}

fn roots(key: &'static str, path: &Path) -> Result<Arc<RootCertStore>, RpcConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(key, path)? {
        roots
            .add(cert)
            .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    }
    Ok(Arc::new(roots))
}

/// A server presenting `cert`/`key`; with `client_ca`, clients must present
/// a certificate that chains to it.
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, RpcConfigError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls_cert", e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots("tls_ca", ca)?, provider())
                    .build()
                    .map_err(|e| invalid("tls_ca", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs("tls_cert", cert)?, private_key("tls_key", key)?)
        .map_err(|e| invalid("tls_key", format!("does not fit `tls_cert`: {e}")))?;
    Ok(Arc::new(config))
}

/// A client trusting `ca`, presenting `client_cert` (chain, key) if given.
pub(crate) fn client_config(
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, RpcConfigError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls_ca", e.to_string()))?
        .with_root_certificates(roots("tls_ca", ca)?);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                certs("tls_client_cert", cert)?,
                private_key("tls_client_key", key)?,
            )
            .map_err(|e| {
                invalid(
                    "tls_client_key",
                    format!("does not fit `tls_client_cert`: {e}"),
                )
            })?,
    };
    Ok(Arc::new(config))
}
