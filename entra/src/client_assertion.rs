//! `ClientAssertionCredential`: an application authenticating with an assertion from a callback.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use entra_core::{
    AccessToken, AssertionContext, AssertionProvider, ClientCredential, Error, Secret,
    TokenCredential, TokenRequest,
};

use crate::CredentialOptions;
use crate::app::AppCredential;

const NAME: &str = "ClientAssertionCredential";

/// An application authenticating with a client assertion produced by a callback for each
/// token request the cache cannot answer: a federated token from another identity provider
/// (GitHub Actions, a Kubernetes service account, another cloud), or any signed JWT.
///
/// ```
/// use entra::{ClientAssertionCredential, CredentialOptions};
/// use entra_core::Secret;
///
/// let credential = ClientAssertionCredential::new(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     |_context| async { Ok(Secret::new("a federated token")) },
///     CredentialOptions::new(),
/// )?;
/// # let _ = credential;
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientAssertionCredential {
    app: AppCredential,
}

impl ClientAssertionCredential {
    /// A credential for `client_id` in `tenant_id` whose assertions come from `callback`.
    pub fn new<F, Fut>(
        tenant_id: &str,
        client_id: &str,
        callback: F,
        options: CredentialOptions,
    ) -> Result<Self, Error>
    where
        F: Fn(AssertionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Secret, Error>> + Send + 'static,
    {
        Self::with_credential(
            tenant_id,
            client_id,
            ClientCredential::assertion_fn(callback),
            options,
            NAME,
            false,
        )
    }

    /// A credential whose assertions come from `provider`.
    pub fn from_provider(
        tenant_id: &str,
        client_id: &str,
        provider: Arc<dyn AssertionProvider>,
        options: CredentialOptions,
    ) -> Result<Self, Error> {
        Self::with_credential(
            tenant_id,
            client_id,
            ClientCredential::Assertion(provider),
            options,
            NAME,
            false,
        )
    }

    pub(crate) fn with_credential(
        tenant_id: &str,
        client_id: &str,
        credential: ClientCredential,
        options: CredentialOptions,
        name: &'static str,
        tenants_from_env: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            app: AppCredential {
                name,
                client: options.token_client(tenant_id, client_id, credential)?,
                allowed_tenants: options.allowed_tenants(tenants_from_env),
            },
        })
    }
}

#[async_trait]
impl TokenCredential for ClientAssertionCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.app.get_token(request).await
    }
}
