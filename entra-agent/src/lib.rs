//! Agent identities for entra-rs: tokens for AI agents registered in Microsoft Entra ID.
//!
//! An **agent identity blueprint** is an application that holds a credential (client secret,
//! certificate, or a managed identity used as a federated credential). Each **agent
//! identity** under it has no credential of its own: it authenticates with a *T1* token the
//! blueprint obtains for it, a client-credentials token for the token-exchange audience
//! (`api://AzureADTokenExchange/.default`, or the sovereign cloud's) carrying
//! `fmi_path=<agent identity client id>`. Every leg goes through entra-core's one
//! [`TokenClient`](entra_core::TokenClient), so claims and client-capability merging, caching
//! with single-flight and proactive refresh, retries and AADSTS error mapping are shared.
//!
//! | flow | type | what is sent |
//! |---|---|---|
//! | blueprint T1 | [`Blueprint::t1`] | the blueprint's credential + `fmi_path`, exchange scope; cached per `fmi_path` |
//! | agent identity (TR) | [`AgentIdentityCredential`] | `client_id=<agent>`, `client_assertion=<T1>`, any resource |
//! | agent user | [`AgentUserCredential`] | T1 → T2 (the agent's exchange token) → `grant_type=user_fic` with `user_id` or `username`, scopes + `openid offline_access profile`; cached per user |
//! | on-behalf-of | [`OnBehalfOfCredential`] | `…jwt-bearer` + `requested_token_use=on_behalf_of` + the incoming token; cached per incoming token |
//!
//! **Agentic sessions.** When `COPILOT_AGENT_SESSION_ID` is set (read through the injected
//! environment when the blueprint is built), or a session is given explicitly
//! ([`BlueprintBuilder::agent_session`], [`AgentIdentityCredential::in_session`]), every token
//! request of an agent carries the session claims (the released `xms_cli_sid` form by default,
//! the seed `xms_agent_session` form on request) and `client_session=<id>`, and its token is
//! cached in that session's partition: no token crosses between agent and manual calls or
//! between sessions. [`Blueprint::evict_session`] drops every token of a finished session.
//! T1 and T2 are intermediates and are never session-bound.
//!
//! Every credential implements [`TokenCredential`](entra_core::TokenCredential), so the facade
//! and other crates compose them.
//!
//! ```no_run
//! use entra_agent::{AgentUser, Blueprint, BlueprintCredential};
//! use entra_core::{Secret, TokenCredential as _, TokenRequest};
//!
//! # async fn run() -> Result<(), entra_core::Error> {
//! let blueprint = Blueprint::builder("9471f355-173a-4466-b142-3d4acf848b03")
//!     .tenant("237098ae-0798-4cf9-a3a5-208374d2dcfd")?
//!     .credential(BlueprintCredential::Secret(Secret::new("…")))
//!     .build()?;
//!
//! // The agent identity's own token for Microsoft Graph (T1 is fetched and cached on the way).
//! let agent = blueprint.agent_identity("cd77c677-16ea-4f9d-b5b1-0aab1841694c")?;
//! let graph = TokenRequest::new(["https://graph.microsoft.com/.default"]);
//! let app_token = agent.get_token(&graph).await?;
//!
//! // A delegated token of the agent's user account.
//! let user = agent.agent_user(AgentUser::username("agent1@contoso.onmicrosoft.com")?);
//! let user_token = user
//!     .get_token(&TokenRequest::new(["https://graph.microsoft.com/User.Read"]))
//!     .await?;
//! # let _ = (app_token, user_token);
//! # Ok(()) }
//! ```
//!
//! A blueprint running on Azure can use its managed identity instead of a secret:
//! `BlueprintCredential::federated(managed_identity_credential)` asks that credential for a
//! token for the exchange audience and presents it as the blueprint's client assertion.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blueprint;
mod identity;
mod obo;
mod session;
mod user;

pub use blueprint::{Blueprint, BlueprintBuilder, BlueprintCredential};
pub use identity::AgentIdentityCredential;
pub use obo::{JWT_BEARER_GRANT, OnBehalfOfCredential};
pub use session::evict_session;
pub use user::{AgentUser, AgentUserCredential, USER_FIC_EXTRA_SCOPES, USER_FIC_GRANT};

pub use entra_claims::{AgentSessionId, SessionClaimsForm};
