//! Test fixtures: one RSA key per test binary (generation is slow in debug builds) and a CA
//! that issues binding certificates the way IMDS does.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SubjectPublicKeyInfo, date_time_ymd,
};

use crate::{Binding, BindingKey, SoftwareKeyProvider};

pub(crate) fn unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn generated(cell: &'static OnceLock<Arc<dyn BindingKey>>) -> Arc<dyn BindingKey> {
    cell.get_or_init(|| Arc::new(SoftwareKeyProvider.generate_software_key().unwrap()))
        .clone()
}

/// The shared software key.
pub(crate) fn software_key() -> Arc<dyn BindingKey> {
    static KEY: OnceLock<Arc<dyn BindingKey>> = OnceLock::new();
    generated(&KEY)
}

/// A second, different software key.
pub(crate) fn other_software_key() -> Arc<dyn BindingKey> {
    static KEY: OnceLock<Arc<dyn BindingKey>> = OnceLock::new();
    generated(&KEY)
}

/// A CA standing in for the IMDS issuer.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: rcgen::Certificate,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "entra-mtls-pop test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            cert,
        }
    }

    pub(crate) fn root_pem(&self) -> String {
        self.cert.pem()
    }

    pub(crate) fn root_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A client certificate for `spki` expiring at `not_after`.
    pub(crate) fn client_certificate(&self, spki: &[u8], not_after: SystemTime) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "8e8b1a2c-0000-4000-8000-0000000000c1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let epoch = date_time_ymd(1970, 1, 1);
        params.not_after = epoch + not_after.duration_since(UNIX_EPOCH).unwrap();
        params.not_before = epoch + Duration::from_secs(1_600_000_000);
        let public = SubjectPublicKeyInfo::from_der(spki).unwrap();
        params
            .signed_by(&public, &self.issuer)
            .unwrap()
            .der()
            .to_vec()
    }

    /// A binding for `key` whose certificate expires at `not_after`.
    pub(crate) fn binding(&self, key: Arc<dyn BindingKey>, not_after: SystemTime) -> Binding {
        let der = self.client_certificate(key.public_key_spki_der(), not_after);
        Binding::new(
            der,
            key,
            "8e8b1a2c-0000-4000-8000-0000000000c1",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "https://mtlsauth.example.net",
        )
        .unwrap()
    }

    /// A server certificate for 127.0.0.1 and its key (DER, PKCS#8).
    pub(crate) fn server_certificate(&self) -> (Vec<u8>, Vec<u8>) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}
