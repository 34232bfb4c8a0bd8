//! Client certificates and the signed client assertions made with them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::{Error, Secret};

/// How long a client assertion is valid (PROTOCOL.md: at most 10 minutes).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// A client certificate with its RSA private key, used to sign client assertions.
///
/// Loaded from PEM (certificate chain and key, in one bundle or two) or from PKCS#12. `Debug`
/// shows the thumbprint only; the key is held as a zeroized [`Secret`].
#[derive(Clone)]
pub struct ClientCertificate {
    key: EncodingKey,
    // Kept only so the key material is zeroized on drop (EncodingKey is not).
    _key_pem: Secret,
    chain: Vec<CertificateDer<'static>>,
    x5t_s256: String,
    x5t: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.x5t_s256)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn cert_error(message: &str) -> Error {
    Error::Certificate(message.to_owned())
}

impl ClientCertificate {
    /// Loads a PEM bundle holding the certificate (first), optionally its chain, and an
    /// unencrypted RSA private key (`PRIVATE KEY` or `RSA PRIVATE KEY`), as in the file named by
    /// `AZURE_CLIENT_CERTIFICATE_PATH`.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        Self::from_pem_parts(pem, pem)
    }

    /// Loads the certificate chain and the private key from separate PEM documents.
    pub fn from_pem_parts(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|_| {
                cert_error(
                    "the certificate PEM could not be read; pass PEM with CERTIFICATE blocks",
                )
            })?;
        if chain.is_empty() {
            return Err(cert_error(
                "no CERTIFICATE block found; pass the certificate in PEM form",
            ));
        }
        if String::from_utf8_lossy(key_pem).contains("ENCRYPTED PRIVATE KEY") {
            return Err(cert_error(
                "the private key is encrypted; decrypt it or use a PKCS#12 file with its password",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            cert_error("no private key found; the PEM must hold the certificate's RSA private key")
        })?;
        let key_pem = match &key {
            PrivateKeyDer::Pkcs8(der) => pem_encode("PRIVATE KEY", der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => pem_encode("RSA PRIVATE KEY", der.secret_pkcs1_der()),
            _ => {
                return Err(cert_error(
                    "the private key is not an RSA key; Entra ID client assertions need RSA",
                ));
            }
        };
        Self::from_parts(chain, key_pem)
    }

    /// Loads a PKCS#12 (`.pfx`/`.p12`) archive protected by `password` (empty if none).
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, Error> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|_| {
            cert_error("the PKCS#12 archive could not be opened; check the file and its password")
        })?;
        let (_, entry) = store.private_key_chain().ok_or_else(|| {
            cert_error("the PKCS#12 archive holds no private key with a certificate")
        })?;
        let chain: Vec<CertificateDer<'static>> = entry
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        if chain.is_empty() {
            return Err(cert_error(
                "the PKCS#12 archive holds a key without its certificate",
            ));
        }
        let key_pem = pem_encode("PRIVATE KEY", entry.key().as_der());
        Self::from_parts(chain, key_pem)
    }

    fn from_parts(chain: Vec<CertificateDer<'static>>, key_pem: Secret) -> Result<Self, Error> {
        let key = EncodingKey::from_rsa_pem(key_pem.expose().as_bytes())
            .map_err(|_| cert_error("the private key is not a usable RSA key"))?;
        let leaf = chain[0].as_ref();
        let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(leaf));
        let x5t = URL_SAFE_NO_PAD.encode(Sha1::digest(leaf));
        let certificate = Self {
            key,
            _key_pem: key_pem,
            chain,
            x5t_s256,
            x5t,
        };
        // Sign once now, so an unusable key fails at load time rather than at first use.
        certificate.sign_assertion(
            "probe",
            "https://localhost/probe",
            UNIX_EPOCH + Duration::from_secs(1),
            false,
        )?;
        Ok(certificate)
    }

    /// The certificate's SHA-256 thumbprint, base64url without padding (`x5t#S256`).
    pub fn thumbprint_sha256(&self) -> &str {
        &self.x5t_s256
    }

    /// The certificate's SHA-1 thumbprint, base64url without padding (legacy `x5t`).
    pub fn thumbprint_sha1(&self) -> &str {
        &self.x5t
    }

    /// The certificate chain, leaf first, DER.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// Signs a client assertion for `client_id` at `audience` (the token endpoint URL):
    /// PS256, header `x5t#S256` and `x5t` (and `x5c` with the chain when `send_chain`), claims
    /// `aud`, `iss` = `sub` = `client_id`, a unique `jti`, `nbf` = `iat` = `now`, `exp` =
    /// `now` + [`ASSERTION_LIFETIME`].
    pub fn sign_assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
        send_chain: bool,
    ) -> Result<Secret, Error> {
        #[derive(Serialize)]
        struct AssertionClaims<'a> {
            aud: &'a str,
            iss: &'a str,
            sub: &'a str,
            jti: String,
            nbf: u64,
            iat: u64,
            exp: u64,
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(self.x5t_s256.clone());
        header.x5t = Some(self.x5t.clone());
        if send_chain {
            header.x5c = Some(
                self.chain
                    .iter()
                    .map(|c| STANDARD.encode(c.as_ref()))
                    .collect(),
            );
        }
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|_| {
                cert_error("signing the client assertion failed; check the private key is RSA")
            })
    }
}

fn pem_encode(label: &str, der: &[u8]) -> Secret {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    Secret::new(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_cert() -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    #[test]
    fn signs_ps256_assertions_with_thumbprints() {
        let (cert_pem, key_pem, der) = rsa_cert();
        let bundle = format!("{cert_pem}{key_pem}");
        let cert = ClientCertificate::from_pem(bundle.as_bytes()).unwrap();
        assert_eq!(
            cert.thumbprint_sha256(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(&der))
        );
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = cert
            .sign_assertion("client-1", "https://login/t/oauth2/v2.0/token", now, true)
            .unwrap();
        let header = jsonwebtoken::decode_header(jwt.expose()).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(header.x5t_s256.as_deref(), Some(cert.thumbprint_sha256()));
        assert_eq!(header.x5c.unwrap().len(), 1);
        let payload = jwt.expose().split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            600
        );
        let again = cert.sign_assertion("client-1", "a", now, false).unwrap();
        let jti = |t: &Secret| {
            let p = t.expose().split('.').nth(1).unwrap().to_owned();
            serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(p).unwrap())
                .unwrap()["jti"]
                .clone()
        };
        assert_ne!(jti(&jwt), jti(&again));
    }

    #[test]
    fn pkcs12_round_trip() {
        let (cert_pem, key_pem, der) = rsa_cert();
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(
            vec![1u8; 20],
            p12_keystore::PrivateKey::from_der(key_der.secret_der()).unwrap(),
            [p12_keystore::Certificate::from_der(&der).unwrap()],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "client",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        let pfx = store.writer("pw").write().unwrap();
        let cert = ClientCertificate::from_pkcs12(&pfx, "pw").unwrap();
        let from_pem =
            ClientCertificate::from_pem_parts(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        assert_eq!(cert.thumbprint_sha256(), from_pem.thumbprint_sha256());
        let err = ClientCertificate::from_pkcs12(&pfx, "wrong").unwrap_err();
        assert!(matches!(err, Error::Certificate(_)));
    }

    #[test]
    fn bad_inputs_are_clear_errors_without_key_material() {
        let (cert_pem, key_pem, _) = rsa_cert();
        for (c, k) in [
            ("", key_pem.as_str()),
            (cert_pem.as_str(), ""),
            (
                cert_pem.as_str(),
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            ),
        ] {
            let err = ClientCertificate::from_pem_parts(c.as_bytes(), k.as_bytes()).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("BEGIN"), "{shown}");
        }
        let ec = rcgen::KeyPair::generate().unwrap();
        let err =
            ClientCertificate::from_pem_parts(cert_pem.as_bytes(), ec.serialize_pem().as_bytes())
                .unwrap_err();
        assert!(err.to_string().contains("RSA"), "{err}");
        let cert =
            ClientCertificate::from_pem_parts(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }
}
