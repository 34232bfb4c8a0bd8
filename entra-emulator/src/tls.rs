//! TLS acceptor construction, in one place.
//!
//! Every TLS listener of the emulator gets its acceptor from [`acceptor`]. Later listeners (a
//! mutual-TLS token endpoint, a Service Fabric endpoint with its own certificate) add their
//! options to [`TlsOptions`] rather than building rustls configurations of their own.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::EmulatorError;
use crate::keys::ServerIdentity;

/// How a TLS listener behaves beyond its server identity.
#[derive(Debug, Default, Clone)]
pub(crate) struct TlsOptions {}

/// A TLS acceptor presenting `identity`, speaking HTTP/1.1 only (ALPN `http/1.1`).
pub(crate) fn acceptor(
    identity: &ServerIdentity,
    _options: &TlsOptions,
) -> Result<TlsAcceptor, EmulatorError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = identity
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(EmulatorError::Tls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(EmulatorError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
