//! An adapter handing any entra credential to `azure_core`-based clients (the Azure SDK for
//! Rust), behind the `azure_core` feature.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{self as az, TokenRequestOptions};
use azure_core::error::ErrorKind;
use entra_core::{TokenCredential, TokenRequest};

/// Any entra-rs credential as an [`azure_core::credentials::TokenCredential`], so Azure SDK
/// for Rust clients (Key Vault, Storage, …) can use it.
///
/// Each call asks the wrapped credential (and so goes through its cache). Errors become
/// `azure_core` errors of kind [`ErrorKind::Credential`] with the entra error as their source,
/// so nothing secret is added on the way.
///
/// ```
/// use std::sync::Arc;
/// use entra::{AzureCoreCredential, ClientSecretCredential, CredentialOptions};
///
/// let credential = ClientSecretCredential::new(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     "not shown",
///     CredentialOptions::new(),
/// )?;
/// let for_azure_sdk: Arc<dyn azure_core::credentials::TokenCredential> =
///     AzureCoreCredential::new(credential).into_arc();
/// # let _ = for_azure_sdk;
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AzureCoreCredential {
    credential: Arc<dyn TokenCredential>,
}

impl AzureCoreCredential {
    /// Wraps `credential`.
    pub fn new(credential: impl TokenCredential + 'static) -> Self {
        Self {
            credential: Arc::new(credential),
        }
    }

    /// Wraps a shared credential.
    pub fn from_arc(credential: Arc<dyn TokenCredential>) -> Self {
        Self { credential }
    }

    /// The adapter as the `Arc<dyn TokenCredential>` Azure SDK clients take.
    pub fn into_arc(self) -> Arc<dyn az::TokenCredential> {
        Arc::new(self)
    }
}

#[async_trait]
impl az::TokenCredential for AzureCoreCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<az::AccessToken> {
        let request = TokenRequest::new(scopes.iter().copied());
        let token = self
            .credential
            .get_token(&request)
            .await
            .map_err(|e| azure_core::Error::new(ErrorKind::Credential, e))?;
        Ok(az::AccessToken::new(
            az::Secret::new(token.token().expose().to_owned()),
            token.expires_on().into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    use azure_core::http::headers::{AUTHORIZATION, Headers};
    use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
    use azure_core::http::policies::{Policy, PolicyResult};
    use azure_core::http::{AsyncRawResponse, Context, Method, Request, StatusCode};
    use entra_core::{AccessToken, Error, Secret, TokenType};

    use super::*;

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl TokenCredential for Counting {
        async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
            assert_eq!(request.scopes, ["https://vault.azure.net/.default"]);
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(Error::unavailable("Counting", "not here"));
            }
            // The azure_core policy judges expiry by the real clock.
            #[allow(clippy::disallowed_methods)]
            let expires = SystemTime::now() + Duration::from_secs(3600);
            Ok(AccessToken::new(
                Secret::new("the-entra-token"),
                expires,
                expires - Duration::from_secs(300),
                TokenType::Bearer,
            ))
        }
    }

    /// The end of the pipeline: records the `Authorization` header and answers 200.
    #[derive(Debug, Default)]
    struct Capture(Mutex<Vec<String>>);

    // The trait is written with an elided `Context` lifetime; the impl must match it.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait]
    impl Policy for Capture {
        async fn send(
            &self,
            _ctx: &Context,
            request: &mut Request,
            _next: &[Arc<dyn Policy>],
        ) -> PolicyResult {
            let header = request.headers().get_str(&AUTHORIZATION)?.to_owned();
            self.0.lock().unwrap().push(header);
            Ok(AsyncRawResponse::from_bytes(
                StatusCode::Ok,
                Headers::new(),
                Vec::<u8>::new(),
            ))
        }
    }

    #[tokio::test]
    async fn an_azure_core_pipeline_authorizes_requests_with_an_entra_credential() {
        let credential = Arc::new(Counting::default());
        let adapter = AzureCoreCredential::from_arc(credential.clone()).into_arc();
        let policy =
            BearerTokenAuthorizationPolicy::new(adapter, ["https://vault.azure.net/.default"]);
        let capture = Arc::new(Capture::default());
        let next: Vec<Arc<dyn Policy>> = vec![capture.clone()];
        for _ in 0..2 {
            let mut request = Request::new(
                "https://contoso.vault.azure.net/secrets/x".parse().unwrap(),
                Method::Get,
            );
            let response = policy
                .send(&Context::default(), &mut request, &next)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::Ok);
        }
        assert_eq!(
            *capture.0.lock().unwrap(),
            ["Bearer the-entra-token", "Bearer the-entra-token"]
        );
        assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_become_credential_errors_with_the_entra_error_as_source() {
        let adapter = AzureCoreCredential::new(Counting {
            fail: true,
            ..Counting::default()
        });
        let err =
            az::TokenCredential::get_token(&adapter, &["https://vault.azure.net/.default"], None)
                .await
                .unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Credential);
        let text = format!("{err} {err:?}");
        assert!(text.contains("not here"), "{text}");
    }
}
