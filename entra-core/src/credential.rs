//! The `TokenCredential` trait and how a client proves its identity.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use url::Url;

use crate::{AccessToken, ClientCertificate, Error, Secret, TokenRequest};

/// Anything that can produce an access token.
///
/// Implemented by every credential of entra-rs (client secret, certificate, managed identity,
/// agent identity, …) and by [`TokenClient`](crate::TokenClient), so credentials compose.
#[async_trait]
pub trait TokenCredential: Send + Sync + fmt::Debug {
    /// A valid token for `request`.
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error>;
}

#[async_trait]
impl<T: TokenCredential + ?Sized> TokenCredential for Arc<T> {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        (**self).get_token(request).await
    }
}

/// What an assertion callback is told about the request it signs for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AssertionContext {
    /// The token endpoint the assertion is sent to (its `aud`, for certificate assertions).
    pub token_endpoint: Url,
    /// The client id the assertion is for.
    pub client_id: String,
    /// The tenant.
    pub tenant: String,
}

/// Produces a client assertion (a signed JWT: a federated token, an agent blueprint's T1, a
/// managed identity token) for each token request.
#[async_trait]
pub trait AssertionProvider: Send + Sync + fmt::Debug {
    /// An assertion for `context`. Called for every request the cache cannot answer.
    async fn assertion(&self, context: &AssertionContext) -> Result<Secret, Error>;
}

type AssertionFn =
    dyn Fn(AssertionContext) -> BoxFuture<'static, Result<Secret, Error>> + Send + Sync;

struct FnAssertion(Box<AssertionFn>);

impl fmt::Debug for FnAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnAssertion")
    }
}

#[async_trait]
impl AssertionProvider for FnAssertion {
    async fn assertion(&self, context: &AssertionContext) -> Result<Secret, Error> {
        (self.0)(context.clone()).await
    }
}

/// How a confidential client authenticates to the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret (`client_secret`).
    Secret(Secret),
    /// A certificate: each request carries a freshly signed assertion.
    Certificate {
        /// The certificate and key.
        certificate: Arc<ClientCertificate>,
        /// Whether to send the chain (`x5c`) for subject-name/issuer authentication.
        send_chain: bool,
    },
    /// An assertion from elsewhere (federated credential, agent T1, managed identity).
    Assertion(Arc<dyn AssertionProvider>),
    /// No client credential in the form: the client is authenticated by the connection
    /// itself (mutual TLS), or is a public client.
    None,
}

impl ClientCredential {
    /// A certificate credential without chain.
    pub fn certificate(certificate: ClientCertificate) -> Self {
        Self::Certificate {
            certificate: Arc::new(certificate),
            send_chain: false,
        }
    }

    /// An assertion produced by `callback` for each request.
    ///
    /// ```
    /// use entra_core::{ClientCredential, Secret};
    /// let credential = ClientCredential::assertion_fn(|_context| async {
    ///     Ok(Secret::new(std::fs::read_to_string("/var/run/secrets/token").unwrap_or_default()))
    /// });
    /// # let _ = credential;
    /// ```
    pub fn assertion_fn<F, Fut>(callback: F) -> Self
    where
        F: Fn(AssertionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Secret, Error>> + Send + 'static,
    {
        Self::Assertion(Arc::new(FnAssertion(Box::new(move |ctx| {
            Box::pin(callback(ctx))
        }))))
    }
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            Self::Certificate {
                certificate,
                send_chain,
            } => f
                .debug_struct("Certificate")
                .field("certificate", certificate)
                .field("send_chain", send_chain)
                .finish(),
            Self::Assertion(p) => f.debug_tuple("Assertion").field(p).finish(),
            Self::None => f.write_str("None"),
        }
    }
}
