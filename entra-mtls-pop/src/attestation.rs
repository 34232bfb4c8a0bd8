//! Attestation: the optional key-guard proof sent with the CSR.

use std::fmt;

use async_trait::async_trait;
use entra_core::Error;

use crate::Csr;

/// Supplies the `attestation_token` sent to `issuecredential` with a CSR: a Microsoft Azure
/// Attestation JWT proving the key is protected (key guard), or an empty string.
#[async_trait]
pub trait AttestationProvider: Send + Sync + fmt::Debug {
    /// The attestation token for `csr`.
    async fn attestation_token(&self, csr: &Csr) -> Result<String, Error>;
}

/// The default [`AttestationProvider`]: no attestation (an empty token).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct NoAttestation;

#[async_trait]
impl AttestationProvider for NoAttestation {
    async fn attestation_token(&self, _csr: &Csr) -> Result<String, Error> {
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::software_key;

    #[tokio::test]
    async fn no_attestation_sends_an_empty_token() {
        let key = software_key();
        let csr = crate::build_csr(key.as_ref(), "c", "t", &crate::CuId::default()).unwrap();
        let provider: &dyn AttestationProvider = &NoAttestation;
        assert_eq!(provider.attestation_token(&csr).await.unwrap(), "");
    }
}
