//! Fuzz the managed identity token answer parser (`entra_mi`, shared by IMDS, App Service,
//! Service Fabric, Azure Arc, Cloud Shell and Machine Learning) with any status, content type
//! and body, and App Service's `expires_on` date strings (`MM/dd/yyyy HH:mm:ss +00:00`) on
//! their own. Checks: no panic; a secret planted as `access_token` or as raw text before the
//! body never appears in an error's Display or Debug nor in the token's Debug; a success has a
//! non-empty bearer token and `now < expires_on`, `now <= refresh_on <= expires_on`.

#![no_main]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{ENDPOINT, Input, assert_hidden, plant, prefixed};
use entra_core::{HttpResponse, TokenType};
use entra_mi::fuzzing::parse_response;
use http::HeaderValue;

fn check(response: &HttpResponse, planted: bool) {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    match parse_response(response, ENDPOINT, now) {
        Ok(token) => {
            assert_eq!(response.status, 200);
            assert!(!token.token().expose().is_empty());
            assert_eq!(token.token_type(), &TokenType::Bearer);
            assert!(token.expires_on() > now, "expired when acquired");
            assert!(now <= token.refresh_on(), "refresh before acquisition");
            assert!(
                token.refresh_on() <= token.expires_on(),
                "refresh after expiry"
            );
            if planted {
                assert_hidden(&format!("{token:?}"));
            }
        }
        Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
        Err(_) => {}
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The whole input as an App Service `expires_on` string.
    if let Ok(text) = std::str::from_utf8(data) {
        let body = serde_json::json!({ "access_token": common::MARKER, "expires_on": text });
        let mut response = HttpResponse::new(200, body.to_string());
        response
            .headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        check(&response, true);
    }
    let Some(input) = Input::new(data) else {
        return;
    };
    check(&input.response(input.body.to_vec(), None), false);
    check(&input.response(prefixed(input.body), None), true);
    if let Some(body) = plant(input.body, &["access_token", "refresh_token"]) {
        check(&input.response(body, None), true);
    }
});
