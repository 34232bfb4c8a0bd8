//! Fuzz the IMDSv2 answers (`entra_mi`): `getplatformmetadata` (client id, tenant id, cuId;
//! the `Server` header comes from the input) and `issuecredential` (base64 certificate, mTLS
//! endpoint, ids), and the issued certificate through `entra_mtls_pop::Binding::new` with a
//! fixed key. Checks: no panic; the ids read are non-blank; a secret planted as raw text
//! before the body never appears in an error's Display or Debug.

#![no_main]

mod common;

use std::sync::{Arc, OnceLock};

use common::{ENDPOINT, Input, assert_hidden, prefixed};
use entra_core::HttpResponse;
use entra_mi::fuzzing::{imds_v2_issued_credential, imds_v2_platform_metadata};
use entra_mtls_pop::{Binding, BindingKey, KeyProvider, SoftwareKeyProvider};

/// One RSA key for the whole run: generating one per input would be most of the time.
fn key() -> Arc<dyn BindingKey> {
    static KEY: OnceLock<Arc<dyn BindingKey>> = OnceLock::new();
    KEY.get_or_init(|| SoftwareKeyProvider::new().generate().expect("an RSA key"))
        .clone()
}

fn check(response: &HttpResponse, planted: bool) {
    match imds_v2_platform_metadata(response, ENDPOINT) {
        Ok((client_id, tenant_id, _cu_id)) => {
            assert!(!client_id.trim().is_empty() && !tenant_id.trim().is_empty());
        }
        Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
        Err(_) => {}
    }
    match imds_v2_issued_credential(response, ENDPOINT) {
        Ok((certificate, endpoint, client_id, tenant_id)) => {
            assert!(!client_id.trim().is_empty() && !tenant_id.trim().is_empty());
            if let Err(e) = Binding::new(certificate, key(), client_id, tenant_id, &endpoint)
                && planted
            {
                assert_hidden(&format!("{e} {e:?}"));
            }
        }
        Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
        Err(_) => {}
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::new(data) else {
        return;
    };
    check(&input.response(input.body.to_vec(), Some("server")), false);
    check(&input.response(prefixed(input.body), Some("server")), true);
});
