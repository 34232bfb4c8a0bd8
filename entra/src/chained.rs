//! `ChainedTokenCredential`: credentials tried in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use entra_core::{AccessToken, Error, TokenCredential, TokenRequest};

/// The name the chain reports when no credential works.
pub const CHAINED_TOKEN_CREDENTIAL: &str = "ChainedTokenCredential";

const NONE: usize = usize::MAX;

/// Credentials tried in order: the chain moves to the next one only when a credential is
/// [`Error::Unavailable`]; any other error is a real failure and is returned at once. When no
/// credential works, the error (itself *unavailable*, so chains nest) lists what each said.
///
/// With [`remember_success`](Self::remember_success), the first credential that works is used
/// for every later request, as [`DefaultAzureCredential`](crate::DefaultAzureCredential) does.
///
/// ```
/// use std::sync::Arc;
/// use entra::{ChainedTokenCredential, CredentialOptions, EnvironmentCredential, ManagedIdentityCredential};
/// use entra_core::TokenCredential;
///
/// let chain = ChainedTokenCredential::new(vec![
///     Arc::new(EnvironmentCredential::new(CredentialOptions::new())) as Arc<dyn TokenCredential>,
///     Arc::new(ManagedIdentityCredential::builder().probe_mode(true).build()?),
/// ]);
/// # let _ = chain;
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ChainedTokenCredential {
    name: &'static str,
    credentials: Vec<Arc<dyn TokenCredential>>,
    remember: bool,
    selected: AtomicUsize,
}

impl ChainedTokenCredential {
    /// A chain of `credentials`, tried in order.
    pub fn new(credentials: Vec<Arc<dyn TokenCredential>>) -> Self {
        Self::named(CHAINED_TOKEN_CREDENTIAL, credentials)
    }

    pub(crate) fn named(name: &'static str, credentials: Vec<Arc<dyn TokenCredential>>) -> Self {
        Self {
            name,
            credentials,
            remember: false,
            selected: AtomicUsize::new(NONE),
        }
    }

    /// Keeps using the first credential that worked (default: no, every request walks the
    /// chain from the start).
    pub fn remember_success(mut self, remember: bool) -> Self {
        self.remember = remember;
        self
    }

    /// The position of the credential in use, once one has worked (with
    /// [`remember_success`](Self::remember_success)).
    pub fn selected(&self) -> Option<usize> {
        match self.selected.load(Ordering::Acquire) {
            NONE => None,
            i => Some(i),
        }
    }
}

#[async_trait]
impl TokenCredential for ChainedTokenCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        if let Some(i) = self.selected() {
            return self.credentials[i].get_token(request).await;
        }
        let mut said = Vec::new();
        for (i, credential) in self.credentials.iter().enumerate() {
            match credential.get_token(request).await {
                Ok(token) => {
                    if self.remember {
                        // The first to succeed wins if several requests race here.
                        let _ = self.selected.compare_exchange(
                            NONE,
                            i,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    }
                    tracing::debug!(chain = self.name, position = i, "credential selected");
                    return Ok(token);
                }
                Err(e) if e.is_unavailable() => {
                    tracing::debug!(chain = self.name, position = i, error = %e, "credential unavailable");
                    said.push(e.to_string());
                }
                Err(e) => {
                    tracing::debug!(chain = self.name, position = i, error = %e, "credential failed; the chain stops");
                    return Err(e);
                }
            }
        }
        let message = if said.is_empty() {
            "the chain holds no credential".to_owned()
        } else {
            format!(
                "no credential in the chain could get a token:\n- {}",
                said.join("\n- ")
            )
        };
        Err(Error::unavailable(self.name, message))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, UNIX_EPOCH};

    use entra_core::{Secret, TokenType};

    use super::*;

    /// Answers from a script: `Ok(name)` gives a token named after it.
    #[derive(Debug)]
    struct Scripted {
        answer: Result<&'static str, Error>,
        calls: AtomicUsize,
    }

    fn scripted(answer: Result<&'static str, Error>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answer,
            calls: AtomicUsize::new(0),
        })
    }

    #[async_trait]
    impl TokenCredential for Scripted {
        async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken, Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let t = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
            self.answer
                .clone()
                .map(|name| AccessToken::new(Secret::new(name), t, t, TokenType::Bearer))
        }
    }

    fn calls(c: &Scripted) -> usize {
        c.calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn falls_through_unavailable_and_stops_at_a_failure() {
        let a = scripted(Err(Error::unavailable("A", "no a")));
        let b = scripted(Err(Error::Configuration("b is broken".into())));
        let c = scripted(Ok("c"));
        let chain = ChainedTokenCredential::new(vec![a.clone(), b.clone(), c.clone()]);
        let err = chain
            .get_token(&TokenRequest::new(["s"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Configuration(_)));
        assert_eq!((calls(&a), calls(&b), calls(&c)), (1, 1, 0));

        let chain = ChainedTokenCredential::new(vec![a.clone(), c.clone()]);
        let token = chain.get_token(&TokenRequest::new(["s"])).await.unwrap();
        assert_eq!(token.token().expose(), "c");
        // Without remember_success, every request walks the chain again.
        chain.get_token(&TokenRequest::new(["s"])).await.unwrap();
        assert_eq!((calls(&a), calls(&c)), (3, 2));
        assert_eq!(chain.selected(), None);
    }

    #[tokio::test]
    async fn remembers_the_credential_that_worked() {
        let a = scripted(Err(Error::unavailable("A", "no a")));
        let c = scripted(Ok("c"));
        let chain = ChainedTokenCredential::new(vec![a.clone(), c.clone()]).remember_success(true);
        chain.get_token(&TokenRequest::new(["s"])).await.unwrap();
        chain.get_token(&TokenRequest::new(["s"])).await.unwrap();
        assert_eq!((calls(&a), calls(&c)), (1, 2));
        assert_eq!(chain.selected(), Some(1));
    }

    #[tokio::test]
    async fn lists_what_each_said_and_stays_unavailable_so_chains_nest() {
        let inner = ChainedTokenCredential::new(vec![
            scripted(Err(Error::unavailable("A", "no a"))),
            scripted(Err(Error::unavailable("B", "no b"))),
        ]);
        let outer = ChainedTokenCredential::new(vec![
            Arc::new(inner),
            scripted(Ok("fallback")) as Arc<dyn TokenCredential>,
        ]);
        let token = outer.get_token(&TokenRequest::new(["s"])).await.unwrap();
        assert_eq!(token.token().expose(), "fallback");

        let chain = ChainedTokenCredential::new(vec![
            scripted(Err(Error::unavailable("A", "no a"))),
            scripted(Err(Error::unavailable("B", "no b"))),
        ]);
        let err = chain
            .get_token(&TokenRequest::new(["s"]))
            .await
            .unwrap_err();
        assert!(err.is_unavailable());
        let text = err.to_string();
        assert!(text.contains("- A is unavailable: no a"), "{text}");
        assert!(text.contains("- B is unavailable: no b"), "{text}");
        let empty = ChainedTokenCredential::new(Vec::new());
        assert!(
            empty
                .get_token(&TokenRequest::new(["s"]))
                .await
                .unwrap_err()
                .is_unavailable()
        );
    }
}
