//! Shared helpers.

use std::error::Error;

use entra_emulator::{AppRegistration, Emulator};
use serde_json::Value;

pub(crate) type TestResult = Result<(), Box<dyn Error>>;

pub(crate) const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub(crate) const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
pub(crate) const SECRET: &str = "s3cret-Value~with.odd_chars";
pub(crate) const GRAPH: &str = "https://graph.microsoft.com";

/// An HTTPS client that trusts only the emulator's CA.
pub(crate) fn client(emulator: &Emulator) -> Result<reqwest::Client, Box<dyn Error>> {
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes())?;
    Ok(reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// An emulator with one tenant and one client-secret application, and a client for it.
pub(crate) async fn setup() -> Result<(Emulator, reqwest::Client), Box<dyn Error>> {
    let emulator = Emulator::start().await?;
    emulator.add_tenant(TENANT)?;
    emulator.add_application(TENANT, AppRegistration::new(CLIENT).client_secret(SECRET))?;
    let client = client(&emulator)?;
    Ok((emulator, client))
}

/// POST a form to the tenant's token endpoint; returns the status and the JSON body.
pub(crate) async fn post_token(
    client: &reqwest::Client,
    emulator: &Emulator,
    tenant: &str,
    form: &[(&str, &str)],
) -> Result<(u16, Value), Box<dyn Error>> {
    let response = client
        .post(emulator.token_endpoint(tenant))
        .form(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    Ok((status, body))
}

/// The form of a client-secret request.
pub(crate) fn secret_form<'a>(
    client_id: &'a str,
    secret: &'a str,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

/// The first AADSTS code of an error body.
pub(crate) fn code(body: &Value) -> Option<u64> {
    body["error_codes"].get(0).and_then(Value::as_u64)
}
