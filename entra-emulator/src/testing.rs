//! Helpers for tests (of this crate and of others) and demos: client certificates and the
//! client assertions they sign.

use std::fmt;
use std::time::SystemTime;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, PKCS_RSA_SHA256};
use serde_json::{Value, json};

use crate::clock::unix_seconds;
use crate::error::EmulatorError;
use crate::keys::{sha1_thumbprint, sha256_thumbprint};

/// A self-signed RSA-2048 client certificate and its private key.
///
/// `Debug` shows the thumbprints, never the key.
#[derive(Clone)]
#[non_exhaustive]
pub struct TestCertificate {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// Base64url SHA-256 of the DER certificate: the `x5t#S256` header of its assertions.
    pub sha256_thumbprint_b64url: String,
    /// Base64url SHA-1 of the DER certificate: the legacy `x5t` header.
    pub sha1_thumbprint_b64url: String,
}

impl fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCertificate")
            .field("sha256_thumbprint_b64url", &self.sha256_thumbprint_b64url)
            .field("sha1_thumbprint_b64url", &self.sha1_thumbprint_b64url)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A new self-signed RSA client certificate with subject `CN=common_name`.
///
/// # Panics
///
/// If key generation fails, which only happens when the system has no usable randomness; use
/// [`try_client_certificate`] to get an error instead.
pub fn client_certificate(common_name: &str) -> TestCertificate {
    match try_client_certificate(common_name) {
        Ok(cert) => cert,
        Err(e) => panic!("could not generate a test client certificate: {e}"),
    }
}

/// A new self-signed RSA client certificate with subject `CN=common_name`.
pub fn try_client_certificate(common_name: &str) -> Result<TestCertificate, EmulatorError> {
    let keygen = |source| EmulatorError::KeyGeneration {
        what: "test client certificate",
        source,
    };
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(keygen)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(keygen)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).map_err(keygen)?;
    let cert_der = cert.der().to_vec();
    Ok(TestCertificate {
        sha256_thumbprint_b64url: sha256_thumbprint(&cert_der),
        sha1_thumbprint_b64url: sha1_thumbprint(&cert_der),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der,
    })
}

impl TestCertificate {
    /// The private key as a `jsonwebtoken` signing key.
    pub fn encoding_key(&self) -> Result<EncodingKey, EmulatorError> {
        EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).map_err(EmulatorError::Signing)
    }

    /// A JWT with `header` and `claims`, signed with this certificate's key.
    pub fn sign(&self, header: &Header, claims: &Value) -> Result<String, EmulatorError> {
        jsonwebtoken::encode(header, claims, &self.encoding_key()?).map_err(EmulatorError::Signing)
    }

    /// The header of a client assertion: PS256 with `x5t#S256` and `x5t` of this certificate.
    pub fn assertion_header(&self) -> Header {
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".to_owned());
        header.x5t_s256 = Some(self.sha256_thumbprint_b64url.clone());
        header.x5t = Some(self.sha1_thumbprint_b64url.clone());
        header
    }

    /// A client assertion for `client_id` addressed to `token_endpoint`, valid from `now` for
    /// 10 minutes, with a fresh `jti` — what MSAL sends.
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: SystemTime,
    ) -> Result<String, EmulatorError> {
        let now = unix_seconds(now);
        let claims = json!({
            "aud": token_endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        });
        self.sign(&self.assertion_header(), &claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() -> Result<(), EmulatorError> {
        let cert = try_client_certificate("debug")?;
        let debug = format!("{cert:?}");
        assert!(!debug.contains("PRIVATE KEY"));
        assert!(!debug.contains(cert.key_pem.lines().nth(1).unwrap_or("-")));
        assert!(debug.contains(&cert.sha256_thumbprint_b64url));
        assert_eq!(cert.sha256_thumbprint_b64url.len(), 43);
        assert_eq!(cert.sha1_thumbprint_b64url.len(), 27);
        Ok(())
    }
}
