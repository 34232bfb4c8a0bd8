//! Fuzz `Claims::merge`: split the input in three, parse each part, and check the merge laws
//! (associativity, idempotence, `{}` as identity) and that `merge_all` agrees.

#![no_main]

use entra_claims::Claims;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Parts are separated by NUL, which cannot appear raw in valid JSON.
    let mut parts = text.splitn(3, '\0');
    let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(a), Ok(b), Ok(c)) = (Claims::parse(a), Claims::parse(b), Claims::parse(c)) else {
        return;
    };
    let empty = Claims::new();

    let left = a.merge(&b).merge(&c);
    let right = a.merge(&b.merge(&c));
    assert_eq!(left, right, "associative");
    assert_eq!(left.to_canonical_json(), right.to_canonical_json());
    assert_eq!(
        Claims::merge_all([&a, &b, &c]),
        left,
        "merge_all folds left"
    );

    for x in [&a, &b, &c] {
        assert_eq!(&x.merge(x), x, "idempotent");
        assert_eq!(&x.merge(&empty), x, "right identity");
        assert_eq!(&empty.merge(x), x, "left identity");
    }
});
