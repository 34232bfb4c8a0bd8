//! The certificate binding for IMDSv2 managed identity tokens bound by mutual-TLS
//! proof-of-possession (PROTOCOL.md section 4, "IMDSv2").
//!
//! On an IMDSv2 VM, a managed identity gets an `mtls_pop` token by proving possession of a key:
//! it generates a key pair, sends IMDS a certificate signing request, receives a certificate,
//! and calls the token endpoint over mutual TLS with that certificate. This crate provides the
//! pieces of that binding; the IMDS calls and the token leg live with the managed identity
//! credential.
//!
//! - [`KeyProvider`] / [`BindingKey`]: the key pair, [`SoftwareKeyProvider`] (RSA-2048 in
//!   memory, aws-lc-rs) by default; a hardware key need not export its private half.
//! - [`build_csr`]: the PKCS#10 request, subject `CN=<clientId>, DC=<tenantId>`, the cuId
//!   attribute, signed RSASSA-PSS SHA-256 ([`Csr::to_base64`] is what IMDS receives).
//! - [`AttestationProvider`]: the optional key-guard proof, [`NoAttestation`] by default.
//! - [`Binding`]: the issued certificate with its key, client id, token endpoint and expiry;
//!   [`Binding::transport`] is an HTTP client that presents it; [`Binding::thumbprint`] is its
//!   `x5t#S256` ([`x5t_s256`]).
//! - [`BindingCache`]: one binding per identity, reused for every scope until a day before the
//!   certificate expires, concurrent mints coalesced, [`BindingCache::evict`] after a rejection.
//!
//! ```
//! use entra_mtls_pop::{CuId, KeyProvider, SoftwareKeyProvider, build_csr, x5t_s256};
//!
//! let key = SoftwareKeyProvider::new().generate()?;
//! let cu_id = CuId { vm_id: Some("vm-1".to_owned()), vmss_id: None };
//! let csr = build_csr(key.as_ref(), "client-id", "tenant-id", &cu_id)?;
//! // The body of `issuecredential`: {"csr": <one line of base64>, "attestation_token": ""}.
//! assert!(!csr.to_base64().contains('\n'));
//! assert_eq!(cu_id.to_json(), r#"{"vmId":"vm-1"}"#);
//! // The private key never shows itself.
//! assert!(!format!("{key:?} {csr:?}").contains(key.private_key_pkcs8_der().unwrap().expose()));
//! assert_eq!(x5t_s256(b"").len(), 43);
//! # Ok::<(), entra_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod attestation;
mod binding;
mod cache;
mod csr;
mod der;
mod key;
mod transport;

#[cfg(test)]
mod test_support;

pub use attestation::{AttestationProvider, NoAttestation};
pub use binding::{Binding, RENEW_BEFORE_EXPIRY, x5t_s256};
pub use cache::BindingCache;
pub use csr::{CU_ID_ATTRIBUTE_OID, Csr, CuId, build_csr};
pub use key::{BindingKey, KeyProvider, SoftwareKey, SoftwareKeyProvider};

#[cfg(test)]
mod tests {
    use super::*;

    /// Not asserted (tests never assert wall time): run with `--nocapture` to see the cost of
    /// one key generation and CSR in this build profile.
    #[test]
    #[allow(clippy::disallowed_methods, clippy::print_stdout)]
    fn cost_of_one_key_and_csr() {
        let start = std::time::Instant::now();
        let key = SoftwareKeyProvider::new().generate().unwrap();
        let generated = start.elapsed();
        let csr = build_csr(key.as_ref(), "c", "t", &CuId::default()).unwrap();
        let total = start.elapsed();
        println!("SoftwareKeyProvider.generate(): {generated:?}; + build_csr: {total:?}");
        assert!(!csr.der().is_empty());
    }
}
