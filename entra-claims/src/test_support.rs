//! Proptest strategies shared by the unit tests: small nested JSON trees whose keys and scalars
//! come from small alphabets, so that keys collide across the sides of a merge.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::Claims;

/// Keys from a small alphabet, including the paths the crate cares about.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "c", "access_token", "xms_cc", "values"]),
        1 => prop::sample::select(vec!["", "Z", "é", "a\"b"]),
    ]
    .prop_map(String::from)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(Value::from),
        prop::sample::select(vec![0.0f64, -0.0, 0.5, 1.0, -1e-7, 1.5e300]).prop_map(Value::from),
        prop::sample::select(vec!["", "x", "cp1", "cp2"]).prop_map(Value::from),
        // Rarer, wider values for the serialisation laws.
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\a-c\u{e9}\u{2028}\u{1F600}]{0,4}".prop_map(Value::from),
    ]
}

/// Any JSON value up to 3 levels of containers deep.
pub(crate) fn value_strategy() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Claims up to 4 levels deep.
pub(crate) fn claims_strategy() -> impl Strategy<Value = Claims> {
    prop::collection::vec((key(), value_strategy()), 0..4)
        .prop_map(|members| Claims::from_map(members.into_iter().collect()).unwrap_or_default())
}

/// A copy of `claims` whose objects were built by inserting their members in another order,
/// chosen from `seed`. Equal to `claims`; only the insertion order differs.
pub(crate) fn permuted(claims: &Claims, seed: u64) -> Claims {
    let mut state = seed | 1;
    let map = permute_map(claims.as_map(), &mut state);
    Claims::from_map(map).unwrap_or_default()
}

fn next(state: &mut u64) -> u64 {
    // xorshift64
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn permute_map(map: &Map<String, Value>, state: &mut u64) -> Map<String, Value> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // Fisher-Yates.
    for i in (1..members.len()).rev() {
        let j = usize::try_from(next(state) % (i as u64 + 1)).unwrap_or(0);
        members.swap(i, j);
    }
    members
        .into_iter()
        .map(|(k, v)| (k.clone(), permute_value(v, state)))
        .collect()
}

fn permute_value(value: &Value, state: &mut u64) -> Value {
    match value {
        Value::Object(map) => Value::Object(permute_map(map, state)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| permute_value(v, state)).collect())
        }
        other => other.clone(),
    }
}
