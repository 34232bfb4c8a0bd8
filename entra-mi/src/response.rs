//! Reading managed identity answers: `access_token`, `expires_in` and/or `expires_on` (numbers,
//! numeric strings, or App Service's `MM/dd/yyyy HH:mm:ss +00:00`), `token_type` (bearer when
//! missing); error bodies through `entra_core::wire::parse_error`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_cache::Fresh;
use entra_core::wire::{json_object, number, parse_error};
use entra_core::{AccessToken, Error, HttpResponse, ResponseProblem, Secret, TokenType};
use serde_json::Value;

/// Turns an answer received at `now` into a token (status 200) or an error.
pub(crate) fn parse(
    response: &HttpResponse,
    endpoint: &str,
    now: SystemTime,
) -> Result<Fresh<AccessToken>, Error> {
    parse_token(response, endpoint, now).map(AccessToken::into_fresh)
}

/// The token itself, with its expiry and refresh times.
pub(crate) fn parse_token(
    response: &HttpResponse,
    endpoint: &str,
    now: SystemTime,
) -> Result<AccessToken, Error> {
    if response.status != 200 {
        return Err(parse_error(response, endpoint));
    }
    let map = json_object(response, endpoint)?;
    let problem = |problem| Error::UnexpectedResponse {
        status: response.status,
        endpoint: endpoint.to_owned(),
        problem,
    };
    let token = match map.get("access_token") {
        Some(Value::String(t)) if !t.is_empty() => t,
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(problem(ResponseProblem::MissingField("access_token")));
        }
        Some(_) => return Err(problem(ResponseProblem::InvalidField("access_token"))),
    };
    match map.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.is_empty() || t.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(t)) => {
            return Err(problem(ResponseProblem::TokenTypeMismatch {
                expected: "Bearer".to_owned(),
                actual: t.chars().take(32).collect(),
            }));
        }
        Some(_) => return Err(problem(ResponseProblem::InvalidField("token_type"))),
    }
    // `expires_in` is relative and so immune to clock skew: prefer it when both are sent.
    let expires_on = match number(&map, "expires_in") {
        // Times past what `SystemTime` can hold are as unusable as malformed ones.
        Some(Ok(secs)) => now
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| problem(ResponseProblem::InvalidField("expires_in")))?,
        Some(Err(())) => return Err(problem(ResponseProblem::InvalidField("expires_in"))),
        None => match number(&map, "expires_on") {
            Some(Ok(secs)) => UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(|| problem(ResponseProblem::InvalidField("expires_on")))?,
            Some(Err(())) => map
                .get("expires_on")
                .and_then(Value::as_str)
                .and_then(parse_date)
                .ok_or_else(|| problem(ResponseProblem::InvalidField("expires_on")))?,
            None => return Err(problem(ResponseProblem::MissingField("expires_in"))),
        },
    };
    if expires_on <= now {
        let field = if map.contains_key("expires_in") {
            "expires_in"
        } else {
            "expires_on"
        };
        return Err(problem(ResponseProblem::InvalidField(field)));
    }
    let refresh_in = match number(&map, "refresh_in") {
        Some(Ok(secs)) => Some(Duration::from_secs(secs)),
        Some(Err(())) => return Err(problem(ResponseProblem::InvalidField("refresh_in"))),
        None => None,
    };
    let refresh_on = entra_cache::refresh_on(now, expires_on, refresh_in);
    let token = AccessToken::new(
        Secret::new(token.as_str()),
        expires_on,
        refresh_on,
        TokenType::Bearer,
    );
    Ok(token)
}

/// Parses `MM/dd/yyyy HH:mm:ss ±hh:mm` (the form App Service has sent) into a time.
fn parse_date(value: &str) -> Option<SystemTime> {
    let mut parts = value.split_ascii_whitespace();
    let (date, time, offset) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let fields = |s: &str, sep: char, n: usize| -> Option<Vec<i64>> {
        let v: Vec<i64> = s
            .split(sep)
            .map(|p| {
                (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()?;
        (v.len() == n).then_some(v)
    };
    let (month, day, year) = match fields(date, '/', 3)?.as_slice() {
        &[m, d, y] => (m, d, y),
        _ => return None,
    };
    let (h, m, s) = match fields(time, ':', 3)?.as_slice() {
        &[h, m, s] => (h, m, s),
        _ => return None,
    };
    let (sign, offset) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    let (oh, om) = match fields(offset, ':', 2)?.as_slice() {
        &[oh, om] => (oh, om),
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&year)
        || !(1..=days_in_month).contains(&day)
        || h > 23
        || m > 59
        || s > 59
        || oh > 23
        || om > 59
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let local = days * 86_400 + h * 3600 + m * 60 + s;
    let utc = local - sign * (oh * 3600 + om * 60);
    u64::try_from(utc)
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NOW: u64 = 1_795_000_000; // 2026-11-18

    fn json(status: u16, body: &str) -> HttpResponse {
        let mut r = HttpResponse::new(status, body.to_owned());
        r.headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn ok(body: &str) -> Fresh<AccessToken> {
        parse(&json(200, body), "e", now()).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn problem(body: &str) -> ResponseProblem {
        match parse(&json(200, body), "e", now()) {
            Err(Error::UnexpectedResponse { problem, .. }) => problem,
            other => panic!("{body}: {other:?}"),
        }
    }

    fn unix(fresh: &Fresh<AccessToken>) -> u64 {
        fresh
            .expires_on()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn times_beyond_the_clock_are_invalid_not_a_panic() {
        // Found by the `mi_response` fuzz target: `now + expires_in` overflowed.
        for (body, field) in [
            (
                r#"{"access_token":"t","expires_in":18446744073709551615}"#,
                "expires_in",
            ),
            (r#"{"access_token":"t","expires_in":"1e300"}"#, "expires_in"),
            (r#"{"access_token":"t","expires_in":1e300}"#, "expires_in"),
            (
                r#"{"access_token":"t","expires_on":"18446744073709551615"}"#,
                "expires_on",
            ),
        ] {
            assert_eq!(
                problem(body),
                ResponseProblem::InvalidField(field),
                "{body}"
            );
        }
    }

    #[test]
    fn expiry_in_every_form() {
        let at = NOW + 86_400;
        for body in [
            r#"{"access_token":"t","expires_in":86400}"#.to_owned(),
            r#"{"access_token":"t","expires_in":"86400","token_type":"Bearer"}"#.to_owned(),
            format!(r#"{{"access_token":"t","expires_on":{at}}}"#),
            format!(r#"{{"access_token":"t","expires_on":"{at}","token_type":"bearer"}}"#),
            // Both: expires_in wins (a skewed expires_on does not matter).
            r#"{"access_token":"t","expires_in":86400,"expires_on":"5"}"#.to_owned(),
        ] {
            assert_eq!(unix(&ok(&body)), at, "{body}");
        }
        let fresh = ok(
            r#"{"access_token":"t","expires_on":"11/23/2026 14:05:00 +00:00","resource":"r","client_id":"c"}"#,
        );
        assert_eq!(unix(&fresh), 1_795_442_700);
        let fresh = ok(r#"{"access_token":"t","expires_on":"11/23/2026 16:05:00 +02:00"}"#);
        assert_eq!(unix(&fresh), 1_795_442_700);
        let fresh = ok(r#"{"access_token":"t","expires_on":"02/29/2028 00:00:00 -01:30"}"#);
        assert_eq!(unix(&fresh), 1_835_400_600);
    }

    #[test]
    fn long_lived_tokens_refresh_at_half_life() {
        let fresh = ok(r#"{"access_token":"t","expires_in":86400}"#);
        let cache = entra_cache::TokenCache::<AccessToken, String>::new(Default::default());
        let key = entra_cache::CacheKey::builder("h", "t", "c")
            .scopes(["s"])
            .build()
            .unwrap();
        let token = cache.insert(key, fresh);
        assert_eq!(token.refresh_on(), now() + Duration::from_secs(43_200));
        assert_eq!(token.token().expose(), "t");
        assert_eq!(token.token_type(), &TokenType::Bearer);
    }

    #[test]
    fn malformed_success_bodies_are_typed() {
        use ResponseProblem::*;
        let cases: &[(&str, ResponseProblem)] = &[
            (r#"{"expires_in":1}"#, MissingField("access_token")),
            (
                r#"{"access_token":"","expires_in":1}"#,
                MissingField("access_token"),
            ),
            (
                r#"{"access_token":null,"expires_in":1}"#,
                MissingField("access_token"),
            ),
            (
                r#"{"access_token":5,"expires_in":1}"#,
                InvalidField("access_token"),
            ),
            (r#"{"access_token":"t"}"#, MissingField("expires_in")),
            (
                r#"{"access_token":"t","expires_in":"soon"}"#,
                InvalidField("expires_in"),
            ),
            (
                r#"{"access_token":"t","expires_in":-1}"#,
                InvalidField("expires_in"),
            ),
            (
                r#"{"access_token":"t","expires_in":0}"#,
                InvalidField("expires_in"),
            ),
            (
                r#"{"access_token":"t","expires_in":[1]}"#,
                InvalidField("expires_in"),
            ),
            (
                r#"{"access_token":"t","expires_on":"tomorrow"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":true}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"13/01/2026 00:00:00 +00:00"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"02/30/2026 00:00:00 +00:00"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"11/23/2026 24:00:00 +00:00"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"11/23/2026 14:05:00"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"11/23/2026 14:05:00 Z"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"11/23/2026 14:05 +00:00"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"11/-3/2026 14:05:00 +00:00"}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_on":"11/23/2026 14:05:00 +00:00 x"}"#,
                InvalidField("expires_on"),
            ),
            // Already expired.
            (
                r#"{"access_token":"t","expires_on":1000}"#,
                InvalidField("expires_on"),
            ),
            (
                r#"{"access_token":"t","expires_in":5,"refresh_in":"x"}"#,
                InvalidField("refresh_in"),
            ),
            (
                r#"{"access_token":"t","expires_in":5,"token_type":7}"#,
                InvalidField("token_type"),
            ),
            ("[1]", InvalidField("body")),
        ];
        for (body, expected) in cases {
            assert_eq!(&problem(body), expected, "{body}");
        }
        assert!(matches!(
            problem(r#"{"access_token":"t","expires_in":5,"token_type":"pop"}"#),
            TokenTypeMismatch { .. }
        ));
        assert!(matches!(problem(r#"{"access_token":"SECRET"#), Truncated));
        assert!(matches!(
            problem(r#"{"access_token":SECRET}"#),
            MalformedJson { .. }
        ));
        let html = HttpResponse::new(200, "<html>SECRET</html>");
        let err = parse(&html, "e", now()).unwrap_err();
        assert!(matches!(
            err,
            Error::UnexpectedResponse {
                problem: NotJson { .. },
                ..
            }
        ));
        let err = parse(
            &json(200, r#"{"access_token":"SECRET","expires_in":"x"}"#),
            "e",
            now(),
        )
        .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("SECRET"));
    }

    #[test]
    fn errors_in_both_shapes_and_without_json() {
        let err = parse(
            &json(
                400,
                r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
            ),
            "e",
            now(),
        )
        .unwrap_err();
        assert_eq!(err.service_error().unwrap().error, "invalid_request");
        let err = parse(
            &json(
                404,
                r#"{"error":{"code":"identity_not_found","message":"no identity"}}"#,
            ),
            "e",
            now(),
        )
        .unwrap_err();
        let service = err.service_error().unwrap();
        assert_eq!(
            (service.status, service.error.as_str()),
            (404, "identity_not_found")
        );
        assert!(matches!(
            parse(&HttpResponse::new(500, "oops"), "e", now()).unwrap_err(),
            Error::UnexpectedResponse {
                status: 500,
                problem: ResponseProblem::ErrorStatus,
                ..
            }
        ));
    }
}
