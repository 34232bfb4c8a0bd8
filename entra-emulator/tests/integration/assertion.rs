//! Certificate assertions: success and each failure.

use std::time::Duration;

use entra_emulator::testing::{TestCertificate, client_certificate};
use entra_emulator::{AppRegistration, Emulator};
use serde_json::{Value, json};

use crate::common::*;

const CERT_APP: &str = "cccccccc-0000-0000-0000-000000000001";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Fixture {
    emulator: Emulator,
    client: reqwest::Client,
    cert: TestCertificate,
    other: TestCertificate,
}

async fn fixture() -> Result<Fixture, Box<dyn std::error::Error>> {
    let (emulator, client) = setup().await?;
    let cert = client_certificate("cert-app");
    let other = client_certificate("someone-else");
    emulator.add_application(
        TENANT,
        AppRegistration::new(CERT_APP).certificate_pem(&cert.cert_pem)?,
    )?;
    Ok(Fixture {
        emulator,
        client,
        cert,
        other,
    })
}

fn now(emulator: &Emulator) -> u64 {
    emulator
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Fixture {
    fn claims(&self) -> Value {
        let now = now(&self.emulator);
        json!({
            "aud": self.emulator.token_endpoint(TENANT),
            "iss": CERT_APP,
            "sub": CERT_APP,
            "jti": uuid_like(),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        })
    }

    async fn send(&self, assertion: &str) -> Result<(u16, Value), Box<dyn std::error::Error>> {
        let scope = format!("{GRAPH}/.default");
        post_token(
            &self.client,
            &self.emulator,
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CERT_APP),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
                ("scope", &scope),
            ],
        )
        .await
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "jti-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test]
async fn certificate_assertion_succeeds() -> TestResult {
    let f = fixture().await?;
    let assertion = f.cert.client_assertion(
        CERT_APP,
        &f.emulator.token_endpoint(TENANT),
        f.emulator.now(),
    )?;
    let (status, body) = f.send(&assertion).await?;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().ok_or("token")?;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &f.emulator.decoding_key(),
        &f.emulator.validation(TENANT, GRAPH),
    )?
    .claims;
    assert_eq!(claims["appid"], CERT_APP);
    assert_eq!(claims["appidacr"], "2");

    // RS256 with only the legacy x5t, and an audience with a trailing slash, are accepted.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(f.cert.sha1_thumbprint_b64url.clone());
    let mut claims = f.claims();
    claims["aud"] = json!(format!("{}/", f.emulator.token_endpoint(TENANT)));
    let (status, body) = f.send(&f.cert.sign(&header, &claims)?).await?;
    assert_eq!(status, 200, "{body}");

    // No thumbprint at all: every registered certificate is tried.
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    let (status, body) = f.send(&f.cert.sign(&header, &f.claims())?).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

async fn expect(f: &Fixture, assertion: &str, status: u16, aadsts: u64) -> TestResult {
    let (got, body) = f.send(assertion).await?;
    assert_eq!((got, code(&body)), (status, Some(aadsts)), "{body}");
    assert!(body["error"].is_string());
    Ok(())
}

#[tokio::test]
async fn bad_signature_is_refused() -> TestResult {
    let f = fixture().await?;
    // Header names the registered certificate, but the other key signs.
    let assertion = f.other.sign(&f.cert.assertion_header(), &f.claims())?;
    expect(&f, &assertion, 401, 700027).await
}

#[tokio::test]
async fn unknown_thumbprint_is_refused() -> TestResult {
    let f = fixture().await?;
    let assertion = f.other.sign(&f.other.assertion_header(), &f.claims())?;
    expect(&f, &assertion, 401, 700027).await
}

#[tokio::test]
async fn expired_and_future_assertions_are_refused() -> TestResult {
    let f = fixture().await?;
    let now = now(&f.emulator);
    let mut expired = f.claims();
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 6600);
    expect(
        &f,
        &f.cert.sign(&f.cert.assertion_header(), &expired)?,
        401,
        700024,
    )
    .await?;

    let mut future = f.claims();
    future["nbf"] = json!(now + 3600);
    future["iat"] = json!(now + 3600);
    future["exp"] = json!(now + 3900);
    expect(
        &f,
        &f.cert.sign(&f.cert.assertion_header(), &future)?,
        401,
        700024,
    )
    .await?;

    let mut too_long = f.claims();
    too_long["exp"] = json!(now + 86_400);
    expect(
        &f,
        &f.cert.sign(&f.cert.assertion_header(), &too_long)?,
        401,
        700024,
    )
    .await
}

#[tokio::test]
async fn wrong_audience_is_refused() -> TestResult {
    let f = fixture().await?;
    for aud in [
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
        f.emulator.token_endpoint("other-tenant"),
        f.emulator.https_url(),
    ] {
        let mut claims = f.claims();
        claims["aud"] = json!(aud);
        expect(
            &f,
            &f.cert.sign(&f.cert.assertion_header(), &claims)?,
            401,
            700023,
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn issuer_must_be_the_client() -> TestResult {
    let f = fixture().await?;
    let mut claims = f.claims();
    claims["iss"] = json!("someone-else");
    claims["sub"] = json!("someone-else");
    expect(
        &f,
        &f.cert.sign(&f.cert.assertion_header(), &claims)?,
        401,
        700021,
    )
    .await
}

#[tokio::test]
async fn replayed_jti_is_refused() -> TestResult {
    let f = fixture().await?;
    let assertion = f.cert.sign(&f.cert.assertion_header(), &f.claims())?;
    let (status, body) = f.send(&assertion).await?;
    assert_eq!(status, 200, "{body}");
    expect(&f, &assertion, 401, 50013).await?;

    let mut no_jti = f.claims();
    no_jti.as_object_mut().map(|m| m.remove("jti"));
    expect(
        &f,
        &f.cert.sign(&f.cert.assertion_header(), &no_jti)?,
        400,
        50027,
    )
    .await
}

#[tokio::test]
async fn malformed_assertions_are_refused() -> TestResult {
    let f = fixture().await?;
    expect(&f, "not-a-jwt", 400, 50027).await?;
    expect(&f, "e30.e30.e30", 400, 50027).await?;

    // Wrong client_assertion_type.
    let scope = format!("{GRAPH}/.default");
    let assertion = f.cert.sign(&f.cert.assertion_header(), &f.claims())?;
    let (status, body) = post_token(
        &f.client,
        &f.emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CERT_APP),
            ("client_assertion_type", "urn:something:else"),
            ("client_assertion", &assertion),
            ("scope", &scope),
        ],
    )
    .await?;
    assert_eq!((status, code(&body)), (400, Some(9002313)), "{body}");
    Ok(())
}

#[tokio::test]
async fn emulator_clock_drives_validation() -> TestResult {
    // An emulator whose clock runs two hours ahead refuses an assertion made "now".
    let emulator = Emulator::start_with(
        entra_emulator::EmulatorConfig::default()
            .clock(entra_emulator::Clock::ahead(Duration::from_secs(7200))),
    )
    .await?;
    emulator.add_tenant(TENANT)?;
    let cert = client_certificate("clock");
    emulator.add_application(
        TENANT,
        AppRegistration::new(CERT_APP).certificate_der(cert.cert_der.clone()),
    )?;
    let client = client(&emulator)?;
    let real_now = emulator.now() - Duration::from_secs(7200);
    let assertion = cert.client_assertion(CERT_APP, &emulator.token_endpoint(TENANT), real_now)?;
    let scope = format!("{GRAPH}/.default");
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CERT_APP),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
            ("scope", &scope),
        ],
    )
    .await?;
    assert_eq!((status, code(&body)), (401, Some(700024)), "{body}");
    Ok(())
}
