//! Fuzz the `WWW-Authenticate` parser: never panics, and `claims()` on every challenge neither
//! panics nor returns claims whose canonical form does not parse back.

#![no_main]

use entra_claims::{Claims, claims_challenge_from_header, parse_www_authenticate};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenges) = parse_www_authenticate(header) else {
        assert!(claims_challenge_from_header(header).is_err());
        return;
    };
    for challenge in &challenges {
        let _ = format!("{challenge:?}");
        let _ = (
            challenge.scheme(),
            challenge.error(),
            challenge.is_insufficient_claims(),
        );
        if let Ok(Some(claims)) = challenge.claims() {
            let canonical = claims.to_canonical_json();
            if canonical.len() <= entra_claims::MAX_CLAIMS_LEN {
                assert_eq!(Claims::parse(&canonical).ok(), Some(claims));
            }
        }
    }
    let _ = claims_challenge_from_header(header);
});
