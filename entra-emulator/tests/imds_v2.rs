//! IMDSv2: platform metadata, certificate issuance from a CSR, and the mutual-TLS token leg,
//! with the client side (key, PSS-signed CSR, mTLS identity) built here.

use std::error::Error;
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, KeyPair as _, RSA_PSS_SHA256, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use entra_emulator::{Emulator, EndpointKind, Fault, FaultAction, FaultMatcher, ManagedIdentity};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::{FromDer as _, X509Certificate};

type TestResult = Result<(), Box<dyn Error>>;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GRAPH: &str = "https://graph.microsoft.com";
const IMDS_SERVER: &str = "IMDS/150.870.65.1854";
const SYSTEM_CLIENT: &str = "a1a1a1a1-0000-0000-0000-000000000001";
const USER_CLIENT: &str = "a2a2a2a2-0000-0000-0000-000000000002";

const OID_CN: &[u64] = &[2, 5, 4, 3];
const OID_DC: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
const OID_CU_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 90, 2, 10];
const OID_RSASSA_PSS: &[u64] = &[1, 2, 840, 113549, 1, 1, 10];
const OID_MGF1: &[u64] = &[1, 2, 840, 113549, 1, 1, 8];
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];

async fn setup() -> Result<Emulator, Box<dyn Error>> {
    let emulator = Emulator::start().await?;
    emulator.add_tenant(TENANT)?;
    emulator.add_resource(GRAPH)?;
    emulator.set_system_assigned_identity(ManagedIdentity::new(
        TENANT,
        SYSTEM_CLIENT,
        "b1b1b1b1-0000-0000-0000-000000000001",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
    ))?;
    emulator.add_user_assigned_identity(ManagedIdentity::new(
        TENANT,
        USER_CLIENT,
        "b2b2b2b2-0000-0000-0000-000000000002",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u2",
    ))?;
    Ok(emulator)
}

// ---- a tiny DER encoder ----

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut encode = |mut v: u64| {
        let mut bytes = vec![u8::try_from(v & 0x7f).unwrap_or(0)];
        v >>= 7;
        while v > 0 {
            bytes.push(0x80 | u8::try_from(v & 0x7f).unwrap_or(0));
            v >>= 7;
        }
        bytes.reverse();
        body.extend(bytes);
    };
    encode(arcs[0] * 40 + arcs[1]);
    for arc in &arcs[2..] {
        encode(*arc);
    }
    tlv(0x06, &body)
}

fn utf8(text: &str) -> Vec<u8> {
    tlv(0x0c, text.as_bytes())
}

fn ia5(text: &str) -> Vec<u8> {
    tlv(0x16, text.as_bytes())
}

fn int(v: u8) -> Vec<u8> {
    tlv(0x02, &[v])
}

fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

fn pss_algorithm() -> Vec<u8> {
    let sha256 = seq(&[oid(OID_SHA256), null()]);
    seq(&[
        oid(OID_RSASSA_PSS),
        seq(&[
            tlv(0xa0, &sha256),
            tlv(0xa1, &seq(&[oid(OID_MGF1), sha256.clone()])),
            tlv(0xa2, &int(32)),
        ]),
    ])
}

/// The client key: RSA 2048.
struct ClientKey {
    key: RsaKeyPair,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
}

fn client_key() -> Result<ClientKey, Box<dyn Error>> {
    let key = RsaKeyPair::generate(KeySize::Rsa2048)?;
    let pkcs8: Pkcs8V1Der<'static> = key.as_der()?;
    let spki: PublicKeyX509Der<'static> = key.public_key().as_der()?;
    Ok(ClientKey {
        pkcs8: pkcs8.as_ref().to_vec(),
        spki: spki.as_ref().to_vec(),
        key,
    })
}

/// What goes into a CSR (the defaults are right for the identity).
struct CsrSpec<'a> {
    cn: &'a str,
    dc: &'a str,
    /// The cuId attribute's content (`None`: no attribute).
    cu_id: Option<String>,
    /// Corrupt the signature.
    bad_signature: bool,
}

fn spec<'a>(emulator: &Emulator, cn: &'a str) -> CsrSpec<'a> {
    CsrSpec {
        cn,
        dc: TENANT,
        cu_id: Some(cu_id(emulator)),
        bad_signature: false,
    }
}

fn cu_id(emulator: &Emulator) -> String {
    match emulator.vmss_id() {
        Some(vmss) => json!({ "vmId": emulator.vm_id(), "vmssId": vmss }).to_string(),
        None => json!({ "vmId": emulator.vm_id() }).to_string(),
    }
}

/// A PKCS#10 CSR signed RSASSA-PSS SHA-256 / MGF1-SHA-256 / salt 32.
fn pss_csr(key: &ClientKey, spec: &CsrSpec<'_>) -> Result<Vec<u8>, Box<dyn Error>> {
    let name = seq(&[
        set(&[seq(&[oid(OID_CN), utf8(spec.cn)])]),
        set(&[seq(&[oid(OID_DC), ia5(spec.dc)])]),
    ]);
    let attributes = match &spec.cu_id {
        Some(text) => seq(&[oid(OID_CU_ID), set(&[utf8(text)])]),
        None => Vec::new(),
    };
    let info = seq(&[int(0), name, key.spki.clone(), tlv(0xa0, &attributes)]);
    let mut signature = vec![0; key.key.public_modulus_len()];
    key.key
        .sign(&RSA_PSS_SHA256, &SystemRandom::new(), &info, &mut signature)?;
    if spec.bad_signature {
        signature[10] ^= 0xff;
    }
    let mut bits = vec![0u8];
    bits.extend(signature);
    Ok(seq(&[info, pss_algorithm(), tlv(0x03, &bits)]))
}

/// A CSR as rcgen writes it: PKCS#1 v1.5 (sha256WithRSAEncryption).
fn pkcs1_csr(key: &ClientKey, cn: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let pkcs8 = rustls_pki_types_pkcs8(&key.pkcs8);
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(OID_DC.to_vec()),
        rcgen::DnValue::Ia5String(TENANT.try_into()?),
    );
    Ok(params.serialize_request(&key_pair)?.der().to_vec())
}

fn rustls_pki_types_pkcs8(der: &[u8]) -> rustls::pki_types::PrivatePkcs8KeyDer<'static> {
    rustls::pki_types::PrivatePkcs8KeyDer::from(der.to_vec())
}

// ---- requests ----

fn http() -> Result<Client, Box<dyn Error>> {
    Ok(Client::builder().timeout(Duration::from_secs(20)).build()?)
}

async fn platform_metadata(
    emulator: &Emulator,
    selector: &str,
) -> Result<Response, Box<dyn Error>> {
    Ok(http()?
        .get(format!(
            "{}/metadata/identity/getplatformmetadata?cred-api-version=2.0{selector}",
            emulator.http_url()
        ))
        .header("Metadata", "true")
        .send()
        .await?)
}

async fn issue_raw(
    emulator: &Emulator,
    selector: &str,
    csr: &str,
) -> Result<Response, Box<dyn Error>> {
    Ok(http()?
        .post(format!(
            "{}/metadata/identity/issuecredential?cred-api-version=2.0{selector}",
            emulator.http_url()
        ))
        .header("Metadata", "true")
        .json(&json!({ "csr": csr, "attestation_token": "" }))
        .send()
        .await?)
}

async fn issue(emulator: &Emulator, selector: &str, csr: &[u8]) -> Result<Value, Box<dyn Error>> {
    let response = issue_raw(emulator, selector, &STANDARD.encode(csr)).await?;
    assert_eq!(response.status(), 200);
    Ok(response.json().await?)
}

/// Assert a 400 `invalid_request` whose description contains `needle`.
async fn assert_rejected(response: Response, needle: &str) -> TestResult {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_request");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains(needle),
        "{description:?} should mention {needle:?}"
    );
    Ok(())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An HTTPS client trusting the emulator CA, presenting `identity` (certificate DER and key).
fn mtls_client(
    emulator: &Emulator,
    identity: Option<(&[u8], &ClientKey)>,
) -> Result<Client, Box<dyn Error>> {
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes())?;
    let mut builder = Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20));
    if let Some((cert, key)) = identity {
        let text = format!(
            "{}{}",
            pem("CERTIFICATE", cert),
            pem("PRIVATE KEY", &key.pkcs8)
        );
        builder = builder.identity(reqwest::Identity::from_pem(text.as_bytes())?);
    }
    Ok(builder.build()?)
}

async fn mtls_token(
    client: &Client,
    emulator: &Emulator,
    client_id: &str,
    token_type: Option<&str>,
) -> Result<Response, reqwest::Error> {
    let mut form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", client_id.to_owned()),
        ("scope", format!("{GRAPH}/.default")),
    ];
    if let Some(t) = token_type {
        form.push(("token_type", t.to_owned()));
    }
    client
        .post(format!(
            "{}/{TENANT}/oauth2/v2.0/token",
            emulator.mtls_url()
        ))
        .form(&form)
        .send()
        .await
}

/// The messages of an error and its sources ("no error" for a success).
fn error_chain<T>(result: Result<T, reqwest::Error>) -> String {
    let Err(e) = result else {
        return "no error".to_owned();
    };
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn jwt_claims(token: &str) -> Result<Value, Box<dyn Error>> {
    let payload = token.split('.').nth(1).ok_or("not a jwt")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

/// Mint a certificate for the system-assigned identity: (certificate DER, key).
async fn mint(emulator: &Emulator) -> Result<(Vec<u8>, ClientKey), Box<dyn Error>> {
    let key = client_key()?;
    let csr = pss_csr(&key, &spec(emulator, SYSTEM_CLIENT))?;
    let body = issue(emulator, "", &csr).await?;
    let cert = STANDARD.decode(body["certificate"].as_str().unwrap_or_default())?;
    Ok((cert, key))
}

// ---- tests ----

#[tokio::test]
async fn platform_metadata_names_the_identity_and_the_vm() -> TestResult {
    let emulator = setup().await?;
    let response = platform_metadata(&emulator, "").await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("server").map(|v| v.to_str().ok()),
        Some(Some(IMDS_SERVER))
    );
    let body: Value = response.json().await?;
    assert_eq!(body["clientId"], SYSTEM_CLIENT);
    assert_eq!(body["tenantId"], TENANT);
    assert_eq!(body["cuId"]["vmId"], emulator.vm_id().as_str());
    assert_eq!(
        body["cuId"]["vmssId"].as_str(),
        emulator.vmss_id().as_deref()
    );
    assert_eq!(
        body["attestationEndpoint"],
        format!("{}/attest", emulator.https_url()).as_str()
    );

    let user: Value = platform_metadata(&emulator, &format!("&client_id={USER_CLIENT}"))
        .await?
        .json()
        .await?;
    assert_eq!(user["clientId"], USER_CLIENT);

    emulator.set_vmss_id(None);
    let body: Value = platform_metadata(&emulator, "").await?.json().await?;
    assert!(body["cuId"].get("vmssId").is_none());

    let missing = http()?
        .get(format!(
            "{}/metadata/identity/getplatformmetadata?cred-api-version=2.0",
            emulator.http_url()
        ))
        .send()
        .await?;
    assert_eq!(missing.status(), 400);

    emulator.set_imds_v2_enabled(false);
    let response = platform_metadata(&emulator, "").await?;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers().get("server").map(|v| v.to_str().ok()),
        Some(Some(IMDS_SERVER))
    );
    assert_eq!(
        emulator.count(|r| r.endpoint == EndpointKind::ImdsPlatformMetadata),
        5
    );
    Ok(())
}

#[tokio::test]
async fn issuecredential_signs_the_csr_key_with_the_ca() -> TestResult {
    let emulator = setup().await?;
    let key = client_key()?;
    let csr = pss_csr(&key, &spec(&emulator, USER_CLIENT))?;
    let body = issue(&emulator, &format!("&client_id={USER_CLIENT}"), &csr).await?;
    assert_eq!(body["client_id"], USER_CLIENT);
    assert_eq!(body["tenant_id"], TENANT);
    assert_eq!(body["identity_type"], "UserAssigned");
    assert_eq!(
        body["mtls_authentication_endpoint"],
        emulator.mtls_url().as_str()
    );
    assert_eq!(emulator.issued_certificate_count(), 1);

    let der = STANDARD.decode(body["certificate"].as_str().unwrap_or_default())?;
    let (_, cert) = X509Certificate::from_der(&der)?;
    let (_, ca) = X509Certificate::from_der(emulator.ca_der())?;
    assert_eq!(cert.issuer(), ca.subject());
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        &ca.public_key().subject_public_key.data,
    )
    .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
    .map_err(|_| "certificate not signed by the emulator CA")?;
    assert_eq!(cert.public_key().raw, key.spki.as_slice());
    let cn: Vec<&str> = cert
        .subject()
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .collect();
    assert_eq!(cn, [USER_CLIENT]);
    let dc: Vec<&str> = cert
        .subject()
        .iter_by_oid(&x509_parser::oid_registry::OID_DOMAIN_COMPONENT)
        .filter_map(|a| a.as_str().ok())
        .collect();
    assert_eq!(dc, [TENANT]);
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(lifetime, 7 * 24 * 3600 + 300);

    let system = issue(
        &emulator,
        "",
        &pss_csr(&key, &spec(&emulator, SYSTEM_CLIENT))?,
    )
    .await?;
    assert_eq!(system["identity_type"], "SystemAssigned");
    assert_eq!(emulator.issued_certificate_count(), 2);

    emulator.set_bound_certificate_lifetime(Duration::from_secs(3600));
    let short = issue(
        &emulator,
        "",
        &pss_csr(&key, &spec(&emulator, SYSTEM_CLIENT))?,
    )
    .await?;
    let der = STANDARD.decode(short["certificate"].as_str().unwrap_or_default())?;
    let (_, cert) = X509Certificate::from_der(&der)?;
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(lifetime, 3600 + 300);

    // Without Metadata: true.
    let response = http()?
        .post(format!(
            "{}/metadata/identity/issuecredential?cred-api-version=2.0",
            emulator.http_url()
        ))
        .json(&json!({ "csr": "", "attestation_token": "" }))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    Ok(())
}

#[tokio::test]
async fn issuecredential_rejects_bad_csrs() -> TestResult {
    let emulator = setup().await?;
    let key = client_key()?;
    let send = |csr: Vec<u8>| {
        let emulator = &emulator;
        async move { issue_raw(emulator, "", &STANDARD.encode(csr)).await }
    };

    let wrong_cn = pss_csr(&key, &spec(&emulator, USER_CLIENT))?;
    assert_rejected(send(wrong_cn).await?, "CN").await?;

    let mut wrong_dc = spec(&emulator, SYSTEM_CLIENT);
    wrong_dc.dc = "00000000-0000-0000-0000-000000000000";
    assert_rejected(send(pss_csr(&key, &wrong_dc)?).await?, "DC").await?;

    let mut no_cu = spec(&emulator, SYSTEM_CLIENT);
    no_cu.cu_id = None;
    assert_rejected(send(pss_csr(&key, &no_cu)?).await?, "cuId").await?;

    let mut wrong_cu = spec(&emulator, SYSTEM_CLIENT);
    wrong_cu.cu_id = Some(json!({ "vmId": "someone-else" }).to_string());
    assert_rejected(send(pss_csr(&key, &wrong_cu)?).await?, "cuId").await?;

    let pkcs1 = pkcs1_csr(&key, SYSTEM_CLIENT)?;
    assert_rejected(send(pkcs1).await?, "RSASSA-PSS").await?;

    let mut bad_sig = spec(&emulator, SYSTEM_CLIENT);
    bad_sig.bad_signature = true;
    assert_rejected(send(pss_csr(&key, &bad_sig)?).await?, "signature").await?;

    assert_rejected(issue_raw(&emulator, "", "not base64!!").await?, "base64").await?;
    assert_rejected(
        issue_raw(&emulator, "", &STANDARD.encode(b"garbage")).await?,
        "PKCS#10",
    )
    .await?;

    assert_eq!(emulator.issued_certificate_count(), 0);
    assert_eq!(
        emulator.count(|r| r.endpoint == EndpointKind::ImdsIssueCredential),
        8
    );
    Ok(())
}

#[tokio::test]
async fn mtls_token_is_bound_to_the_certificate() -> TestResult {
    let emulator = setup().await?;
    let (cert, key) = mint(&emulator).await?;
    let client = mtls_client(&emulator, Some((&cert, &key)))?;

    let response = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["token_type"], "mtls_pop");
    assert_eq!(body["expires_in"], 3599);
    let claims = jwt_claims(body["access_token"].as_str().unwrap_or_default())?;
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(&cert)).as_str()
    );
    assert_eq!(claims["aud"], GRAPH);
    assert_eq!(claims["appid"], SYSTEM_CLIENT);
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["idtyp"], "app");

    // Without token_type=mtls_pop: a Bearer token without cnf.
    let body: Value = mtls_token(&client, &emulator, SYSTEM_CLIENT, None)
        .await?
        .json()
        .await?;
    assert_eq!(body["token_type"], "Bearer");
    let claims = jwt_claims(body["access_token"].as_str().unwrap_or_default())?;
    assert!(claims.get("cnf").is_none());

    // The token_type override.
    emulator.set_mtls_token_type_override(Some("Bearer".to_owned()));
    let body: Value = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop"))
        .await?
        .json()
        .await?;
    assert_eq!(body["token_type"], "Bearer");
    emulator.set_mtls_token_type_override(Some(String::new()));
    let body: Value = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop"))
        .await?
        .json()
        .await?;
    assert!(body.get("token_type").is_none());
    emulator.set_mtls_token_type_override(None);

    // xms_cc from claims.
    let response = client
        .post(format!(
            "{}/{TENANT}/oauth2/v2.0/token",
            emulator.mtls_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SYSTEM_CLIENT),
            ("scope", &format!("{GRAPH}/.default")),
            ("token_type", "mtls_pop"),
            (
                "claims",
                r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#,
            ),
        ])
        .send()
        .await?;
    let body: Value = response.json().await?;
    let claims = jwt_claims(body["access_token"].as_str().unwrap_or_default())?;
    assert_eq!(claims["xms_cc"], json!(["cp1"]));

    // Unknown resource: as Entra.
    let response = client
        .post(format!(
            "{}/{TENANT}/oauth2/v2.0/token",
            emulator.mtls_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SYSTEM_CLIENT),
            ("scope", "https://unknown.example/.default"),
            ("token_type", "mtls_pop"),
        ])
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_resource");

    assert_eq!(emulator.count(|r| r.endpoint == EndpointKind::MtlsToken), 6);
    Ok(())
}

#[tokio::test]
async fn mtls_token_requires_a_client_certificate() -> TestResult {
    let emulator = setup().await?;
    let client = mtls_client(&emulator, None)?;
    let chain = error_chain(mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await);
    assert!(chain.contains("alert: CertificateRequired"), "{chain}");
    Ok(())
}

#[tokio::test]
async fn mtls_token_refuses_a_mismatched_or_revoked_certificate() -> TestResult {
    let emulator = setup().await?;
    let (cert, key) = mint(&emulator).await?;
    let client = mtls_client(&emulator, Some((&cert, &key)))?;

    let response = mtls_token(&client, &emulator, USER_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .starts_with("AADSTS")
    );

    emulator.revoke_bound_certificates();
    let response = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_client");

    // A fresh certificate works again.
    let (cert, key) = mint(&emulator).await?;
    let client = mtls_client(&emulator, Some((&cert, &key)))?;
    let response = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 200);
    Ok(())
}

#[tokio::test]
async fn mtls_faults_reject_handshakes_and_answer_invalid_client() -> TestResult {
    let emulator = setup().await?;
    let (cert, key) = mint(&emulator).await?;
    let client = mtls_client(&emulator, Some((&cert, &key)))?;

    emulator.reject_mtls_handshakes(1);
    let chain = error_chain(mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await);
    assert!(chain.contains("alert: BadCertificate"), "{chain}");
    let response = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 200);

    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::MtlsToken),
        FaultAction::invalid_client(),
    ))?;
    let response = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_client");
    let response = mtls_token(&client, &emulator, SYSTEM_CLIENT, Some("mtls_pop")).await?;
    assert_eq!(response.status(), 200);
    Ok(())
}

#[tokio::test]
async fn admin_exposes_imds_v2() -> TestResult {
    let emulator = setup().await?;
    let info: Value = http()?
        .get(format!("{}/_emulator/info", emulator.http_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(info["mtls"], emulator.mtls_url().as_str());
    assert_eq!(info["imds_v2"]["vm_id"], emulator.vm_id().as_str());
    let settings: Value = http()?
        .post(format!("{}/_emulator/settings", emulator.http_url()))
        .json(&json!({ "imds_v2_enabled": false, "reject_mtls_handshakes": 2 }))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(settings["imds_v2_enabled"], false);
    assert_eq!(settings["reject_mtls_handshakes"], 2);
    assert_eq!(platform_metadata(&emulator, "").await?.status(), 404);
    Ok(())
}
