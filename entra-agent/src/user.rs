//! The agent user: T1 → T2 → `user_fic`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use entra_core::{
    AccessToken, Acquired, AssertionContext, AssertionProvider, Error, Grant, Secret,
    TokenCredential, TokenRequest,
};

use crate::identity::AgentIdentityCredential;

/// The OpenID Connect scopes every agent-user request carries with its delegated scopes.
pub const USER_FIC_EXTRA_SCOPES: [&str; 3] = ["openid", "offline_access", "profile"];

/// The grant type of the agent-user flow.
pub const USER_FIC_GRANT: &str = "user_fic";

/// Which agent user: by object id (`user_id`) or by user principal name (`username`) —
/// exactly one, as the token endpoint requires.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgentUser(Selector);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Selector {
    ObjectId(String),
    Username(String),
}

impl AgentUser {
    /// The agent user with object id `object_id` (sent as `user_id`).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty id.
    pub fn object_id(object_id: &str) -> Result<Self, Error> {
        Ok(Self(Selector::ObjectId(non_empty(object_id, "user_id")?)))
    }

    /// The agent user with user principal name `upn` (sent as `username`).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty name.
    pub fn username(upn: &str) -> Result<Self, Error> {
        Ok(Self(Selector::Username(non_empty(upn, "username")?)))
    }

    /// From optional parts, as they come from a command line or configuration file.
    ///
    /// ```
    /// use entra_agent::AgentUser;
    /// assert!(AgentUser::from_parts(Some("6d8e…"), None).is_ok());
    /// assert!(AgentUser::from_parts(None, None).is_err());
    /// assert!(AgentUser::from_parts(Some("6d8e…"), Some("agent@contoso.com")).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] unless exactly one of them is given and non-empty.
    pub fn from_parts(user_id: Option<&str>, username: Option<&str>) -> Result<Self, Error> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.filter(|v| !v.trim().is_empty())
        }
        match (present(user_id), present(username)) {
            (Some(id), None) => Self::object_id(id),
            (None, Some(upn)) => Self::username(upn),
            (None, None) => Err(Error::Configuration(
                "no agent user given; pass either the agent user's object id (user_id) or its \
                 user principal name (username)"
                    .to_owned(),
            )),
            (Some(_), Some(_)) => Err(Error::Configuration(
                "both user_id and username given; pass exactly one of them to name the agent user"
                    .to_owned(),
            )),
        }
    }

    /// The form field and value that name the user.
    fn field(&self) -> (&'static str, &str) {
        match &self.0 {
            Selector::ObjectId(id) => ("user_id", id),
            Selector::Username(upn) => ("username", upn),
        }
    }

    /// The cache partition of this user's tokens.
    fn account(&self) -> String {
        match &self.0 {
            Selector::ObjectId(id) => format!("oid:{}", id.to_ascii_lowercase()),
            Selector::Username(upn) => format!("upn:{}", upn.to_ascii_lowercase()),
        }
    }
}

fn non_empty(value: &str, field: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Configuration(format!(
            "the agent user's {field} is empty"
        )));
    }
    Ok(value.to_owned())
}

impl fmt::Debug for AgentUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, value) = self.field();
        write!(f, "AgentUser({field}={value:?})")
    }
}

/// The agent's T2 as the user federated identity credential, fetched only on a cache miss.
#[derive(Debug)]
struct T2Assertion(AgentIdentityCredential);

#[async_trait]
impl AssertionProvider for T2Assertion {
    async fn assertion(&self, _context: &AssertionContext) -> Result<Secret, Error> {
        Ok(self.0.t2().await?.value.token().clone())
    }
}

/// Delegated tokens of an agent user: the agent identity's T1 as client assertion, its T2 as
/// `user_federated_identity_credential`, `grant_type=user_fic`, the delegated scopes plus
/// `openid offline_access profile`; cached per agent user (and per session).
///
/// The refresh token Entra returns is not kept: the flow can always be run again from the
/// blueprint's credential, so no long-lived user secret is stored.
#[derive(Clone, Debug)]
pub struct AgentUserCredential {
    agent: AgentIdentityCredential,
    user: AgentUser,
    grant: Grant,
}

impl AgentUserCredential {
    pub(crate) fn new(agent: AgentIdentityCredential, user: AgentUser) -> Self {
        let (field, value) = user.field();
        let grant = Grant::new(USER_FIC_GRANT)
            .with_provided_field(
                "user_federated_identity_credential",
                Arc::new(T2Assertion(agent.clone())),
            )
            .with_field(field, value)
            .with_field("client_info", "1")
            .with_account(user.account());
        Self { agent, user, grant }
    }

    /// The agent user.
    pub fn user(&self) -> &AgentUser {
        &self.user
    }

    /// The agent identity acting for the user.
    pub fn agent(&self) -> &AgentIdentityCredential {
        &self.agent
    }

    /// A delegated token for `request` and whether it came from the cache.
    ///
    /// # Errors
    ///
    /// What any of the three legs answered, as a typed [`Error`].
    pub async fn acquire(&self, request: &TokenRequest) -> Result<Acquired<AccessToken>, Error> {
        let mut request = self.agent.session().apply(request).into_owned();
        for extra in USER_FIC_EXTRA_SCOPES {
            if !request.scopes.iter().any(|s| s.eq_ignore_ascii_case(extra)) {
                request.scopes.push(extra.to_owned());
            }
        }
        self.agent.client().exchange(&request, &self.grant).await
    }
}

#[async_trait]
impl TokenCredential for AgentUserCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        Ok(self.acquire(request).await?.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_selector() {
        let by_id = AgentUser::from_parts(Some(" 0a5e "), Some("")).unwrap();
        assert_eq!(by_id.field(), ("user_id", "0a5e"));
        let by_name = AgentUser::from_parts(None, Some("Agent@Contoso.example")).unwrap();
        assert_eq!(by_name.field(), ("username", "Agent@Contoso.example"));
        // Accounts are case-insensitive and never collide between the two kinds.
        assert_eq!(by_name.account(), "upn:agent@contoso.example");
        assert_ne!(
            AgentUser::object_id("x").unwrap().account(),
            AgentUser::username("x").unwrap().account()
        );
        for (id, name, says) in [
            (None, None, "no agent user"),
            (Some("a"), Some("b"), "exactly one"),
            (Some("  "), None, "no agent user"),
        ] {
            let err = AgentUser::from_parts(id, name).unwrap_err();
            assert!(matches!(err, Error::Configuration(_)));
            assert!(err.to_string().contains(says), "{err}");
        }
        assert!(AgentUser::object_id("").is_err());
        assert!(AgentUser::username(" ").is_err());
    }
}
