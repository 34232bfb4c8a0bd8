//! Claims requests for Microsoft Entra ID: parse, merge and serialise the OpenID Connect `claims`
//! parameter, declare client capabilities, mark agent sessions, and read claims challenges from
//! `WWW-Authenticate` headers.
//!
//! The crate is pure: no I/O, no clock, no environment (the one environment read,
//! [`AgentSessionId::from_env`], goes through an injected lookup). No input makes it panic, and
//! no error or `Debug` output repeats input text, because claims may carry secrets.
//!
//! - [`Claims`]: a validated JSON object with a [canonical form](Claims::to_canonical_json) and an
//!   associative, idempotent [merge](Claims::merge) whose identity is `{}` (the rule is in
//!   [`merge`]).
//! - [`ClientCapabilities`] and [`request_claims`]: the `claims` form field of a token request,
//!   `merge(capabilities, challenge, client_claims)`, which never drops a capability.
//! - [`AgentSessionId`], [`SessionClaimsForm`] and [`merge_access_token_claims`]: Azure CLI's
//!   agentic-session claims.
//! - [`parse_www_authenticate`] and [`claims_challenge_from_header`]: claims challenges.
//!
//! ```
//! use entra_claims::{claims_challenge_from_header, request_claims, ClientCapabilities};
//!
//! // A resource answered 401 with a Continuous Access Evaluation claims challenge.
//! let header = r#"Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUxIn19fQ==""#;
//! let challenge = claims_challenge_from_header(header)?;
//!
//! // The next token request sends the client's capabilities merged with the challenge.
//! let capabilities = ClientCapabilities::new(["cp1"])?;
//! let claims = request_claims(&capabilities, challenge.as_ref(), None).expect("not empty");
//! assert_eq!(
//!     claims.to_json(),
//!     r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"},"xms_cc":{"values":["cp1"]}}}"#,
//! );
//! # Ok::<(), entra_claims::ClaimsError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod canonical;
mod capabilities;
mod challenge;
mod claims;
mod error;
pub mod merge;
mod session;

#[cfg(test)]
mod no_leak_tests;
#[cfg(test)]
mod test_support;

pub use capabilities::{ClientCapabilities, MAX_CAPABILITIES, MAX_CAPABILITY_LEN, request_claims};
pub use challenge::{
    Challenge, MAX_CHALLENGES, MAX_HEADER_LEN, MAX_PARAMS, claims_challenge_from_header,
    is_insufficient_claims, parse_www_authenticate,
};
pub use claims::{Claims, MAX_CLAIMS_LEN, MAX_DEPTH};
pub use error::{ClaimsError, JsonKind, NameProblem};
pub use session::{
    AGENT_SESSION_ENV, AgentSessionId, MAX_SESSION_ID_LEN, SessionClaimsForm,
    merge_access_token_claims,
};
