//! Fuzz Azure Arc's 401 challenge parsing (`WWW-Authenticate: Basic realm=<key file>`,
//! `entra_mi`): for any header, no panic; an accepted path is a `.key` file directly in the
//! agent's token directory with no `.`/`..` segment, taken from the header; a refusal never
//! quotes the header (a secret planted after it does not appear in the error).

#![no_main]

mod common;

use std::path::{Component, Path};

use common::{ENDPOINT, MARKER, assert_hidden};
use entra_core::HttpResponse;
use entra_mi::fuzzing::arc_key_path;
use http::HeaderValue;

const DIRECTORY: &str = "/var/opt/azcmagent/tokens";

fn check(header: &[u8], planted: bool) {
    let Ok(value) = HeaderValue::from_bytes(header) else {
        return;
    };
    let mut response = HttpResponse::new(401, Vec::new());
    response.headers.insert("www-authenticate", value);
    match arc_key_path(&response, ENDPOINT, Path::new(DIRECTORY)) {
        Ok(path) => {
            assert_eq!(path.parent(), Some(Path::new(DIRECTORY)));
            assert_eq!(path.extension().and_then(|e| e.to_str()), Some("key"));
            assert!(path.file_stem().is_some_and(|s| !s.is_empty()));
            assert!(
                path.components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            );
            let text = path.to_str().expect("the header was text");
            assert!(!text.split('/').any(|s| s == "." || s == ".."));
            assert!(
                String::from_utf8_lossy(header).contains(text),
                "the path comes from the header"
            );
        }
        Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
        Err(_) => {}
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check(data, false);
    if !String::from_utf8_lossy(data).contains(MARKER) {
        let mut planted = data.to_vec();
        planted.extend_from_slice(MARKER.as_bytes());
        check(&planted, true);
    }
});
