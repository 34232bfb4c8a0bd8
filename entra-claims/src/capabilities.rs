//! Client capabilities (`xms_cc`) and the `claims` form field of a token request.

use serde_json::{Map, Value};

use crate::Claims;
use crate::error::{ClaimsError, NameProblem};

/// The longest capability name accepted, in bytes.
pub const MAX_CAPABILITY_LEN: usize = 64;

/// The most capabilities one client may declare.
pub const MAX_CAPABILITIES: usize = 32;

/// The client capabilities a client declares, such as `cp1` (it can handle Continuous Access
/// Evaluation claims challenges).
///
/// Names are validated (not empty, at most [`MAX_CAPABILITY_LEN`] bytes, printable ASCII without
/// white space, quotes or backslashes) and deduplicated, first occurrence kept.
///
/// ```
/// use entra_claims::ClientCapabilities;
///
/// let caps = ClientCapabilities::new(["cp1", "cp1"])?;
/// assert_eq!(caps.names(), ["cp1"]);
/// assert_eq!(
///     caps.to_claims().to_json(),
///     r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#,
/// );
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClientCapabilities {
    names: Vec<String>,
}

impl ClientCapabilities {
    /// Validates and deduplicates capability names.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::InvalidCapability`] naming the position of the first bad name, or
    /// [`ClaimsError::TooManyCapabilities`] when more than [`MAX_CAPABILITIES`] distinct names are
    /// given.
    pub fn new<I, S>(names: I) -> Result<Self, ClaimsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut kept: Vec<String> = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            let name = name.as_ref();
            check_name(name)
                .map_err(|problem| ClaimsError::InvalidCapability { index, problem })?;
            if !kept.iter().any(|k| k == name) {
                if kept.len() == MAX_CAPABILITIES {
                    return Err(ClaimsError::TooManyCapabilities {
                        max: MAX_CAPABILITIES,
                    });
                }
                kept.push(name.to_owned());
            }
        }
        Ok(Self { names: kept })
    }

    /// No capabilities.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether no capability is declared.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, in the order first given.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `{"access_token":{"xms_cc":{"values":[...]}}}`, or `{}` when there is no capability.
    #[must_use]
    pub fn to_claims(&self) -> Claims {
        if self.names.is_empty() {
            return Claims::new();
        }
        let values = Value::Array(self.names.iter().cloned().map(Value::String).collect());
        let mut xms_cc = Map::new();
        xms_cc.insert("values".to_owned(), values);
        let mut access_token = Map::new();
        access_token.insert("xms_cc".to_owned(), Value::Object(xms_cc));
        let mut map = Map::new();
        map.insert("access_token".to_owned(), Value::Object(access_token));
        Claims::from_map_unchecked(map)
    }
}

fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_CAPABILITY_LEN {
        return Err(NameProblem::TooLong {
            max: MAX_CAPABILITY_LEN,
        });
    }
    if let Some(offset) = name
        .bytes()
        .position(|b| !b.is_ascii_graphic() || matches!(b, b'"' | b'\'' | b'\\'))
    {
        return Err(NameProblem::ForbiddenCharacter { offset });
    }
    Ok(())
}

/// The claims a token request sends in its `claims` form field:
/// `merge(capabilities, challenge, client_claims)`, or `None` when all three are empty.
///
/// Capabilities are never dropped: the [merge rule](crate::merge) already keeps them against
/// scalars and arrays, and if a challenge or the client claims put an object at
/// `access_token.xms_cc.values`, a final step puts the capability array back there, so every
/// capability is always present. Otherwise the result is exactly the plain merge.
///
/// ```
/// use entra_claims::{request_claims, Claims, ClientCapabilities};
///
/// let caps = ClientCapabilities::new(["cp1"])?;
/// let challenge = Claims::parse(r#"{"access_token":{"nbf":{"essential":true,"value":"17"}}}"#)?;
/// let claims = request_claims(&caps, Some(&challenge), None).expect("not empty");
/// assert_eq!(
///     claims.to_json(),
///     r#"{"access_token":{"nbf":{"essential":true,"value":"17"},"xms_cc":{"values":["cp1"]}}}"#,
/// );
/// assert_eq!(request_claims(&ClientCapabilities::none(), None, None), None);
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
#[must_use]
pub fn request_claims(
    capabilities: &ClientCapabilities,
    challenge: Option<&Claims>,
    client_claims: Option<&Claims>,
) -> Option<Claims> {
    let caps = capabilities.to_claims();
    let merged = Claims::merge_all(std::iter::once(&caps).chain(challenge).chain(client_claims));
    if merged.is_empty() {
        return None;
    }
    if capabilities.is_empty() {
        return Some(merged);
    }
    let mut map = merged.into_map();
    ensure_capabilities(&mut map, capabilities.names());
    Some(Claims::from_map_unchecked(map))
}

/// Makes `access_token.xms_cc.values` an array holding every name. When it already is one
/// that holds them all, the claims stay equal.
fn ensure_capabilities(map: &mut Map<String, Value>, names: &[String]) {
    let mut access_token = take_object(map, "access_token");
    let mut xms_cc = take_object(&mut access_token, "xms_cc");
    let mut values = match xms_cc.remove("values") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for name in names {
        if !values.iter().any(|v| v.as_str() == Some(name)) {
            values.push(Value::String(name.clone()));
        }
    }
    xms_cc.insert("values".to_owned(), Value::Array(values));
    access_token.insert("xms_cc".to_owned(), Value::Object(xms_cc));
    map.insert("access_token".to_owned(), Value::Object(access_token));
}

/// Removes the member `key` and returns it if it is an object, or an empty object otherwise.
fn take_object(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.remove(key) {
        Some(Value::Object(inner)) => inner,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::claims_strategy;
    use proptest::prelude::*;
    use serde_json::json;

    fn c(value: Value) -> Claims {
        Claims::try_from(value).unwrap()
    }

    fn cp1() -> ClientCapabilities {
        ClientCapabilities::new(["cp1"]).unwrap()
    }

    #[test]
    fn validates_names() {
        assert_eq!(
            ClientCapabilities::new(["cp1", ""]),
            Err(ClaimsError::InvalidCapability {
                index: 1,
                problem: NameProblem::Empty
            })
        );
        assert_eq!(
            ClientCapabilities::new(["c p"]),
            Err(ClaimsError::InvalidCapability {
                index: 0,
                problem: NameProblem::ForbiddenCharacter { offset: 1 }
            })
        );
        for bad in ["a\"b", "a'b", "a\\b", "a\tb", "é", "a\u{7f}"] {
            assert!(ClientCapabilities::new([bad]).is_err(), "{bad:?}");
        }
        let long = "a".repeat(MAX_CAPABILITY_LEN + 1);
        assert_eq!(
            ClientCapabilities::new([long.as_str()]),
            Err(ClaimsError::InvalidCapability {
                index: 0,
                problem: NameProblem::TooLong {
                    max: MAX_CAPABILITY_LEN
                }
            })
        );
        assert!(ClientCapabilities::new(["a".repeat(MAX_CAPABILITY_LEN)]).is_ok());
        let many: Vec<String> = (0..=MAX_CAPABILITIES).map(|i| format!("cp{i}")).collect();
        assert_eq!(
            ClientCapabilities::new(&many),
            Err(ClaimsError::TooManyCapabilities {
                max: MAX_CAPABILITIES
            })
        );
        assert!(ClientCapabilities::new(&many[..MAX_CAPABILITIES]).is_ok());
    }

    #[test]
    fn deduplicates_keeping_first_order() {
        let caps = ClientCapabilities::new(["cp2", "cp1", "cp2"]).unwrap();
        assert_eq!(caps.names(), ["cp2", "cp1"]);
        assert_eq!(
            caps.to_claims(),
            c(json!({"access_token":{"xms_cc":{"values":["cp2","cp1"]}}}))
        );
    }

    #[test]
    fn no_capabilities_give_empty_claims() {
        assert!(ClientCapabilities::none().is_empty());
        assert!(ClientCapabilities::none().to_claims().is_empty());
        assert!(
            ClientCapabilities::new(Vec::<String>::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn request_claims_is_none_only_when_all_empty() {
        let none = ClientCapabilities::none();
        let empty = Claims::new();
        assert_eq!(request_claims(&none, None, None), None);
        assert_eq!(request_claims(&none, Some(&empty), Some(&empty)), None);
        let client = c(json!({"id_token":{"acr":null}}));
        assert_eq!(
            request_claims(&none, None, Some(&client)),
            Some(client.clone())
        );
        assert_eq!(request_claims(&cp1(), None, None), Some(cp1().to_claims()));
    }

    #[test]
    fn request_claims_merges_in_order() {
        let challenge =
            c(json!({"access_token":{"nbf":{"value":"1"},"xms_cc":{"values":["cp2"]}}}));
        let client = c(json!({"access_token":{"nbf":{"value":"2"}},"id_token":{}}));
        assert_eq!(
            request_claims(&cp1(), Some(&challenge), Some(&client)),
            Some(c(json!({
                "access_token":{"nbf":{"value":"2"},"xms_cc":{"values":["cp1","cp2"]}},
                "id_token":{}
            })))
        );
    }

    #[test]
    fn scalars_cannot_drop_capabilities() {
        for hostile in [
            json!({"access_token": null}),
            json!({"access_token": "x"}),
            json!({"access_token": [1]}),
            json!({"access_token": {"xms_cc": false}}),
            json!({"access_token": {"xms_cc": {"values": "cp9"}}}),
            json!({"access_token": {"xms_cc": {"values": null}}}),
        ] {
            let result = request_claims(&cp1(), Some(&c(hostile.clone())), None).unwrap();
            assert_eq!(result, cp1().to_claims(), "{hostile}");
        }
    }

    #[test]
    fn an_object_at_values_is_replaced_by_the_capabilities() {
        let challenge = c(json!({"access_token": {"xms_cc": {"values": {"x": 1}}, "a": 1}}));
        let plain = cp1().to_claims().merge(&challenge);
        assert_eq!(
            plain,
            c(json!({"access_token": {"xms_cc": {"values": {"x": 1}}, "a": 1}}))
        );
        assert_eq!(
            request_claims(&cp1(), None, Some(&challenge)),
            Some(c(
                json!({"access_token": {"xms_cc": {"values": ["cp1"]}, "a": 1}})
            ))
        );
    }

    fn capabilities_strategy() -> impl Strategy<Value = ClientCapabilities> {
        prop::collection::vec(prop::sample::select(vec!["cp1", "cp2", "x", "CP1"]), 0..4)
            .prop_map(|names| ClientCapabilities::new(names).unwrap_or_default())
    }

    fn values_at(claims: &Claims) -> Option<&Value> {
        claims.get("access_token")?.get("xms_cc")?.get("values")
    }

    fn object_at_values(claims: Option<&Claims>) -> bool {
        claims.and_then(values_at).is_some_and(Value::is_object)
    }

    proptest! {
        #[test]
        fn capabilities_are_always_present(
            caps in capabilities_strategy(),
            challenge in proptest::option::of(claims_strategy()),
            client in proptest::option::of(claims_strategy()),
        ) {
            let result = request_claims(&caps, challenge.as_ref(), client.as_ref());
            if caps.is_empty() {
                return Ok(());
            }
            let result = result.ok_or_else(|| TestCaseError::fail("capabilities gave no claims"))?;
            let Some(Value::Array(values)) = values_at(&result) else {
                return Err(TestCaseError::fail("no capability array"));
            };
            for name in caps.names() {
                prop_assert!(values.iter().any(|v| v.as_str() == Some(name.as_str())));
            }
        }

        #[test]
        fn without_conflict_result_is_the_plain_merge(
            caps in capabilities_strategy(),
            challenge in proptest::option::of(claims_strategy()),
            client in proptest::option::of(claims_strategy()),
        ) {
            prop_assume!(!object_at_values(challenge.as_ref()) && !object_at_values(client.as_ref()));
            let plain = Claims::merge_all(
                std::iter::once(&caps.to_claims()).chain(challenge.as_ref()).chain(client.as_ref()),
            );
            let result = request_claims(&caps, challenge.as_ref(), client.as_ref());
            if plain.is_empty() {
                prop_assert_eq!(result, None);
            } else {
                prop_assert_eq!(result, Some(plain));
            }
        }
    }
}
