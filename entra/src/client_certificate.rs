//! `ClientCertificateCredential`: an application authenticating with a certificate.

use std::sync::Arc;

use async_trait::async_trait;
use entra_core::{
    AccessToken, ClientCertificate, ClientCredential, Error, TokenCredential, TokenRequest,
};

use crate::CredentialOptions;
use crate::app::AppCredential;

const NAME: &str = "ClientCertificateCredential";

/// An application authenticating with a certificate: each token request carries a freshly
/// signed client assertion (`PS256`, `x5t#S256`), optionally with the certificate chain
/// (`x5c`) for subject-name/issuer authentication.
///
/// The certificate is PEM (certificate and private key) or PKCS#12;
/// [`load_certificate`](Self::load_certificate) tells them apart.
///
/// ```no_run
/// use entra::{ClientCertificateCredential, CredentialOptions};
///
/// let bytes = std::fs::read("/etc/secrets/app.pem").unwrap();
/// let certificate = ClientCertificateCredential::load_certificate(&bytes, None)?;
/// let credential = ClientCertificateCredential::builder(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     certificate,
/// )
/// .send_certificate_chain(true)
/// .options(CredentialOptions::new())
/// .build()?;
/// # let _ = credential;
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientCertificateCredential {
    app: AppCredential,
}

/// Builds a [`ClientCertificateCredential`].
#[derive(Debug)]
pub struct ClientCertificateCredentialBuilder {
    tenant_id: String,
    client_id: String,
    certificate: ClientCertificate,
    send_chain: bool,
    options: CredentialOptions,
}

impl ClientCertificateCredentialBuilder {
    /// Sends the certificate chain (`x5c`) with each assertion (default: no).
    pub fn send_certificate_chain(mut self, send: bool) -> Self {
        self.send_chain = send;
        self
    }

    /// The shared options (edges, authority, allowed tenants).
    pub fn options(mut self, options: CredentialOptions) -> Self {
        self.options = options;
        self
    }

    /// Builds the credential.
    pub fn build(self) -> Result<ClientCertificateCredential, Error> {
        let credential = ClientCredential::Certificate {
            certificate: Arc::new(self.certificate),
            send_chain: self.send_chain,
        };
        Ok(ClientCertificateCredential {
            app: AppCredential {
                name: NAME,
                client: self
                    .options
                    .token_client(&self.tenant_id, &self.client_id, credential)?,
                allowed_tenants: self.options.allowed_tenants(false),
            },
        })
    }
}

impl ClientCertificateCredential {
    /// Starts a credential for `client_id` in `tenant_id` with `certificate`.
    pub fn builder(
        tenant_id: &str,
        client_id: &str,
        certificate: ClientCertificate,
    ) -> ClientCertificateCredentialBuilder {
        ClientCertificateCredentialBuilder {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            certificate,
            send_chain: false,
            options: CredentialOptions::new(),
        }
    }

    /// A credential without chain and with default options.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        certificate: ClientCertificate,
        options: CredentialOptions,
    ) -> Result<Self, Error> {
        Self::builder(tenant_id, client_id, certificate)
            .options(options)
            .build()
    }

    /// Loads a certificate with its private key from PEM (text starting with `-----BEGIN`) or
    /// PKCS#12 (anything else; `password` decrypts it, empty when `None`).
    pub fn load_certificate(
        bytes: &[u8],
        password: Option<&str>,
    ) -> Result<ClientCertificate, Error> {
        let text_start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        if bytes[text_start..].starts_with(b"-----BEGIN") {
            ClientCertificate::from_pem(bytes)
        } else {
            ClientCertificate::from_pkcs12(bytes, password.unwrap_or(""))
        }
    }
}

#[async_trait]
impl TokenCredential for ClientCertificateCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.app.get_token(request).await
    }
}
