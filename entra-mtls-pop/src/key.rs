//! Binding keys: the key pair whose public half goes into the CSR and whose private half
//! authenticates the mutual-TLS handshake.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use entra_core::{Error, Secret};

/// Makes a new binding key for each certificate minted.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// A new RSA key pair (2048 bits or more).
    ///
    /// Key generation is CPU-bound (tens to hundreds of milliseconds); async callers run it on
    /// a blocking thread.
    fn generate(&self) -> Result<Arc<dyn BindingKey>, Error>;
}

/// An RSA key pair bound to a managed identity certificate.
///
/// `Debug` never shows private material.
pub trait BindingKey: Send + Sync + fmt::Debug {
    /// The public key as a DER `SubjectPublicKeyInfo`.
    fn public_key_spki_der(&self) -> &[u8];

    /// Signs `message` with RSASSA-PSS, SHA-256, MGF1-SHA-256 and a 32-byte salt.
    fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, Error>;

    /// The private key as PKCS#8 DER, **standard-base64 encoded** (a [`Secret`] holds text), or
    /// `None` for a key that cannot leave its store (a TPM or key guard).
    fn private_key_pkcs8_der(&self) -> Option<Secret>;
}

/// The default [`KeyProvider`]: RSA-2048 keys generated in memory with aws-lc-rs.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SoftwareKeyProvider;

impl SoftwareKeyProvider {
    /// The provider.
    pub fn new() -> Self {
        Self
    }

    /// A new RSA-2048 key, as its concrete type.
    pub fn generate_software_key(&self) -> Result<SoftwareKey, Error> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| Error::Certificate("could not generate an RSA-2048 key".to_owned()))?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| Error::Certificate("could not encode the RSA public key".to_owned()))?;
        let spki: &[u8] = spki.as_ref();
        Ok(SoftwareKey {
            spki: spki.to_vec(),
            pair,
        })
    }
}

impl KeyProvider for SoftwareKeyProvider {
    fn generate(&self) -> Result<Arc<dyn BindingKey>, Error> {
        Ok(Arc::new(self.generate_software_key()?))
    }
}

/// An RSA key pair held in process memory (made by [`SoftwareKeyProvider`]).
pub struct SoftwareKey {
    pair: KeyPair,
    spki: Vec<u8>,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("algorithm", &"RSA")
            .field("bits", &(self.pair.public_modulus_len() * 8))
            .finish_non_exhaustive()
    }
}

impl BindingKey for SoftwareKey {
    fn public_key_spki_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| Error::Certificate("RSA-PSS signing failed".to_owned()))?;
        Ok(signature)
    }

    fn private_key_pkcs8_der(&self) -> Option<Secret> {
        let der: Pkcs8V1Der<'static> = self.pair.as_der().ok()?;
        let der: &[u8] = der.as_ref();
        Some(Secret::new(STANDARD.encode(der)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::software_key;
    use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn signs_pss_and_exports_pkcs8_without_showing_it() {
        let key = software_key();
        let signature = key.sign_pss_sha256(b"hello").unwrap();
        assert_eq!(signature.len(), 256);
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, key.public_key_spki_der())
            .verify(b"hello", &signature)
            .unwrap();
        // PSS is randomised: two signatures of one message differ.
        assert_ne!(signature, key.sign_pss_sha256(b"hello").unwrap());

        let pkcs8 = key.private_key_pkcs8_der().unwrap();
        let der = STANDARD.decode(pkcs8.expose()).unwrap();
        let reloaded = KeyPair::from_pkcs8(&der).unwrap();
        let spki = reloaded.public_key().as_der().unwrap();
        let spki: &[u8] = spki.as_ref();
        assert_eq!(spki, key.public_key_spki_der());

        let shown = format!("{key:?}");
        assert_eq!(shown, "SoftwareKey { algorithm: \"RSA\", bits: 2048, .. }");
        assert!(!shown.contains(&pkcs8.expose()[..16]));
    }
}
