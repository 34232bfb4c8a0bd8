//! Merging claims: [`Claims::merge`] and [`Claims::merge_all`].
//!
//! # The rule
//!
//! Values are ranked **object > array > scalar** (`null`, booleans, numbers and strings are all
//! scalars). Merging a left value with a right value:
//!
//! - object + object: merged member by member; a member on one side only is kept as it is, a
//!   member on both sides is merged by this same rule;
//! - array + array: the left array as it is (its order and any duplicates it already has), then
//!   each element of the right array that is not yet in the result, in order;
//! - scalar + scalar: the right one;
//! - different ranks: the higher-ranked value, whichever side it is on.
//!
//! # Why
//!
//! This makes merge **associative** and **idempotent**, with `{}` as its two-sided identity, which
//! property tests pin. The simpler "right wins on any type conflict" of MSAL Python is not
//! associative: with `a.k` an object, `b.k` a scalar and `c.k` an object, `(a·b)·c` keeps only
//! `c.k` while `a·(b·c)` merges `a.k` with `c.k`. Ranking fixes that, because the result at any
//! path is the merge, in order, of the values of the highest rank found there, whatever the
//! grouping. It also means a capability object such as `xms_cc` can never be overwritten by a
//! scalar from a challenge or from client claims.
//!
//! Merge never makes claims deeper than the deepest input, so the result still respects
//! [`MAX_DEPTH`](crate::MAX_DEPTH). It may be longer than
//! [`MAX_CLAIMS_LEN`](crate::MAX_CLAIMS_LEN), which bounds only the text that is parsed.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::Claims;

impl Claims {
    /// Merges `other` into a copy of `self`, `other` being the right side (see the
    /// [module rule](crate::merge)).
    ///
    /// ```
    /// use entra_claims::Claims;
    ///
    /// let caps = Claims::parse(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)?;
    /// let challenge = Claims::parse(
    ///     r#"{"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["cp2"]}}}"#,
    /// )?;
    /// assert_eq!(
    ///     caps.merge(&challenge).to_canonical_json(),
    ///     r#"{"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["cp1","cp2"]}}}"#,
    /// );
    /// # Ok::<(), entra_claims::ClaimsError>(())
    /// ```
    #[must_use]
    pub fn merge(&self, other: &Claims) -> Claims {
        let mut map = self.as_map().clone();
        merge_object_into(&mut map, other.as_map());
        Claims::from_map_unchecked(map)
    }

    /// Merges every part from left to right; no parts give `{}`.
    #[must_use]
    pub fn merge_all<'a>(parts: impl IntoIterator<Item = &'a Claims>) -> Claims {
        let mut map = Map::new();
        for part in parts {
            merge_object_into(&mut map, part.as_map());
        }
        Claims::from_map_unchecked(map)
    }
}

/// Rank of a value: object > array > scalar.
fn rank(value: &Value) -> u8 {
    match value {
        Value::Object(_) => 2,
        Value::Array(_) => 1,
        _ => 0,
    }
}

/// Merges `right` into `left`, member by member.
fn merge_object_into(left: &mut Map<String, Value>, right: &Map<String, Value>) {
    for (key, right_value) in right {
        match left.get_mut(key) {
            Some(left_value) => merge_value_into(left_value, right_value),
            None => {
                left.insert(key.clone(), right_value.clone());
            }
        }
    }
}

/// Merges `right` into `left` by the module rule.
fn merge_value_into(left: &mut Value, right: &Value) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => merge_object_into(l, r),
        (Value::Array(l), Value::Array(r)) => union_into(l, r),
        (left, right) => {
            // Same rank here means scalar + scalar: the right wins. A higher right wins too.
            if rank(right) >= rank(left) {
                *left = right.clone();
            }
        }
    }
}

/// Appends each element of `right` not yet in `left`, in order.
///
/// Elements are compared by their canonical form, which is equal exactly when the values are
/// equal, so the work stays linear in the size of the arrays.
fn union_into(left: &mut Vec<Value>, right: &[Value]) {
    if right.is_empty() {
        return;
    }
    let mut seen: HashSet<String> = left.iter().map(crate::canonical::to_string).collect();
    for item in right {
        if seen.insert(crate::canonical::to_string(item)) {
            left.push(item.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{claims_strategy, permuted};
    use proptest::prelude::*;
    use serde_json::json;

    fn c(value: Value) -> Claims {
        Claims::try_from(value).unwrap()
    }

    #[test]
    fn right_wins_on_scalars() {
        let a = c(json!({"k": 1, "s": "x", "n": null}));
        let b = c(json!({"k": "two", "s": null, "n": false}));
        assert_eq!(a.merge(&b), b);
    }

    #[test]
    fn objects_merge_recursively_and_keep_disjoint_siblings() {
        let a = c(json!({"access_token": {"a": 1}, "id_token": {"x": true}}));
        let b = c(json!({"access_token": {"b": 2}, "userinfo": {}}));
        assert_eq!(
            a.merge(&b),
            c(json!({
                "access_token": {"a": 1, "b": 2},
                "id_token": {"x": true},
                "userinfo": {}
            }))
        );
    }

    #[test]
    fn arrays_union_in_order_without_new_duplicates() {
        let a = c(json!({"v": [1, 2, 2, {"o": 1}]}));
        let b = c(json!({"v": [3, 2, {"o": 1}, 3, 1, 4]}));
        assert_eq!(a.merge(&b), c(json!({"v": [1, 2, 2, {"o": 1}, 3, 4]})));
    }

    #[test]
    fn array_elements_compare_structurally() {
        let a = Claims::parse(r#"{"v":[{"a":1,"b":2}, 1, 0.0]}"#).unwrap();
        let b = Claims::parse(r#"{"v":[{"b":2,"a":1}, 1.0, -0.0]}"#).unwrap();
        // {"b":2,"a":1} equals {"a":1,"b":2}; 1.0 is not 1 in JSON values; -0.0 equals 0.0.
        assert_eq!(
            a.merge(&b),
            Claims::parse(r#"{"v":[{"a":1,"b":2}, 1, 0.0, 1.0]}"#).unwrap()
        );
    }

    #[test]
    fn higher_rank_wins_whichever_side() {
        let obj = c(json!({"k": {"values": ["cp1"]}}));
        let arr = c(json!({"k": [1]}));
        let scalar = c(json!({"k": "x"}));
        assert_eq!(obj.merge(&scalar), obj);
        assert_eq!(scalar.merge(&obj), obj);
        assert_eq!(obj.merge(&arr), obj);
        assert_eq!(arr.merge(&obj), obj);
        assert_eq!(arr.merge(&scalar), arr);
        assert_eq!(scalar.merge(&arr), arr);
        assert_eq!(c(json!({"k": null})).merge(&scalar), scalar);
    }

    #[test]
    fn the_counterexample_to_right_wins_is_associative_here() {
        let a = c(json!({"k": {"x": 1}}));
        let b = c(json!({"k": 7}));
        let cc = c(json!({"k": {"y": 2}}));
        let left = a.merge(&b).merge(&cc);
        let right = a.merge(&b.merge(&cc));
        assert_eq!(left, right);
        assert_eq!(left, c(json!({"k": {"x": 1, "y": 2}})));
    }

    #[test]
    fn merge_all_folds_left_to_right() {
        let parts = [
            c(json!({"a": [1]})),
            c(json!({"a": [2], "b": 1})),
            c(json!({"b": 2})),
        ];
        assert_eq!(Claims::merge_all(&parts), c(json!({"a": [1, 2], "b": 2})));
        assert_eq!(Claims::merge_all(&[]), Claims::new());
    }

    proptest! {
        #[test]
        fn merge_is_associative(a in claims_strategy(), b in claims_strategy(), c in claims_strategy()) {
            prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
        }

        #[test]
        fn merge_is_idempotent(a in claims_strategy()) {
            prop_assert_eq!(a.merge(&a), a);
        }

        #[test]
        fn empty_is_the_identity(a in claims_strategy()) {
            prop_assert_eq!(Claims::new().merge(&a), a.clone());
            prop_assert_eq!(a.merge(&Claims::new()), a);
        }

        #[test]
        fn merge_all_equals_folded_merge(a in claims_strategy(), b in claims_strategy(), c in claims_strategy()) {
            prop_assert_eq!(Claims::merge_all([&a, &b, &c]), a.merge(&b).merge(&c));
        }

        #[test]
        fn right_wins_on_scalar_conflicts(a in claims_strategy(), b in claims_strategy()) {
            let merged = a.merge(&b);
            for (key, right) in b.as_map() {
                if let Some(left) = a.get(key)
                    && rank(left) == 0
                    && rank(right) == 0
                {
                    prop_assert_eq!(merged.get(key), Some(right));
                }
            }
        }

        #[test]
        fn higher_rank_wins_across_sides(a in claims_strategy(), b in claims_strategy()) {
            let merged = a.merge(&b);
            for (key, right) in b.as_map() {
                if let Some(left) = a.get(key) {
                    let result = merged.get(key);
                    if rank(left) > rank(right) {
                        prop_assert_eq!(result, Some(left));
                    } else if rank(right) > rank(left) {
                        prop_assert_eq!(result, Some(right));
                    }
                }
            }
        }

        #[test]
        fn arrays_are_unioned_in_order(a in claims_strategy(), b in claims_strategy()) {
            let merged = a.merge(&b);
            for (key, right) in b.as_map() {
                if let (Some(Value::Array(l)), Value::Array(r)) = (a.get(key), right) {
                    let Some(Value::Array(m)) = merged.get(key) else {
                        return Err(TestCaseError::fail("array + array is not an array"));
                    };
                    // The left array is a prefix, as it was.
                    prop_assert_eq!(&m[..l.len()], &l[..]);
                    let added = &m[l.len()..];
                    // Every right element is present; nothing added was already there.
                    for item in r {
                        prop_assert!(m.contains(item));
                    }
                    for (i, item) in added.iter().enumerate() {
                        prop_assert!(!l.contains(item));
                        prop_assert!(!added[..i].contains(item));
                        prop_assert!(r.contains(item));
                    }
                    // Added elements keep the right array's order of first appearance.
                    let positions: Vec<usize> = added
                        .iter()
                        .filter_map(|item| r.iter().position(|x| x == item))
                        .collect();
                    prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }

        #[test]
        fn disjoint_siblings_are_kept(a in claims_strategy(), b in claims_strategy()) {
            let merged = a.merge(&b);
            for (key, value) in a.as_map() {
                if !b.as_map().contains_key(key) {
                    prop_assert_eq!(merged.get(key), Some(value));
                }
            }
            for (key, value) in b.as_map() {
                if !a.as_map().contains_key(key) {
                    prop_assert_eq!(merged.get(key), Some(value));
                }
            }
            prop_assert!(merged.len() >= a.len().max(b.len()));
        }

        #[test]
        fn merge_does_not_depend_on_insertion_order(a in claims_strategy(), b in claims_strategy(), seed in any::<u64>()) {
            let a2 = permuted(&a, seed);
            let b2 = permuted(&b, seed.rotate_left(17));
            prop_assert_eq!(a.merge(&b).to_canonical_json(), a2.merge(&b2).to_canonical_json());
        }
    }
}
