//! The agent identity: client credentials with the blueprint's T1 as the assertion.

use std::sync::Arc;

use async_trait::async_trait;
use entra_claims::{AgentSessionId, SessionClaimsForm};
use entra_core::{
    AccessToken, Acquired, AssertionContext, AssertionProvider, ClientCredential, Error, Grant,
    Secret, TokenClient, TokenCredential, TokenRequest,
};

use crate::blueprint::Blueprint;
use crate::obo::OnBehalfOfCredential;
use crate::session::SessionPolicy;
use crate::user::{AgentUser, AgentUserCredential};

/// The T1 of one agent identity as its client assertion: fetched lazily from the blueprint,
/// cached per `fmi_path` and refreshed before it expires by the shared cache.
#[derive(Debug)]
struct T1Assertion {
    blueprint: Blueprint,
    fmi_path: String,
}

#[async_trait]
impl AssertionProvider for T1Assertion {
    async fn assertion(&self, context: &AssertionContext) -> Result<Secret, Error> {
        let t1 = self
            .blueprint
            .t1_in(&self.fmi_path, Some(&context.tenant))
            .await?;
        Ok(t1.value.token().clone())
    }
}

/// An agent identity under a [`Blueprint`]: tokens for any resource (`TR`), acquired with
/// the blueprint's T1 for this agent as the client assertion.
///
/// Tokens are cached in the blueprint's cache. With an agentic session (from
/// `COPILOT_AGENT_SESSION_ID`, the blueprint builder, or [`in_session`](Self::in_session)),
/// each request carries the session claims and `client_session`, and its token is cached in
/// that session's partition only.
#[derive(Clone, Debug)]
pub struct AgentIdentityCredential {
    blueprint: Blueprint,
    client: TokenClient,
    session: SessionPolicy,
}

impl AgentIdentityCredential {
    pub(crate) fn new(blueprint: Blueprint, agent_client_id: &str) -> Result<Self, Error> {
        let agent_client_id = agent_client_id.trim();
        if agent_client_id.is_empty() {
            return Err(Error::Configuration(
                "the agent identity's client id is empty; pass the client id of an agent identity \
                 under this blueprint"
                    .to_owned(),
            ));
        }
        let provider = T1Assertion {
            blueprint: blueprint.clone(),
            fmi_path: agent_client_id.to_owned(),
        };
        let client = blueprint.context().client(
            agent_client_id,
            ClientCredential::Assertion(Arc::new(provider)),
        )?;
        let session = blueprint.context().session.clone();
        Ok(Self {
            blueprint,
            client,
            session,
        })
    }

    /// The agent identity's client id.
    pub fn client_id(&self) -> &str {
        self.client.client_id()
    }

    /// The blueprint this agent identity belongs to.
    pub fn blueprint(&self) -> &Blueprint {
        &self.blueprint
    }

    /// The agentic session this credential acts in, if any.
    pub fn agent_session(&self) -> Option<&AgentSessionId> {
        self.session.id.as_ref()
    }

    /// This agent identity acting in the agentic session `id` (same cache and T1).
    #[must_use]
    pub fn in_session(&self, id: AgentSessionId) -> Self {
        let mut this = self.clone();
        this.session.id = Some(id);
        this
    }

    /// This agent identity acting outside any agentic session.
    #[must_use]
    pub fn outside_session(&self) -> Self {
        let mut this = self.clone();
        this.session.id = None;
        this
    }

    /// Sends the session claims in `form` (default: the released `xms_cli_sid` form).
    #[must_use]
    pub fn with_session_claims_form(&self, form: SessionClaimsForm) -> Self {
        let mut this = self.clone();
        this.session.form = form;
        this
    }

    /// A token for `request` and whether it came from the cache.
    ///
    /// # Errors
    ///
    /// What the T1 leg or the token endpoint answered (an agent identity the T1 was not
    /// issued for surfaces as [`Error::Service`] with its AADSTS code).
    pub async fn acquire(&self, request: &TokenRequest) -> Result<Acquired<AccessToken>, Error> {
        let request = self.session.apply(request);
        self.client
            .exchange(&request, &Grant::client_credentials())
            .await
    }

    /// The agent's own token-exchange token (T2), the user federated identity credential of
    /// the agent-user flow. Never in a session: it is an intermediate, not a token for a
    /// resource.
    pub(crate) async fn t2(&self) -> Result<Acquired<AccessToken>, Error> {
        let scope = self.blueprint.context().exchange_scope();
        self.client
            .exchange(&TokenRequest::new([scope]), &Grant::client_credentials())
            .await
    }

    /// The agent user `user` of this agent identity (the `user_fic` flow).
    pub fn agent_user(&self, user: AgentUser) -> AgentUserCredential {
        AgentUserCredential::new(self.clone(), user)
    }

    /// Exchanges `user_assertion` (an incoming user token addressed to the blueprint) for
    /// tokens on the user's behalf, cached per incoming token.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty assertion.
    pub fn on_behalf_of(&self, user_assertion: Secret) -> Result<OnBehalfOfCredential, Error> {
        OnBehalfOfCredential::with_session(
            self.client.clone(),
            user_assertion,
            self.session.clone(),
        )
    }

    /// Drops every cached token of the finished agentic session `id` (see
    /// [`Blueprint::evict_session`]).
    pub fn evict_session(&self, id: &AgentSessionId) -> usize {
        self.blueprint.evict_session(id)
    }

    pub(crate) fn client(&self) -> &TokenClient {
        &self.client
    }

    pub(crate) fn session(&self) -> &SessionPolicy {
        &self.session
    }
}

#[async_trait]
impl TokenCredential for AgentIdentityCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        Ok(self.acquire(request).await?.value)
    }
}
