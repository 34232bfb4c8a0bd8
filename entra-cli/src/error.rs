//! Failures of the `entra` command, each with the exit code of its class.

use std::fmt;

/// The class of a failure: its exit code says what went wrong without parsing stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// Something else (a bug, an I/O error writing output): exit 1.
    Internal,
    /// Bad arguments or configuration: exit 2.
    Usage,
    /// No credential could be used here (not configured, tool missing, not logged in): exit 3.
    Unavailable,
    /// The identity platform refused (an AADSTS error, a managed identity refusal): exit 4.
    Refused,
    /// The network or TLS failed: exit 5.
    Network,
    /// An answer could not be understood: exit 6.
    BadResponse,
    /// The demo ran but a step did not do what it must: exit 7.
    DemoFailed,
}

impl FailureClass {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Internal => 1,
            Self::Usage => 2,
            Self::Unavailable => 3,
            Self::Refused => 4,
            Self::Network => 5,
            Self::BadResponse => 6,
            Self::DemoFailed => 7,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Internal => "error",
            Self::Usage => "usage error",
            Self::Unavailable => "credential unavailable",
            Self::Refused => "authentication refused",
            Self::Network => "network error",
            Self::BadResponse => "unexpected response",
            Self::DemoFailed => "demo failed",
        }
    }
}

/// A failure of the command: what to print on stderr, and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) class: FailureClass,
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Usage, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Internal, message)
    }
}

impl From<crate::decode::DecodeError> for CliError {
    fn from(error: crate::decode::DecodeError) -> Self {
        Self::usage(error.0)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (exit {}): {}",
            self.class.label(),
            self.class.exit_code(),
            self.message
        )
    }
}

impl From<entra_core::Error> for CliError {
    fn from(error: entra_core::Error) -> Self {
        use entra_core::Error as E;
        let class = match &error {
            E::Unavailable { .. } => FailureClass::Unavailable,
            E::Service(_) | E::NotSupported { .. } => FailureClass::Refused,
            E::Transport { .. } => FailureClass::Network,
            E::UnexpectedResponse { .. } => FailureClass::BadResponse,
            E::Configuration(_) | E::Certificate(_) | E::Claims(_) | E::CacheKey(_) => {
                FailureClass::Usage
            }
            _ => FailureClass::Internal,
        };
        // Display of entra-core errors never holds a secret or a token.
        Self::new(class, error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self::internal(format!("i/o error: {error}"))
    }
}
