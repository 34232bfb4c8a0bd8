//! Managed identity for entra-rs: tokens for the identity of the Azure host a program runs on,
//! with no secret to store.
//!
//! [`ManagedIdentityCredential`] detects the source from the environment and the file system
//! ([`detect_source`], in the order of PROTOCOL.md section 4) and speaks its protocol:
//!
//! | source | detected by |
//! |---|---|
//! | Service Fabric | `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `IDENTITY_SERVER_THUMBPRINT` (certificate pinned by thumbprint) |
//! | App Service, Functions | `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` |
//! | Azure Machine Learning | `MSI_ENDPOINT`, `MSI_SECRET` |
//! | Cloud Shell | `MSI_ENDPOINT` |
//! | Azure Arc | `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the agent at `/opt/azcmagent/bin/himds` |
//! | IMDS (virtual machines, AKS) | otherwise; `AZURE_POD_IDENTITY_AUTHORITY_HOST` overrides the address |
//!
//! Tokens go into an `entra-cache` token cache (shareable with other credentials) with
//! single-flight loading and refresh at half-life; failures are retried with back-off on the
//! injected clock (IMDS keeps retrying 410 for 70 s); [`ManagedIdentityOptions::probe_mode`]
//! makes a missing endpoint fail fast as [`entra_core::Error::Unavailable`] for credential
//! chains. The environment, clock, HTTP transport and file system are injected, so everything
//! is testable without Azure.
//!
//! ```
//! use std::sync::Arc;
//! use entra_core::MapEnv;
//! use entra_mi::{ManagedIdentityCredential, ManagedIdentityId, ManagedIdentitySourceKind, MemoryFileSystem};
//!
//! // What App Service sets for a web app with a user-assigned identity.
//! let env = MapEnv::new([
//!     ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
//!     ("IDENTITY_HEADER", "not shown"),
//! ]);
//! let credential = ManagedIdentityCredential::builder()
//!     .identity(ManagedIdentityId::ClientId("00000000-0000-0000-0000-000000000002".into()))
//!     .env(Arc::new(env))
//!     .file_system(Arc::new(MemoryFileSystem::new()))
//!     .build()?;
//! assert_eq!(credential.source_kind(), ManagedIdentitySourceKind::AppService);
//! assert!(!format!("{credential:?}").contains("not shown"));
//!
//! // Azure Arc serves the system-assigned identity only: a clear configuration error.
//! let arc = MapEnv::new([
//!     ("IDENTITY_ENDPOINT", "http://127.0.0.1:40342/metadata/identity/oauth2/token"),
//!     ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
//! ]);
//! let err = ManagedIdentityCredential::builder()
//!     .identity(ManagedIdentityId::ObjectId("11111111-0000-0000-0000-000000000000".into()))
//!     .env(Arc::new(arc))
//!     .build()
//!     .unwrap_err();
//! assert!(err.to_string().contains("system-assigned"));
//! # Ok::<(), entra_core::Error>(())
//! ```
//!
//! Getting a token is the [`entra_core::TokenCredential`] call:
//!
//! ```no_run
//! use entra_core::{TokenCredential, TokenRequest};
//! # async fn run() -> Result<(), entra_core::Error> {
//! let credential = entra_mi::ManagedIdentityCredential::new()?;
//! let token = credential.get_token(&TokenRequest::new(["https://vault.azure.net/.default"])).await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! IMDSv2 (mTLS proof-of-possession) is not part of this crate yet.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod app_service;
mod arc;
mod cloud_shell;
mod credential;
mod detect;
mod fs;
mod imds;
mod imds_v2;
mod machine_learning;
mod response;
mod retry;
mod service_fabric;
mod source;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use arc::ARC_KEY_DIRECTORY;
pub use credential::{
    CACHE_TENANT, CREDENTIAL_NAME, ManagedIdentityCredential, ManagedIdentityId,
    ManagedIdentityOptions, PROBE_TIMEOUT,
};
pub use detect::{ARC_AGENT_BINARY, ManagedIdentitySourceKind, detect_source};
pub use entra_mtls_pop;
pub use fs::{FileSystem, MemoryFileSystem, SystemFileSystem};
pub use imds::IMDS_BASE;
pub use imds_v2::{NOT_SUPPORTED_FOR_ENVIRONMENT, NOT_SUPPORTED_IN_IMDS_V1};

/// Not API: entry points for the fuzz targets in `fuzz/` (outside the workspace) to reach
/// crate-private parsers. Hidden from the docs and free to change in any release.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    use entra_core::{AccessToken, Error, HttpResponse};
    use entra_mtls_pop::CuId;

    /// The token answer parser shared by every managed identity source (IMDS, App Service,
    /// Service Fabric, Arc, Cloud Shell, Machine Learning), including App Service's
    /// `expires_on` dates.
    pub fn parse_response(
        response: &HttpResponse,
        endpoint: &str,
        now: SystemTime,
    ) -> Result<AccessToken, Error> {
        crate::response::parse_token(response, endpoint, now)
    }

    /// Azure Arc's 401 challenge: the key file path named by `WWW-Authenticate`.
    pub fn arc_key_path(
        response: &HttpResponse,
        endpoint: &str,
        key_directory: &Path,
    ) -> Result<PathBuf, Error> {
        crate::arc::key_path(response, endpoint, key_directory)
    }

    /// IMDSv2 `getplatformmetadata`: client id, tenant id and compute unit id.
    pub fn imds_v2_platform_metadata(
        response: &HttpResponse,
        endpoint: &str,
    ) -> Result<(String, String, CuId), Error> {
        crate::imds_v2::platform_metadata(response, endpoint)
    }

    /// IMDSv2 `issuecredential`: certificate DER, mTLS endpoint, client id and tenant id.
    pub fn imds_v2_issued_credential(
        response: &HttpResponse,
        endpoint: &str,
    ) -> Result<(Vec<u8>, String, String, String), Error> {
        crate::imds_v2::issued_credential(response, endpoint)
            .map(|i| (i.certificate, i.endpoint_url, i.client_id, i.tenant_id))
    }
}
