//! TLS acceptor construction, in one place.
//!
//! Every TLS listener of the emulator gets its acceptor from [`acceptor`]. Later listeners (a
//! mutual-TLS token endpoint, a Service Fabric endpoint with its own certificate) add their
//! options to [`TlsOptions`] rather than building rustls configurations of their own.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use crate::error::EmulatorError;
use crate::keys::ServerIdentity;

/// How a TLS listener behaves beyond its server identity.
#[derive(Debug, Default, Clone)]
pub(crate) struct TlsOptions {
    /// Require a client certificate issued by one of these CAs (DER): mutual TLS.
    pub(crate) client_ca_der: Vec<Vec<u8>>,
    /// Refuse every client certificate with a `bad_certificate` alert (the handshake
    /// rejection fault of the mutual-TLS listener).
    pub(crate) reject_client_certs: bool,
}

/// A client certificate verifier that refuses every certificate.
#[derive(Debug)]
struct RejectingVerifier(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RejectingVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS acceptor presenting `identity`, speaking HTTP/1.1 only (ALPN `http/1.1`).
pub(crate) fn acceptor(
    identity: &ServerIdentity,
    options: &TlsOptions,
) -> Result<TlsAcceptor, EmulatorError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = identity
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()));
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(EmulatorError::Tls)?;
    let builder = if options.client_ca_der.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for der in &options.client_ca_der {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(EmulatorError::Tls)?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| EmulatorError::Tls(rustls::Error::General(e.to_string())))?;
        if options.reject_client_certs {
            builder.with_client_cert_verifier(Arc::new(RejectingVerifier(verifier)))
        } else {
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(EmulatorError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
