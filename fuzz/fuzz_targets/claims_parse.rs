//! Fuzz `Claims::parse`: never panics, and whatever parses survives the canonical round trip.

#![no_main]

use entra_claims::Claims;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(claims) = Claims::parse(text) else {
        return;
    };
    let canonical = claims.to_canonical_json();
    // The canonical form can outgrow the size cap a little (`1e2` becomes `100.0`).
    if canonical.len() <= entra_claims::MAX_CLAIMS_LEN {
        let again = Claims::parse(&canonical).expect("canonical form parses");
        assert_eq!(again, claims, "parse(canonical) == claims");
        assert_eq!(
            again.to_canonical_json(),
            canonical,
            "canonical form is stable"
        );
    }
    assert_eq!(claims.to_json(), canonical);
    let _ = format!("{claims:?}");
});
