//! Fuzz `entra decode` (entra-cli/src/decode.rs, included by path so the CLI's dependencies
//! are not built): `decode` on any text, then `render` of whatever decodes, at a fixed "now"
//! and at one taken from the input. Checks: no panic; an error never quotes its input (a
//! secret planted in the token does not appear in it); a decoded token renders as a JSON
//! object that says the signature is not verified.

#![no_main]

#[path = "../../entra-cli/src/decode.rs"]
#[allow(dead_code)]
mod decode;

use common::{MARKER, assert_hidden};

mod common;

fn check(text: &str, now: i64, planted: bool) {
    match decode::decode(text) {
        Ok(decoded) => {
            for now in [1_800_000_000, now] {
                let out = decode::render(&decoded, now);
                assert!(out.is_object());
                assert!(
                    out["signature"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("NOT VERIFIED"))
                );
            }
        }
        Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
        Err(_) => {}
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((now, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now = i64::from_le_bytes(*now);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    check(text, now, false);
    if !text.contains(MARKER) {
        // The secret as each of the three parts in turn, the rest from the input.
        check(&format!("{MARKER}{text}"), now, true);
        check(&format!("{text}{MARKER}"), now, true);
        check(&format!("{text}.{MARKER}"), now, true);
    }
});
