//! Fuzz `entra_mtls_pop::build_csr` with any client id, tenant id and cuId (`vmId`, `vmssId`),
//! signing with one RSA key made once per process, and parse the CSR back with x509-parser.
//! Checks: no panic; an error exactly when an id is empty or the tenant id is not ASCII, and
//! then one of two fixed configuration errors (nothing from the ids); otherwise the CSR parses with
//! nothing left over, the subject is `CN=<client id>, DC=<tenant id>` (one attribute each),
//! the key is ours, and the one attribute is the cuId holding `CuId::to_json()`.

#![no_main]

use std::sync::{Arc, OnceLock};

use entra_mtls_pop::{
    BindingKey, CU_ID_ATTRIBUTE_OID, CuId, KeyProvider, SoftwareKeyProvider, build_csr,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::parse_der;
use x509_parser::prelude::FromDer;

/// Generating an RSA key takes far longer than one input: make one per process.
fn key() -> &'static Arc<dyn BindingKey> {
    static KEY: OnceLock<Arc<dyn BindingKey>> = OnceLock::new();
    KEY.get_or_init(|| SoftwareKeyProvider::new().generate().expect("an RSA key"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // Fields separated by NUL: client id, tenant id, vmId, vmssId.
    let mut fields = text.splitn(4, '\0');
    let client_id = fields.next().unwrap_or_default();
    let tenant_id = fields.next().unwrap_or_default();
    let cu_id = CuId {
        vm_id: (flags & 1 != 0).then(|| fields.next().unwrap_or_default().to_owned()),
        vmss_id: (flags & 2 != 0).then(|| fields.next().unwrap_or_default().to_owned()),
    };
    let key = key();
    let csr = match build_csr(key.as_ref(), client_id, tenant_id, &cu_id) {
        Ok(csr) => csr,
        Err(e) => {
            assert!(
                client_id.is_empty() || tenant_id.is_empty() || !tenant_id.is_ascii(),
                "refused good ids: {e}"
            );
            // One of the two fixed messages: nothing from the ids.
            assert!(
                matches!(&e, entra_core::Error::Configuration(m) if [
                    "a certificate request needs the client id and tenant id from platform metadata",
                    "the tenant id from platform metadata is not ASCII",
                ].contains(&m.as_str())),
                "{e:?}"
            );
            return;
        }
    };
    assert!(!client_id.is_empty() && !tenant_id.is_empty() && tenant_id.is_ascii());

    let (rest, request) = X509CertificationRequest::from_der(csr.der()).expect("the CSR parses");
    assert!(rest.is_empty(), "bytes after the CSR");
    let info = &request.certification_request_info;
    let rdns: Vec<_> = info.subject.iter().collect();
    assert_eq!(rdns.len(), 2);
    let cn: Vec<_> = rdns[0].iter().collect();
    let dc: Vec<_> = rdns[1].iter().collect();
    assert_eq!((cn.len(), dc.len()), (1, 1));
    assert_eq!(cn[0].attr_type().to_id_string(), "2.5.4.3");
    assert_eq!(cn[0].as_str().expect("CN is text"), client_id);
    assert_eq!(
        dc[0].attr_type().to_id_string(),
        "0.9.2342.19200300.100.1.25"
    );
    assert_eq!(dc[0].as_str().expect("DC is text"), tenant_id);
    assert_eq!(info.subject_pki.raw, key.public_key_spki_der());

    let attributes = info.attributes();
    assert_eq!(attributes.len(), 1);
    assert_eq!(attributes[0].oid.to_id_string(), CU_ID_ATTRIBUTE_OID);
    // x509-parser's `value` starts at the SET of values but may not span all of it; the
    // attribute is the last thing in the request info, so read from there to the end.
    let start = attributes[0].value.as_ptr() as usize - info.raw.as_ptr() as usize;
    let (rest, set) = parse_der(&info.raw[start..]).expect("the attribute value is DER");
    assert!(rest.is_empty(), "bytes after the cuId attribute");
    let values = set.as_set().expect("a SET of values");
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].as_str().expect("a UTF8String"), cu_id.to_json());
});
