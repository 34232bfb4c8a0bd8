//! Microsoft Entra ID tokens for Rust: every credential of entra-rs behind one dependency, the
//! default credential chain, and a bearer-token provider for long-running programs.
//!
//! Each credential is a [`TokenCredential`]: `get_token(&TokenRequest)` returns an
//! [`AccessToken`] or an [`Error`]. [`Error::Unavailable`] means "this credential cannot work
//! here" (a chain tries the next one); every other error is a real failure. No token, secret,
//! assertion or private key ever appears in `Debug`, `Display`, errors or logs.
//!
//! | credential | for |
//! |---|---|
//! | [`ClientSecretCredential`] | an application with a client secret |
//! | [`ClientCertificateCredential`] | an application with a certificate (PEM or PKCS#12, optional chain) |
//! | [`ClientAssertionCredential`] | an application with an assertion from a callback (federation) |
//! | [`EnvironmentCredential`] | an application configured by `AZURE_*` variables |
//! | [`WorkloadIdentityCredential`] | Kubernetes workload identity (`AZURE_FEDERATED_TOKEN_FILE`) |
//! | [`ManagedIdentityCredential`] | the identity of the Azure host (every source, mTLS PoP opt-in) |
//! | [`AzureCliCredential`], [`AzureDeveloperCliCredential`] | the developer signed in to `az` / `azd` |
//! | [`ChainedTokenCredential`] | credentials tried in order |
//! | [`DefaultAzureCredential`] | the default chain |
//! | [`AgentIdentityCredential`] | an agent identity, with its blueprint's T1 (see [`Blueprint`]) |
//! | [`AgentUserCredential`] | an agent user of an agent identity (`user_fic`) |
//! | [`OnBehalfOfCredential`] | on-behalf-of an incoming user token (agent identity or any confidential client) |
//!
//! The agent credentials come from `entra-agent` (see the [`agent`] module for an example); with
//! `COPILOT_AGENT_SESSION_ID` set they act in that agentic session, and their tokens are
//! cached per session.
//!
//! With the `azure_core` feature, `AzureCoreCredential` hands any of these credentials to
//! clients of the Azure SDK for Rust as their `azure_core::credentials::TokenCredential`.
//!
//! Every credential takes its side effects through injected edges — environment, clock, HTTP
//! transport, file system, process runner, token cache — collected in [`CredentialOptions`]
//! (or the credential's own options), so tests run without Azure, without sleeping and without
//! touching the process environment.
//!
//! # Examples
//!
//! A service principal with a secret; a request for another tenant needs that tenant listed:
//!
//! ```
//! use entra::{ClientSecretCredential, CredentialOptions};
//! use entra_core::{Error, TokenCredential, TokenRequest};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let credential = ClientSecretCredential::new(
//!     "contoso.onmicrosoft.com",
//!     "00000000-0000-0000-0000-000000000001",
//!     "not shown",
//!     CredentialOptions::new().additionally_allowed_tenants(["fabrikam.onmicrosoft.com"]),
//! )?;
//! let elsewhere = TokenRequest::new(["https://graph.microsoft.com/.default"])
//!     .with_tenant("northwind.onmicrosoft.com");
//! let err = credential.get_token(&elsewhere).await.unwrap_err();
//! assert!(matches!(err, Error::Configuration(_)));
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! A certificate (PEM here; PKCS#12 works the same), sending its chain:
//!
//! ```no_run
//! use entra::{ClientCertificateCredential, CredentialOptions};
//!
//! let pem = std::fs::read("/etc/secrets/app.pem").unwrap();
//! let certificate = ClientCertificateCredential::load_certificate(&pem, None)?;
//! let credential = ClientCertificateCredential::builder("contoso.onmicrosoft.com", "00000000-0000-0000-0000-000000000001", certificate)
//!     .send_certificate_chain(true)
//!     .build()?;
//! # let _ = credential;
//! # Ok::<(), entra_core::Error>(())
//! ```
//!
//! A federated assertion from a callback:
//!
//! ```
//! use entra::{ClientAssertionCredential, CredentialOptions};
//! use entra_core::Secret;
//!
//! let credential = ClientAssertionCredential::new(
//!     "contoso.onmicrosoft.com",
//!     "00000000-0000-0000-0000-000000000001",
//!     |_context| async { Ok(Secret::new(std::env::var("GITHUB_OIDC_TOKEN").unwrap_or_default())) },
//!     CredentialOptions::new(),
//! )?;
//! # let _ = credential;
//! # Ok::<(), entra_core::Error>(())
//! ```
//!
//! From the environment, workload identity and managed identity:
//!
//! ```
//! use entra::{
//!     CredentialOptions, EnvironmentCredential, ManagedIdentityCredential, ManagedIdentityId,
//!     WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
//! };
//!
//! let environment = EnvironmentCredential::new(CredentialOptions::new());
//! let workload = WorkloadIdentityCredential::new(WorkloadIdentityCredentialOptions::new());
//! let managed = ManagedIdentityCredential::builder()
//!     .identity(ManagedIdentityId::ClientId("00000000-0000-0000-0000-000000000002".into()))
//!     .build()?;
//! # let _ = (environment, workload, managed);
//! # Ok::<(), entra_core::Error>(())
//! ```
//!
//! The developer tools, and a chain of your own:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use entra::{AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential, DeveloperToolOptions};
//! use entra_core::TokenCredential;
//!
//! let chain = ChainedTokenCredential::new(vec![
//!     Arc::new(AzureCliCredential::new(DeveloperToolOptions::new().timeout(Duration::from_secs(5))))
//!         as Arc<dyn TokenCredential>,
//!     Arc::new(AzureDeveloperCliCredential::new(DeveloperToolOptions::new())),
//! ]);
//! # let _ = chain;
//! ```
//!
//! The default chain and a bearer-token provider for a long-running service:
//!
//! ```no_run
//! use std::sync::Arc;
//! use entra::{BearerTokenProvider, DefaultAzureCredential, DefaultAzureCredentialOptions};
//!
//! # async fn run() -> Result<(), entra_core::Error> {
//! let credential = DefaultAzureCredential::with_options(
//!     DefaultAzureCredentialOptions::new().require_envvar(true),
//! )?;
//! let provider = BearerTokenProvider::new(Arc::new(credential), ["https://ai.azure.com/.default"]);
//! let token = provider.token().await?; // valid, refreshed before it expires
//! # let _ = token; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod agent;
mod app;
mod azure_cli;
#[cfg(feature = "azure_core")]
mod azure_core_adapter;
mod azure_developer_cli;
mod bearer;
mod chained;
mod client_assertion;
mod client_certificate;
mod client_secret;
mod default_azure;
mod developer_tool;
mod environment;
mod managed_identity;
mod options;
mod process;
mod tenant;
mod workload_identity;

pub use agent::{
    AgentIdentityCredential, AgentSessionId, AgentUser, AgentUserCredential, Blueprint,
    BlueprintBuilder, BlueprintCredential, OnBehalfOfCredential, SessionClaimsForm, evict_session,
};
pub use azure_cli::{AZURE_CLI_CREDENTIAL, AzureCliCredential, AzureCliCredentialOptions};
#[cfg(feature = "azure_core")]
pub use azure_core_adapter::AzureCoreCredential;
pub use azure_developer_cli::{
    AZURE_DEVELOPER_CLI_CREDENTIAL, AzureDeveloperCliCredential, AzureDeveloperCliCredentialOptions,
};
pub use bearer::BearerTokenProvider;
pub use chained::{CHAINED_TOKEN_CREDENTIAL, ChainedTokenCredential};
pub use client_assertion::ClientAssertionCredential;
pub use client_certificate::{ClientCertificateCredential, ClientCertificateCredentialBuilder};
pub use client_secret::ClientSecretCredential;
pub use default_azure::{
    AZURE_TOKEN_CREDENTIALS, DEFAULT_AZURE_CREDENTIAL, DefaultAzureCredential,
    DefaultAzureCredentialOptions,
};
pub use developer_tool::{DEFAULT_TOOL_TIMEOUT, DeveloperToolOptions};
pub use environment::{ENVIRONMENT_CREDENTIAL, EnvironmentCredential};
pub use managed_identity::{
    MANAGED_IDENTITY_CREDENTIAL, ManagedIdentityCredential, ManagedIdentityId,
    ManagedIdentityOptions, ManagedIdentitySourceKind,
};
pub use options::{AZURE_ADDITIONALLY_ALLOWED_TENANTS, CredentialOptions};
pub use process::{
    ProcessCommand, ProcessError, ProcessOutput, ProcessRunner, SystemProcessRunner,
};
pub use workload_identity::{
    TOKEN_FILE_MAX_AGE, WORKLOAD_IDENTITY_CREDENTIAL, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

/// The workspace README's Rust example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadmeDoctests;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use entra_core::{
    AccessToken, AuthorityHost, ClientCertificate, Clock, Env, Error, HttpTransport, ManualClock,
    MapEnv, Secret, SystemEnv, TokenCredential, TokenRequest,
};
