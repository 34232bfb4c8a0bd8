//! Keys and certificates: the token-signing key, the emulator's CA and server certificate, and
//! the keys of external (federated) issuers.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, PublicKeyData as _,
};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::EmulatorError;

/// Base64url (no padding) of SHA-256 of `der`: the `x5t#S256` of a certificate.
pub(crate) fn sha256_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Base64url (no padding) of SHA-1 of `der`: the legacy `x5t` of a certificate.
pub(crate) fn sha1_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha1::digest(der))
}

/// Strip the leading zero bytes of a big-endian unsigned integer (ASN.1 adds one for sign).
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

/// The RSA modulus and exponent (big-endian, no leading zeros) of a DER SubjectPublicKeyInfo.
pub(crate) fn rsa_components(spki_der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => Some((
            unsigned(rsa.modulus).to_vec(),
            unsigned(rsa.exponent).to_vec(),
        )),
        _ => None,
    }
}

/// The RSA public key of a DER certificate, for verifying assertions it signed.
pub(crate) fn certificate_rsa_key(cert_der: &[u8]) -> Result<DecodingKey, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|_| "not a der-encoded x.509 certificate".to_owned())?;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(DecodingKey::from_rsa_raw_components(
            unsigned(rsa.modulus),
            unsigned(rsa.exponent),
        )),
        Ok(_) => Err(
            "the certificate's key is not rsa (assertions must be signed with PS256 or RS256)"
                .to_owned(),
        ),
        Err(_) => Err("the certificate's public key could not be read".to_owned()),
    }
}

/// The RSA key that signs the access tokens an emulator issues, with its self-signed certificate
/// (published as `x5c`) and key id.
///
/// RSA key generation is slow, so [`SigningKey::shared`] generates one key per process and every
/// emulator uses it unless its configuration supplies another.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<SigningKeyInner>,
}

struct SigningKeyInner {
    kid: String,
    x5t: String,
    encoding: EncodingKey,
    n: Vec<u8>,
    e: Vec<u8>,
    cert_der: Vec<u8>,
    public_key_pem: String,
}

static SHARED_SIGNING_KEY: Mutex<Option<SigningKey>> = Mutex::new(None);

impl SigningKey {
    /// The process-wide key, generated on first use and shared by every emulator.
    pub fn shared() -> Result<SigningKey, EmulatorError> {
        let mut slot = SHARED_SIGNING_KEY
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = slot.as_ref() {
            return Ok(key.clone());
        }
        let key = SigningKey::generate()?;
        *slot = Some(key.clone());
        Ok(key)
    }

    /// Generate a fresh RSA-2048 key (slow: prefer [`SigningKey::shared`]).
    pub fn generate() -> Result<SigningKey, EmulatorError> {
        let key_pair = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|source| {
            EmulatorError::KeyGeneration {
                what: "token-signing rsa key",
                source,
            }
        })?;
        SigningKey::from_key_pair(&key_pair)
    }

    /// Use an existing RSA private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, EmulatorError> {
        let key_pair = KeyPair::from_pem_and_sign_algo(pem, &PKCS_RSA_SHA256)
            .map_err(|_| EmulatorError::InvalidSigningKey)?;
        SigningKey::from_key_pair(&key_pair)
    }

    fn from_key_pair(key_pair: &KeyPair) -> Result<SigningKey, EmulatorError> {
        let (n, e) = rsa_components(&key_pair.subject_public_key_info())
            .ok_or(EmulatorError::InvalidSigningKey)?;
        let encoding = EncodingKey::from_rsa_pem(key_pair.serialize_pem().as_bytes())
            .map_err(|_| EmulatorError::InvalidSigningKey)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|source| {
            EmulatorError::KeyGeneration {
                what: "token-signing certificate",
                source,
            }
        })?;
        params
            .distinguished_name
            .push(DnType::CommonName, "entra-emulator token signing");
        let cert = params
            .self_signed(key_pair)
            .map_err(|source| EmulatorError::KeyGeneration {
                what: "token-signing certificate",
                source,
            })?;
        let cert_der = cert.der().to_vec();
        let x5t = sha1_thumbprint(&cert_der);
        Ok(SigningKey {
            inner: Arc::new(SigningKeyInner {
                kid: x5t.clone(),
                x5t,
                encoding,
                n,
                e,
                cert_der,
                public_key_pem: key_pair.public_key_pem(),
            }),
        })
    }

    /// The key id (`kid`) in token headers and in the JWKS; like Entra's, it equals the
    /// certificate's `x5t`.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The key that verifies tokens signed with this key.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_raw_components(&self.inner.n, &self.inner.e)
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> &str {
        &self.inner.public_key_pem
    }

    /// The self-signed certificate of the key (DER), published as `x5c`.
    pub fn certificate_der(&self) -> &[u8] {
        &self.inner.cert_der
    }

    /// The JWK of the public key, shaped like an entry of Entra's `keys` document.
    pub fn jwk(&self, issuer: Option<&str>) -> Value {
        let mut jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.inner.kid,
            "x5t": self.inner.x5t,
            "n": URL_SAFE_NO_PAD.encode(&self.inner.n),
            "e": URL_SAFE_NO_PAD.encode(&self.inner.e),
            "x5c": [STANDARD.encode(&self.inner.cert_der)],
        });
        if let (Some(issuer), Some(map)) = (issuer, jwk.as_object_mut()) {
            map.insert("issuer".to_owned(), Value::String(issuer.to_owned()));
        }
        jwk
    }

    pub(crate) fn x5t(&self) -> &str {
        &self.inner.x5t
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.inner.encoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

/// A server identity for a TLS listener: certificate chain (leaf first) and PKCS#8 key.
pub(crate) struct ServerIdentity {
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) key_pkcs8: Vec<u8>,
}

/// The emulator's own CA, which signs its server certificate (and, later, other certificates).
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) ca_der: Vec<u8>,
    /// Signs IMDSv2 client certificates.
    pub(crate) ca_issuer: Issuer<'static, KeyPair>,
    pub(crate) server: ServerIdentity,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("ca_sha256", &sha256_thumbprint(&self.ca_der))
            .finish_non_exhaustive()
    }
}

fn keygen_error(what: &'static str) -> impl FnOnce(rcgen::Error) -> EmulatorError {
    move |source| EmulatorError::KeyGeneration { what, source }
}

impl Pki {
    /// A new ECDSA P-256 CA and a server certificate for `127.0.0.1`, `::1`, `localhost` and
    /// `extra_names`.
    pub(crate) fn generate(extra_names: &[String]) -> Result<Pki, EmulatorError> {
        let ca_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(keygen_error("ca key"))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(keygen_error("ca certificate"))?;
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "entra-emulator local CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "entra-rs");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(keygen_error("ca certificate"))?;
        let ca_issuer = Issuer::new(ca_params, ca_key);

        let mut names = vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ];
        for name in extra_names {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.clone());
            }
        }
        let server_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(keygen_error("server key"))?;
        let mut params =
            CertificateParams::new(names).map_err(keygen_error("server certificate"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &ca_issuer)
            .map_err(keygen_error("server certificate"))?;

        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            ca_issuer,
            server: ServerIdentity {
                chain: vec![server_cert.der().to_vec()],
                key_pkcs8: server_key.serialize_der(),
            },
        })
    }
}

impl ServerIdentity {
    /// A self-signed ECDSA P-256 server certificate for `127.0.0.1`, `::1` and `localhost`,
    /// issued by no CA: clients can only trust it by pinning its thumbprint (Service Fabric).
    pub(crate) fn self_signed(common_name: &str) -> Result<ServerIdentity, EmulatorError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(keygen_error("self-signed server key"))?;
        let names = vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ];
        let mut params = CertificateParams::new(names)
            .map_err(keygen_error("self-signed server certificate"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .self_signed(&key)
            .map_err(keygen_error("self-signed server certificate"))?;
        Ok(ServerIdentity {
            chain: vec![cert.der().to_vec()],
            key_pkcs8: key.serialize_der(),
        })
    }

    /// Upper-case hex SHA-1 of the leaf certificate, the form `IDENTITY_SERVER_THUMBPRINT`
    /// carries.
    pub(crate) fn sha1_hex(&self) -> String {
        hex::encode_upper(Sha1::digest(
            self.chain.first().map_or(&[][..], Vec::as_slice),
        ))
    }
}

/// The ES256 key of an external (federated) issuer the emulator stands in for.
pub(crate) struct ExternalIssuerKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    x: String,
    y: String,
}

impl fmt::Debug for ExternalIssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalIssuerKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ExternalIssuerKey {
    pub(crate) fn generate() -> Result<ExternalIssuerKey, EmulatorError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(keygen_error("external issuer key"))?;
        // The raw public key of P-256 is the uncompressed point 0x04 || x || y.
        let point = key.public_key_raw();
        if point.len() != 65 || point[0] != 4 {
            return Err(EmulatorError::InvalidSigningKey);
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let encoding = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
            .map_err(|_| EmulatorError::InvalidSigningKey)?;
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|_| EmulatorError::InvalidSigningKey)?;
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(point)[..16]);
        Ok(ExternalIssuerKey {
            kid,
            encoding,
            decoding,
            x,
            y,
        })
    }

    pub(crate) fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
            "x": self.x,
            "y": self.y,
        })
    }
}
