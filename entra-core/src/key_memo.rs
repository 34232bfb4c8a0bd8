//! Remembers the cache keys a [`TokenClient`](crate::TokenClient) built, so a cache hit does
//! not normalise the same request into the same key again (lower-casing and sorting scopes,
//! the extension hash, the canonical form: about 0.7 µs, most of a hit's cost).
//!
//! A memo entry is used only when every input the key is built from is *equal* to the
//! request's — the fingerprint only picks the slot — so a memo can never hand one caller the
//! key of another request.

use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
use std::sync::{OnceLock, PoisonError, RwLock};

use entra_cache::{CacheKey, TokenType};
use entra_claims::Claims;

use crate::TokenRequest;

/// Slots of the direct-mapped memo (a few request shapes per client is the common case).
const SLOTS: usize = 32;

/// What a key is built from, besides the client's fixed host and client id.
struct Inputs {
    tenant: Option<String>,
    scopes: Vec<String>,
    request_components: Vec<(String, String)>,
    client_claims: Option<Claims>,
    session: Option<String>,
    token_type: TokenType,
    account: Option<String>,
    grant_components: Vec<(String, String)>,
}

/// The grant-side inputs of a key.
pub(crate) struct GrantInputs<'a> {
    pub(crate) token_type: &'a TokenType,
    pub(crate) account: Option<&'a str>,
    pub(crate) components: &'a [(String, String)],
}

impl Inputs {
    fn matches(&self, request: &TokenRequest, grant: &GrantInputs<'_>) -> bool {
        self.tenant == request.tenant
            && self.scopes == request.scopes
            && self.request_components == request.key_components
            && self.client_claims == request.client_claims
            && self.session.as_deref()
                == request
                    .agent_session
                    .as_ref()
                    .map(|(id, _)| id.client_session())
            && &self.token_type == grant.token_type
            && self.account.as_deref() == grant.account
            && self.grant_components == grant.components
    }
}

struct Entry {
    fingerprint: u64,
    inputs: Inputs,
    key: CacheKey,
}

/// A small direct-mapped memo of request → cache key.
pub(crate) struct KeyMemo {
    slots: Box<[RwLock<Option<Entry>>]>,
}

impl Default for KeyMemo {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| RwLock::new(None)).collect(),
        }
    }
}

fn fingerprint(request: &TokenRequest, grant: &GrantInputs<'_>) -> u64 {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = STATE.get_or_init(Default::default).build_hasher();
    request.tenant.hash(&mut h);
    request.scopes.hash(&mut h);
    request.key_components.hash(&mut h);
    request
        .agent_session
        .as_ref()
        .map(|(id, _)| id.client_session())
        .hash(&mut h);
    request.client_claims.is_some().hash(&mut h);
    grant.token_type.hash(&mut h);
    grant.account.hash(&mut h);
    grant.components.hash(&mut h);
    h.finish()
}

impl KeyMemo {
    /// The key for `request` and `grant`: remembered, or made by `build` and remembered.
    pub(crate) fn get_or_build<E>(
        &self,
        request: &TokenRequest,
        grant: &GrantInputs<'_>,
        build: impl FnOnce() -> Result<CacheKey, E>,
    ) -> Result<CacheKey, E> {
        let fingerprint = fingerprint(request, grant);
        let slot = &self.slots[(fingerprint as usize) % self.slots.len()];
        {
            let entry = slot.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entry.as_ref()
                && entry.fingerprint == fingerprint
                && entry.inputs.matches(request, grant)
            {
                return Ok(entry.key.clone());
            }
        }
        let key = build()?;
        let entry = Entry {
            fingerprint,
            inputs: Inputs {
                tenant: request.tenant.clone(),
                scopes: request.scopes.clone(),
                request_components: request.key_components.clone(),
                client_claims: request.client_claims.clone(),
                session: request
                    .agent_session
                    .as_ref()
                    .map(|(id, _)| id.client_session().to_owned()),
                token_type: grant.token_type.clone(),
                account: grant.account.map(str::to_owned),
                grant_components: grant.components.to_vec(),
            },
            key: key.clone(),
        };
        *slot.write().unwrap_or_else(PoisonError::into_inner) = Some(entry);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_claims::{AgentSessionId, SessionClaimsForm};

    fn build(request: &TokenRequest, grant: &GrantInputs<'_>) -> CacheKey {
        let mut b = CacheKey::builder("host", request.tenant.as_deref().unwrap_or("t"), "c")
            .scopes(&request.scopes)
            .token_type(grant.token_type.clone());
        if let Some(a) = grant.account {
            b = b.account(a);
        }
        for (k, v) in grant.components.iter().chain(&request.key_components) {
            b = b.extension(k.clone(), v.clone());
        }
        if let Some(c) = &request.client_claims {
            b = b.extension("client_claims", c.to_canonical_json());
        }
        if let Some((s, _)) = &request.agent_session {
            b = b.extension("client_session", s.client_session());
        }
        b.build().unwrap()
    }

    /// Every differing input gives the key built for it, never a remembered one of another
    /// request; the same request reuses the remembered key.
    #[test]
    fn a_remembered_key_is_used_only_for_an_equal_request() {
        let memo = KeyMemo::default();
        let bearer = TokenType::Bearer;
        let bound = TokenType::bound("mtls_pop", "thumb");
        let components = vec![("fmi_path".to_owned(), "agent-a".to_owned())];
        let grants = [
            GrantInputs {
                token_type: &bearer,
                account: None,
                components: &[],
            },
            GrantInputs {
                token_type: &bound,
                account: None,
                components: &[],
            },
            GrantInputs {
                token_type: &bearer,
                account: Some("user-1"),
                components: &[],
            },
            GrantInputs {
                token_type: &bearer,
                account: Some("user-2"),
                components: &[],
            },
            GrantInputs {
                token_type: &bearer,
                account: None,
                components: &components,
            },
        ];
        let base = TokenRequest::new(["https://graph.microsoft.com/.default"]);
        let requests = [
            base.clone(),
            TokenRequest::new(["https://vault.azure.net/.default"]),
            base.clone().with_tenant("other"),
            base.clone().with_key_component("credential_fmi_path", "x"),
            base.clone()
                .with_client_claims(Claims::parse(r#"{"a":1}"#).unwrap()),
            base.clone()
                .with_client_claims(Claims::parse(r#"{"a":2}"#).unwrap()),
            base.clone().with_agent_session(
                AgentSessionId::new("s1").unwrap(),
                SessionClaimsForm::Released,
            ),
            base.clone().with_agent_session(
                AgentSessionId::new("s2").unwrap(),
                SessionClaimsForm::Released,
            ),
        ];
        for _round in 0..2 {
            for request in &requests {
                for grant in &grants {
                    let got = memo
                        .get_or_build(request, grant, || Ok::<_, ()>(build(request, grant)))
                        .unwrap();
                    assert!(got == build(request, grant), "{request:?}");
                }
            }
        }
        // The same request twice: the second answer is the remembered key (no build).
        let grant = &grants[0];
        memo.get_or_build(&base, grant, || Ok::<_, ()>(build(&base, grant)))
            .unwrap();
        let again = memo
            .get_or_build(&base, grant, || -> Result<CacheKey, ()> {
                panic!("rebuilt")
            })
            .unwrap();
        assert!(again == build(&base, grant));
    }
}
