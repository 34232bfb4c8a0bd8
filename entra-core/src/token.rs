//! `AccessToken` and `TokenRequest`.

use std::fmt;
use std::time::SystemTime;

pub use entra_cache::TokenType;
use entra_claims::{AgentSessionId, Claims, SessionClaimsForm};

use crate::Secret;

/// An access token and what a caller needs to use and refresh it.
///
/// Cloning is cheap (the token string is shared). `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    token: Secret,
    expires_on: SystemTime,
    refresh_on: SystemTime,
    token_type: TokenType,
}

impl AccessToken {
    /// A token expiring at `expires_on`, to be refreshed from `refresh_on`.
    pub fn new(
        token: Secret,
        expires_on: SystemTime,
        refresh_on: SystemTime,
        token_type: TokenType,
    ) -> Self {
        Self {
            token,
            expires_on,
            refresh_on,
            token_type,
        }
    }

    /// The token. Never log it.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// When the token expires.
    pub fn expires_on(&self) -> SystemTime {
        self.expires_on
    }

    /// When the token should be refreshed.
    pub fn refresh_on(&self) -> SystemTime {
        self.refresh_on
    }

    /// Its type: `Bearer`, or bound to a key (`mtls_pop` with the certificate thumbprint).
    pub fn token_type(&self) -> &TokenType {
        &self.token_type
    }

    /// The `Authorization` scheme to present it with (`Bearer` or `mtls_pop`).
    pub fn scheme(&self) -> &str {
        match &self.token_type {
            TokenType::Bound { token_type, .. } => token_type,
            _ => "Bearer",
        }
    }

    /// This token as a cache entry: cached until `expires_on`, refreshed from `refresh_on`.
    pub fn into_fresh(self) -> entra_cache::Fresh<AccessToken> {
        let (expires_on, refresh_on) = (self.expires_on, self.refresh_on);
        entra_cache::Fresh::new(self, expires_on).with_refresh_on(refresh_on)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_on", &self.expires_on)
            .field("refresh_on", &self.refresh_on)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// What a caller asks for: scopes, and what changes which token is right.
///
/// ```
/// use entra_core::TokenRequest;
/// let request = TokenRequest::new(["https://vault.azure.net/.default"]).with_tenant("contoso.onmicrosoft.com");
/// assert_eq!(request.scopes, ["https://vault.azure.net/.default"]);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TokenRequest {
    /// The scopes (for app tokens, `<resource>/.default`).
    pub scopes: Vec<String>,
    /// Another tenant than the credential's own, if the credential allows it.
    pub tenant: Option<String>,
    /// A claims challenge from a resource (a 401 `WWW-Authenticate` with `claims`): forces a
    /// fresh token and is sent with the request; the cache is bypassed.
    pub claims_challenge: Option<Claims>,
    /// Claims the application always sends; part of the cache key.
    pub client_claims: Option<Claims>,
    /// The agentic session this request is made in, and the claims form to send.
    pub agent_session: Option<(AgentSessionId, SessionClaimsForm)>,
    /// Extra cache-key components (for example `fmi_path`), as in MSAL's extension key.
    pub key_components: Vec<(String, String)>,
}

impl TokenRequest {
    /// A request for `scopes`.
    pub fn new<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Asks for a token from `tenant`.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Answers a claims challenge.
    pub fn with_claims_challenge(mut self, claims: Claims) -> Self {
        self.claims_challenge = Some(claims);
        self
    }

    /// Sends `claims` with every request (and keys the cache by them).
    pub fn with_client_claims(mut self, claims: Claims) -> Self {
        self.client_claims = Some(claims);
        self
    }

    /// Makes the request in the agentic session `id`, with the session claims in `form`.
    pub fn with_agent_session(mut self, id: AgentSessionId, form: SessionClaimsForm) -> Self {
        self.agent_session = Some((id, form));
        self
    }

    /// Adds a cache-key component.
    pub fn with_key_component(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.key_components.push((name.into(), value.into()));
        self
    }
}
