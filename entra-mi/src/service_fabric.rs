//! Service Fabric: `GET $IDENTITY_ENDPOINT?api-version=2019-07-01-preview&resource=…` with
//! `secret: $IDENTITY_HEADER`, over HTTPS to a server whose certificate is pinned by its SHA-1
//! thumbprint (`IDENTITY_SERVER_THUMBPRINT`).

use std::sync::Arc;

use entra_core::{Env, Error, HttpRequest};
use http::{HeaderValue, Method};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha1::{Digest as _, Sha1};
use url::Url;

use crate::detect::var;
use crate::source::{
    ManagedIdentitySource, endpoint_from_env, request, secret_from_env, secret_header_value,
    unsupported_selector,
};
use crate::{ManagedIdentityId, ManagedIdentitySourceKind};

const API_VERSION: &str = "2019-07-01-preview";

#[derive(Debug)]
pub(crate) struct ServiceFabric {
    endpoint: Url,
    /// `IDENTITY_HEADER`, marked sensitive.
    secret: HeaderValue,
    principal_id: Option<String>,
    thumbprint: [u8; 20],
}

impl ServiceFabric {
    pub(crate) fn new(env: &dyn Env, id: &ManagedIdentityId) -> Result<Self, Error> {
        let principal_id = match id {
            ManagedIdentityId::SystemAssigned => None,
            ManagedIdentityId::ObjectId(id) => Some(id.clone()),
            ManagedIdentityId::ClientId(_) | ManagedIdentityId::ResourceId(_) => {
                return Err(unsupported_selector(
                    "service fabric",
                    "selects a user-assigned identity by object (principal) id only; pass ManagedIdentityId::ObjectId",
                ));
            }
        };
        let endpoint = endpoint_from_env(env, "IDENTITY_ENDPOINT")?;
        if endpoint.scheme() != "https" {
            return Err(Error::Configuration(
                "IDENTITY_ENDPOINT must be an https URL for service fabric managed identity"
                    .to_owned(),
            ));
        }
        let thumbprint = var(env, "IDENTITY_SERVER_THUMBPRINT").unwrap_or_default();
        let secret = secret_from_env(env, "IDENTITY_HEADER")?;
        Ok(Self {
            endpoint,
            secret: secret_header_value(&secret, "IDENTITY_HEADER")?,
            principal_id,
            thumbprint: parse_thumbprint(&thumbprint)?,
        })
    }

    /// A TLS configuration that accepts only the server certificate with this source's
    /// thumbprint.
    pub(crate) fn tls_config(&self) -> Result<rustls::ClientConfig, Error> {
        pinned_tls_config(self.thumbprint)
    }
}

impl ManagedIdentitySource for ServiceFabric {
    fn kind(&self) -> ManagedIdentitySourceKind {
        ManagedIdentitySourceKind::ServiceFabric
    }

    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn request(&self, resource: &str) -> HttpRequest {
        let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
        if let Some(id) = &self.principal_id {
            query.push(("principalId", id));
        }
        let mut request = request(Method::GET, &self.endpoint, &query);
        request.headers.insert("secret", self.secret.clone());
        request
    }
}

/// A SHA-1 thumbprint: 40 hex digits, any case (colons and spaces allowed between bytes).
fn parse_thumbprint(value: &str) -> Result<[u8; 20], Error> {
    let digits: String = value.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let mut thumbprint = [0u8; 20];
    hex::decode_to_slice(&digits, &mut thumbprint).map_err(|_| {
        Error::Configuration(
            "IDENTITY_SERVER_THUMBPRINT is not a SHA-1 thumbprint (40 hex digits)".to_owned(),
        )
    })?;
    Ok(thumbprint)
}

/// A rustls client configuration (aws-lc-rs) whose only trust is the pinned thumbprint.
fn pinned_tls_config(thumbprint: [u8; 20]) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = ThumbprintVerifier {
        thumbprint,
        provider: provider.clone(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Configuration(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Accepts a server certificate exactly when the SHA-1 of its DER equals the pinned
/// thumbprint; handshake signatures are verified as usual, so the server must hold the key.
#[derive(Debug)]
struct ThumbprintVerifier {
    thumbprint: [u8; 20],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ThumbprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual: [u8; 20] = Sha1::digest(end_entity.as_ref()).into();
        if actual == self.thumbprint {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                "the service fabric endpoint's certificate does not match IDENTITY_SERVER_THUMBPRINT"
            );
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::MapEnv;

    fn cert() -> CertificateDer<'static> {
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .unwrap()
            .cert
            .der()
            .clone()
    }

    fn verifier(thumbprint: &str) -> ThumbprintVerifier {
        ThumbprintVerifier {
            thumbprint: parse_thumbprint(thumbprint).unwrap(),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }

    fn verify(v: &ThumbprintVerifier, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        v.verify_server_cert(
            cert,
            &[],
            &ServerName::try_from("localhost").unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
    }

    #[test]
    fn the_pinned_certificate_is_accepted_in_any_case() {
        let cert = cert();
        let thumbprint = hex::encode(Sha1::digest(cert.as_ref()));
        for shown in [
            thumbprint.to_ascii_lowercase(),
            thumbprint.to_ascii_uppercase(),
        ] {
            assert!(verify(&verifier(&shown), &cert).is_ok());
        }
        // Another certificate, even for the same name, is refused.
        let other = self::cert();
        assert_eq!(
            verify(&verifier(&thumbprint), &other).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        assert!(!verifier(&thumbprint).supported_verify_schemes().is_empty());
    }

    /// Runs a TLS handshake in memory between a client with `thumbprint` pinned and a server
    /// presenting `cert` and signing with `key`.
    fn handshake(
        thumbprint: [u8; 20],
        cert: CertificateDer<'static>,
        key: &rcgen::KeyPair,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Result<(), rustls::Error> {
        #[derive(Debug)]
        struct Fixed(Arc<rustls::sign::CertifiedKey>);
        impl rustls::server::ResolvesServerCert for Fixed {
            fn resolve(
                &self,
                _hello: rustls::server::ClientHello<'_>,
            ) -> Option<Arc<rustls::sign::CertifiedKey>> {
                Some(self.0.clone())
            }
        }
        let private = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&private).unwrap();
        // A resolver, not `with_single_cert`, so a key that does not match the certificate
        // can be presented.
        let certified = rustls::sign::CertifiedKey::new(vec![cert], signing);
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
        let mut server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let mut client = rustls::ClientConnection::new(
            Arc::new(pinned_tls_config(thumbprint).unwrap()),
            ServerName::try_from("10.0.0.4").unwrap(),
        )
        .unwrap();
        for _ in 0..20 {
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            let mut slice = &buf[..];
            while !slice.is_empty() {
                server.read_tls(&mut slice).unwrap();
                server.process_new_packets()?;
            }
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            let mut slice = &buf[..];
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
                client.process_new_packets()?;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish")
    }

    #[test]
    fn handshakes_succeed_only_with_the_pinned_certificate_and_its_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .clone();
        let pinned: [u8; 20] = Sha1::digest(cert.as_ref()).into();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            // The pinned certificate, for a name and an address it does not list, self-signed.
            handshake(pinned, cert.clone(), &key, version).unwrap();
            // Another thumbprint: refused.
            let mut other = pinned;
            other[0] ^= 1;
            assert_eq!(
                handshake(other, cert.clone(), &key, version).unwrap_err(),
                rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
            );
            // The pinned certificate presented by a server without its key: the handshake
            // signature does not verify.
            let impostor = rcgen::KeyPair::generate().unwrap();
            assert!(handshake(pinned, cert.clone(), &impostor, version).is_err());
        }
    }

    #[test]
    fn thumbprints_must_be_sha1_hex() {
        assert!(parse_thumbprint("AB:CD").is_err());
        assert!(parse_thumbprint(&"g".repeat(40)).is_err());
        assert!(parse_thumbprint(&"0a".repeat(20)).is_ok());
        assert!(pinned_tls_config([0; 20]).is_ok());
    }

    fn env(endpoint: &str) -> MapEnv {
        MapEnv::new([
            ("IDENTITY_ENDPOINT", endpoint),
            ("IDENTITY_HEADER", "SF-SECRET"),
            ("IDENTITY_SERVER_THUMBPRINT", &"AB".repeat(20)),
        ])
    }

    #[test]
    fn requests_per_selector() {
        let env = env("https://10.0.0.4:2377/metadata/identity/oauth2/token");
        let base = "https://10.0.0.4:2377/metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource=api%3A%2F%2Fapp";
        for (id, extra) in [
            (ManagedIdentityId::SystemAssigned, ""),
            (
                ManagedIdentityId::ObjectId("p-1".into()),
                "&principalId=p-1",
            ),
        ] {
            let source = ServiceFabric::new(&env, &id).unwrap();
            let request = source.request("api://app");
            assert_eq!(request.url.as_str(), format!("{base}{extra}"));
            assert_eq!(request.headers["secret"], "SF-SECRET");
            assert!(!format!("{source:?} {request:?}").contains("SF-SECRET"));
        }
        for id in [
            ManagedIdentityId::ClientId("c".into()),
            ManagedIdentityId::ResourceId("/r".into()),
        ] {
            assert!(matches!(
                ServiceFabric::new(&env, &id),
                Err(Error::Configuration(m)) if m.contains("object (principal) id only")
            ));
        }
        assert!(matches!(
            ServiceFabric::new(&self::env("http://10.0.0.4:2377/t"), &ManagedIdentityId::SystemAssigned),
            Err(Error::Configuration(m)) if m.contains("https")
        ));
    }
}
