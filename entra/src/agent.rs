//! Agent identities (from `entra-agent`): a blueprint's T1 per agent identity, the agent
//! identity's own tokens, its agent users, on-behalf-of, and agentic sessions.
//!
//! ```no_run
//! use entra::{AgentUser, Blueprint, BlueprintCredential, ManagedIdentityCredential};
//! use entra_core::{TokenCredential as _, TokenRequest};
//!
//! # async fn run() -> Result<(), entra_core::Error> {
//! // A blueprint running on Azure, authenticating with its managed identity.
//! let blueprint = Blueprint::builder("9471f355-173a-4466-b142-3d4acf848b03")
//!     .tenant("contoso.onmicrosoft.com")?
//!     .credential(BlueprintCredential::federated(ManagedIdentityCredential::new()?))
//!     .build()?;
//! let agent = blueprint.agent_identity("cd77c677-16ea-4f9d-b5b1-0aab1841694c")?;
//! let token = agent.get_token(&TokenRequest::new(["https://graph.microsoft.com/.default"])).await?;
//! let user = agent.agent_user(AgentUser::object_id("2c5f1a3e-0000-0000-0000-000000000001")?);
//! let delegated = user.get_token(&TokenRequest::new(["https://graph.microsoft.com/User.Read"])).await?;
//! # let _ = (token, delegated);
//! # Ok(()) }
//! ```

pub use entra_agent::{
    AgentIdentityCredential, AgentSessionId, AgentUser, AgentUserCredential, Blueprint,
    BlueprintBuilder, BlueprintCredential, OnBehalfOfCredential, SessionClaimsForm, evict_session,
};
