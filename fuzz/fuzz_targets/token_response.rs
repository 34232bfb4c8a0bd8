//! Fuzz the token endpoint's answer parsers in `entra_core` (`parse_success` for 200s,
//! `wire::parse_error` for everything else, `wire::json_object` under both) with any status,
//! content type and body. Checks: no panic; a secret planted as `access_token` /
//! `refresh_token` / `id_token`, or as raw text before the body, never appears in an error's
//! Display or Debug nor in the token's Debug; a success has a non-empty token and
//! `now <= refresh_on <= expires_on`.

#![no_main]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{ENDPOINT, Input, assert_hidden, plant, prefixed};
use entra_core::fuzzing::parse_success;
use entra_core::wire::{json_object, parse_error};
use entra_core::{HttpResponse, TokenType};

fn check(response: &HttpResponse, planted: bool) {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let bound = TokenType::Bound {
        token_type: "mtls_pop".to_owned(),
        key_id: "x5t".to_owned(),
    };
    for expected in [TokenType::Bearer, bound] {
        match parse_success(response, ENDPOINT, now, &expected) {
            Ok(token) => {
                assert!(!token.token().expose().is_empty());
                assert!(token.expires_on() >= now, "expires before it was acquired");
                assert!(now <= token.refresh_on(), "refresh before acquisition");
                assert!(
                    token.refresh_on() <= token.expires_on(),
                    "refresh after expiry"
                );
                assert_eq!(token.token_type(), &expected);
                if planted {
                    assert_hidden(&format!("{token:?}"));
                }
            }
            Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
            Err(_) => {}
        }
    }
    let error = parse_error(response, ENDPOINT);
    let _ = json_object(response, ENDPOINT);
    if planted {
        assert_hidden(&format!("{error} {error:?}"));
        if let Err(e) = json_object(response, ENDPOINT) {
            assert_hidden(&format!("{e} {e:?}"));
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::new(data) else {
        return;
    };
    check(&input.response(input.body.to_vec(), None), false);
    check(&input.response(prefixed(input.body), None), true);
    if let Some(body) = plant(input.body, &["access_token", "refresh_token", "id_token"]) {
        check(&input.response(body, None), true);
    }
});
