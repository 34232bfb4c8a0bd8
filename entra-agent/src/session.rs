//! Agentic sessions: which session a credential acts in, and evicting a finished one.

use entra_claims::{AgentSessionId, SessionClaimsForm};
use entra_core::{AccessTokenCache, TokenRequest};

/// The session a credential acts in by default and the claims form it sends.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionPolicy {
    pub(crate) id: Option<AgentSessionId>,
    pub(crate) form: SessionClaimsForm,
}

impl SessionPolicy {
    /// `request` in this policy's session, unless it names a session of its own. Borrowed
    /// when nothing changes, so calls outside sessions do not copy the request.
    pub(crate) fn apply<'a>(
        &self,
        request: &'a TokenRequest,
    ) -> std::borrow::Cow<'a, TokenRequest> {
        match (&self.id, &request.agent_session) {
            (Some(id), None) => {
                std::borrow::Cow::Owned(request.clone().with_agent_session(id.clone(), self.form))
            }
            _ => std::borrow::Cow::Borrowed(request),
        }
    }
}

/// Drops every token of the agentic session `id` from `cache` and returns how many were
/// dropped. Tokens acquired outside sessions, and those of other sessions, stay.
pub fn evict_session(cache: &AccessTokenCache, id: &AgentSessionId) -> usize {
    let removed = cache.remove_where(|key| {
        key.extension(entra_cache::CLIENT_SESSION) == Some(id.client_session())
    });
    tracing::debug!(
        session = id.as_str(),
        removed,
        "evicted the tokens of a finished agentic session"
    );
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn a_request_keeps_its_own_session_and_borrows_when_nothing_changes() {
        let none = SessionPolicy::default();
        let request = TokenRequest::new(["https://graph.microsoft.com/.default"]);
        assert!(matches!(none.apply(&request), Cow::Borrowed(_)));

        let policy = SessionPolicy {
            id: Some(AgentSessionId::new("s1").unwrap()),
            form: SessionClaimsForm::Seed,
        };
        let applied = policy.apply(&request);
        let (id, form) = applied.agent_session.as_ref().unwrap();
        assert_eq!((id.as_str(), *form), ("s1", SessionClaimsForm::Seed));

        let own = request.with_agent_session(
            AgentSessionId::new("s2").unwrap(),
            SessionClaimsForm::Released,
        );
        let kept = policy.apply(&own);
        assert!(matches!(kept, Cow::Borrowed(_)));
        assert_eq!(kept.agent_session.as_ref().unwrap().0.as_str(), "s2");
    }
}
