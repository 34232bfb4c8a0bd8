//! AADSTS-shaped error answers, the way Entra ID's token service writes them. The codes used
//! and when are listed in the crate documentation (section "Errors").

use std::borrow::Cow;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::clock::format_timestamp;

/// An AADSTS error about to be answered.
#[derive(Debug, Clone)]
pub(crate) struct Aadsts {
    pub(crate) status: StatusCode,
    pub(crate) error: Cow<'static, str>,
    pub(crate) code: u32,
    pub(crate) message: String,
}

impl Aadsts {
    pub(crate) fn new(
        status: StatusCode,
        error: impl Into<Cow<'static, str>>,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        Aadsts {
            status,
            error: error.into(),
            code,
            message: message.into(),
        }
    }

    fn bad_request(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Aadsts::new(StatusCode::BAD_REQUEST, error, code, message)
    }

    fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Aadsts::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    }

    pub(crate) fn unknown_tenant(tenant: &str) -> Self {
        Aadsts::bad_request(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub(crate) fn missing_parameter(name: &str) -> Self {
        Aadsts::bad_request(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub(crate) fn method_not_allowed(method: &str) -> Self {
        Aadsts::bad_request(
            "invalid_request",
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
            ),
        )
    }

    pub(crate) fn malformed(detail: &str) -> Self {
        Aadsts::bad_request(
            "invalid_request",
            9002313,
            format!("Invalid request. Request is malformed or invalid: {detail}"),
        )
    }

    pub(crate) fn invalid_claims() -> Self {
        Aadsts::malformed(
            "the 'claims' parameter must be a JSON object (OpenID Connect claims request).",
        )
    }

    pub(crate) fn malformed_assertion(detail: &str) -> Self {
        Aadsts::bad_request(
            "invalid_request",
            50027,
            format!("JWT token is invalid or malformed: {detail}"),
        )
    }

    pub(crate) fn unsupported_grant(grant: &str) -> Self {
        Aadsts::bad_request(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    pub(crate) fn unknown_client(client_id: &str, tenant: &str) -> Self {
        Aadsts::bad_request(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub(crate) fn scope_without_default(scope: &str) -> Self {
        Aadsts::bad_request(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    pub(crate) fn invalid_scope(scope: &str) -> Self {
        Aadsts::bad_request(
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    pub(crate) fn unknown_resource(resource: &str, tenant: &str) -> Self {
        Aadsts::bad_request(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub(crate) fn missing_credential() -> Self {
        Aadsts::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    pub(crate) fn bad_secret(client_id: &str) -> Self {
        Aadsts::invalid_client(
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    pub(crate) fn assertion_key_not_found(thumbprint: &str, client_id: &str) -> Self {
        Aadsts::invalid_client(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        )
    }

    pub(crate) fn assertion_signature(detail: &str) -> Self {
        Aadsts::invalid_client(
            700027,
            format!("Client assertion failed signature validation. [Reason - {detail}]"),
        )
    }

    pub(crate) fn assertion_client_mismatch() -> Self {
        Aadsts::invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        )
    }

    pub(crate) fn assertion_audience() -> Self {
        Aadsts::invalid_client(
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        )
    }

    pub(crate) fn assertion_time(detail: &str) -> Self {
        Aadsts::invalid_client(
            700024,
            format!("Client assertion is not within its valid time range. {detail}"),
        )
    }

    pub(crate) fn assertion_replayed() -> Self {
        Aadsts::invalid_client(
            50013,
            "Assertion failed signature validation. [Reason - The client assertion's 'jti' was already used: client assertions are single-use.]",
        )
    }

    pub(crate) fn no_federated_match(issuer: &str, subject: &str, audience: &str) -> Self {
        Aadsts::invalid_client(
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{audience}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
            ),
        )
    }

    fn invalid_grant(code: u32, message: impl Into<String>) -> Self {
        Aadsts::bad_request("invalid_grant", code, message)
    }

    pub(crate) fn invalid_parameter(name: &str) -> Self {
        Aadsts::bad_request(
            "invalid_request",
            90100,
            format!("{name} parameter is empty or not valid."),
        )
    }

    pub(crate) fn user_selector_conflict() -> Self {
        Aadsts::bad_request(
            "invalid_request",
            90100,
            "user_id parameter is empty or not valid: send exactly one of 'user_id' and 'username', not both.",
        )
    }

    pub(crate) fn missing_user_selector() -> Self {
        Aadsts::bad_request(
            "invalid_request",
            90014,
            "The required field 'user_id' or 'username' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
        )
    }

    pub(crate) fn fmi_path_not_blueprint(client_id: &str) -> Self {
        Aadsts::malformed(&format!(
            "'fmi_path' is only accepted from an agent identity blueprint; application '{client_id}' is not one."
        ))
    }

    pub(crate) fn fmi_path_scope(scope: &str) -> Self {
        Aadsts::bad_request(
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid: a request with 'fmi_path' must ask for api://AzureADTokenExchange/.default."
            ),
        )
    }

    pub(crate) fn agent_secret(agent: &str) -> Self {
        Aadsts::invalid_client(
            7000215,
            format!(
                "Invalid client secret provided. Agent identity '{agent}' has no client secret: it authenticates with a client assertion that is a T1 token of its blueprint (fmi_path = its client id)."
            ),
        )
    }

    pub(crate) fn not_a_t1(agent: &str, detail: &str) -> Self {
        Aadsts::invalid_client(
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Agent identity '{agent}' accepts only a T1 token of its blueprint as client assertion: {detail}"
            ),
        )
    }

    pub(crate) fn t1_for_other_agent(agent: &str) -> Self {
        Aadsts::invalid_client(
            700211,
            format!(
                "The client assertion was issued for another agent identity: its subject does not end with the fmi_path '{agent}'. Request a T1 with fmi_path={agent}."
            ),
        )
    }

    pub(crate) fn t1_from_other_blueprint(agent: &str, azp: &str) -> Self {
        Aadsts::invalid_client(
            700213,
            format!(
                "The client assertion was issued to application '{azp}', which is not the agent identity blueprint (parent) of agent identity '{agent}'."
            ),
        )
    }

    pub(crate) fn user_fic_invalid(detail: &str) -> Self {
        Aadsts::invalid_grant(
            700211,
            format!(
                "The user federated identity credential is not valid for this request: {detail}"
            ),
        )
    }

    pub(crate) fn grant_assertion_invalid(detail: &str) -> Self {
        Aadsts::invalid_grant(
            50013,
            format!("Assertion failed signature validation. [Reason - {detail}]"),
        )
    }

    pub(crate) fn grant_assertion_time(detail: &str) -> Self {
        Aadsts::invalid_grant(
            500133,
            format!("Assertion is not within its valid time range. {detail}"),
        )
    }

    pub(crate) fn obo_audience(audience: &str, expected: &str) -> Self {
        Aadsts::invalid_grant(
            500131,
            format!(
                "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{audience}' and the expected audience is '{expected}' or one of the Application Id URIs of this application."
            ),
        )
    }

    pub(crate) fn unknown_user(user: &str, tenant: &str) -> Self {
        Aadsts::invalid_grant(
            50034,
            format!(
                "The user account {user} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory."
            ),
        )
    }

    pub(crate) fn bad_refresh_token(detail: &str) -> Self {
        Aadsts::invalid_grant(
            70000,
            format!(
                "The provided value for the input parameter 'refresh_token' is not valid: {detail}"
            ),
        )
    }

    pub(crate) fn not_an_agent(client_id: &str) -> Self {
        Aadsts::malformed(&format!(
            "grant 'user_fic' is only for agent identities; '{client_id}' is not one."
        ))
    }

    /// Generic errors used by faults: the `error` and code usually seen with `status`.
    pub(crate) fn for_status(status: StatusCode) -> Self {
        let (error, code, message) = match status.as_u16() {
            429 => (
                "temporarily_unavailable",
                90055,
                "TenantThrottlingError - There are too many incoming requests. Please try again later.",
            ),
            503 | 504 => (
                "temporarily_unavailable",
                90006,
                "The service is temporarily unavailable. Please try again later.",
            ),
            500..=599 => (
                "server_error",
                50000,
                "There was an error issuing a token or an issue with our sign-in service.",
            ),
            401 => ("invalid_client", 70002, "Error validating credentials."),
            _ => (
                "invalid_request",
                90023,
                "The authentication service request is not valid.",
            ),
        };
        Aadsts::new(status, error, code, message)
    }

    /// The JSON answer. `base_url` builds `error_uri`; `correlation_id` echoes the request's
    /// `client-request-id` when it sent one.
    pub(crate) fn into_response(
        self,
        base_url: &str,
        now_unix: u64,
        correlation_id: Option<&str>,
    ) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = correlation_id
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let timestamp = format_timestamp(now_unix);
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        });
        json_response(self.status, &body, Some(&correlation_id))
    }
}

/// A JSON answer with Entra's usual headers.
pub(crate) fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    client_request_id: Option<&str>,
) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Some(id) = client_request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert("client-request-id", id);
    }
    response
}
