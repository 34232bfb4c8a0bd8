//! `Secret`: a string that never shows itself.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret string: a token, client secret, assertion or password.
///
/// `Debug` and `Display` print `<redacted>`; the memory is zeroed when the last clone is
/// dropped. Cloning shares the same allocation, so handing a cached token to many callers is
/// cheap. The value is read only through [`Secret::expose`], which makes every use visible in
/// review.
///
/// ```
/// use entra_core::Secret;
///
/// let secret = Secret::new("p@ssw0rd");
/// assert_eq!(format!("{secret:?} {secret}"), "Secret(<redacted>) <redacted>");
/// assert_eq!(secret.expose(), "p@ssw0rd");
/// ```
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(Zeroizing::new(value.into())))
    }

    /// The secret value. Never log or format it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Not constant-time: secrets are compared only in tests and cache bookkeeping, never
        // against attacker-supplied guesses.
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
