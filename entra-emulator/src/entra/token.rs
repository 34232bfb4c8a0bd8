//! `POST /{tenant}/oauth2/v2.0/token`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use entra_claims::Claims;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::aadsts::{Aadsts, json_response};
use crate::endpoint::classify;
use crate::log::is_public_field;
use crate::registry::{RegisteredApp, TOKEN_EXCHANGE_APP_ID, TenantRef, is_exchange_resource};
use crate::server::RequestInfo;
use crate::state::{CredentialKind, Shared, TokenContext, lock};

use super::{agent, assertion};

/// The grant type of the on-behalf-of flow.
pub(super) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Scopes that may accompany a `/.default` scope and name no resource.
pub(super) const RESERVED_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

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

    /// Whether the body has a field `name` at all (even an empty one).
    pub(super) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub(super) fn required(&self, name: &str) -> Result<&str, Aadsts> {
        self.get(name)
            .ok_or_else(|| Aadsts::missing_parameter(name))
    }

    pub(super) fn public_fields(&self) -> Vec<(&str, &str)> {
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
        "user_fic" => agent::user_fic(shared, &tenant, &form),
        JWT_BEARER_GRANT => agent::on_behalf_of(shared, &tenant, &form),
        "refresh_token" => agent::refresh(shared, &tenant, &form),
        other => Err(Aadsts::unsupported_grant(&echo(other))),
    }
}

/// The parsed `claims` form field.
pub(super) fn claims_request(form: &Form) -> Result<Option<Claims>, Aadsts> {
    match form.get("claims") {
        Some(text) => Ok(Some(
            Claims::parse(text).map_err(|_| Aadsts::invalid_claims())?,
        )),
        None => Ok(None),
    }
}

/// The registered application `client_id`, and its blueprint's client id when it is an agent
/// identity.
pub(super) fn lookup_client(
    shared: &Shared,
    tenant: &TenantRef,
    client_id: &str,
) -> Result<(Arc<RegisteredApp>, Option<String>), Aadsts> {
    let registry = lock(&shared.registry);
    let app = registry
        .application(&tenant.id, client_id)
        .ok_or_else(|| Aadsts::unknown_client(&echo(client_id), &tenant.id))?;
    let blueprint = registry.agent_blueprint(&tenant.id, &app.client_id);
    Ok((app, blueprint))
}

/// Authenticate the client: an agent identity with a T1 of its blueprint, any other
/// application with its secret or assertion.
pub(super) fn authenticate_client(
    shared: &Shared,
    tenant: &TenantRef,
    app: &RegisteredApp,
    blueprint: Option<&str>,
    form: &Form,
) -> Result<CredentialKind, Aadsts> {
    match blueprint {
        Some(blueprint) => agent::authenticate_agent(shared, tenant, app, blueprint, form),
        None => authenticate(shared, tenant, app, form),
    }
}

/// The `fmi_path` of a request: `None` when absent, an error when present but empty.
fn fmi_path(form: &Form) -> Result<Option<&str>, Aadsts> {
    if !form.has("fmi_path") {
        return Ok(None);
    }
    form.get("fmi_path")
        .map(Some)
        .ok_or_else(|| Aadsts::invalid_parameter("fmi_path"))
}

fn client_credentials(shared: &Shared, tenant: &TenantRef, form: &Form) -> Result<Value, Aadsts> {
    let client_id = form.required("client_id")?;
    let scope = form.required("scope")?;
    let claims = claims_request(form)?;
    let (app, blueprint) = lookup_client(shared, tenant, client_id)?;
    let fmi_path = fmi_path(form)?;
    let resource = resolve_scope(shared, tenant, scope)?;
    if fmi_path.is_some() {
        if !lock(&shared.registry).is_blueprint(&tenant.id, &app.client_id) {
            return Err(Aadsts::fmi_path_not_blueprint(&app.client_id));
        }
        if !is_exchange_resource(&resource) {
            return Err(Aadsts::fmi_path_scope(&echo(scope)));
        }
    }
    let credential = authenticate_client(shared, tenant, &app, blueprint.as_deref(), form)?;
    // T1 and T2 are addressed to the token exchange app itself.
    let exchange = is_exchange_resource(&resource) && (fmi_path.is_some() || blueprint.is_some());
    let audience = if exchange {
        TOKEN_EXCHANGE_APP_ID.to_owned()
    } else {
        resource
    };
    let ctx = TokenContext {
        tenant_id: &tenant.id,
        client_id: &app.client_id,
        resource: &audience,
        grant_type: "client_credentials",
        credential,
        public_form: form.public_fields(),
    };
    let mut access = app_claims(shared, &app, &ctx);
    if let Some(path) = fmi_path {
        access.insert(
            "sub".to_owned(),
            json!(agent::t1_subject(&tenant.id, &app.client_id, path)),
        );
        access.insert("xms_act_fct".to_owned(), json!("9 3"));
        access.insert("xms_sub_fct".to_owned(), json!("3 9"));
    } else if let Some(blueprint) = &blueprint {
        access.insert("xms_par_app_azp".to_owned(), json!(blueprint));
        access.insert("xms_act_fct".to_owned(), json!("3 11 9"));
        access.insert("xms_sub_fct".to_owned(), json!("9 3 11"));
    }
    finish(shared, &ctx, access, claims.as_ref(), Map::new())
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
    if is_exchange_resource(resource) {
        return Ok(resource.trim_end_matches('/').to_owned());
    }
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
            check_assertion_type(form)?;
            assertion::validate(shared, tenant, app, jwt)
        }
        (None, None) => Err(Aadsts::missing_credential()),
    }
}

/// `client_assertion_type` must be present and be the JWT bearer type.
pub(super) fn check_assertion_type(form: &Form) -> Result<(), Aadsts> {
    let kind = form.required("client_assertion_type")?;
    if kind != assertion::JWT_BEARER {
        return Err(Aadsts::malformed(&format!(
            "'client_assertion_type' must be '{}'.",
            assertion::JWT_BEARER
        )));
    }
    Ok(())
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

/// The agentic session id requested in a claims request: the released form
/// `access_token.xms_cli_sid.values[0]` or the first design's `access_token.xms_agent_session.value`.
fn agent_session(claims: &Claims) -> Option<String> {
    let access = claims.get("access_token")?;
    access
        .get("xms_cli_sid")
        .and_then(|c| c.get("values"))
        .and_then(|v| v.get(0))
        .and_then(Value::as_str)
        .or_else(|| {
            access
                .get("xms_agent_session")
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str)
        })
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `aud`, `iss`, `iat`, `nbf`, `exp`, `tid`, `ver`, `uti` of a token for `audience`.
pub(super) fn standard_claims(
    shared: &Shared,
    tenant_id: &str,
    audience: &str,
) -> Map<String, Value> {
    let now = shared.now_unix();
    let lifetime = shared.settings().token_lifetime.as_secs().max(1);
    let mut claims = Map::new();
    claims.insert("aud".to_owned(), json!(audience));
    claims.insert("iss".to_owned(), json!(shared.issuer(tenant_id)));
    claims.insert("iat".to_owned(), json!(now));
    claims.insert("nbf".to_owned(), json!(now));
    claims.insert("exp".to_owned(), json!(now + lifetime));
    claims.insert("tid".to_owned(), json!(tenant_id));
    claims.insert("ver".to_owned(), json!("2.0"));
    claims.insert("uti".to_owned(), json!(crate::state::random_id()));
    claims
}

/// The `appidacr`/`azpacr` of a credential: 1 for a secret, 2 for anything signed.
pub(super) fn acr(credential: &CredentialKind) -> &'static str {
    match credential {
        CredentialKind::ClientSecret => "1",
        _ => "2",
    }
}

/// The claims of an app-only token for `app`.
fn app_claims(shared: &Shared, app: &RegisteredApp, ctx: &TokenContext<'_>) -> Map<String, Value> {
    let mut claims = standard_claims(shared, ctx.tenant_id, ctx.resource);
    let acr = acr(&ctx.credential);
    let mut put = |k: &str, v: Value| {
        claims.insert(k.to_owned(), v);
    };
    put("appid", json!(app.client_id));
    put("azp", json!(app.client_id));
    put("appidacr", json!(acr));
    put("azpacr", json!(acr));
    put("oid", json!(app.object_id));
    put("sub", json!(app.object_id));
    put("idtyp", json!("app"));
    if let Some(name) = &app.display_name {
        put("app_displayname", json!(name));
    }
    claims
}

/// Add the claims every access token may carry (client capabilities, agentic session, the
/// extra-claims hook), sign it and build the success body, with `extra_body` merged in.
pub(super) fn finish(
    shared: &Shared,
    ctx: &TokenContext<'_>,
    mut claims: Map<String, Value>,
    claims_request: Option<&Claims>,
    extra_body: Map<String, Value>,
) -> Result<Value, Aadsts> {
    let settings = shared.settings();
    let lifetime = match (
        assertion::number(&claims, "exp"),
        assertion::number(&claims, "iat"),
    ) {
        (Some(exp), Some(iat)) => exp.saturating_sub(iat),
        _ => settings.token_lifetime.as_secs().max(1),
    };
    if let Some(cc) = claims_request.and_then(capabilities) {
        claims.insert("xms_cc".to_owned(), cc);
    }
    if let Some(session) = claims_request.and_then(agent_session) {
        claims.insert("xms_cli_ses".to_owned(), json!(session));
        claims.insert("xms_sess_fct".to_owned(), json!("21"));
    }
    if let Some(hook) = &settings.extra_claims {
        for (k, v) in hook(ctx) {
            claims.insert(k, v);
        }
    }
    let access_token = shared
        .sign(&claims)
        .map_err(|_| Aadsts::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;

    let number = |n: u64| {
        if settings.expires_in_as_string {
            json!(n.to_string())
        } else {
            json!(n)
        }
    };
    let mut body = Map::new();
    body.insert("token_type".to_owned(), json!("Bearer"));
    body.insert("expires_in".to_owned(), number(lifetime));
    body.insert("ext_expires_in".to_owned(), number(lifetime));
    body.insert("access_token".to_owned(), json!(access_token));
    if let Some(refresh_in) = settings.refresh_in {
        body.insert("refresh_in".to_owned(), number(refresh_in.as_secs()));
    }
    body.extend(extra_body);
    Ok(Value::Object(body))
}
