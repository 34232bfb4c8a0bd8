//! Reading token endpoint answers: success bodies into tokens, error bodies into `Error`.

use std::time::{Duration, SystemTime};

use entra_cache::{Fresh, TokenType};
use entra_claims::Claims;
use serde_json::{Map, Value};

use crate::error::{ResponseProblem, ServiceError};
use crate::{AccessToken, Error, HttpResponse, Secret};

/// Longest `error_description` kept.
const MAX_DESCRIPTION: usize = 1024;

/// Parses a JSON object body (the content type must say JSON); the error never echoes the
/// body.
pub fn json_object(response: &HttpResponse, endpoint: &str) -> Result<Map<String, Value>, Error> {
    let problem = |problem| Error::UnexpectedResponse {
        status: response.status,
        endpoint: endpoint.to_owned(),
        problem,
    };
    let content_type = response.header("content-type");
    if !content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("json")) {
        return Err(problem(ResponseProblem::NotJson {
            content_type: content_type.map(|ct| ct.chars().take(64).collect()),
        }));
    }
    match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(problem(ResponseProblem::InvalidField("body"))),
        Err(e) if e.is_eof() => Err(problem(ResponseProblem::Truncated)),
        Err(e) => Err(problem(ResponseProblem::MalformedJson {
            line: e.line(),
            column: e.column(),
        })),
    }
}

/// A number that may arrive as a JSON number or a numeric string: `None` when absent, null or
/// empty, `Some(Err(()))` when present but not a non-negative number.
#[allow(clippy::result_unit_err)]
pub fn number(map: &Map<String, Value>, field: &str) -> Option<Result<u64, ()>> {
    match map.get(field)? {
        Value::Null => None,
        Value::Number(n) => Some(
            n.as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or(()),
        ),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().parse::<u64>().map_err(|_| ())),
        _ => Some(Err(())),
    }
}

fn string<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    map.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Turns a 200 answer into a token acquired at `now`.
///
/// `expected` is the token type asked for: for a bound type the answer must name the same
/// type (`token_type_mismatch` / `token_type_missing` otherwise); for bearer, a missing
/// `token_type` means bearer.
pub(crate) fn parse_success(
    response: &HttpResponse,
    endpoint: &str,
    now: SystemTime,
    expected: &TokenType,
) -> Result<Fresh<AccessToken>, Error> {
    parse_success_token(response, endpoint, now, expected).map(AccessToken::into_fresh)
}

/// The token itself, with its expiry and refresh times.
pub(crate) fn parse_success_token(
    response: &HttpResponse,
    endpoint: &str,
    now: SystemTime,
    expected: &TokenType,
) -> Result<AccessToken, Error> {
    let map = json_object(response, endpoint)?;
    let problem = |problem| Error::UnexpectedResponse {
        status: response.status,
        endpoint: endpoint.to_owned(),
        problem,
    };
    let token = string(&map, "access_token")
        .ok_or_else(|| problem(ResponseProblem::MissingField("access_token")))?;
    let received = string(&map, "token_type");
    let token_type = match (expected, received) {
        (
            TokenType::Bound {
                token_type: want, ..
            },
            Some(got),
        ) if !got.eq_ignore_ascii_case(want) => {
            return Err(problem(ResponseProblem::TokenTypeMismatch {
                expected: want.clone(),
                actual: got.chars().take(32).collect(),
            }));
        }
        (
            TokenType::Bound {
                token_type: want, ..
            },
            None,
        ) => {
            return Err(problem(ResponseProblem::TokenTypeMissing {
                expected: want.clone(),
            }));
        }
        (TokenType::Bearer, Some(got)) if !got.eq_ignore_ascii_case("bearer") => {
            return Err(problem(ResponseProblem::TokenTypeMismatch {
                expected: "Bearer".to_owned(),
                actual: got.chars().take(32).collect(),
            }));
        }
        (expected, _) => expected.clone(),
    };
    let expires_in = match number(&map, "expires_in") {
        Some(Ok(secs)) => Duration::from_secs(secs),
        Some(Err(())) => return Err(problem(ResponseProblem::InvalidField("expires_in"))),
        None => return Err(problem(ResponseProblem::MissingField("expires_in"))),
    };
    // A lifetime past what `SystemTime` can hold is as unusable as a malformed one.
    let expires_on = now
        .checked_add(expires_in)
        .ok_or_else(|| problem(ResponseProblem::InvalidField("expires_in")))?;
    let refresh_in = match number(&map, "refresh_in") {
        Some(Ok(secs)) => Some(Duration::from_secs(secs)),
        Some(Err(())) => return Err(problem(ResponseProblem::InvalidField("refresh_in"))),
        None => None,
    };
    let refresh_on = entra_cache::refresh_on(now, expires_on, refresh_in);
    let token = AccessToken::new(Secret::new(token), expires_on, refresh_on, token_type);
    Ok(token)
}

/// Turns an error answer into `Error`: an OAuth error body becomes [`Error::Service`], anything
/// else an [`Error::UnexpectedResponse`].
pub fn parse_error(response: &HttpResponse, endpoint: &str) -> Error {
    let unexpected = |problem| Error::UnexpectedResponse {
        status: response.status,
        endpoint: endpoint.to_owned(),
        problem,
    };
    if (300..400).contains(&response.status) {
        return unexpected(ResponseProblem::Redirect);
    }
    let Ok(map) = json_object(response, endpoint) else {
        return unexpected(ResponseProblem::ErrorStatus);
    };
    // Two shapes: OAuth `{error, error_description}` and `{"error":{"code","message"}}`.
    let (error, description) = match map.get("error") {
        Some(Value::String(e)) => (
            e.clone(),
            string(&map, "error_description")
                .unwrap_or_default()
                .to_owned(),
        ),
        Some(Value::Object(inner)) => (
            string(inner, "code").unwrap_or("unknown_error").to_owned(),
            string(inner, "message").unwrap_or_default().to_owned(),
        ),
        _ => return unexpected(ResponseProblem::ErrorStatus),
    };
    let codes = map
        .get("error_codes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(Value::as_u64)
                .filter_map(|c| u32::try_from(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let claims = string(&map, "claims").and_then(|c| Claims::parse(c).ok());
    ServiceError {
        status: response.status,
        error: error.chars().take(128).collect(),
        description: description.chars().take(MAX_DESCRIPTION).collect(),
        codes,
        correlation_id: string(&map, "correlation_id").map(|s| s.chars().take(64).collect()),
        trace_id: string(&map, "trace_id").map(|s| s.chars().take(64).collect()),
        timestamp: string(&map, "timestamp").map(|s| s.chars().take(64).collect()),
        claims,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn json(status: u16, body: &str) -> HttpResponse {
        let mut r = HttpResponse::new(status, body.to_owned());
        r.headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    }

    const NOW: u64 = 1_700_000_000;

    fn ok(body: &str) -> Result<Fresh<AccessToken>, Error> {
        parse_success(
            &json(200, body),
            "e",
            UNIX_EPOCH + Duration::from_secs(NOW),
            &TokenType::Bearer,
        )
    }

    #[test]
    fn lifetimes_beyond_the_clock_are_invalid_not_a_panic() {
        // Found by the `token_response` fuzz target: `now + expires_in` overflowed.
        for body in [
            r#"{"access_token":"t","expires_in":18446744073709551615}"#,
            r#"{"access_token":"t","expires_in":"18446744073709551615"}"#,
            r#"{"access_token":"t","expires_in":1e300}"#,
        ] {
            match ok(body) {
                Err(Error::UnexpectedResponse {
                    problem: ResponseProblem::InvalidField("expires_in"),
                    ..
                }) => {}
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn expires_in_as_number_or_string_and_refresh_in() {
        for body in [
            r#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#,
            r#"{"access_token":"t","token_type":"bearer","expires_in":"3600"}"#,
            r#"{"access_token":"t","expires_in":3600.0}"#,
        ] {
            let fresh = ok(body).unwrap();
            assert_eq!(
                fresh.expires_on(),
                UNIX_EPOCH + Duration::from_secs(NOW + 3600),
                "{body}"
            );
        }
        for body in [
            r#"{"access_token":"t","expires_in":"7200","refresh_in":"600"}"#,
            r#"{"access_token":"t","expires_in":7200,"refresh_in":600}"#,
        ] {
            let fresh = ok(body).unwrap();
            assert_eq!(
                fresh.expires_on(),
                UNIX_EPOCH + Duration::from_secs(NOW + 7200),
                "{body}"
            );
        }
    }

    #[test]
    fn refresh_on_follows_the_server_or_the_policy() {
        let t = |body: &str| {
            let fresh = ok(body).unwrap();
            let cached = entra_cache::TokenCache::<AccessToken, String>::new(Default::default());
            let v = cached.insert(
                entra_cache::CacheKey::builder("h", "t", "c")
                    .scopes(["s"])
                    .build()
                    .unwrap(),
                fresh,
            );
            v.refresh_on().duration_since(UNIX_EPOCH).unwrap().as_secs() - NOW
        };
        assert_eq!(
            t(r#"{"access_token":"t","expires_in":7200,"refresh_in":600}"#),
            600
        );
        assert_eq!(t(r#"{"access_token":"t","expires_in":86400}"#), 43200);
        assert_eq!(t(r#"{"access_token":"t","expires_in":3600}"#), 3300);
    }

    #[test]
    fn bad_success_bodies_are_typed() {
        let problem = |body: &str| match ok(body) {
            Err(Error::UnexpectedResponse { problem, .. }) => problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem(r#"{"expires_in":1}"#),
            ResponseProblem::MissingField("access_token")
        );
        assert_eq!(
            problem(r#"{"access_token":"t"}"#),
            ResponseProblem::MissingField("expires_in")
        );
        assert_eq!(
            problem(r#"{"access_token":"t","expires_in":"soon"}"#),
            ResponseProblem::InvalidField("expires_in")
        );
        assert_eq!(
            problem(r#"{"access_token":"t","expires_in":-5}"#),
            ResponseProblem::InvalidField("expires_in")
        );
        assert!(matches!(
            problem(r#"{"access_token":"SECRET""#),
            ResponseProblem::Truncated
        ));
        assert!(matches!(
            problem(r#"{"access_token":SECRET}"#),
            ResponseProblem::MalformedJson { .. }
        ));
        assert_eq!(problem("[1]"), ResponseProblem::InvalidField("body"));
        let html = HttpResponse::new(200, "<html>");
        let err = parse_success(&html, "e", UNIX_EPOCH, &TokenType::Bearer).unwrap_err();
        assert!(matches!(
            err,
            Error::UnexpectedResponse {
                problem: ResponseProblem::NotJson { .. },
                ..
            }
        ));
        let err = ok(r#"{"access_token":"SECRET","token_type":"pop","expires_in":1}"#).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("SECRET"));
    }

    #[test]
    fn bound_token_types_are_checked() {
        let pop = TokenType::bound("mtls_pop", "thumb");
        let parse = |body: &str| parse_success(&json(200, body), "e", UNIX_EPOCH, &pop);
        assert!(parse(r#"{"access_token":"t","token_type":"MTLS_POP","expires_in":1}"#).is_ok());
        assert!(matches!(
            parse(r#"{"access_token":"t","token_type":"Bearer","expires_in":1}"#),
            Err(Error::UnexpectedResponse {
                problem: ResponseProblem::TokenTypeMismatch { .. },
                ..
            })
        ));
        assert!(matches!(
            parse(r#"{"access_token":"t","expires_in":1}"#),
            Err(Error::UnexpectedResponse {
                problem: ResponseProblem::TokenTypeMissing { .. },
                ..
            })
        ));
    }

    #[test]
    fn aadsts_errors_in_both_shapes() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215],"timestamp":"2026-11-23 10:00:00Z","trace_id":"t-1","correlation_id":"c-1"}"#;
        let err = parse_error(&json(401, body), "e");
        let service = err.service_error().unwrap();
        assert_eq!(service.error, "invalid_client");
        assert!(service.has_code(7000215));
        assert_eq!(service.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(service.trace_id.as_deref(), Some("t-1"));
        let shown = err.to_string();
        assert!(
            shown.contains("AADSTS7000215") && shown.contains("c-1"),
            "{shown}"
        );
        let err = parse_error(
            &json(
                400,
                r#"{"error":{"code":"identity_not_found","message":"no identity"}}"#,
            ),
            "e",
        );
        assert_eq!(err.service_error().unwrap().error, "identity_not_found");
        assert!(matches!(
            parse_error(&HttpResponse::new(502, "<html>bad gateway</html>"), "e"),
            Error::UnexpectedResponse {
                status: 502,
                problem: ResponseProblem::ErrorStatus,
                ..
            }
        ));
        assert!(matches!(
            parse_error(&HttpResponse::new(302, ""), "e"),
            Error::UnexpectedResponse {
                problem: ResponseProblem::Redirect,
                ..
            }
        ));
    }
}
