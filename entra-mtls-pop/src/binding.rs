//! The binding: the certificate IMDS issued for a binding key, and where to use it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_core::Error;
use url::Url;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::BindingKey;

/// A binding is reused until this long before its certificate expires.
pub const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// The `x5t#S256` thumbprint of a certificate: base64url (no padding) of the SHA-256 of its DER.
///
/// ```
/// assert_eq!(entra_mtls_pop::x5t_s256(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
/// ```
pub fn x5t_s256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, cert_der))
}

/// A managed identity certificate and its key: what the mTLS token leg authenticates with.
///
/// `Debug` shows the thumbprint, client id and expiry only.
#[derive(Clone)]
pub struct Binding {
    certificate_der: Vec<u8>,
    key: Arc<dyn BindingKey>,
    client_id: String,
    tenant_id: String,
    token_endpoint: Url,
    not_after: SystemTime,
    thumbprint: String,
}

impl Binding {
    /// A binding from the `issuecredential` answer: the certificate (DER), the key its CSR was
    /// made with, the `client_id`, the `tenant_id` and the `mtls_authentication_endpoint`.
    ///
    /// Fails with [`Error::Certificate`] if the certificate cannot be parsed or was not issued
    /// for `key`, and with [`Error::Configuration`] if the endpoint is not an https URL or an id
    /// is empty.
    pub fn new(
        certificate_der: impl Into<Vec<u8>>,
        key: Arc<dyn BindingKey>,
        client_id: impl Into<String>,
        tenant_id: impl Into<String>,
        mtls_authentication_endpoint: &str,
    ) -> Result<Self, Error> {
        let certificate_der = certificate_der.into();
        let (client_id, tenant_id) = (client_id.into(), tenant_id.into());
        if client_id.is_empty() || tenant_id.is_empty() {
            return Err(Error::Configuration(
                "the issued credential names no client id or tenant id".to_owned(),
            ));
        }
        let (rest, cert) = X509Certificate::from_der(&certificate_der).map_err(|_| {
            Error::Certificate("the issued certificate is not valid DER X.509".to_owned())
        })?;
        if !rest.is_empty() {
            return Err(Error::Certificate(
                "the issued certificate has trailing bytes".to_owned(),
            ));
        }
        let (_, spki) =
            SubjectPublicKeyInfo::from_der(key.public_key_spki_der()).map_err(|_| {
                Error::Certificate("the binding key's public key is not a valid SPKI".to_owned())
            })?;
        let issued = cert.public_key();
        if issued.algorithm.algorithm != spki.algorithm.algorithm
            || issued.subject_public_key.data != spki.subject_public_key.data
        {
            return Err(Error::Certificate(
                "the issued certificate is not for the binding key".to_owned(),
            ));
        }
        let not_after = u64::try_from(cert.validity().not_after.timestamp())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
            .map_err(|_| {
                Error::Certificate("the issued certificate expires before 1970".to_owned())
            })?;
        let token_endpoint = token_endpoint(mtls_authentication_endpoint, &tenant_id)?;
        Ok(Self {
            thumbprint: x5t_s256(&certificate_der),
            certificate_der,
            key,
            client_id,
            tenant_id,
            token_endpoint,
            not_after,
        })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The key the certificate was issued for.
    pub fn key(&self) -> &Arc<dyn BindingKey> {
        &self.key
    }

    /// The managed identity's client id (from `issuecredential`), sent as `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// `{mtls_authentication_endpoint}/{tenant_id}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// When the certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The end of reuse: [`RENEW_BEFORE_EXPIRY`] before [`not_after`](Self::not_after).
    pub fn fresh_until(&self) -> SystemTime {
        self.not_after
            .checked_sub(RENEW_BEFORE_EXPIRY)
            .unwrap_or(UNIX_EPOCH)
            .max(UNIX_EPOCH)
    }

    /// The certificate's `x5t#S256` thumbprint (the token's `cnf` and the cache key).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Whether the binding may still be used at `now`: `now < not_after − 24 h`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.fresh_until()
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("thumbprint", &self.thumbprint)
            .field("client_id", &self.client_id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn token_endpoint(base: &str, tenant_id: &str) -> Result<Url, Error> {
    let invalid = || {
        Error::Configuration(
            "the mtls_authentication_endpoint of the issued credential is not an https URL"
                .to_owned(),
        )
    };
    let mut url = Url::parse(base).map_err(|_| invalid())?;
    if url.scheme() != "https" || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid());
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|_| invalid())?
        .pop_if_empty()
        .extend([tenant_id, "oauth2", "v2.0", "token"]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestCa, software_key, unix};

    #[test]
    fn thumbprint_is_base64url_sha256() {
        let ca = TestCa::new();
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        assert_eq!(
            binding.thumbprint(),
            URL_SAFE_NO_PAD.encode(digest(&SHA256, binding.certificate_der()))
        );
        assert_eq!(binding.thumbprint().len(), 43);
        assert!(!binding.thumbprint().contains(['+', '/', '=']));
    }

    #[test]
    fn parses_expiry_and_builds_the_token_endpoint() {
        let ca = TestCa::new();
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        assert_eq!(binding.not_after(), unix(2_000_000_000));
        assert_eq!(binding.fresh_until(), unix(2_000_000_000 - 86_400));
        assert!(binding.is_fresh(unix(2_000_000_000 - 86_401)));
        assert!(!binding.is_fresh(unix(2_000_000_000 - 86_400)));
        assert!(!binding.is_fresh(unix(2_000_000_000)));
        assert_eq!(
            binding.token_endpoint().as_str(),
            format!(
                "https://mtlsauth.example.net/{}/oauth2/v2.0/token",
                binding.tenant_id()
            )
        );
        for base in ["https://h.example/", "https://h.example"] {
            assert_eq!(
                token_endpoint(base, "t").unwrap().as_str(),
                "https://h.example/t/oauth2/v2.0/token"
            );
        }
        assert_eq!(
            token_endpoint("https://h.example/base/", "t")
                .unwrap()
                .as_str(),
            "https://h.example/base/t/oauth2/v2.0/token"
        );
        for bad in ["http://h.example", "not a url", "mailto:x@y"] {
            assert!(matches!(
                token_endpoint(bad, "t"),
                Err(Error::Configuration(_))
            ));
        }
    }

    #[test]
    fn rejects_a_certificate_for_another_key_or_garbage() {
        let ca = TestCa::new();
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        let other = crate::test_support::other_software_key();
        let error = Binding::new(
            binding.certificate_der().to_vec(),
            other,
            "c",
            "t",
            "https://h.example",
        )
        .unwrap_err();
        assert!(matches!(error, Error::Certificate(_)), "{error}");
        let error =
            Binding::new(vec![0x30, 0x00], software_key(), "c", "t", "https://h").unwrap_err();
        assert!(matches!(error, Error::Certificate(_)), "{error}");
    }

    #[test]
    fn debug_shows_thumbprint_client_and_expiry_only() {
        let ca = TestCa::new();
        let binding = ca.binding(software_key(), unix(2_000_000_000));
        let shown = format!("{binding:?}");
        assert!(shown.contains(binding.thumbprint()), "{shown}");
        assert!(shown.contains(binding.client_id()), "{shown}");
        assert!(shown.contains("not_after"), "{shown}");
        let pkcs8 = binding.key().private_key_pkcs8_der().unwrap();
        assert!(!shown.contains(&pkcs8.expose()[..24]));
        assert!(!shown.contains("SoftwareKey") && !shown.contains(binding.tenant_id()));
    }
}
