//! Shared types and the one token exchange of entra-rs.
//!
//! - [`Secret`], [`AccessToken`], [`TokenRequest`] and the [`TokenCredential`] trait that every
//!   credential implements.
//! - [`Error`]: one error type that separates *unavailable* (try another credential) from
//!   *failed*, and carries AADSTS details without any secret.
//! - [`AuthorityHost`] and [`Tenant`]: cloud hosts, `AZURE_AUTHORITY_HOST`, https only except
//!   loopback.
//! - The injected edges: [`Clock`], [`Env`] and [`HttpTransport`] (reqwest + rustls by default,
//!   with timeouts, a size cap, no redirects and extra trusted roots).
//! - [`TokenClient`]: the one token exchange. Every request to a token endpoint, whatever the
//!   flow, goes through it, so form building, claims merging, caching, retries, error mapping
//!   and redaction live in one place. Flows only say what to send ([`Grant`]).
//!
//! ```
//! use entra_core::{AuthorityHost, ClientCredential, MapEnv, Secret, TokenClient};
//!
//! let env = MapEnv::new([("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")]);
//! let client = TokenClient::builder("00000000-0000-0000-0000-000000000001")
//!     .authority(AuthorityHost::from_env(&env)?)
//!     .tenant("contoso.onmicrosoft.us")?
//!     .credential(ClientCredential::Secret(Secret::new("not shown")))
//!     .build()?;
//! assert_eq!(
//!     client.token_endpoint(client.tenant()).as_str(),
//!     "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token"
//! );
//! assert!(!format!("{client:?}").contains("not shown"));
//! # Ok::<(), entra_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod authority;
mod certificate;
mod client;
mod credential;
mod edges;
mod error;
mod http;
mod key_memo;
mod response;
mod secret;
mod token;

pub use authority::{AZURE_AUTHORITY_HOST, AuthorityHost, Tenant, is_loopback};
pub use certificate::{ASSERTION_LIFETIME, ClientCertificate};
pub use client::{
    AccessTokenCache, FormValue, Grant, JWT_BEARER_ASSERTION_TYPE, RetryPolicy, TokenClient,
    TokenClientBuilder,
};
pub use credential::{AssertionContext, AssertionProvider, ClientCredential, TokenCredential};
pub use edges::{Clock, Env, ManualClock, MapEnv, SystemClock, SystemEnv};
pub use error::{BoxError, Error, ResponseProblem, ServiceError, TransportErrorKind};
pub use http::{
    DEFAULT_MAX_RESPONSE_BYTES, HttpRequest, HttpResponse, HttpTransport, ReqwestTransport,
    ReqwestTransportBuilder,
};
pub use secret::Secret;
pub use token::{AccessToken, TokenRequest, TokenType};

pub use entra_cache::{Acquired, TokenSource};

/// Reading and describing HTTP answers, shared by every flow that does not go through
/// [`TokenClient`] (managed identity sources speak their own protocols).
pub mod wire {
    pub use crate::http::{endpoint, retry_after};
    pub use crate::response::{json_object, number, parse_error};
}
pub use entra_claims;

/// Not API: entry points for the fuzz targets in `fuzz/` (outside the workspace) to reach
/// crate-private parsers. Hidden from the docs and free to change in any release.
#[doc(hidden)]
pub mod fuzzing {
    use std::time::SystemTime;

    use crate::{AccessToken, Error, HttpResponse, TokenType};

    /// The token endpoint's success parser (`200` bodies), as `TokenClient` calls it; the
    /// token carries the expiry and refresh times that go into the cache.
    pub fn parse_success(
        response: &HttpResponse,
        endpoint: &str,
        now: SystemTime,
        expected: &TokenType,
    ) -> Result<AccessToken, Error> {
        crate::response::parse_success_token(response, endpoint, now, expected)
    }
}

/// The `User-Agent` sent by the default transport.
pub const USER_AGENT: &str = concat!("entra-rs/", env!("CARGO_PKG_VERSION"));
