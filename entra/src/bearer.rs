//! `BearerTokenProvider`: a valid token string for one scope set, for long-running programs.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use entra_core::{AccessToken, Clock, Error, Secret, SystemClock, TokenCredential, TokenRequest};

/// Hands out a valid token for one scope set (fixed up front), refreshing it before it
/// expires: the call for long-running services that put a bearer token into each request or
/// session (seed: "refresh the token before creating each session").
///
/// The provider remembers the last token and returns it while the injected clock is before
/// its `refresh_on`, so most calls take a read lock and clone an `Arc`. After `refresh_on`,
/// one caller asks the credential again (for credentials built on the token exchange, its
/// cache refreshes proactively and coalesces concurrent requests; the provider adds no
/// cache policy of its own); other callers wait for that answer. If the refresh fails while
/// the old token is still valid, the old token is served.
///
/// Cloning is cheap and clones share the same token; use it from as many tasks as you like.
///
/// ```
/// use std::sync::Arc;
/// use entra::{BearerTokenProvider, ClientSecretCredential, CredentialOptions};
///
/// let credential = ClientSecretCredential::new(
///     "contoso.onmicrosoft.com",
///     "00000000-0000-0000-0000-000000000001",
///     "not shown",
///     CredentialOptions::new(),
/// )?;
/// let provider = BearerTokenProvider::new(Arc::new(credential), ["https://ai.azure.com/.default"]);
/// // In a request handler: `let header = provider.authorization_header().await?;`
/// # let _ = provider;
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Clone)]
pub struct BearerTokenProvider {
    inner: Arc<Inner>,
}

struct Inner {
    credential: Arc<dyn TokenCredential>,
    request: TokenRequest,
    clock: Arc<dyn Clock>,
    current: RwLock<Option<AccessToken>>,
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for BearerTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenProvider")
            .field("credential", &self.inner.credential)
            .field("scopes", &self.inner.request.scopes)
            .finish_non_exhaustive()
    }
}

impl BearerTokenProvider {
    /// A provider of tokens for `scopes` from `credential`, on the system clock.
    pub fn new<I, S>(credential: Arc<dyn TokenCredential>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::for_request(credential, TokenRequest::new(scopes), Arc::new(SystemClock))
    }

    /// A provider for a full `request` (scopes, tenant, client claims), on `clock`.
    pub fn for_request(
        credential: Arc<dyn TokenCredential>,
        request: TokenRequest,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                credential,
                request,
                clock,
                current: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Uses `clock` to decide when to refresh (default: the system clock).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let inner = &self.inner;
        Self::for_request(inner.credential.clone(), inner.request.clone(), clock)
    }

    /// A valid token (the string to put after `Bearer `). Never log it.
    pub async fn token(&self) -> Result<Secret, Error> {
        Ok(self.access_token().await?.token().clone())
    }

    /// The `Authorization` header value: `Bearer <token>` (or the bound scheme).
    pub async fn authorization_header(&self) -> Result<Secret, Error> {
        let token = self.access_token().await?;
        Ok(Secret::new(format!(
            "{} {}",
            token.scheme(),
            token.token().expose()
        )))
    }

    /// The current token with its expiry, refreshed when its refresh time has come.
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _refreshing = self.inner.refresh.lock().await;
        // Another task may have refreshed while this one waited.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        match self.inner.credential.get_token(&self.inner.request).await {
            Ok(token) => {
                *self
                    .inner
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
                Ok(token)
            }
            Err(e) => {
                let now = self.inner.clock.now();
                let current = self
                    .inner
                    .current
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                match current {
                    Some(token) if now < token.expires_on() => {
                        tracing::warn!(error = %e, "token refresh failed; the current token is still valid and is used");
                        Ok(token)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    fn fresh(&self) -> Option<AccessToken> {
        let now = self.inner.clock.now();
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|t| now < t.refresh_on() && now < t.expires_on())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use entra_core::{ManualClock, TokenType};

    use super::*;

    /// Issues `token-<n>` valid for an hour with refresh at 55 minutes, or fails when told.
    #[derive(Debug)]
    struct Issuer {
        clock: ManualClock,
        issued: Mutex<u32>,
        fail: Mutex<bool>,
    }

    #[async_trait]
    impl TokenCredential for Issuer {
        async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
            assert_eq!(request.scopes, ["https://ai.azure.com/.default"]);
            if *self.fail.lock().unwrap() {
                return Err(Error::unavailable("Issuer", "down"));
            }
            let mut n = self.issued.lock().unwrap();
            *n += 1;
            let now = entra_cache::Clock::now(&self.clock);
            Ok(AccessToken::new(
                Secret::new(format!("token-{n}")),
                now + Duration::from_secs(3600),
                now + Duration::from_secs(3300),
                TokenType::Bearer,
            ))
        }
    }

    fn setup() -> (ManualClock, Arc<Issuer>, BearerTokenProvider) {
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let issuer = Arc::new(Issuer {
            clock: clock.clone(),
            issued: Mutex::new(0),
            fail: Mutex::new(false),
        });
        let provider = BearerTokenProvider::new(issuer.clone(), ["https://ai.azure.com/.default"])
            .with_clock(Arc::new(clock.clone()));
        (clock, issuer, provider)
    }

    #[tokio::test]
    async fn reuses_the_token_until_its_refresh_time() {
        let (clock, issuer, provider) = setup();
        assert_eq!(provider.token().await.unwrap().expose(), "token-1");
        clock.advance(Duration::from_secs(3299));
        assert_eq!(provider.token().await.unwrap().expose(), "token-1");
        assert_eq!(*issuer.issued.lock().unwrap(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(provider.token().await.unwrap().expose(), "token-2");
        assert_eq!(
            provider.authorization_header().await.unwrap().expose(),
            "Bearer token-2"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_serves_the_valid_token_and_an_expired_one_never() {
        let (clock, issuer, provider) = setup();
        provider.token().await.unwrap();
        *issuer.fail.lock().unwrap() = true;
        clock.advance(Duration::from_secs(3400));
        assert_eq!(provider.token().await.unwrap().expose(), "token-1");
        clock.advance(Duration::from_secs(200));
        let err = provider.token().await.unwrap_err();
        assert!(err.is_unavailable());
        *issuer.fail.lock().unwrap() = false;
        assert_eq!(provider.token().await.unwrap().expose(), "token-2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_tasks_one_request() {
        let (_clock, issuer, provider) = setup();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let p = provider.clone();
                tokio::spawn(async move { p.token().await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().expose(), "token-1");
        }
        assert_eq!(*issuer.issued.lock().unwrap(), 1);
    }
}
