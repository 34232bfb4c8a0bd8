//! The crate's error type.

/// A cache key could not be built from the components given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A required component was empty.
    #[error("the {component} of a cache key is empty; pass the value the token request uses")]
    Empty {
        /// Which component.
        component: &'static str,
    },
    /// No scope was given.
    #[error("a cache key needs at least one scope; pass the scopes of the token request")]
    NoScopes,
    /// A component is implausibly long.
    #[error(
        "the {component} of a cache key is {len} bytes, more than the {max} allowed; check what is passed"
    )]
    TooLong {
        /// Which component.
        component: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}
