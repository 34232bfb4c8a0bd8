//! `POST /{tenant}/oauth2/v2.0/token`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use entra_claims::Claims;
use http::StatusCode;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value, json};

use crate::aadsts::{Aadsts, json_response};
use crate::endpoint::classify;
use crate::log::is_public_field;
use crate::registry::{RegisteredApp, TenantRef};
use crate::server::RequestInfo;
use crate::state::{CredentialKind, Shared, TokenContext, lock};

use super::assertion;

/// Scopes that may accompany a `/.default` scope and name no resource.
const RESERVED_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

/// The longest piece of request text echoed back in an error description.
const ECHO_LIMIT: usize = 200;

/// A request text cut to a length fit for an error description.
pub(super) fn echo(text: &str) -> String {
    text.chars().take(ECHO_LIMIT).collect()
}

/// The parsed form body.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Form {
        Form(crate::server::parse_form(headers, body))
    }

    /// The first non-empty value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Aadsts> {
        self.get(name)
            .ok_or_else(|| Aadsts::missing_parameter(name))
    }

    fn public_fields(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .filter(|(k, _)| is_public_field(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    Extension(info): Extension<RequestInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (_, tenant) = classify(uri.path());
    let tenant = tenant.unwrap_or_default();
    match handle(&shared, &method, &tenant, &headers, &body) {
        Ok(body) => json_response(StatusCode::OK, &body, correlation.as_deref()),
        Err(error) => error.into_response(
            info.base_url(&shared),
            shared.now_unix(),
            correlation.as_deref(),
        ),
    }
}

fn handle(
    shared: &Shared,
    method: &Method,
    tenant_segment: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Aadsts> {
    if method != Method::POST {
        return Err(Aadsts::method_not_allowed(method.as_str()));
    }
    let form = Form::parse(headers, body);
    let tenant = lock(&shared.registry)
        .tenant(tenant_segment)
        .ok_or_else(|| Aadsts::unknown_tenant(&echo(tenant_segment)))?;
    let grant_type = form.required("grant_type")?;
    match grant_type {
        "client_credentials" => client_credentials(shared, &tenant, &form),
        other => Err(Aadsts::unsupported_grant(&echo(other))),
    }
}

fn client_credentials(shared: &Shared, tenant: &TenantRef, form: &Form) -> Result<Value, Aadsts> {
    let client_id = form.required("client_id")?;
    let scope = form.required("scope")?;
    let claims = match form.get("claims") {
        Some(text) => Some(Claims::parse(text).map_err(|_| Aadsts::invalid_claims())?),
        None => None,
    };
    let app = lock(&shared.registry)
        .application(&tenant.id, client_id)
        .ok_or_else(|| Aadsts::unknown_client(&echo(client_id), &tenant.id))?;
    let resource = resolve_scope(shared, tenant, scope)?;
    let credential = authenticate(shared, tenant, &app, form)?;
    let ctx = TokenContext {
        tenant_id: &tenant.id,
        client_id: &app.client_id,
        resource: &resource,
        grant_type: "client_credentials",
        credential,
        public_form: form.public_fields(),
    };
    issue(shared, &app, &ctx, claims.as_ref())
}

/// The resource named by a client-credentials `scope`.
fn resolve_scope(shared: &Shared, tenant: &TenantRef, scope: &str) -> Result<String, Aadsts> {
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !RESERVED_SCOPES.contains(&s.to_ascii_lowercase().as_str()))
        .collect();
    if scopes.is_empty() {
        return Err(Aadsts::scope_without_default(&echo(scope)));
    }
    let mut resources: Vec<&str> = Vec::new();
    for s in &scopes {
        let lower = s.to_ascii_lowercase();
        if !lower.ends_with("/.default") {
            return Err(Aadsts::scope_without_default(&echo(s)));
        }
        let resource = s.get(..s.len() - "/.default".len()).unwrap_or_default();
        if !resources.iter().any(|r| {
            r.trim_end_matches('/')
                .eq_ignore_ascii_case(resource.trim_end_matches('/'))
        }) {
            resources.push(resource);
        }
    }
    if resources.len() > 1 {
        return Err(Aadsts::invalid_scope(&echo(scope)));
    }
    let resource = resources.first().copied().unwrap_or_default();
    lock(&shared.registry)
        .resource(&tenant.id, resource)
        .ok_or_else(|| Aadsts::unknown_resource(&echo(resource), &tenant.id))
}

/// Authenticate the client with its secret or assertion.
fn authenticate(
    shared: &Shared,
    tenant: &TenantRef,
    app: &RegisteredApp,
    form: &Form,
) -> Result<CredentialKind, Aadsts> {
    match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(_), Some(_)) => Err(Aadsts::malformed(
            "both 'client_secret' and 'client_assertion' were sent; send one of them.",
        )),
        (Some(secret), None) => {
            if app
                .secrets
                .iter()
                .any(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()))
            {
                Ok(CredentialKind::ClientSecret)
            } else {
                Err(Aadsts::bad_secret(&app.client_id))
            }
        }
        (None, Some(jwt)) => {
            let kind = form.required("client_assertion_type")?;
            if kind != assertion::JWT_BEARER {
                return Err(Aadsts::malformed(&format!(
                    "'client_assertion_type' must be '{}'.",
                    assertion::JWT_BEARER
                )));
            }
            assertion::validate(shared, tenant, app, jwt)
        }
        (None, None) => Err(Aadsts::missing_credential()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client capabilities (`xms_cc`) requested in a claims request.
fn capabilities(claims: &Claims) -> Option<Value> {
    let values = claims
        .get("access_token")?
        .get("xms_cc")?
        .get("values")?
        .as_array()?;
    let names: Vec<Value> = values
        .iter()
        .filter_map(Value::as_str)
        .map(|s| Value::String(s.to_owned()))
        .collect();
    (!names.is_empty()).then_some(Value::Array(names))
}

/// Mint the access token and build the success body.
fn issue(
    shared: &Shared,
    app: &RegisteredApp,
    ctx: &TokenContext<'_>,
    claims_request: Option<&Claims>,
) -> Result<Value, Aadsts> {
    let settings = shared.settings();
    let now = shared.now_unix();
    let lifetime = settings.token_lifetime.as_secs().max(1);
    let acr = match ctx.credential {
        CredentialKind::ClientSecret => "1",
        _ => "2",
    };
    let mut claims = Map::new();
    let mut put = |k: &str, v: Value| {
        claims.insert(k.to_owned(), v);
    };
    put("aud", json!(ctx.resource));
    put("iss", json!(shared.issuer(ctx.tenant_id)));
    put("iat", json!(now));
    put("nbf", json!(now));
    put("exp", json!(now + lifetime));
    put("tid", json!(ctx.tenant_id));
    put("appid", json!(app.client_id));
    put("azp", json!(app.client_id));
    put("appidacr", json!(acr));
    put("azpacr", json!(acr));
    put("oid", json!(app.object_id));
    put("sub", json!(app.object_id));
    put("idtyp", json!("app"));
    put("ver", json!("2.0"));
    put("uti", json!(crate::state::random_id()));
    if let Some(name) = &app.display_name {
        put("app_displayname", json!(name));
    }
    if let Some(cc) = claims_request.and_then(capabilities) {
        put("xms_cc", cc);
    }
    if let Some(hook) = &settings.extra_claims {
        for (k, v) in hook(ctx) {
            claims.insert(k, v);
        }
    }
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(shared.signing.kid().to_owned());
    header.x5t = Some(shared.signing.x5t().to_owned());
    let access_token = jsonwebtoken::encode(
        &header,
        &Value::Object(claims),
        shared.signing.encoding_key(),
    )
    .map_err(|_| Aadsts::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;

    let number = |n: u64| {
        if settings.expires_in_as_string {
            json!(n.to_string())
        } else {
            json!(n)
        }
    };
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": number(lifetime),
        "ext_expires_in": number(lifetime),
        "access_token": access_token,
    });
    if let (Some(refresh_in), Some(map)) = (settings.refresh_in, body.as_object_mut()) {
        map.insert("refresh_in".to_owned(), number(refresh_in.as_secs()));
    }
    Ok(body)
}
