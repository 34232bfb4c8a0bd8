//! The mutual-TLS transport: an HTTP client that presents the binding certificate.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use entra_core::{Error, ReqwestTransport};
use rustls::client::ResolvesClientCert;
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{Binding, BindingKey};

impl Binding {
    /// An HTTP transport that presents this binding's certificate in the TLS handshake: for
    /// the token leg and for calling resources with the `mtls_pop` token.
    ///
    /// Server certificates are checked against the platform's trusted roots plus
    /// `extra_roots_pem` (for example a test authority's CA). The key is used through its
    /// exported PKCS#8 form when it has one, otherwise through
    /// [`BindingKey::sign_pss_sha256`] (RSA-PSS SHA-256, which TLS 1.3 servers accept).
    pub fn transport(&self, extra_roots_pem: Option<&[u8]>) -> Result<ReqwestTransport, Error> {
        let config = self.rustls_config(extra_roots_pem)?;
        ReqwestTransport::builder().rustls_config(config).build()
    }

    /// The rustls configuration behind [`transport`](Self::transport).
    pub fn rustls_config(&self, extra_roots_pem: Option<&[u8]>) -> Result<ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let extra_roots = match extra_roots_pem {
            Some(pem) => parse_roots(pem)?,
            None => Vec::new(),
        };
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
                .map_err(|e| {
                    Error::Configuration(format!("no trusted root certificates usable: {e}"))
                })?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Configuration(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let chain = vec![CertificateDer::from(self.certificate_der().to_vec())];
        let config = match self.key().private_key_pkcs8_der() {
            Some(pkcs8) => {
                let der = STANDARD.decode(pkcs8.expose()).map_err(|_| {
                    Error::Certificate("the binding key's PKCS#8 export is not base64".to_owned())
                })?;
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der));
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| certificate_error(&e))?
            }
            None => {
                let certified =
                    CertifiedKey::new(chain, Arc::new(BindingSigningKey(Arc::clone(self.key()))));
                let resolver: Arc<dyn ResolvesClientCert> =
                    Arc::new(SingleCertAndKey::from(certified));
                builder.with_client_cert_resolver(resolver)
            }
        };
        Ok(config)
    }
}

/// rustls's error text about a key never contains the key; keep only the kind of failure.
fn certificate_error(error: &rustls::Error) -> Error {
    Error::Certificate(format!(
        "the binding certificate and key cannot be used for TLS: {error}"
    ))
}

fn parse_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let roots = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            Error::Configuration(
                "the extra root certificates are not valid PEM certificates".to_owned(),
            )
        })?;
    if roots.is_empty() {
        return Err(Error::Configuration(
            "no certificate found in the extra root certificates PEM".to_owned(),
        ));
    }
    Ok(roots)
}

/// A rustls signing key over a [`BindingKey`] that cannot export its private key.
#[derive(Debug)]
struct BindingSigningKey(Arc<dyn BindingKey>);

impl SigningKey for BindingSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::RSA_PSS_SHA256)
            .then(|| Box::new(BindingSigner(Arc::clone(&self.0))) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct BindingSigner(Arc<dyn BindingKey>);

impl Signer for BindingSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign_pss_sha256(message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PSS_SHA256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestCa, software_key, unix};
    use entra_core::{HttpRequest, HttpTransport, Secret, TransportErrorKind};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{RootCertStore, ServerConfig};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;
    use tokio_rustls::TlsAcceptor;

    /// The software key, wrapped so that it cannot export its private key.
    #[derive(Debug)]
    struct NonExportable(Arc<dyn BindingKey>);

    impl BindingKey for NonExportable {
        fn public_key_spki_der(&self) -> &[u8] {
            self.0.public_key_spki_der()
        }
        fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
            self.0.sign_pss_sha256(message)
        }
        fn private_key_pkcs8_der(&self) -> Option<Secret> {
            None
        }
    }

    /// A TLS server on loopback that requires a client certificate from `ca`, answers one
    /// request with `200 ok`, and returns the client certificate it saw.
    async fn serve_once(ca: &TestCa) -> (u16, JoinHandle<Option<Vec<u8>>>) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(ca.root_der())).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let (cert, key) = ca.server_certificate();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.ok()?;
            let peer = tls.get_ref().1.peer_certificates()?[0].to_vec();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                request.extend_from_slice(&buf[..n]);
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .ok()?;
            tls.shutdown().await.ok()?;
            Some(peer)
        });
        (port, server)
    }

    async fn get(binding: &Binding, roots_pem: &str, port: u16) -> Result<(u16, Vec<u8>), Error> {
        let transport = binding.transport(Some(roots_pem.as_bytes()))?;
        let url = url::Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
        let response = transport
            .send(HttpRequest::new(http::Method::GET, url))
            .await?;
        Ok((response.status, response.body.to_vec()))
    }

    #[tokio::test]
    async fn presents_the_binding_certificate_with_an_exportable_key() {
        let ca = TestCa::new();
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        assert!(binding.key().private_key_pkcs8_der().is_some());
        let (port, server) = serve_once(&ca).await;
        let (status, body) = get(&binding, &ca.root_pem(), port).await.unwrap();
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
        assert_eq!(server.await.unwrap().unwrap(), binding.certificate_der());
    }

    #[tokio::test]
    async fn presents_the_binding_certificate_with_a_non_exportable_key() {
        let ca = TestCa::new();
        let binding = ca.binding(Arc::new(NonExportable(software_key())), unix(2_000_000_000));
        assert!(binding.key().private_key_pkcs8_der().is_none());
        let (port, server) = serve_once(&ca).await;
        let (status, body) = get(&binding, &ca.root_pem(), port).await.unwrap();
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
        assert_eq!(server.await.unwrap().unwrap(), binding.certificate_der());
    }

    #[tokio::test]
    async fn refuses_a_server_outside_the_trusted_roots() {
        let (ca, stranger) = (TestCa::new(), TestCa::new());
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        let (port, server) = serve_once(&ca).await;
        let error = get(&binding, &stranger.root_pem(), port).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::Transport {
                    kind: TransportErrorKind::Tls,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(server.await.unwrap().is_none());
    }

    #[test]
    fn rejects_bad_root_pem() {
        let ca = TestCa::new();
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        for pem in [
            b"".as_slice(),
            b"not pem",
            b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        ] {
            assert!(matches!(
                binding.transport(Some(pem)),
                Err(Error::Configuration(_))
            ));
        }
    }
}
