//! The crate's one error type and the small enums its variants carry.
//!
//! No message ever contains the rejected input: claims and headers may carry secrets, so an error
//! says where and why, never what.

use std::fmt;

/// The kind of a JSON value, named in errors instead of the value itself.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonKind {
    /// The kind of `value`.
    #[must_use]
    pub fn of(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(_) => Self::Bool,
            serde_json::Value::Number(_) => Self::Number,
            serde_json::Value::String(_) => Self::String,
            serde_json::Value::Array(_) => Self::Array,
            serde_json::Value::Object(_) => Self::Object,
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Bool => "boolean",
            Self::Number => "number",
            Self::String => "string",
            Self::Array => "array",
            Self::Object => "object",
        })
    }
}

/// Why a name (a client capability or an agent session id) was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameProblem {
    /// The name is empty (for a session id: empty after trimming white space).
    Empty,
    /// The name is longer than `max` bytes.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The name holds a character that is not allowed, at this byte offset.
    ForbiddenCharacter {
        /// Byte offset of the first forbidden character.
        offset: usize,
    },
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { max } => write!(f, "is longer than {max} bytes"),
            Self::ForbiddenCharacter { offset } => {
                write!(f, "has a forbidden character at byte {offset}")
            }
        }
    }
}

/// Everything that can go wrong in this crate.
///
/// Messages are lower case, say what to do, and never contain the input text.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// The claims text is longer than [`MAX_CLAIMS_LEN`](crate::MAX_CLAIMS_LEN).
    #[error("claims text is {len} bytes, more than the {max} byte limit; send smaller claims")]
    TooLarge {
        /// Length of the rejected text in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The claims nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("claims nest deeper than {max} levels; flatten the claims")]
    TooDeep {
        /// The nesting limit (the top-level object is level 1).
        max: usize,
    },
    /// The claims text is not valid JSON. Only the position is kept, never the text.
    #[error("claims are not valid JSON (line {line}, column {column}); check the claims text")]
    Syntax {
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
    },
    /// The claims are valid JSON but not an object.
    #[error("claims must be a JSON object but are a JSON {found}; wrap the claims in an object")]
    NotAnObject {
        /// What was found instead.
        found: JsonKind,
    },
    /// A client capability name was rejected.
    #[error(
        "client capability number {index} {problem}; use short printable ASCII names such as cp1"
    )]
    InvalidCapability {
        /// 0-based position of the name in the list given.
        index: usize,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// More client capabilities than [`MAX_CAPABILITIES`](crate::MAX_CAPABILITIES).
    #[error("more than {max} client capabilities were given; declare fewer capabilities")]
    TooManyCapabilities {
        /// The limit.
        max: usize,
    },
    /// An agent session id was rejected.
    #[error("agent session id {problem}; set COPILOT_AGENT_SESSION_ID to a printable id")]
    InvalidSessionId {
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// `merge_access_token_claims` was given no new claims, or an empty object.
    #[error("new claims are absent or empty; pass claims with a non-empty access_token object")]
    NewClaimsEmpty,
    /// `merge_access_token_claims` was given new claims without a non-empty `access_token` object.
    #[error("new claims have no non-empty access_token object; put the claims under access_token")]
    NoAccessTokenClaims,
    /// A `WWW-Authenticate` header is longer than
    /// [`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN).
    #[error(
        "www-authenticate header is {len} bytes, more than the {max} byte limit; check the server's response"
    )]
    HeaderTooLong {
        /// Length of the header in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A `WWW-Authenticate` header could not be parsed.
    #[error("www-authenticate header is malformed at byte {offset}; check the server's response")]
    HeaderSyntax {
        /// Byte offset where parsing stopped.
        offset: usize,
    },
    /// A `WWW-Authenticate` header holds more parameters than
    /// [`MAX_PARAMS`](crate::MAX_PARAMS) or more challenges than
    /// [`MAX_CHALLENGES`](crate::MAX_CHALLENGES).
    #[error("www-authenticate header holds more than {max} {what}; check the server's response")]
    HeaderTooBig {
        /// What was counted (`"parameters"` or `"challenges"`).
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The `claims` parameter of a challenge is not valid base64.
    #[error("claims parameter of the challenge is not valid base64; check the server's response")]
    ClaimsNotBase64,
    /// The `claims` parameter of a challenge does not decode to UTF-8 text.
    #[error("claims parameter of the challenge is not UTF-8 JSON; check the server's response")]
    ClaimsNotUtf8,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<ClaimsError> {
        let problems = [
            NameProblem::Empty,
            NameProblem::TooLong { max: 3 },
            NameProblem::ForbiddenCharacter { offset: 2 },
        ];
        let mut all = vec![
            ClaimsError::TooLarge { len: 9, max: 8 },
            ClaimsError::TooDeep { max: 32 },
            ClaimsError::Syntax { line: 1, column: 2 },
            ClaimsError::TooManyCapabilities { max: 32 },
            ClaimsError::NewClaimsEmpty,
            ClaimsError::NoAccessTokenClaims,
            ClaimsError::HeaderTooLong { len: 9, max: 8 },
            ClaimsError::HeaderSyntax { offset: 4 },
            ClaimsError::HeaderTooBig {
                what: "parameters",
                max: 64,
            },
            ClaimsError::ClaimsNotBase64,
            ClaimsError::ClaimsNotUtf8,
        ];
        for found in [
            JsonKind::Null,
            JsonKind::Bool,
            JsonKind::Number,
            JsonKind::String,
            JsonKind::Array,
            JsonKind::Object,
        ] {
            all.push(ClaimsError::NotAnObject { found });
        }
        for problem in problems {
            all.push(ClaimsError::InvalidCapability { index: 0, problem });
            all.push(ClaimsError::InvalidSessionId { problem });
        }
        all
    }

    #[test]
    fn messages_are_lower_case_without_a_trailing_period_and_say_what_to_do() {
        for err in every_variant() {
            let message = err.to_string();
            let first = message.chars().next().unwrap_or(' ');
            assert!(first.is_ascii_lowercase(), "{message}");
            assert!(!message.ends_with('.'), "{message}");
            // The advice follows a semicolon.
            assert!(message.contains("; "), "{message}");
        }
    }

    #[test]
    fn kinds_are_named() {
        assert_eq!(JsonKind::of(&serde_json::json!([])), JsonKind::Array);
        assert_eq!(JsonKind::of(&serde_json::json!(1)).to_string(), "number");
        assert_eq!(
            JsonKind::of(&serde_json::json!(true)).to_string(),
            "boolean"
        );
    }
}
