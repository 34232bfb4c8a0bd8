//! `ClientSecretCredential`: an application authenticating with a client secret.

use async_trait::async_trait;
use entra_core::{AccessToken, ClientCredential, Error, Secret, TokenCredential, TokenRequest};

use crate::CredentialOptions;
use crate::app::AppCredential;

/// The name this credential reports in errors.
const NAME: &str = "ClientSecretCredential";

/// An application (service principal) authenticating with a client secret
/// (`grant_type=client_credentials`, `client_secret`).
///
/// ```
/// use entra::{ClientSecretCredential, CredentialOptions};
///
/// let credential = ClientSecretCredential::new(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     "not shown",
///     CredentialOptions::new(),
/// )?;
/// assert!(!format!("{credential:?}").contains("not shown"));
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientSecretCredential {
    app: AppCredential,
}

impl ClientSecretCredential {
    /// A credential for `client_id` in `tenant_id` with `secret`.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        secret: impl Into<Secret>,
        options: CredentialOptions,
    ) -> Result<Self, Error> {
        let secret = secret.into();
        if secret.is_empty() {
            return Err(Error::Configuration(
                "the client secret is empty; pass the secret's value, not its id".to_owned(),
            ));
        }
        Ok(Self {
            app: AppCredential {
                name: NAME,
                client: options.token_client(
                    tenant_id,
                    client_id,
                    ClientCredential::Secret(secret),
                )?,
                allowed_tenants: options.allowed_tenants(false),
            },
        })
    }
}

#[async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.app.get_token(request).await
    }
}
