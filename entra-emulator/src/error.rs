//! The one error type of this crate.

use std::io;
use std::net::SocketAddr;

/// What can go wrong while starting or configuring an emulator.
///
/// Requests that the emulator *serves* never produce this error: a bad request gets an
/// AADSTS-shaped JSON answer instead. Messages never contain a secret, an assertion or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// A listener could not be bound.
    #[error(
        "could not bind the {listener} listener to {addr}: pick another port or let the emulator choose one"
    )]
    Bind {
        /// Which listener (`https` or `http`).
        listener: &'static str,
        /// The address that was asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// Generating a key or a certificate failed.
    #[error("could not generate the {what}")]
    KeyGeneration {
        /// What was being generated.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// The TLS server configuration was refused by rustls.
    #[error("could not configure tls")]
    Tls(#[source] rustls::Error),
    /// A signing key given in the configuration could not be used.
    #[error("the token-signing key is not a usable rsa private key in pkcs#8 pem")]
    InvalidSigningKey,
    /// Signing a token failed.
    #[error("could not sign a token")]
    Signing(#[source] jsonwebtoken::errors::Error),
    /// A tenant id or domain is not acceptable.
    #[error(
        "invalid tenant id or domain {0:?}: use a guid or a domain made of letters, digits, '.', '-' and '_'"
    )]
    InvalidTenantId(String),
    /// The tenant is not registered.
    #[error("tenant {0:?} is not registered: add it with add_tenant first")]
    UnknownTenant(String),
    /// A client id is not acceptable.
    #[error(
        "invalid client id {0:?}: use a guid or another non-empty id without whitespace or '/'"
    )]
    InvalidClientId(String),
    /// A certificate given for an application could not be read.
    #[error("invalid certificate for application {client_id:?}: {reason}")]
    InvalidCertificate {
        /// The application the certificate was meant for.
        client_id: String,
        /// Why it was refused.
        reason: String,
    },
    /// The application is not a registered agent identity blueprint.
    #[error(
        "agent identity blueprint {0:?} is not registered: add it with add_agent_blueprint first"
    )]
    UnknownBlueprint(String),
    /// The client id is not a registered agent identity.
    #[error("agent identity {0:?} is not registered: add it with add_agent_identity first")]
    UnknownAgentIdentity(String),
    /// The user is not registered.
    #[error("user {0:?} is not registered: add it with add_user or add_agent_user first")]
    UnknownUser(String),
    /// A user account is not acceptable.
    #[error("invalid user {0:?}: the object id and the user principal name must not be empty")]
    InvalidUser(String),
    /// A resource URI is not acceptable.
    #[error(
        "invalid resource {0:?}: use an absolute uri such as https://graph.microsoft.com or api://my-app"
    )]
    InvalidResource(String),
    /// An external issuer name is not acceptable.
    #[error("invalid external issuer name {0:?}: use letters, digits, '.', '-' and '_'")]
    InvalidIssuerName(String),
    /// The external issuer is not registered.
    #[error("external issuer {0:?} is not registered: add it with add_external_issuer first")]
    UnknownIssuer(String),
    /// A fault definition is not acceptable.
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    /// A seed document could not be read.
    #[error("invalid seed document: {0}")]
    InvalidSeed(String),
    /// Reading or writing a file failed.
    #[error("could not {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
