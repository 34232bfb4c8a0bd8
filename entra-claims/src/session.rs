//! Agentic sessions (Azure CLI behaviour): a request made on behalf of an agent session carries
//! the session id in its claims and in the `client_session` form field.

use std::fmt;

use serde_json::{Map, Value};

use crate::Claims;
use crate::error::{ClaimsError, NameProblem};

/// The environment variable that names the agent session.
pub const AGENT_SESSION_ENV: &str = "COPILOT_AGENT_SESSION_ID";

/// The longest agent session id accepted, in bytes (after trimming).
pub const MAX_SESSION_ID_LEN: usize = 256;

/// How many characters of the id `Debug` shows before eliding the rest.
const DEBUG_PREFIX_CHARS: usize = 40;

/// The id of the agent session a request is made for.
///
/// Validated: white space around it is trimmed; it is then non-empty, at most
/// [`MAX_SESSION_ID_LEN`] bytes, and has no control character. It is a correlation id, not a
/// secret, so `Debug` shows it (shortened when long).
///
/// ```
/// use entra_claims::{AgentSessionId, SessionClaimsForm};
///
/// let env = |name: &str| (name == "COPILOT_AGENT_SESSION_ID").then(|| "s-42".to_owned());
/// let session = AgentSessionId::from_env(env)?.expect("set");
/// assert_eq!(session.client_session(), "s-42");
/// assert_eq!(
///     session.to_claims(SessionClaimsForm::default()).to_json(),
///     r#"{"access_token":{"xms_cli_sid":{"values":["s-42"]}}}"#,
/// );
/// assert_eq!(AgentSessionId::from_env(|_| None)?, None);
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgentSessionId(String);

impl AgentSessionId {
    /// Validates a session id.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::InvalidSessionId`] when the id is empty after trimming, too long, or holds
    /// a control character.
    pub fn new(id: &str) -> Result<Self, ClaimsError> {
        let id = id.trim();
        let problem = if id.is_empty() {
            Some(NameProblem::Empty)
        } else if id.len() > MAX_SESSION_ID_LEN {
            Some(NameProblem::TooLong {
                max: MAX_SESSION_ID_LEN,
            })
        } else {
            id.char_indices()
                .find(|(_, c)| c.is_control())
                .map(|(offset, _)| NameProblem::ForbiddenCharacter { offset })
        };
        match problem {
            Some(problem) => Err(ClaimsError::InvalidSessionId { problem }),
            None => Ok(Self(id.to_owned())),
        }
    }

    /// Reads [`AGENT_SESSION_ENV`] through `lookup` (the injected environment).
    ///
    /// Unset, empty or only white space gives `Ok(None)`: no agent session.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::InvalidSessionId`] when the variable is set to an invalid id.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ClaimsError> {
        match lookup(AGENT_SESSION_ENV) {
            Some(value) if !value.trim().is_empty() => Self::new(&value).map(Some),
            _ => Ok(None),
        }
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value of the `client_session` form field (the id itself).
    #[must_use]
    pub fn client_session(&self) -> &str {
        &self.0
    }

    /// The claims that mark a request as made in this session, in the given form.
    #[must_use]
    pub fn to_claims(&self, form: SessionClaimsForm) -> Claims {
        let claim = match form {
            SessionClaimsForm::Released => {
                let mut m = Map::new();
                m.insert(
                    "values".to_owned(),
                    Value::Array(vec![Value::String(self.0.clone())]),
                );
                ("xms_cli_sid", m)
            }
            SessionClaimsForm::Seed => {
                let mut m = Map::new();
                m.insert("essential".to_owned(), Value::Bool(true));
                m.insert("value".to_owned(), Value::String(self.0.clone()));
                ("xms_agent_session", m)
            }
        };
        let mut access_token = Map::new();
        access_token.insert(claim.0.to_owned(), Value::Object(claim.1));
        let mut map = Map::new();
        map.insert("access_token".to_owned(), Value::Object(access_token));
        Claims::from_map_unchecked(map)
    }
}

impl fmt::Debug for AgentSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(DEBUG_PREFIX_CHARS) {
            Some((cut, _)) => {
                let prefix = self.0.get(..cut).unwrap_or_default();
                write!(f, "AgentSessionId({prefix:?}…)")
            }
            None => write!(f, "AgentSessionId({:?})", self.0),
        }
    }
}

/// Which claims mark an agent session.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SessionClaimsForm {
    /// What Azure CLI's released code sends and ESTS accepts today:
    /// `{"access_token":{"xms_cli_sid":{"values":["<id>"]}}}`.
    #[default]
    Released,
    /// The first design: `{"access_token":{"xms_agent_session":{"essential":true,"value":"<id>"}}}`.
    Seed,
}

/// Merges `new`'s `access_token` claims into `existing` (Azure CLI's contract).
///
/// - `new` absent or `{}`: error;
/// - `new` without a non-empty `access_token` object (missing, `null`, not an object, `{}`): error;
/// - `existing` absent is `{}`; its other top-level members (such as `id_token`) are kept;
/// - `access_token` is added when `existing` has none, and replaced when it is not an object;
/// - inside `access_token`, a claim named in `new` **replaces** the same-named claim (no deep
///   merge), and the other claims of `existing` are kept.
///
/// Only `new`'s `access_token` is used; its other top-level members are ignored, as in the CLI.
///
/// ```
/// use entra_claims::{merge_access_token_claims, Claims};
///
/// let existing = Claims::parse(r#"{"access_token":{"a":{"values":["1"]}},"id_token":{}}"#)?;
/// let new = Claims::parse(r#"{"access_token":{"a":{"values":["2"]},"b":null}}"#)?;
/// assert_eq!(
///     merge_access_token_claims(Some(&existing), Some(&new))?.to_json(),
///     r#"{"access_token":{"a":{"values":["2"]},"b":null},"id_token":{}}"#,
/// );
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
///
/// # Errors
///
/// [`ClaimsError::NewClaimsEmpty`] and [`ClaimsError::NoAccessTokenClaims`], as listed above.
pub fn merge_access_token_claims(
    existing: Option<&Claims>,
    new: Option<&Claims>,
) -> Result<Claims, ClaimsError> {
    let new = match new {
        Some(new) if !new.is_empty() => new,
        _ => return Err(ClaimsError::NewClaimsEmpty),
    };
    let new_access_token = match new.get("access_token") {
        Some(Value::Object(claims)) if !claims.is_empty() => claims,
        _ => return Err(ClaimsError::NoAccessTokenClaims),
    };
    let mut map = existing.map(|e| e.as_map().clone()).unwrap_or_default();
    let mut access_token = match map.remove("access_token") {
        Some(Value::Object(claims)) => claims,
        _ => Map::new(),
    };
    for (name, claim) in new_access_token {
        access_token.insert(name.clone(), claim.clone());
    }
    map.insert("access_token".to_owned(), Value::Object(access_token));
    // Depth: each part comes from a valid `Claims` and sits at the same depth as before.
    Ok(Claims::from_map_unchecked(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(value: Value) -> Claims {
        Claims::try_from(value).unwrap()
    }

    fn env(value: Option<&str>) -> impl Fn(&str) -> Option<String> {
        let value = value.map(str::to_owned);
        move |name| {
            assert_eq!(name, AGENT_SESSION_ENV);
            value.clone()
        }
    }

    #[test]
    fn env_name_is_the_cli_one() {
        assert_eq!(AGENT_SESSION_ENV, "COPILOT_AGENT_SESSION_ID");
    }

    #[test]
    fn from_env_unset_or_empty_is_none() {
        assert_eq!(AgentSessionId::from_env(env(None)), Ok(None));
        assert_eq!(AgentSessionId::from_env(env(Some(""))), Ok(None));
        assert_eq!(AgentSessionId::from_env(env(Some(" \t"))), Ok(None));
    }

    #[test]
    fn from_env_set_is_some_and_trimmed() {
        let id = AgentSessionId::from_env(env(Some(" 3f2a-b ")))
            .unwrap()
            .unwrap();
        assert_eq!(id.as_str(), "3f2a-b");
        assert_eq!(id.client_session(), "3f2a-b");
    }

    #[test]
    fn from_env_invalid_is_error() {
        assert_eq!(
            AgentSessionId::from_env(env(Some("a\nb"))),
            Err(ClaimsError::InvalidSessionId {
                problem: NameProblem::ForbiddenCharacter { offset: 1 }
            })
        );
    }

    #[test]
    fn validates_ids() {
        assert_eq!(
            AgentSessionId::new("  "),
            Err(ClaimsError::InvalidSessionId {
                problem: NameProblem::Empty
            })
        );
        assert_eq!(
            AgentSessionId::new(&"x".repeat(MAX_SESSION_ID_LEN + 1)),
            Err(ClaimsError::InvalidSessionId {
                problem: NameProblem::TooLong {
                    max: MAX_SESSION_ID_LEN
                }
            })
        );
        assert!(AgentSessionId::new(&"x".repeat(MAX_SESSION_ID_LEN)).is_ok());
        assert!(AgentSessionId::new("a\u{7f}").is_err());
        assert!(AgentSessionId::new("a\u{0}").is_err());
        assert!(AgentSessionId::new("sessión \"1\"").is_ok());
    }

    #[test]
    fn debug_is_short() {
        let short = AgentSessionId::new("abc").unwrap();
        assert_eq!(format!("{short:?}"), r#"AgentSessionId("abc")"#);
        let long = AgentSessionId::new(&"é".repeat(100)).unwrap();
        let shown = format!("{long:?}");
        assert!(shown.chars().count() < 60, "{shown}");
        assert!(shown.ends_with("…)"), "{shown}");
    }

    #[test]
    fn released_form_is_the_default() {
        assert_eq!(SessionClaimsForm::default(), SessionClaimsForm::Released);
        let id = AgentSessionId::new("s1").unwrap();
        assert_eq!(
            id.to_claims(SessionClaimsForm::Released),
            c(json!({"access_token":{"xms_cli_sid":{"values":["s1"]}}}))
        );
    }

    #[test]
    fn seed_form() {
        let id = AgentSessionId::new("s1").unwrap();
        assert_eq!(
            id.to_claims(SessionClaimsForm::Seed).to_json(),
            r#"{"access_token":{"xms_agent_session":{"essential":true,"value":"s1"}}}"#
        );
    }

    #[test]
    fn session_id_with_quotes_is_escaped_in_claims() {
        let id = AgentSessionId::new(r#"a"b\c"#).unwrap();
        let text = id.to_claims(SessionClaimsForm::Released).to_json();
        assert_eq!(
            Claims::parse(&text).unwrap(),
            id.to_claims(SessionClaimsForm::Released)
        );
    }

    // merge_access_token_claims: one test per case of the CLI contract.

    fn new_claims() -> Claims {
        c(json!({"access_token":{"xms_cli_sid":{"values":["s1"]}}}))
    }

    #[test]
    fn cli_new_absent_is_error() {
        assert_eq!(
            merge_access_token_claims(Some(&new_claims()), None),
            Err(ClaimsError::NewClaimsEmpty)
        );
        assert_eq!(
            merge_access_token_claims(None, None),
            Err(ClaimsError::NewClaimsEmpty)
        );
    }

    #[test]
    fn cli_new_empty_is_error() {
        assert_eq!(
            merge_access_token_claims(None, Some(&Claims::new())),
            Err(ClaimsError::NewClaimsEmpty)
        );
    }

    #[test]
    fn cli_new_without_access_token_is_error() {
        assert_eq!(
            merge_access_token_claims(None, Some(&c(json!({"id_token":{"a":1}})))),
            Err(ClaimsError::NoAccessTokenClaims)
        );
    }

    #[test]
    fn cli_new_null_access_token_is_error() {
        assert_eq!(
            merge_access_token_claims(None, Some(&c(json!({"access_token":null})))),
            Err(ClaimsError::NoAccessTokenClaims)
        );
    }

    #[test]
    fn cli_new_empty_access_token_is_error() {
        assert_eq!(
            merge_access_token_claims(None, Some(&c(json!({"access_token":{}})))),
            Err(ClaimsError::NoAccessTokenClaims)
        );
    }

    #[test]
    fn cli_new_non_object_access_token_is_error() {
        for bad in [json!("x"), json!(["a"]), json!(1), json!(true)] {
            assert_eq!(
                merge_access_token_claims(None, Some(&c(json!({"access_token": bad})))),
                Err(ClaimsError::NoAccessTokenClaims)
            );
        }
    }

    #[test]
    fn cli_existing_absent_gives_new() {
        assert_eq!(
            merge_access_token_claims(None, Some(&new_claims())),
            Ok(new_claims())
        );
    }

    #[test]
    fn cli_existing_empty_gives_new() {
        assert_eq!(
            merge_access_token_claims(Some(&Claims::new()), Some(&new_claims())),
            Ok(new_claims())
        );
    }

    #[test]
    fn cli_keeps_id_token() {
        let existing = c(json!({"id_token":{"auth_time":{"essential":true}}}));
        assert_eq!(
            merge_access_token_claims(Some(&existing), Some(&new_claims())),
            Ok(c(json!({
                "id_token":{"auth_time":{"essential":true}},
                "access_token":{"xms_cli_sid":{"values":["s1"]}}
            })))
        );
    }

    #[test]
    fn cli_adds_access_token_when_missing() {
        let existing = c(json!({"userinfo":{"email":null}}));
        let merged = merge_access_token_claims(Some(&existing), Some(&new_claims())).unwrap();
        assert_eq!(merged.get("access_token"), new_claims().get("access_token"));
        assert_eq!(merged.get("userinfo"), Some(&json!({"email":null})));
    }

    #[test]
    fn cli_replaces_same_named_claim() {
        let existing =
            c(json!({"access_token":{"xms_cli_sid":{"values":["old"],"essential":true}}}));
        // Replaced, not deep-merged: neither "old" nor "essential" survives.
        assert_eq!(
            merge_access_token_claims(Some(&existing), Some(&new_claims())),
            Ok(new_claims())
        );
    }

    #[test]
    fn cli_keeps_other_access_token_claims() {
        let existing = c(json!({"access_token":{"xms_cc":{"values":["cp1"]}}}));
        assert_eq!(
            merge_access_token_claims(Some(&existing), Some(&new_claims())),
            Ok(c(json!({"access_token":{
                "xms_cc":{"values":["cp1"]},
                "xms_cli_sid":{"values":["s1"]}
            }})))
        );
    }

    #[test]
    fn cli_replaces_non_object_access_token() {
        for bad in [json!(null), json!("x"), json!([1]), json!({})] {
            let existing = c(json!({"access_token": bad, "id_token": {}}));
            assert_eq!(
                merge_access_token_claims(Some(&existing), Some(&new_claims())),
                Ok(c(json!({
                    "access_token":{"xms_cli_sid":{"values":["s1"]}},
                    "id_token":{}
                })))
            );
        }
    }

    #[test]
    fn cli_ignores_other_top_level_members_of_new() {
        let new = c(json!({"access_token":{"a":1},"id_token":{"b":2}}));
        assert_eq!(
            merge_access_token_claims(None, Some(&new)),
            Ok(c(json!({"access_token":{"a":1}})))
        );
    }

    #[test]
    fn cli_session_claims_merge_into_capabilities() {
        let caps = crate::ClientCapabilities::new(["cp1"]).unwrap().to_claims();
        let session = AgentSessionId::new("s1")
            .unwrap()
            .to_claims(SessionClaimsForm::Released);
        assert_eq!(
            merge_access_token_claims(Some(&caps), Some(&session))
                .unwrap()
                .to_json(),
            r#"{"access_token":{"xms_cc":{"values":["cp1"]},"xms_cli_sid":{"values":["s1"]}}}"#
        );
    }
}
