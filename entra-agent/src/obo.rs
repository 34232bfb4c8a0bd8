//! On-behalf-of: exchanging an incoming user token.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_core::{
    AccessToken, Acquired, Error, Grant, Secret, TokenClient, TokenCredential, TokenRequest,
};
use sha2::{Digest as _, Sha256};

use crate::session::SessionPolicy;

/// The grant type of on-behalf-of requests.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Tokens on behalf of the user of an incoming token: `grant_type=…jwt-bearer`,
/// `requested_token_use=on_behalf_of`, `assertion=<incoming token>`, with the client's own
/// credential (an agent identity's T1, or any confidential client's secret or certificate).
///
/// Tokens are cached per incoming token (the cache account is the SHA-256 of it, so the token
/// itself is never a key), and per session when one applies.
#[derive(Clone, Debug)]
pub struct OnBehalfOfCredential {
    client: TokenClient,
    grant: Grant,
    session: SessionPolicy,
}

impl OnBehalfOfCredential {
    /// On-behalf-of for the confidential client `client`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty incoming token.
    pub fn new(client: TokenClient, user_assertion: Secret) -> Result<Self, Error> {
        Self::with_session(client, user_assertion, SessionPolicy::default())
    }

    pub(crate) fn with_session(
        client: TokenClient,
        user_assertion: Secret,
        session: SessionPolicy,
    ) -> Result<Self, Error> {
        if user_assertion.expose().trim().is_empty() {
            return Err(Error::Configuration(
                "the incoming user token for on-behalf-of is empty; pass the bearer token the \
                 caller presented"
                    .to_owned(),
            ));
        }
        let account = format!(
            "obo:{}",
            URL_SAFE_NO_PAD.encode(Sha256::digest(user_assertion.expose().trim().as_bytes()))
        );
        let grant = Grant::new(JWT_BEARER_GRANT)
            .with_field("requested_token_use", "on_behalf_of")
            .with_secret_field("assertion", user_assertion)
            .with_account(account);
        Ok(Self {
            client,
            grant,
            session,
        })
    }

    /// A token for `request` on the user's behalf and whether it came from the cache.
    ///
    /// # Errors
    ///
    /// What the token endpoint answered (an incoming token addressed to another application
    /// surfaces as [`Error::Service`] with its AADSTS code).
    pub async fn acquire(&self, request: &TokenRequest) -> Result<Acquired<AccessToken>, Error> {
        let request = self.session.apply(request);
        self.client.exchange(&request, &self.grant).await
    }
}

#[async_trait]
impl TokenCredential for OnBehalfOfCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        Ok(self.acquire(request).await?.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> TokenClient {
        TokenClient::builder("client")
            .tenant("contoso.onmicrosoft.com")
            .unwrap()
            .build()
            .unwrap()
    }

    #[test]
    fn an_empty_incoming_token_is_a_configuration_error() {
        let err = OnBehalfOfCredential::new(client(), Secret::new("  ")).unwrap_err();
        assert!(matches!(err, Error::Configuration(_)));
    }

    #[test]
    fn debug_shows_neither_the_incoming_token_nor_its_hash_input() {
        let obo =
            OnBehalfOfCredential::new(client(), Secret::new("eyJincoming.user.token")).unwrap();
        let shown = format!("{obo:?}");
        assert!(!shown.contains("eyJincoming"), "{shown}");
    }
}
