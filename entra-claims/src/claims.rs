//! [`Claims`]: a validated JSON object, the OpenID Connect `claims` request parameter.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::{ClaimsError, JsonKind};

/// The largest claims text [`Claims::parse`] accepts, in bytes (64 KiB).
pub const MAX_CLAIMS_LEN: usize = 64 * 1024;

/// The deepest nesting [`Claims`] accept; the top-level object is level 1.
///
/// `{"access_token":{"xms_cc":{"values":["cp1"]}}}` is 4 levels deep.
pub const MAX_DEPTH: usize = 32;

/// A claims request: a JSON object, at most [`MAX_DEPTH`] levels deep.
///
/// `Debug` shows only how many top-level members there are, never the contents, because claims
/// may carry secrets. There is deliberately no `Display`; use [`Claims::to_json`] to serialise.
///
/// Equality is structural: member order does not matter, array order does.
///
/// ```
/// use entra_claims::Claims;
///
/// let claims = Claims::parse(r#"{"id_token":{"auth_time":{"essential":true}}}"#)?;
/// assert_eq!(format!("{claims:?}"), "Claims { members: 1 }");
/// assert!(Claims::parse("[1, 2]").is_err());
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Claims {
    map: Map<String, Value>,
}

impl Claims {
    /// Empty claims, `{}`: the identity of [`Claims::merge`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses claims text, which must be a JSON object.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::TooLarge`] when `text` is longer than [`MAX_CLAIMS_LEN`],
    /// [`ClaimsError::TooDeep`] when it nests deeper than [`MAX_DEPTH`],
    /// [`ClaimsError::Syntax`] (line and column only) when it is not JSON, and
    /// [`ClaimsError::NotAnObject`] when it is JSON but not an object.
    pub fn parse(text: &str) -> Result<Self, ClaimsError> {
        if text.len() > MAX_CLAIMS_LEN {
            return Err(ClaimsError::TooLarge {
                len: text.len(),
                max: MAX_CLAIMS_LEN,
            });
        }
        check_text_depth(text)?;
        // serde_json's own error message may quote the input, so keep only its position.
        let value: Value = serde_json::from_str(text).map_err(|e| ClaimsError::Syntax {
            line: e.line(),
            column: e.column(),
        })?;
        Self::try_from(value)
    }

    /// Wraps a JSON object.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::TooDeep`] when the object nests deeper than [`MAX_DEPTH`].
    pub fn from_map(map: Map<String, Value>) -> Result<Self, ClaimsError> {
        if map.values().any(|v| depth_exceeds(v, MAX_DEPTH - 1)) {
            return Err(ClaimsError::TooDeep { max: MAX_DEPTH });
        }
        Ok(Self { map })
    }

    /// Wraps a map known to respect [`MAX_DEPTH`] (built by this crate).
    pub(crate) fn from_map_unchecked(map: Map<String, Value>) -> Self {
        Self { map }
    }

    /// Whether these are the empty claims `{}`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The number of top-level members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The top-level member named `key`, such as `"access_token"`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// The claims as a JSON map.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The claims as a JSON map, by value.
    #[must_use]
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// The claims as a JSON object value.
    #[must_use]
    pub fn into_value(self) -> Value {
        Value::Object(self.map)
    }

    /// The canonical form: compact JSON with the members of every object sorted by key (byte
    /// order) at every depth, and arrays kept in their order.
    ///
    /// Equal claims give equal canonical strings, and parsing the canonical string gives back
    /// equal claims, so it is fit for cache keys. A negative zero is written as `0.0`, because
    /// `serde_json` considers it equal to zero.
    ///
    /// ```
    /// use entra_claims::Claims;
    ///
    /// let claims = Claims::parse(r#"{ "b": [2, 1], "a": {"y": null, "x": true} }"#)?;
    /// assert_eq!(claims.to_canonical_json(), r#"{"a":{"x":true,"y":null},"b":[2,1]}"#);
    /// # Ok::<(), entra_claims::ClaimsError>(())
    /// ```
    #[must_use]
    pub fn to_canonical_json(&self) -> String {
        let mut out = String::new();
        crate::canonical::write_object(&self.map, &mut out);
        out
    }

    /// The JSON to send on the wire (the `claims` form field). This is the canonical form.
    #[must_use]
    pub fn to_json(&self) -> String {
        self.to_canonical_json()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("members", &self.map.len())
            .finish()
    }
}

impl TryFrom<Value> for Claims {
    type Error = ClaimsError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        match value {
            Value::Object(map) => Self::from_map(map),
            other => Err(ClaimsError::NotAnObject {
                found: JsonKind::of(&other),
            }),
        }
    }
}

impl TryFrom<Map<String, Value>> for Claims {
    type Error = ClaimsError;

    fn try_from(map: Map<String, Value>) -> Result<Self, Self::Error> {
        Self::from_map(map)
    }
}

impl FromStr for Claims {
    type Err = ClaimsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Claims> for Value {
    fn from(claims: Claims) -> Self {
        claims.into_value()
    }
}

/// Rejects text whose brackets nest deeper than [`MAX_DEPTH`], before `serde_json` (whose own
/// limit is 128) recurses into it. Brackets inside strings do not count.
fn check_text_depth(text: &str) -> Result<(), ClaimsError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ClaimsError::TooDeep { max: MAX_DEPTH });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `value` nests more than `limit` levels (a scalar is 0 levels, `[]` and `{}` are 1).
///
/// Iterative, so a value built in memory to any depth cannot overflow the stack here.
fn depth_exceeds(value: &Value, limit: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Array(items) => {
                if depth > limit {
                    return true;
                }
                stack.extend(items.iter().map(|child| (child, depth + 1)));
            }
            Value::Object(map) => {
                if depth > limit {
                    return true;
                }
                stack.extend(map.values().map(|child| (child, depth + 1)));
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_an_object() {
        let claims = Claims::parse(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#).unwrap();
        assert_eq!(claims.len(), 1);
        assert!(!claims.is_empty());
        assert_eq!(
            claims.get("access_token"),
            Some(&json!({"xms_cc":{"values":["cp1"]}}))
        );
    }

    #[test]
    fn parses_the_empty_object() {
        let claims = Claims::parse(" {} ").unwrap();
        assert!(claims.is_empty());
        assert_eq!(claims, Claims::new());
        assert_eq!(claims, Claims::default());
    }

    #[test]
    fn rejects_each_non_object_kind_by_name() {
        for (text, kind) in [
            ("null", JsonKind::Null),
            ("true", JsonKind::Bool),
            ("12.5", JsonKind::Number),
            (r#""x""#, JsonKind::String),
            ("[1]", JsonKind::Array),
        ] {
            assert_eq!(
                Claims::parse(text),
                Err(ClaimsError::NotAnObject { found: kind }),
                "{text}"
            );
        }
        let message = Claims::parse("[1]").unwrap_err().to_string();
        assert!(message.contains("array"), "{message}");
    }

    #[test]
    fn syntax_error_keeps_line_and_column() {
        let err = Claims::parse("{\n  \"a\": tru }").unwrap_err();
        match err {
            ClaimsError::Syntax { line, column } => {
                assert_eq!(line, 2);
                assert!(column > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(Claims::parse(""), Err(ClaimsError::Syntax { .. })));
        assert!(matches!(
            Claims::parse("{} {}"),
            Err(ClaimsError::Syntax { .. })
        ));
    }

    #[test]
    fn size_cap_is_enforced() {
        let filler = "a".repeat(MAX_CLAIMS_LEN);
        let text = format!(r#"{{"k":"{filler}"}}"#);
        assert_eq!(
            Claims::parse(&text),
            Err(ClaimsError::TooLarge {
                len: text.len(),
                max: MAX_CLAIMS_LEN
            })
        );
        let fits = format!(r#"{{"k":"{}"}}"#, "a".repeat(MAX_CLAIMS_LEN - 8));
        assert_eq!(fits.len(), MAX_CLAIMS_LEN);
        assert!(Claims::parse(&fits).is_ok());
    }

    fn nested(depth: usize) -> String {
        // depth objects: {"a":{"a":...{}...}}
        let mut text = String::new();
        for _ in 1..depth {
            text.push_str(r#"{"a":"#);
        }
        text.push_str("{}");
        for _ in 1..depth {
            text.push('}');
        }
        text
    }

    #[test]
    fn depth_cap_is_enforced_on_text() {
        assert!(Claims::parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            Claims::parse(&nested(MAX_DEPTH + 1)),
            Err(ClaimsError::TooDeep { max: MAX_DEPTH })
        );
        // Far beyond serde_json's own limit: still our typed error.
        assert_eq!(
            Claims::parse(&"[".repeat(10_000)),
            Err(ClaimsError::TooDeep { max: MAX_DEPTH })
        );
        // Brackets inside strings do not count.
        let text = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(Claims::parse(&text).is_ok());
    }

    #[test]
    fn depth_cap_is_enforced_on_values() {
        let ok: Value = serde_json::from_str(&nested(MAX_DEPTH)).unwrap();
        assert!(Claims::try_from(ok).is_ok());
        let mut deep = json!([]);
        for _ in 0..MAX_DEPTH {
            deep = json!({ "a": deep });
        }
        // MAX_DEPTH objects around an array: one level too many.
        assert_eq!(
            Claims::try_from(deep),
            Err(ClaimsError::TooDeep { max: MAX_DEPTH })
        );
        assert_eq!(
            Claims::try_from(json!("x")),
            Err(ClaimsError::NotAnObject {
                found: JsonKind::String
            })
        );
    }

    #[test]
    fn debug_shows_only_the_member_count() {
        let claims = Claims::parse(r#"{"a":"hidden-value","b":1}"#).unwrap();
        assert_eq!(format!("{claims:?}"), "Claims { members: 2 }");
    }

    #[test]
    fn equality_ignores_member_order() {
        let a = Claims::parse(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b = Claims::parse(r#"{"b":[1,2],"a":1}"#).unwrap();
        let c = Claims::parse(r#"{"b":[2,1],"a":1}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn accessors_and_conversions() {
        let claims: Claims = r#"{"a":{"b":true}}"#.parse().unwrap();
        assert_eq!(claims.as_map().len(), 1);
        assert_eq!(claims.clone().into_value(), json!({"a":{"b":true}}));
        assert_eq!(Value::from(claims.clone()), json!({"a":{"b":true}}));
        assert_eq!(claims.clone().into_map().len(), 1);
        assert_eq!(Claims::try_from(claims.clone().into_map()), Ok(claims));
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let claims =
            Claims::parse(r#"{"z":{"b":[{"y":1,"x":2}],"a":"\u0001\"\\é"},"B":-0.0,"a":1.5e300}"#)
                .unwrap();
        assert_eq!(
            claims.to_canonical_json(),
            r#"{"B":0.0,"a":1.5e+300,"z":{"a":"\u0001\"\\é","b":[{"x":2,"y":1}]}}"#
        );
        assert_eq!(claims.to_json(), claims.to_canonical_json());
        assert_eq!(Claims::parse(&claims.to_canonical_json()).unwrap(), claims);
        assert_eq!(Claims::new().to_canonical_json(), "{}");
    }

    mod laws {
        use super::*;
        use crate::test_support::{claims_strategy, permuted, value_strategy};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn canonical_ignores_insertion_order(a in claims_strategy(), seed in any::<u64>()) {
                let b = permuted(&a, seed);
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(a.to_canonical_json(), b.to_canonical_json());
            }

            #[test]
            fn canonical_parses_back_to_equal_claims(a in claims_strategy()) {
                let canonical = a.to_canonical_json();
                let back = Claims::parse(&canonical);
                prop_assert_eq!(back.as_ref(), Ok(&a));
                // And the canonical form is a fixed point.
                prop_assert_eq!(back.map(|b| b.to_canonical_json()), Ok(canonical));
            }

            #[test]
            fn equal_canonical_forms_mean_equal_claims(a in claims_strategy(), b in claims_strategy()) {
                prop_assert_eq!(a == b, a.to_canonical_json() == b.to_canonical_json());
            }

            #[test]
            fn canonical_agrees_with_serde_json(v in value_strategy()) {
                // Any value, not only objects, reads back as serde_json reads it.
                let text = crate::canonical::to_string(&v);
                let back: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, v);
            }

            #[test]
            fn floats_round_trip(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
                let text = crate::canonical::to_string(&Value::from(f));
                let back: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, Value::from(f), "{}", text);
            }
        }
    }
}
