//! Managed identity endpoints: real HTTP (and HTTPS for Service Fabric) against a running
//! emulator.

use std::error::Error;
use std::time::Duration;

use entra_emulator::{Emulator, FaultBody};
use entra_emulator::{
    EndpointKind, Fault, FaultAction, FaultMatcher, ManagedIdentity, REDACTED, RecordedRequest,
};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};

type TestResult = Result<(), Box<dyn Error>>;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GRAPH: &str = "https://graph.microsoft.com";
const VAULT: &str = "https://vault.azure.net";
const IMDS_SERVER: &str = "IMDS/150.870.65.1854";

fn system() -> ManagedIdentity {
    ManagedIdentity::new(
        TENANT,
        "a1a1a1a1-0000-0000-0000-000000000001",
        "b1b1b1b1-0000-0000-0000-000000000001",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
    )
}

fn user() -> ManagedIdentity {
    ManagedIdentity::new(
        TENANT,
        "a2a2a2a2-0000-0000-0000-000000000002",
        "b2b2b2b2-0000-0000-0000-000000000002",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u2",
    )
}

/// An emulator with a system-assigned and a user-assigned identity, and a plain HTTP client.
async fn setup() -> Result<(Emulator, Client), Box<dyn Error>> {
    let emulator = Emulator::start().await?;
    emulator.add_tenant(TENANT)?;
    emulator.set_system_assigned_identity(system())?;
    emulator.add_user_assigned_identity(user())?;
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok((emulator, client))
}

/// Send and return status, headers and the JSON body (`Null` when empty or not JSON).
async fn send(request: RequestBuilder) -> Result<(u16, http::HeaderMap, Value), Box<dyn Error>> {
    let response: Response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, headers, body))
}

/// Check the claims of a managed identity token.
fn verify(
    emulator: &Emulator,
    token: &Value,
    identity: &ManagedIdentity,
    resource: &str,
) -> Result<Value, Box<dyn Error>> {
    let token = token.as_str().ok_or("access_token is not a string")?;
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &emulator.decoding_key(),
        &emulator.validation(TENANT, resource),
    )?
    .claims;
    assert_eq!(claims["aud"], resource);
    assert_eq!(claims["iss"], emulator.issuer(TENANT));
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["appid"], identity.client_id.as_str());
    assert_eq!(claims["azp"], identity.client_id.as_str());
    assert_eq!(claims["oid"], identity.object_id.as_str());
    assert_eq!(claims["sub"], identity.object_id.as_str());
    assert_eq!(claims["xms_mirid"], identity.resource_id.as_str());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "1.0");
    assert!(claims["uti"].as_str().is_some_and(|u| !u.is_empty()));
    let iat = claims["iat"].as_u64().ok_or("iat")?;
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 24 * 3600));
    Ok(claims)
}

fn imds(emulator: &Emulator, client: &Client, query: &str) -> RequestBuilder {
    client
        .get(format!(
            "{}/metadata/identity/oauth2/token?{query}",
            emulator.http_url()
        ))
        .header("Metadata", "true")
}

fn server(headers: &http::HeaderMap) -> Option<&str> {
    headers.get("server").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn imds_issues_tokens_for_system_and_user_assigned_identities() -> TestResult {
    let (emulator, client) = setup().await?;
    let q = format!("api-version=2018-02-01&resource={GRAPH}");

    let (status, headers, body) = send(imds(&emulator, &client, &q)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server(&headers), Some(IMDS_SERVER));
    let claims = verify(&emulator, &body["access_token"], &system(), GRAPH)?;
    assert_eq!(body["client_id"], system().client_id.as_str());
    assert_eq!(body["expires_in"], "86399");
    assert_eq!(body["ext_expires_in"], "86399");
    assert_eq!(body["expires_on"], claims["exp"].to_string().as_str());
    assert_eq!(body["not_before"], claims["nbf"].to_string().as_str());
    assert_eq!(body["resource"], GRAPH);
    assert_eq!(body["token_type"], "Bearer");

    let u = user();
    for selector in [
        format!("client_id={}", u.client_id),
        format!("object_id={}", u.object_id),
        format!("msi_res_id={}", u.resource_id),
    ] {
        let (status, _, body) = send(imds(&emulator, &client, &format!("{q}&{selector}"))).await?;
        assert_eq!(status, 200, "{selector}: {body}");
        verify(&emulator, &body["access_token"], &u, GRAPH)?;
        assert_eq!(body["client_id"], u.client_id.as_str());
    }
    Ok(())
}

#[tokio::test]
async fn imds_errors() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.add_tenant(TENANT)?;
    let client = Client::new();
    let q = format!("api-version=2018-02-01&resource={GRAPH}");
    let not_found = json!({"error": "invalid_request", "error_description": "Identity not found"});

    // No system-assigned identity yet.
    let (status, headers, body) = send(imds(&emulator, &client, &q)).await?;
    assert_eq!((status, &body), (400, &not_found));
    assert_eq!(server(&headers), Some(IMDS_SERVER));

    emulator.set_system_assigned_identity(system())?;
    let (status, _, body) =
        send(imds(&emulator, &client, &format!("{q}&client_id=nobody"))).await?;
    assert_eq!((status, &body), (400, &not_found));
    // The system identity's own object id selects no user-assigned identity.
    let selector = format!("{q}&object_id={}", system().object_id);
    let (status, _, body) = send(imds(&emulator, &client, &selector)).await?;
    assert_eq!((status, &body), (400, &not_found));

    // No Metadata header.
    let (status, headers, body) = send(client.get(format!(
        "{}/metadata/identity/oauth2/token?{q}",
        emulator.http_url()
    )))
    .await?;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );
    assert_eq!(server(&headers), Some(IMDS_SERVER));

    for query in [
        format!("resource={GRAPH}"),
        format!("api-version=1999-01-01&resource={GRAPH}"),
        format!("{q}&client_id=a&object_id=b"),
        "api-version=2018-02-01".to_owned(),
        "api-version=2018-02-01&resource=https://unknown.example".to_owned(),
    ] {
        let (status, headers, body) = send(imds(&emulator, &client, &query)).await?;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].is_string(), "{query}: {body}");
        assert_eq!(server(&headers), Some(IMDS_SERVER));
    }

    // A shorter lifetime is reflected in the answer.
    emulator.set_mi_token_lifetime(Duration::from_secs(600));
    let (status, _, body) = send(imds(&emulator, &client, &q)).await?;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], "599");
    Ok(())
}

fn app_service(emulator: &Emulator, client: &Client, query: &str) -> RequestBuilder {
    client
        .get(format!("{}/msi/token?{query}", emulator.http_url()))
        .header("X-IDENTITY-HEADER", emulator.app_service_secret())
}

#[tokio::test]
async fn app_service_tokens_and_errors() -> TestResult {
    let (emulator, client) = setup().await?;
    let q = format!("api-version=2019-08-01&resource={VAULT}");

    let (status, _, body) = send(app_service(&emulator, &client, &q)).await?;
    assert_eq!(status, 200, "{body}");
    let claims = verify(&emulator, &body["access_token"], &system(), VAULT)?;
    assert_eq!(body["expires_on"], claims["exp"].to_string().as_str());
    assert_eq!(body["resource"], VAULT);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], system().client_id.as_str());

    let u = user();
    for selector in [
        format!("client_id={}", u.client_id),
        format!("object_id={}", u.object_id),
        format!("mi_res_id={}", u.resource_id),
    ] {
        let (status, _, body) =
            send(app_service(&emulator, &client, &format!("{q}&{selector}"))).await?;
        assert_eq!(status, 200, "{selector}: {body}");
        verify(&emulator, &body["access_token"], &u, VAULT)?;
    }

    let (status, _, body) = send(app_service(
        &emulator,
        &client,
        &format!("{q}&client_id=nobody"),
    ))
    .await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "IdentityNotFound");
    assert!(body["error"]["message"].is_string());

    let url = format!("{}/msi/token?{q}", emulator.http_url());
    let (status, _, body) = send(client.get(&url)).await?;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "Unauthorized");
    let (status, _, body) = send(client.get(&url).header("X-IDENTITY-HEADER", "wrong")).await?;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "Unauthorized");

    // The date form of expires_on.
    emulator.set_app_service_expires_on_as_date(true);
    let (status, _, body) = send(app_service(&emulator, &client, &q)).await?;
    assert_eq!(status, 200);
    let date = body["expires_on"].as_str().ok_or("expires_on")?;
    let b = date.as_bytes();
    assert_eq!(date.len(), "11/23/2026 14:05:00 +00:00".len(), "{date}");
    assert!(date.ends_with(" +00:00"), "{date}");
    assert_eq!(
        (b[2], b[5], b[10], b[13], b[16]),
        (b'/', b'/', b' ', b':', b':')
    );

    // The secret never reaches the log.
    let secret = emulator.app_service_secret().to_owned();
    let log = emulator.requests();
    assert!(log.iter().all(|r| r.endpoint == EndpointKind::AppService));
    assert_eq!(log[0].header("x-identity-header"), Some(REDACTED));
    assert!(!format!("{log:?}").contains(&secret));
    Ok(())
}

#[tokio::test]
async fn service_fabric_over_pinned_https() -> TestResult {
    let (emulator, _) = setup().await?;
    let url = emulator.service_fabric_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let thumbprint = emulator.service_fabric_thumbprint();
    assert_eq!(thumbprint.len(), 40);
    assert_eq!(thumbprint, thumbprint.to_ascii_uppercase());

    // A client trusting the emulator CA refuses the certificate: only pinning trusts it.
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes())?;
    let ca_client = Client::builder().tls_certs_only([ca]).build()?;
    let endpoint = format!("{url}/metadata/identity/oauth2/token");
    assert!(ca_client.get(&endpoint).send().await.is_err());

    // Pinning: accept the certificate, then check its SHA-1 thumbprint.
    let client = Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()?;
    let q = format!("{endpoint}?api-version=2019-07-01-preview&resource={GRAPH}");
    let response = client
        .get(&q)
        .header("secret", emulator.service_fabric_secret())
        .send()
        .await?;
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .ok_or("no tls info")?;
    let der = info.peer_certificate().ok_or("no peer certificate")?;
    assert_eq!(hex::encode_upper(Sha1::digest(der)), thumbprint);
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await?;
    let claims = verify(&emulator, &body["access_token"], &system(), GRAPH)?;
    assert_eq!(body["expires_on"], claims["exp"]);
    assert!(body["expires_on"].is_u64());
    assert_eq!(body["resource"], GRAPH);
    assert_eq!(body["token_type"], "Bearer");

    let with_secret = |u: String| {
        client
            .get(u)
            .header("secret", emulator.service_fabric_secret())
    };
    let (status, _, body) =
        send(with_secret(format!("{q}&principalId={}", user().object_id))).await?;
    assert_eq!(status, 200, "{body}");
    verify(&emulator, &body["access_token"], &user(), GRAPH)?;

    let (status, _, body) = send(with_secret(format!("{q}&principalId=nobody"))).await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "IdentityNotFound");

    let (status, _, body) = send(client.get(&q)).await?;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "Unauthorized");

    let log = emulator.requests();
    assert!(
        log.iter()
            .all(|r| r.endpoint == EndpointKind::ServiceFabric)
    );
    assert_eq!(log[0].header("secret"), Some(REDACTED));
    Ok(())
}

fn arc(emulator: &Emulator, client: &Client, query: &str) -> RequestBuilder {
    client
        .get(format!(
            "{}/arc/metadata/identity/oauth2/token?{query}",
            emulator.http_url()
        ))
        .header("Metadata", "true")
}

/// The key file path a 401 names.
fn realm(headers: &http::HeaderMap) -> Result<String, Box<dyn Error>> {
    let value = headers
        .get("www-authenticate")
        .ok_or("no WWW-Authenticate")?
        .to_str()?;
    Ok(value
        .strip_prefix("Basic realm=")
        .ok_or("not a basic challenge")?
        .to_owned())
}

#[tokio::test]
async fn arc_challenge_and_response() -> TestResult {
    let (emulator, client) = setup().await?;
    let q = format!("api-version=2020-06-01&resource={GRAPH}");

    let (status, headers, _) = send(arc(&emulator, &client, &q)).await?;
    assert_eq!(status, 401);
    let path = std::path::PathBuf::from(realm(&headers)?);
    assert!(path.is_absolute());
    assert_eq!(path.parent(), Some(emulator.arc_key_directory().as_path()));
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("key"));
    let key = std::fs::read_to_string(&path)?;
    assert_eq!(key.len(), 32);

    let (status, _, body) =
        send(arc(&emulator, &client, &q).header("Authorization", format!("Basic {key}"))).await?;
    assert_eq!(status, 200, "{body}");
    let claims = verify(&emulator, &body["access_token"], &system(), GRAPH)?;
    assert_eq!(body["expires_on"], claims["exp"].to_string().as_str());
    assert_eq!(body["expires_in"], "86399");
    assert_eq!(body["resource"], GRAPH);

    // Wrong content: a new challenge.
    let (status, headers, _) =
        send(arc(&emulator, &client, &q).header("Authorization", "Basic not-the-key")).await?;
    assert_eq!(status, 401);
    assert_ne!(std::path::PathBuf::from(realm(&headers)?), path);

    // Arc serves the system-assigned identity only.
    let selector = format!("{q}&client_id={}", user().client_id);
    let (status, _, body) =
        send(arc(&emulator, &client, &selector).header("Authorization", format!("Basic {key}")))
            .await?;
    assert_eq!(status, 400, "{body}");

    // No Metadata header.
    let url = format!(
        "{}/arc/metadata/identity/oauth2/token?{q}",
        emulator.http_url()
    );
    let (status, _, _) = send(client.get(url)).await?;
    assert_eq!(status, 400);

    // A chosen directory and an oversized key file.
    let dir = emulator.arc_key_directory().join("custom");
    emulator.set_arc_key_directory(dir.clone());
    emulator.set_arc_key_file_size(5000);
    let (status, headers, _) = send(arc(&emulator, &client, &q)).await?;
    assert_eq!(status, 401);
    let path = std::path::PathBuf::from(realm(&headers)?);
    assert_eq!(path.parent(), Some(dir.as_path()));
    assert_eq!(std::fs::metadata(&path)?.len(), 5000);

    // The Authorization value never reaches the log.
    let log = emulator.requests();
    assert!(log.iter().all(|r| r.endpoint == EndpointKind::Arc));
    assert_eq!(log[1].header("authorization"), Some(REDACTED));
    assert!(!format!("{log:?}").contains(&key));
    Ok(())
}

#[tokio::test]
async fn cloud_shell_tokens_and_errors() -> TestResult {
    let (emulator, client) = setup().await?;
    let url = format!("{}/cloudshell/token", emulator.http_url());

    let (status, _, body) = send(
        client
            .post(&url)
            .header("Metadata", "true")
            .form(&[("resource", GRAPH)]),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().ok_or("token")?;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &emulator.decoding_key(),
        &emulator.validation(TENANT, GRAPH),
    )?
    .claims;
    assert_eq!(claims["appid"], system().client_id.as_str());
    assert_eq!(claims["xms_mirid"], system().resource_id.as_str());
    assert_eq!(body["expires_in"], "3600");
    assert_eq!(body["expires_on"], claims["exp"].to_string().as_str());
    assert_eq!(body["resource"], GRAPH);
    assert_eq!(body["token_type"], "Bearer");

    let (status, _, body) = send(client.post(&url).form(&[("resource", GRAPH)])).await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "Required metadata header not specified"
    );

    let (status, _, _) = send(client.post(&url).header("Metadata", "true").form(&[
        ("resource", GRAPH),
        ("client_id", user().client_id.as_str()),
    ]))
    .await?;
    assert_eq!(status, 400);

    let (status, _, body) = send(
        client
            .post(&url)
            .header("Metadata", "true")
            .form(&[("resource", "https://unknown.example")]),
    )
    .await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_resource");
    Ok(())
}

fn ml(emulator: &Emulator, client: &Client, query: &str) -> RequestBuilder {
    client
        .get(format!("{}/ml/token?{query}", emulator.http_url()))
        .header("Metadata", "true")
        .header("secret", emulator.ml_secret())
}

#[tokio::test]
async fn machine_learning_tokens_and_errors() -> TestResult {
    let (emulator, client) = setup().await?;
    let q = format!("api-version=2017-09-01&resource={GRAPH}");

    let (status, _, body) = send(ml(&emulator, &client, &q)).await?;
    assert_eq!(status, 200, "{body}");
    let claims = verify(&emulator, &body["access_token"], &system(), GRAPH)?;
    assert!(body["expires_on"].is_u64());
    assert_eq!(body["expires_on"], claims["exp"]);
    assert_eq!(body["client_id"], system().client_id.as_str());
    assert_eq!(body["resource"], GRAPH);
    assert_eq!(body["token_type"], "Bearer");

    let selector = format!("{q}&clientid={}", user().client_id);
    let (status, _, body) = send(ml(&emulator, &client, &selector)).await?;
    assert_eq!(status, 200, "{body}");
    verify(&emulator, &body["access_token"], &user(), GRAPH)?;
    assert_eq!(body["client_id"], user().client_id.as_str());

    let (status, _, body) = send(ml(&emulator, &client, &format!("{q}&clientid=nobody"))).await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "IdentityNotFound");

    let url = format!("{}/ml/token?{q}", emulator.http_url());
    let (status, _, _) = send(client.get(&url).header("Metadata", "true")).await?;
    assert_eq!(status, 401);
    let (status, _, _) = send(
        client
            .get(&url)
            .header("Metadata", "true")
            .header("secret", "wrong"),
    )
    .await?;
    assert_eq!(status, 401);
    let (status, _, _) = send(client.get(&url).header("secret", emulator.ml_secret())).await?;
    assert_eq!(status, 400);

    let log = emulator.requests();
    assert!(
        log.iter()
            .all(|r| r.endpoint == EndpointKind::MachineLearning)
    );
    assert!(
        log[1]
            .query
            .as_deref()
            .is_some_and(|q| q.contains("clientid="))
    );
    assert!(!format!("{log:?}").contains(emulator.ml_secret()));
    Ok(())
}

#[tokio::test]
async fn faults_apply_to_managed_identity_endpoints() -> TestResult {
    let (emulator, client) = setup().await?;
    let q = format!("api-version=2018-02-01&resource={GRAPH}");

    // IMDS upgrading: 410 five times, then a token.
    emulator.add_fault(
        Fault::new(
            FaultMatcher::endpoint(EndpointKind::Imds),
            FaultAction::status(410),
        )
        .times(5),
    )?;
    for _ in 0..5 {
        let (status, headers, _) = send(imds(&emulator, &client, &q)).await?;
        assert_eq!(status, 410);
        assert_eq!(server(&headers), Some(IMDS_SERVER));
    }
    let (status, _, _) = send(imds(&emulator, &client, &q)).await?;
    assert_eq!(status, 200);

    // 429 with Retry-After on App Service, with an error body of App Service's shape.
    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::AppService),
        FaultAction::Status {
            status: 429,
            body: FaultBody::Json {
                value: json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            },
            retry_after: Some(3),
        },
    ))?;
    let (status, headers, body) = send(app_service(
        &emulator,
        &client,
        &format!("api-version=2019-08-01&resource={GRAPH}"),
    ))
    .await?;
    assert_eq!(status, 429);
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_eq!(body["error"]["code"], "TooManyRequests");

    // Malformed JSON from Azure ML, a 500 from Cloud Shell, a slow Arc.
    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::MachineLearning),
        FaultAction::MalformedJson,
    ))?;
    let response = ml(&emulator, &client, "api-version=2017-09-01&resource=x")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert!(serde_json::from_str::<Value>(&response.text().await?).is_err());

    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::CloudShell),
        FaultAction::status(500),
    ))?;
    let (status, _, _) = send(
        client
            .post(format!("{}/cloudshell/token", emulator.http_url()))
            .header("Metadata", "true")
            .form(&[("resource", GRAPH)]),
    )
    .await?;
    assert_eq!(status, 500);

    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::Arc),
        FaultAction::delay(Duration::from_secs(30)),
    ))?;
    let slow = arc(&emulator, &client, "api-version=2020-06-01")
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));

    // The log names every fault and its endpoint.
    let faulted: Vec<(EndpointKind, Option<u16>)> = emulator
        .requests()
        .iter()
        .filter(|r: &&RecordedRequest| r.fault.is_some())
        .map(|r| (r.endpoint, r.status))
        .collect();
    let mut expected = vec![(EndpointKind::Imds, Some(410)); 5];
    expected.extend([
        (EndpointKind::AppService, Some(429)),
        (EndpointKind::MachineLearning, Some(200)),
        (EndpointKind::CloudShell, Some(500)),
        (EndpointKind::Arc, None),
    ]);
    assert_eq!(faulted, expected);
    let imds_log: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == EndpointKind::Imds)
        .collect();
    assert_eq!(imds_log.len(), 6);
    assert_eq!(imds_log[0].fault.as_deref(), Some("status"));
    assert_eq!(imds_log[0].header("metadata"), Some("true"));
    assert!(
        imds_log[0]
            .query
            .as_deref()
            .is_some_and(|q| q.contains("api-version=2018-02-01"))
    );
    Ok(())
}

#[tokio::test]
async fn admin_api_adds_managed_identities() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.add_tenant(TENANT)?;
    let client = Client::new();
    let admin = format!("{}/_emulator/managed-identities", emulator.http_url());
    let u = user();
    for (system_assigned, identity) in [(true, system()), (false, u.clone())] {
        let (status, _, body) = send(client.post(&admin).json(&json!({
            "system_assigned": system_assigned,
            "tenant": identity.tenant,
            "client_id": identity.client_id,
            "object_id": identity.object_id,
            "resource_id": identity.resource_id,
        })))
        .await?;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["client_id"], identity.client_id.as_str());
    }
    let (status, _, _) = send(client.post(&admin).json(&json!({
        "tenant": "unknown-tenant", "client_id": "c", "object_id": "o", "resource_id": "r",
    })))
    .await?;
    assert_eq!(status, 404);
    assert!(
        emulator
            .add_user_assigned_identity(ManagedIdentity::new("unknown-tenant", "c", "o", "r"))
            .is_err()
    );

    let q = format!("api-version=2018-02-01&resource={GRAPH}");
    let (status, _, body) = send(imds(&emulator, &client, &q)).await?;
    assert_eq!(status, 200, "{body}");
    verify(&emulator, &body["access_token"], &system(), GRAPH)?;
    let (status, _, body) = send(imds(
        &emulator,
        &client,
        &format!("{q}&client_id={}", u.client_id),
    ))
    .await?;
    assert_eq!(status, 200, "{body}");
    verify(&emulator, &body["access_token"], &u, GRAPH)?;

    let (_, _, info) = send(client.get(format!("{}/_emulator/info", emulator.http_url()))).await?;
    assert_eq!(
        info["managed_identity"]["service_fabric_thumbprint"],
        emulator.service_fabric_thumbprint().as_str()
    );
    Ok(())
}
