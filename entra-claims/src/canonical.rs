//! The canonical JSON writer behind [`Claims::to_canonical_json`](crate::Claims::to_canonical_json).
//!
//! Keys are sorted here explicitly, so the output does not depend on how `serde_json::Map` orders
//! its members (its `preserve_order` feature may be switched on by another crate in the build).
//! Recursion is bounded by [`MAX_DEPTH`](crate::MAX_DEPTH), which every `Claims` respects.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Appends the canonical form of `value` to `out`.
pub(crate) fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

/// Appends the canonical form of an object to `out`.
pub(crate) fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // `str` orders by bytes, which is what the canonical form promises.
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_value(value, out);
    }
    out.push('}');
}

/// The canonical form of `value` as a new string.
pub(crate) fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_number(n: &Number, out: &mut String) {
    // `serde_json` holds -0.0 equal to 0.0; write both alike so equal claims stay equal in
    // canonical form. (With `arbitrary_precision` they are unequal, and the check below is false.)
    if n.is_f64() && n.as_f64() == Some(0.0) && Number::from_f64(-0.0) == Number::from_f64(0.0) {
        out.push_str("0.0");
        return;
    }
    // Display of a Number is its JSON form; writing to a String cannot fail.
    let _ = write!(out, "{n}");
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_scalars_and_escapes() {
        assert_eq!(to_string(&json!(null)), "null");
        assert_eq!(to_string(&json!(true)), "true");
        assert_eq!(to_string(&json!(false)), "false");
        assert_eq!(to_string(&json!(-7)), "-7");
        assert_eq!(to_string(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(to_string(&json!(0.5)), "0.5");
        assert_eq!(to_string(&json!(-0.0)), "0.0");
        assert_eq!(
            to_string(&json!("a\"b\\c\n\r\t\u{8}\u{c}\u{1f}\u{7f}é")),
            r#""a\"b\\c\n\r\t\b\f\u001f"#.to_owned() + "\u{7f}é\""
        );
        assert_eq!(to_string(&json!([])), "[]");
        assert_eq!(to_string(&json!({})), "{}");
    }

    #[test]
    fn output_parses_back_to_the_same_value() {
        let value = json!({"b":[1,{"d":null,"c":"\u{0}"}],"a":{"é":1e-7,"E":-3}});
        let text = to_string(&value);
        assert_eq!(
            text,
            r#"{"a":{"E":-3,"é":1e-7},"b":[1,{"c":"\u0000","d":null}]}"#
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
