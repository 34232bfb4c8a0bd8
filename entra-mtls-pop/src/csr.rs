//! The PKCS#10 certificate signing request sent to IMDS `issuecredential`
//! (PROTOCOL.md section 4, IMDSv2 step 2).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use entra_core::Error;
use serde::{Deserialize, Serialize};

use crate::BindingKey;
use crate::der::{
    BIT_STRING, IA5_STRING, NULL, SEQUENCE, SET, UTF8_STRING, constructed, context, oid,
    small_integer, tlv,
};

/// `commonName` (2.5.4.3).
const OID_CN: &[u64] = &[2, 5, 4, 3];
/// `domainComponent` (0.9.2342.19200300.100.1.25).
const OID_DC: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 25];
/// The compute unit id attribute (1.3.6.1.4.1.311.90.2.10).
pub const CU_ID_ATTRIBUTE_OID: &str = "1.3.6.1.4.1.311.90.2.10";
const OID_CU_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 90, 2, 10];
/// `id-RSASSA-PSS` (1.2.840.113549.1.1.10).
const OID_RSASSA_PSS: &[u64] = &[1, 2, 840, 113_549, 1, 1, 10];
/// `id-mgf1` (1.2.840.113549.1.1.8).
const OID_MGF1: &[u64] = &[1, 2, 840, 113_549, 1, 1, 8];
/// `id-sha256` (2.16.840.1.101.3.4.2.1).
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
/// PSS salt length: the SHA-256 output length.
const SALT_LEN: u8 = 32;

/// The compute unit of the VM, from IMDS `getplatformmetadata` (`cuId`).
///
/// Serialises as compact JSON with the keys in the order `vmId`, `vmssId` and absent fields
/// omitted, which is the value of the CSR attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CuId {
    /// The VM id.
    #[serde(rename = "vmId", default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// The scale set id, for a VM in a scale set.
    #[serde(rename = "vmssId", default, skip_serializing_if = "Option::is_none")]
    pub vmss_id: Option<String>,
}

impl CuId {
    /// The compact JSON put in the CSR.
    pub fn to_json(&self) -> String {
        // Serialising two optional strings cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A DER-encoded PKCS#10 certificate signing request.
#[derive(Clone, PartialEq, Eq)]
pub struct Csr {
    der: Vec<u8>,
}

impl Csr {
    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER encoding as one line of standard base64, as sent to `issuecredential`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.der)
    }
}

impl fmt::Debug for Csr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csr")
            .field("der_len", &self.der.len())
            .finish()
    }
}

/// Builds the CSR for `key`: subject `CN=<client_id>, DC=<tenant_id>`, the cuId attribute, and
/// an RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature made with `key`.
///
/// Fails with [`Error::Configuration`] if an id is empty or the tenant id is not ASCII (a
/// `domainComponent` is an IA5String), and with the key's error if signing fails.
pub fn build_csr(
    key: &dyn BindingKey,
    client_id: &str,
    tenant_id: &str,
    cu_id: &CuId,
) -> Result<Csr, Error> {
    if client_id.is_empty() || tenant_id.is_empty() {
        return Err(Error::Configuration(
            "a certificate request needs the client id and tenant id from platform metadata"
                .to_owned(),
        ));
    }
    if !tenant_id.is_ascii() {
        return Err(Error::Configuration(
            "the tenant id from platform metadata is not ASCII".to_owned(),
        ));
    }
    let rdn = |oid_arcs: &[u64], tag: u8, value: &str| {
        let atv = constructed(SEQUENCE, &[&oid(oid_arcs), &tlv(tag, value.as_bytes())]);
        tlv(SET, &atv)
    };
    let subject = constructed(
        SEQUENCE,
        &[
            &rdn(OID_CN, UTF8_STRING, client_id),
            &rdn(OID_DC, IA5_STRING, tenant_id),
        ],
    );
    let cu_id_value = tlv(SET, &tlv(UTF8_STRING, cu_id.to_json().as_bytes()));
    let attribute = constructed(SEQUENCE, &[&oid(OID_CU_ID), &cu_id_value]);
    let info = constructed(
        SEQUENCE,
        &[
            &small_integer(0),
            &subject,
            key.public_key_spki_der(),
            &tlv(context(0), &attribute),
        ],
    );
    let signature = key.sign_pss_sha256(&info)?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(&signature);
    let der = constructed(
        SEQUENCE,
        &[&info, &pss_sha256_algorithm(), &tlv(BIT_STRING, &bits)],
    );
    Ok(Csr { der })
}

/// `AlgorithmIdentifier { id-RSASSA-PSS, { [0] sha256, [1] mgf1(sha256), [2] 32 } }`, the
/// hash identifiers with NULL parameters as in RFC 4055's `sha256Identifier`.
fn pss_sha256_algorithm() -> Vec<u8> {
    let sha256 = constructed(SEQUENCE, &[&oid(OID_SHA256), &tlv(NULL, &[])]);
    let mgf1 = constructed(SEQUENCE, &[&oid(OID_MGF1), &sha256]);
    let params = constructed(
        SEQUENCE,
        &[
            &tlv(context(0), &sha256),
            &tlv(context(1), &mgf1),
            &tlv(context(2), &small_integer(SALT_LEN)),
        ],
    );
    constructed(SEQUENCE, &[&oid(OID_RSASSA_PSS), &params])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::software_key;
    use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::der_parser::asn1_rs::{Oid, Utf8String};
    use x509_parser::oid_registry::{
        OID_NIST_HASH_SHA256, OID_PKCS1_RSASSAPSS, OID_PKCS9_EXTENSION_REQUEST,
    };
    use x509_parser::prelude::{FromDer, X509Version};
    use x509_parser::signature_algorithm::SignatureAlgorithm;

    const CLIENT: &str = "8e8b1a2c-0000-4000-8000-0000000000c1";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    /// The whole `SET OF` values of an attribute: x509-parser keeps only its header for
    /// attributes it does not know, so the rest is found in the request info it points into.
    /// The attribute is the last element of the request info.
    fn attribute_values<'a>(info_raw: &'a [u8], set_header: &[u8]) -> &'a [u8] {
        let start = set_header.as_ptr() as usize - info_raw.as_ptr() as usize;
        assert_eq!(set_header[0], 0x31);
        let len = usize::from(set_header[1]);
        assert!(len < 0x80);
        assert_eq!(start + 2 + len, info_raw.len());
        &info_raw[start..]
    }

    fn cu_id() -> CuId {
        CuId {
            vm_id: Some("0b3b8bd9-7a1b-4c2e-9d3f-000000000001".to_owned()),
            vmss_id: Some("vmss-1".to_owned()),
        }
    }

    #[test]
    fn cu_id_json_is_compact_ordered_and_omits_absent_fields() {
        assert_eq!(
            cu_id().to_json(),
            r#"{"vmId":"0b3b8bd9-7a1b-4c2e-9d3f-000000000001","vmssId":"vmss-1"}"#
        );
        let vm_only = CuId {
            vm_id: Some("a".to_owned()),
            vmss_id: None,
        };
        assert_eq!(vm_only.to_json(), r#"{"vmId":"a"}"#);
        assert_eq!(CuId::default().to_json(), "{}");
        let parsed: CuId = serde_json::from_str(r#"{"vmssId":"s","vmId":"v"}"#).unwrap();
        assert_eq!(parsed.vm_id.as_deref(), Some("v"));
        assert_eq!(parsed.vmss_id.as_deref(), Some("s"));
    }

    #[test]
    fn csr_has_every_field_of_the_protocol() {
        let key = software_key();
        let csr = build_csr(key.as_ref(), CLIENT, TENANT, &cu_id()).unwrap();
        let b64 = csr.to_base64();
        assert!(!b64.contains(['\n', '\r', '-', '_']));
        assert_eq!(STANDARD.decode(&b64).unwrap(), csr.der());

        let (rest, req) = X509CertificationRequest::from_der(csr.der()).unwrap();
        assert!(rest.is_empty());
        let info = &req.certification_request_info;
        assert_eq!(info.version, X509Version(0));

        // Subject: CN (UTF8String) then DC (IA5String), one attribute per RDN.
        let rdns: Vec<_> = info.subject.iter().collect();
        assert_eq!(rdns.len(), 2);
        let cn = &rdns[0].iter().collect::<Vec<_>>();
        let dc = &rdns[1].iter().collect::<Vec<_>>();
        assert_eq!((cn.len(), dc.len()), (1, 1));
        assert_eq!(cn[0].attr_type(), &Oid::from(&[2, 5, 4, 3]).unwrap());
        assert_eq!(cn[0].attr_value().tag(), Tag::Utf8String);
        assert_eq!(cn[0].as_str().unwrap(), CLIENT);
        assert_eq!(
            dc[0].attr_type(),
            &Oid::from(&[0, 9, 2342, 19_200_300, 100, 1, 25]).unwrap()
        );
        assert_eq!(dc[0].attr_value().tag(), Tag::Ia5String);
        assert_eq!(dc[0].as_str().unwrap(), TENANT);

        // The key's own SubjectPublicKeyInfo, byte for byte.
        assert_eq!(info.subject_pki.raw, key.public_key_spki_der());

        // One attribute, the cuId, holding one UTF8String of compact JSON; no extensionRequest.
        let attributes = info.attributes();
        assert_eq!(attributes.len(), 1);
        assert_eq!(attributes[0].oid.to_id_string(), CU_ID_ATTRIBUTE_OID);
        let json = cu_id().to_json();
        let mut expected = vec![0x31, (json.len() + 2) as u8, 0x0C, json.len() as u8];
        expected.extend_from_slice(json.as_bytes());
        let set = attribute_values(info.raw, attributes[0].value);
        assert_eq!(set, expected.as_slice());
        let (rest, utf8) = Utf8String::from_der(&set[2..]).unwrap();
        assert!(rest.is_empty());
        assert_eq!(utf8.string(), json);
        assert!(info.find_attribute(&OID_PKCS9_EXTENSION_REQUEST).is_none());
        assert!(req.requested_extensions().is_none());

        // RSASSA-PSS with explicit SHA-256, MGF1-SHA-256, salt 32, default trailer.
        assert_eq!(req.signature_algorithm.algorithm, OID_PKCS1_RSASSAPSS);
        let SignatureAlgorithm::RSASSA_PSS(params) =
            SignatureAlgorithm::try_from(&req.signature_algorithm).unwrap()
        else {
            panic!("not RSASSA-PSS");
        };
        assert_eq!(
            params.hash_algorithm().unwrap().algorithm,
            OID_NIST_HASH_SHA256
        );
        let mgf = params.mask_gen_algorithm().unwrap();
        assert_eq!(mgf.mgf, Oid::from(&[1, 2, 840, 113_549, 1, 1, 8]).unwrap());
        assert_eq!(mgf.hash, OID_NIST_HASH_SHA256);
        assert_eq!(params.salt_length(), 32);
        assert_eq!(params.trailer_field(), 1);

        // The signature covers the DER of CertificationRequestInfo and verifies with the SPKI.
        assert_eq!(req.signature_value.unused_bits, 0);
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, key.public_key_spki_der())
            .verify(info.raw, &req.signature_value.data)
            .unwrap();
    }

    #[test]
    fn absent_cu_id_fields_are_omitted_from_the_attribute() {
        let key = software_key();
        let cu = CuId {
            vm_id: Some("vm".to_owned()),
            vmss_id: None,
        };
        let csr = build_csr(key.as_ref(), CLIENT, TENANT, &cu).unwrap();
        let (_, req) = X509CertificationRequest::from_der(csr.der()).unwrap();
        let attribute = &req.certification_request_info.attributes()[0];
        let set = attribute_values(req.certification_request_info.raw, attribute.value);
        assert_eq!(&set[4..], br#"{"vmId":"vm"}"#);
    }

    #[test]
    fn rejects_unusable_ids() {
        let key = software_key();
        for (client, tenant) in [("", TENANT), (CLIENT, ""), (CLIENT, "tenänt")] {
            let error = build_csr(key.as_ref(), client, tenant, &cu_id()).unwrap_err();
            assert!(matches!(error, Error::Configuration(_)), "{error}");
        }
        assert!(
            format!(
                "{:?}",
                build_csr(key.as_ref(), CLIENT, TENANT, &cu_id()).unwrap()
            )
            .starts_with("Csr { der_len: ")
        );
    }
}
