//! The crate's one error type.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use entra_cache::KeyError;
use entra_claims::{Claims, ClaimsError};

/// A shared, cloneable error source.
pub type BoxError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong getting a token.
///
/// The variant that matters most is [`Error::Unavailable`]: the credential cannot work in this
/// environment (no environment variables, no managed identity endpoint, no Azure CLI), so a
/// chain of credentials moves on to the next one. Every other variant is a real failure that
/// stops a chain. No variant holds a token, secret, assertion, private key or raw claims text;
/// `Display` and `Debug` are safe to log.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The credential cannot be used here; try another one.
    #[error("{credential} is unavailable: {message}")]
    Unavailable {
        /// Which credential.
        credential: Cow<'static, str>,
        /// Why, and what would make it available.
        message: String,
    },
    /// Entra ID (or a managed identity endpoint) refused the request with an OAuth error.
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// The endpoint answered, but not with something this library can use.
    #[error("{problem} (HTTP {status} from {endpoint})")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The endpoint, without query string.
        endpoint: String,
        /// What was wrong.
        problem: ResponseProblem,
    },
    /// The request did not get an answer.
    #[error("could not reach {endpoint}: {kind}")]
    Transport {
        /// The endpoint, without query string.
        endpoint: String,
        /// What kind of failure.
        kind: TransportErrorKind,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The library was configured with something it cannot use.
    #[error("invalid configuration: {0}")]
    Configuration(String),
    /// What was asked for is not supported where the program runs, for example an mTLS
    /// proof-of-possession token from a managed identity source that cannot issue one.
    #[error("{code}: {message}")]
    NotSupported {
        /// A stable code, such as `mtls_pop_token_not_supported_in_imds_v1`.
        code: Cow<'static, str>,
        /// What is not supported and what to do instead.
        message: String,
    },
    /// A client certificate could not be loaded or used.
    #[error("client certificate: {0}")]
    Certificate(String),
    /// Claims could not be parsed or merged.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The request could not be turned into a cache key.
    #[error(transparent)]
    CacheKey(#[from] KeyError),
    /// A caller-supplied credential (an assertion callback, a nested credential) failed.
    #[error("{context}: {source}")]
    Credential {
        /// What was being done.
        context: Cow<'static, str>,
        /// The failure.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// An [`Error::Unavailable`].
    pub fn unavailable(
        credential: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::Unavailable {
            credential: credential.into(),
            message: message.into(),
        }
    }

    /// A [`Error::NotSupported`].
    pub fn not_supported(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::NotSupported {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The code of an [`Error::NotSupported`].
    pub fn not_supported_code(&self) -> Option<&str> {
        match self {
            Self::NotSupported { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether a credential chain should move on to the next credential.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The OAuth error from the service, if that is what this is.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Self::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Service(e) => Some(e.status),
            Self::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An OAuth error answer from Entra ID: `error`, the AADSTS codes, and the ids to quote to
/// Microsoft support. The request body (which holds the credential) is never part of it.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServiceError {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth `error` (for example `invalid_client`).
    pub error: String,
    /// The `error_description`, which starts with `AADSTSnnnnn:` (cut to a sane length).
    pub description: String,
    /// The `error_codes` (for example `[7000215]`).
    pub codes: Vec<u32>,
    /// The `correlation_id` (the request's `client-request-id`).
    pub correlation_id: Option<String>,
    /// The `trace_id`.
    pub trace_id: Option<String>,
    /// The `timestamp`.
    pub timestamp: Option<String>,
    /// A claims challenge sent with the error (for example with `interaction_required`).
    pub claims: Option<Claims>,
}

impl ServiceError {
    /// Whether `code` (for example `7000215`) is among the AADSTS codes.
    pub fn has_code(&self, code: u32) -> bool {
        self.codes.contains(&code)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the token service refused the request with `{}`",
            self.error
        )?;
        if let Some(code) = self.codes.first() {
            write!(f, " (AADSTS{code})")?;
        }
        write!(f, ", HTTP {}", self.status)?;
        if let Some(id) = &self.correlation_id {
            write!(f, "; correlation id {id}")?;
        }
        if let Some(id) = &self.trace_id {
            write!(f, "; trace id {id}")?;
        }
        if !self.description.is_empty() {
            // The service's own words; the first line carries the AADSTS explanation.
            let first = self.description.lines().next().unwrap_or_default();
            write!(f, ": {first}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceError")
            .field("status", &self.status)
            .field("error", &self.error)
            .field("codes", &self.codes)
            .field("correlation_id", &self.correlation_id)
            .field("trace_id", &self.trace_id)
            .field("timestamp", &self.timestamp)
            .field("description", &self.description)
            .field("claims", &self.claims)
            .finish()
    }
}

impl std::error::Error for ServiceError {}

impl From<ServiceError> for Error {
    fn from(e: ServiceError) -> Self {
        Self::Service(Box::new(e))
    }
}

/// What was wrong with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// The endpoint answered with a redirect, which is never followed.
    Redirect,
    /// The body was larger than the configured limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body ended before its announced length.
    Truncated,
    /// The answer was not JSON.
    NotJson {
        /// The content type sent, if any.
        content_type: Option<String>,
    },
    /// The body was not valid JSON.
    MalformedJson {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A required field was missing or empty.
    MissingField(&'static str),
    /// A field had an unusable value.
    InvalidField(&'static str),
    /// The token's type is not the one requested.
    TokenTypeMismatch {
        /// The type requested.
        expected: String,
        /// The type received.
        actual: String,
    },
    /// A bound token was requested and the answer names no token type.
    TokenTypeMissing {
        /// The type requested.
        expected: String,
    },
    /// An error status without an OAuth error body.
    ErrorStatus,
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redirect => f.write_str(
                "the endpoint answered with a redirect, which is never followed; check the authority host",
            ),
            Self::TooLarge { limit } => write!(
                f,
                "the answer was larger than {limit} bytes and was dropped; check the endpoint is a token service"
            ),
            Self::Truncated => f.write_str("the answer ended early; retry, and check proxies between here and the endpoint"),
            Self::NotJson { content_type } => write!(
                f,
                "the answer was not JSON (content type {}); check the endpoint is a token service",
                content_type.as_deref().unwrap_or("missing")
            ),
            Self::MalformedJson { line, column } => write!(
                f,
                "the answer was not valid JSON (line {line}, column {column}); check the endpoint is a token service"
            ),
            Self::MissingField(field) => write!(f, "the answer has no `{field}`; check the endpoint is a token service"),
            Self::InvalidField(field) => write!(f, "the answer's `{field}` is not usable; check the endpoint is a token service"),
            Self::TokenTypeMismatch { expected, actual } => write!(
                f,
                "token_type_mismatch: asked for a `{expected}` token and got `{actual}`; the endpoint does not support this token type"
            ),
            Self::TokenTypeMissing { expected } => write!(
                f,
                "token_type_missing: asked for a `{expected}` token and the answer names no token type"
            ),
            Self::ErrorStatus => f.write_str("the endpoint answered with an error status and no OAuth error"),
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made.
    Connect,
    /// No answer in time.
    Timeout,
    /// The TLS handshake failed (certificate not trusted, handshake rejected).
    Tls,
    /// The connection broke while the request or answer was in flight.
    Io,
    /// Anything else.
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "the connection failed; check the host is reachable",
            Self::Timeout => "no answer in time; retry later or raise the timeout",
            Self::Tls => "the TLS handshake failed; check the server certificate is trusted",
            Self::Io => "the connection broke mid-request; retry",
            Self::Other => "the request failed",
        })
    }
}
