//! No error (`Display` or `Debug`) and no `Claims` or `Challenge` `Debug` repeats a secret planted
//! in the input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use crate::{
    AgentSessionId, Claims, ClaimsError, ClientCapabilities, merge_access_token_claims,
    parse_www_authenticate,
};

const SECRET: &str = "SECRET-123";

fn assert_hidden(shown: &str) {
    assert!(!shown.contains(SECRET), "secret leaked: {shown}");
    assert!(!shown.contains("SECRET"), "secret leaked: {shown}");
}

fn assert_error_hidden(err: &ClaimsError) {
    assert_hidden(&err.to_string());
    assert_hidden(&format!("{err:?}"));
    assert_hidden(&format!("{err:#?}"));
}

fn assert_result_hidden<T: std::fmt::Debug>(result: &Result<T, ClaimsError>) {
    assert_hidden(&format!("{result:?}"));
    if let Err(err) = result {
        assert_error_hidden(err);
    }
}

#[test]
fn claims_debug_hides_contents() {
    let claims = Claims::parse(r#"{"access_token":{"x":"SECRET-123"}}"#).unwrap();
    assert_hidden(&format!("{claims:?}"));
    assert_hidden(&format!("{claims:#?}"));
    assert_hidden(&format!("{:?}", Some(&claims)));
    assert_hidden(&format!("{:?}", claims.merge(&claims)));
    let key_secret = Claims::parse(r#"{"SECRET-123":1}"#).unwrap();
    assert_hidden(&format!("{key_secret:?}"));
}

#[test]
fn parse_errors_hide_the_text() {
    for text in [
        // Invalid JSON around the secret, at several places serde_json might quote.
        r#"{"access_token":{"x":"SECRET-123"}"#,
        r#"{"access_token":{"x":SECRET-123}}"#,
        r#"{"x":"SECRET-123" "y"}"#,
        r#"{SECRET-123}"#,
        r#"SECRET-123"#,
        r#"{"x":"SECRET-123"} trailing"#,
        r#"{"x":1e99999, "y":"SECRET-123"}"#,
        // Valid JSON that is not an object.
        r#""SECRET-123""#,
        r#"["SECRET-123"]"#,
    ] {
        let result = Claims::parse(text);
        assert!(result.is_err(), "{text} parsed");
        assert_result_hidden(&result);
    }
    let deep = format!(r#"{{"x":"SECRET-123","y":{}}}"#, "[".repeat(100));
    assert_result_hidden(&Claims::parse(&deep));
    let big = format!(
        r#"{{"x":"SECRET-123","y":"{}"}}"#,
        "a".repeat(crate::MAX_CLAIMS_LEN)
    );
    assert_result_hidden(&Claims::parse(&big));
    let value = serde_json::json!(["SECRET-123"]);
    assert_result_hidden(&Claims::try_from(value));
}

#[test]
fn name_errors_hide_the_name() {
    assert_result_hidden(&ClientCapabilities::new(["SECRET-123 x"]));
    assert_result_hidden(&ClientCapabilities::new([format!(
        "SECRET-123{}",
        "x".repeat(100)
    )]));
    assert_result_hidden(&AgentSessionId::new("SECRET-123\u{1}"));
    assert_result_hidden(&AgentSessionId::from_env(|_| {
        Some(format!("SECRET-123{}", "x".repeat(300)))
    }));
}

#[test]
fn merge_access_token_claims_errors_hide_claims() {
    let new = Claims::parse(r#"{"access_token":"SECRET-123"}"#).unwrap();
    let existing = Claims::parse(r#"{"id_token":{"x":"SECRET-123"}}"#).unwrap();
    assert_result_hidden(&merge_access_token_claims(Some(&existing), Some(&new)));
    assert_result_hidden(&merge_access_token_claims(Some(&existing), None));
}

#[test]
fn header_errors_and_challenge_debug_hide_the_header() {
    let encoded = STANDARD.encode(r#"{"access_token":{"x":"SECRET-123"}}"#);
    let secret_b64 = STANDARD.encode(SECRET);
    for header in [
        format!(r#"Bearer claims="{encoded}", nonce="SECRET-123""#),
        format!(r#"Bearer SECRET-123="x", claims={encoded}"#),
        format!("Negotiate {secret_b64}"),
        "Bearer realm=\"SECRET-123".to_owned(),
        "Bearer realm=\"a\" SECRET-123".to_owned(),
        "Bearer error_description=\"SECRET-123\"".to_owned(),
        format!(
            r#"Bearer x="{}", y="SECRET-123""#,
            "a".repeat(crate::MAX_HEADER_LEN)
        ),
    ] {
        let result = parse_www_authenticate(&header);
        if let Ok(challenges) = &result {
            for challenge in challenges {
                let shown = format!("{challenge:?}");
                // The scheme and parameter names are shown by design; values are not.
                if !header.contains(r#"SECRET-123=""#) {
                    assert_hidden(&shown);
                }
                assert!(!shown.contains(&encoded), "claims leaked: {shown}");
                assert!(!shown.contains(&secret_b64), "token68 leaked: {shown}");
                assert_result_hidden(&challenge.claims());
            }
        } else {
            assert_result_hidden(&result);
        }
    }
}

#[test]
fn claims_challenge_errors_hide_the_decoded_text() {
    for decoded in [
        r#"{"x":"SECRET-123""#.to_owned(),
        r#"["SECRET-123"]"#.to_owned(),
        format!(r#"{{"x":"SECRET-123","y":{}}}"#, "[".repeat(40)),
    ] {
        let header = format!(r#"Bearer claims="{}""#, STANDARD.encode(decoded.as_bytes()));
        let result = crate::claims_challenge_from_header(&header);
        assert!(result.is_err(), "{decoded}");
        assert_result_hidden(&result);
    }
    let mut bytes = SECRET.as_bytes().to_vec();
    bytes.push(0xff);
    let header = format!(r#"Bearer claims="{}""#, STANDARD.encode(&bytes));
    let result = crate::claims_challenge_from_header(&header);
    assert_eq!(result, Err(ClaimsError::ClaimsNotUtf8));
    assert_result_hidden(&result);
    let result = crate::claims_challenge_from_header(r#"Bearer claims="SECRET-123!""#);
    assert_eq!(result, Err(ClaimsError::ClaimsNotBase64));
    assert_result_hidden(&result);
}

proptest! {
    /// Whatever surrounds the secret, a failed parse does not show it.
    #[test]
    fn parse_errors_never_show_the_input(prefix in "[ -~]{0,6}", suffix in "[ -~]{0,6}") {
        let text = format!("{prefix}SECRET-123{suffix}");
        let result = Claims::parse(&text);
        match &result {
            Ok(claims) => assert_hidden(&format!("{claims:?}")),
            Err(err) => assert_error_hidden(err),
        }
        let header = format!("Bearer {prefix}SECRET-123{suffix}");
        if let Err(err) = parse_www_authenticate(&header) {
            assert_error_hidden(&err);
        }
    }
}
