//! Agent identities: the T1 an agent identity authenticates with, the agent user grant
//! (`user_fic`), the on-behalf-of grant, and the claims of delegated user tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::aadsts::Aadsts;
use crate::clock::format_timestamp;
use crate::registry::{
    RegisteredApp, RegisteredUser, TOKEN_EXCHANGE_APP_ID, TenantRef, UserAccount,
    is_exchange_resource,
};
use crate::state::{CredentialKind, RefreshGrant, Shared, TokenContext, lock, random_id};

use super::assertion::{self, SKEW};
use super::token::{
    Form, RESERVED_SCOPES, acr, authenticate_client, check_assertion_type, claims_request, echo,
    finish, lookup_client, standard_claims,
};

/// The resource of a delegated scope written without one (`User.Read`).
const DEFAULT_DELEGATED_RESOURCE: &str = "https://graph.microsoft.com";

/// The `sub` of a T1: `/eid1/c/pub/t/<tenant>/a/<blueprint>/<fmi_path>`, the tenant and
/// blueprint as base64url of their GUID bytes (.NET byte order, as Entra writes them; the
/// UTF-8 bytes for ids that are not GUIDs).
pub(super) fn t1_subject(tenant_id: &str, blueprint: &str, fmi_path: &str) -> String {
    format!(
        "/eid1/c/pub/t/{}/a/{}/{fmi_path}",
        guid_segment(tenant_id),
        guid_segment(blueprint)
    )
}

fn guid_segment(id: &str) -> String {
    match uuid::Uuid::parse_str(id) {
        Ok(guid) => URL_SAFE_NO_PAD.encode(guid.to_bytes_le()),
        Err(_) => URL_SAFE_NO_PAD.encode(id.as_bytes()),
    }
}

/// Why a token presented to the emulator is not one of its own valid tokens.
enum NotOwn {
    Malformed(Aadsts),
    Issuer,
    Signature,
    Time(String),
}

/// The claims of `jwt` when this emulator issued it for `tenant`, it is signed with the
/// emulator key and it is within its validity (with the usual skew).
fn own_token(shared: &Shared, tenant: &TenantRef, jwt: &str) -> Result<Map<String, Value>, NotOwn> {
    let (_, claims) = assertion::peek(jwt).map_err(NotOwn::Malformed)?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !assertion::is_own_issuer(shared, tenant, iss) {
        return Err(NotOwn::Issuer);
    }
    if !assertion::signed_by_emulator(shared, jwt) {
        return Err(NotOwn::Signature);
    }
    let now = shared.now_unix();
    let exp = assertion::number(&claims, "exp").unwrap_or(0);
    if now > exp.saturating_add(SKEW) {
        return Err(NotOwn::Time(format!(
            "Current time: {}, expiry time of assertion {}.",
            format_timestamp(now),
            format_timestamp(exp)
        )));
    }
    if let Some(nbf) = assertion::number(&claims, "nbf")
        && now.saturating_add(SKEW) < nbf
    {
        return Err(NotOwn::Time(format!(
            "Current time: {}, assertion valid from {}.",
            format_timestamp(now),
            format_timestamp(nbf)
        )));
    }
    Ok(claims)
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> &'a str {
    claims.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Authenticate agent identity `app` (child of `blueprint`): its only credential is a T1 of
/// its blueprint with `fmi_path` = its client id.
pub(super) fn authenticate_agent(
    shared: &Shared,
    tenant: &TenantRef,
    app: &RegisteredApp,
    blueprint: &str,
    form: &Form,
) -> Result<CredentialKind, Aadsts> {
    let agent = app.client_id.as_str();
    if form.get("client_secret").is_some() {
        return Err(Aadsts::agent_secret(agent));
    }
    let jwt = form
        .get("client_assertion")
        .ok_or_else(Aadsts::missing_credential)?;
    check_assertion_type(form)?;
    let claims = own_token(shared, tenant, jwt).map_err(|e| match e {
        NotOwn::Malformed(e) => e,
        NotOwn::Issuer => {
            Aadsts::not_a_t1(agent, "it was not issued by this tenant's token service.")
        }
        NotOwn::Signature => Aadsts::assertion_signature(
            "The signature could not be verified with the token service's keys.",
        ),
        NotOwn::Time(detail) => Aadsts::assertion_time(&detail),
    })?;
    if !assertion::audiences(&claims).contains(&TOKEN_EXCHANGE_APP_ID) {
        return Err(Aadsts::not_a_t1(
            agent,
            "its audience is not the token exchange app (request scope api://AzureADTokenExchange/.default).",
        ));
    }
    let sub = text(&claims, "sub");
    if !sub.starts_with("/eid1/") {
        return Err(Aadsts::not_a_t1(
            agent,
            "it is not a blueprint token requested with fmi_path.",
        ));
    }
    let fmi_path = sub.rsplit('/').next().unwrap_or_default();
    if !fmi_path.eq_ignore_ascii_case(agent) {
        return Err(Aadsts::t1_for_other_agent(agent));
    }
    let azp = text(&claims, "azp");
    if !azp.eq_ignore_ascii_case(blueprint) {
        return Err(Aadsts::t1_from_other_blueprint(agent, &echo(azp)));
    }
    Ok(CredentialKind::AgentBlueprintToken {
        blueprint_client_id: blueprint.to_owned(),
    })
}

/// Validate the T2 of a `user_fic` request: an unexpired exchange token of this emulator
/// issued to agent identity `agent`.
fn validate_t2(shared: &Shared, tenant: &TenantRef, agent: &str, jwt: &str) -> Result<(), Aadsts> {
    let claims = own_token(shared, tenant, jwt).map_err(|e| match e {
        NotOwn::Malformed(_) => Aadsts::user_fic_invalid("it is not a well-formed JWT."),
        NotOwn::Issuer => {
            Aadsts::user_fic_invalid("it was not issued by this tenant's token service.")
        }
        NotOwn::Signature => Aadsts::grant_assertion_invalid(
            "The signature of the user federated identity credential could not be verified.",
        ),
        NotOwn::Time(detail) => Aadsts::grant_assertion_time(&detail),
    })?;
    if !assertion::audiences(&claims).contains(&TOKEN_EXCHANGE_APP_ID) {
        return Err(Aadsts::user_fic_invalid(
            "its audience is not the token exchange app: send the agent identity's own token for api://AzureADTokenExchange/.default (T2).",
        ));
    }
    if !text(&claims, "azp").eq_ignore_ascii_case(agent)
        || !text(&claims, "appid").eq_ignore_ascii_case(agent)
    {
        return Err(Aadsts::user_fic_invalid(&format!(
            "it was issued for another agent identity, not '{agent}'."
        )));
    }
    Ok(())
}

/// The delegated part of a user-token request.
struct Delegated {
    /// The resource (token audience).
    resource: String,
    /// The scope names (`scp`), without the resource.
    names: Vec<String>,
    /// The OpenID scopes asked for (`openid`, `profile`, `offline_access`, `email`).
    reserved: Vec<String>,
}

impl Delegated {
    /// The `scope` of the answer: the granted scopes with their resource, then the OpenID ones.
    fn granted(&self) -> String {
        let resource = self.resource.trim_end_matches('/');
        self.names
            .iter()
            .map(|n| format!("{resource}/{n}"))
            .chain(self.reserved.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Parse delegated scopes (`https://graph.microsoft.com/User.Read openid offline_access
/// profile`; `{resource}/.default` grants the user's default scopes).
fn resolve_delegated(
    shared: &Shared,
    tenant: &TenantRef,
    scope: &str,
    user: &UserAccount,
) -> Result<Delegated, Aadsts> {
    let mut resource: Option<String> = None;
    let mut names: Vec<String> = Vec::new();
    let mut reserved: Vec<String> = Vec::new();
    for s in scope.split_whitespace() {
        let lower = s.to_ascii_lowercase();
        if RESERVED_SCOPES.contains(&lower.as_str()) {
            if !reserved.contains(&lower) {
                reserved.push(lower);
            }
            continue;
        }
        let (res, name) = match s.rfind('/') {
            Some(i) if i > 0 && !s[..i].ends_with('/') && !s[..i].ends_with(':') => {
                (&s[..i], &s[i + 1..])
            }
            _ => (DEFAULT_DELEGATED_RESOURCE, s),
        };
        if name.is_empty() {
            return Err(Aadsts::invalid_scope(&echo(s)));
        }
        let canonical = if is_exchange_resource(res) {
            res.trim_end_matches('/').to_owned()
        } else {
            lock(&shared.registry)
                .resource(&tenant.id, res)
                .ok_or_else(|| Aadsts::unknown_resource(&echo(res), &tenant.id))?
        };
        match &resource {
            Some(r) if !r.eq_ignore_ascii_case(&canonical) => {
                return Err(Aadsts::invalid_scope(&echo(scope)));
            }
            Some(_) => {}
            None => resource = Some(canonical),
        }
        let granted: Vec<String> = if name.eq_ignore_ascii_case(".default") {
            user.default_scopes.clone()
        } else {
            vec![name.to_owned()]
        };
        for n in granted {
            if !names.iter().any(|m| m.eq_ignore_ascii_case(&n)) {
                names.push(n);
            }
        }
    }
    let resource = resource.ok_or_else(|| Aadsts::invalid_scope(&echo(scope)))?;
    Ok(Delegated {
        resource,
        names,
        reserved,
    })
}

/// The claims of a delegated user access token.
pub(crate) fn user_claims(
    shared: &Shared,
    tenant_id: &str,
    user: &UserAccount,
    audience: &str,
    scp: &str,
    client_id: &str,
    acr: &str,
) -> Map<String, Value> {
    let mut claims = standard_claims(shared, tenant_id, audience);
    let mut put = |k: &str, v: Value| {
        claims.insert(k.to_owned(), v);
    };
    put("scp", json!(scp));
    put("idtyp", json!("user"));
    put("oid", json!(user.object_id));
    put("sub", json!(user.object_id));
    put("upn", json!(user.user_principal_name));
    put("preferred_username", json!(user.user_principal_name));
    if let Some(name) = &user.display_name {
        put("name", json!(name));
    }
    put("appid", json!(client_id));
    put("azp", json!(client_id));
    put("appidacr", json!(acr));
    put("azpacr", json!(acr));
    claims
}

/// How long the refresh tokens of user tokens live (90 days, as Entra's).
const REFRESH_TOKEN_LIFETIME: u64 = 90 * 24 * 3600;

/// `refresh_token`, `client_info` and (when `id_token`) an id token for `client_id`.
fn user_extras(
    shared: &Shared,
    tenant_id: &str,
    user: &UserAccount,
    client_id: &str,
    scope: String,
    id_token: bool,
) -> Result<Map<String, Value>, Aadsts> {
    let mut extras = Map::new();
    extras.insert("scope".to_owned(), json!(scope));
    let info = json!({ "uid": user.object_id, "utid": tenant_id });
    extras.insert(
        "client_info".to_owned(),
        json!(URL_SAFE_NO_PAD.encode(info.to_string())),
    );
    if id_token {
        let mut claims = standard_claims(shared, tenant_id, client_id);
        claims.remove("uti");
        claims.insert("oid".to_owned(), json!(user.object_id));
        claims.insert("sub".to_owned(), json!(user.object_id));
        claims.insert(
            "preferred_username".to_owned(),
            json!(user.user_principal_name),
        );
        if let Some(name) = &user.display_name {
            claims.insert("name".to_owned(), json!(name));
        }
        let token = shared
            .sign(&claims)
            .map_err(|_| Aadsts::for_status(http::StatusCode::INTERNAL_SERVER_ERROR))?;
        extras.insert("id_token".to_owned(), json!(token));
    }
    Ok(extras)
}

/// A user token request that passed its checks.
struct UserGrant<'a> {
    grant_type: &'a str,
    app: &'a RegisteredApp,
    credential: CredentialKind,
    blueprint: Option<String>,
    user: UserAccount,
    /// An agent user token (`user_fic`, or a refresh of one).
    agent_user: bool,
    /// The requested `scope`.
    scope: &'a str,
    /// Always answer an id token (otherwise only when `openid` is asked for).
    id_token: bool,
}

/// Issue a delegated user token (with refresh token, client info and id token).
fn issue_user(
    shared: &Shared,
    tenant: &TenantRef,
    form: &Form,
    grant: UserGrant<'_>,
) -> Result<Value, Aadsts> {
    let claims_request = claims_request(form)?;
    let delegated = resolve_delegated(shared, tenant, grant.scope, &grant.user)?;
    let ctx = TokenContext {
        tenant_id: &tenant.id,
        client_id: &grant.app.client_id,
        resource: &delegated.resource,
        grant_type: grant.grant_type,
        credential: grant.credential,
        public_form: form.public_fields(),
    };
    let mut access = user_claims(
        shared,
        &tenant.id,
        &grant.user,
        &delegated.resource,
        &delegated.names.join(" "),
        &grant.app.client_id,
        acr(&ctx.credential),
    );
    if let Some(blueprint) = &grant.blueprint {
        access.insert("xms_par_app_azp".to_owned(), json!(blueprint));
        access.insert("xms_act_fct".to_owned(), json!("3 11 9"));
        if grant.agent_user {
            access.insert("xms_sub_fct".to_owned(), json!("13"));
        }
    }
    let id_token = grant.id_token || delegated.reserved.iter().any(|r| r == "openid");
    let mut extras = user_extras(
        shared,
        &tenant.id,
        &grant.user,
        &grant.app.client_id,
        delegated.granted(),
        id_token,
    )?;
    let refresh_token = format!("{}.{}", random_id(), random_id());
    let now = shared.now_unix();
    let mut refresh_tokens = lock(&shared.refresh_tokens);
    refresh_tokens.retain(|_, g| g.expires > now);
    refresh_tokens.insert(
        refresh_token.clone(),
        RefreshGrant {
            tenant_id: tenant.id.clone(),
            client_id: grant.app.client_id.clone(),
            user_object_id: grant.user.object_id.clone(),
            agent_user: grant.agent_user,
            scope: grant.scope.to_owned(),
            expires: now + REFRESH_TOKEN_LIFETIME,
        },
    );
    drop(refresh_tokens);
    extras.insert("refresh_token".to_owned(), json!(refresh_token));
    finish(shared, &ctx, access, claims_request.as_ref(), extras)
}

/// `grant_type=user_fic`: an agent identity (authenticated with a T1) presents its T2 and
/// names one of its agent users; the answer is a delegated token for that user.
pub(super) fn user_fic(shared: &Shared, tenant: &TenantRef, form: &Form) -> Result<Value, Aadsts> {
    let client_id = form.required("client_id")?;
    let scope = form.required("scope")?;
    claims_request(form)?;
    let (app, blueprint) = lookup_client(shared, tenant, client_id)?;
    let Some(blueprint) = blueprint else {
        return Err(Aadsts::not_an_agent(&app.client_id));
    };
    let credential = authenticate_agent(shared, tenant, &app, &blueprint, form)?;
    let t2 = form.required("user_federated_identity_credential")?;
    validate_t2(shared, tenant, &app.client_id, t2)?;
    let wanted = match (form.get("user_id"), form.get("username")) {
        (Some(_), Some(_)) => return Err(Aadsts::user_selector_conflict()),
        (None, None) => return Err(Aadsts::missing_user_selector()),
        (Some(id), None) | (None, Some(id)) => id,
    };
    let user: RegisteredUser = lock(&shared.registry)
        .user(&tenant.id, wanted)
        .filter(|u| {
            u.agent
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&app.client_id))
        })
        .ok_or_else(|| Aadsts::unknown_user(&echo(wanted), &tenant.id))?;
    issue_user(
        shared,
        tenant,
        form,
        UserGrant {
            grant_type: "user_fic",
            app: &app,
            credential,
            blueprint: Some(blueprint),
            user: user.account,
            agent_user: true,
            scope,
            id_token: true,
        },
    )
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with
/// `requested_token_use=on_behalf_of`: a middle-tier app (or an agent identity) exchanges the
/// user token it received for a token to another resource.
pub(super) fn on_behalf_of(
    shared: &Shared,
    tenant: &TenantRef,
    form: &Form,
) -> Result<Value, Aadsts> {
    let client_id = form.required("client_id")?;
    let scope = form.required("scope")?;
    claims_request(form)?;
    let use_ = form.required("requested_token_use")?;
    if use_ != "on_behalf_of" {
        return Err(Aadsts::malformed(
            "'requested_token_use' must be 'on_behalf_of' with the jwt-bearer grant.",
        ));
    }
    let incoming = form.required("assertion")?;
    let (app, blueprint) = lookup_client(shared, tenant, client_id)?;
    let credential = authenticate_client(shared, tenant, &app, blueprint.as_deref(), form)?;
    let claims = own_token(shared, tenant, incoming).map_err(|e| match e {
        NotOwn::Malformed(e) => e,
        NotOwn::Issuer => Aadsts::grant_assertion_invalid(
            "The assertion was not issued by this tenant's token service.",
        ),
        NotOwn::Signature => {
            Aadsts::grant_assertion_invalid("The signature of the assertion could not be verified.")
        }
        NotOwn::Time(detail) => Aadsts::grant_assertion_time(&detail),
    })?;
    if text(&claims, "idtyp") == "app" || claims.get("scp").is_none() {
        return Err(Aadsts::grant_assertion_invalid(
            "The assertion is not a delegated user token: on-behalf-of needs the token a user sent.",
        ));
    }
    let expected = blueprint.as_deref().unwrap_or(&app.client_id);
    let accepted = [expected.to_owned(), format!("api://{expected}")];
    let auds = assertion::audiences(&claims);
    if !auds.iter().any(|a| {
        accepted
            .iter()
            .any(|x| a.trim_end_matches('/').eq_ignore_ascii_case(x))
    }) {
        return Err(Aadsts::obo_audience(&echo(&auds.join(",")), expected));
    }
    let oid = text(&claims, "oid");
    let user = lock(&shared.registry)
        .user(&tenant.id, oid)
        .ok_or_else(|| Aadsts::unknown_user(&echo(oid), &tenant.id))?;
    issue_user(
        shared,
        tenant,
        form,
        UserGrant {
            grant_type: super::token::JWT_BEARER_GRANT,
            app: &app,
            credential,
            blueprint,
            user: user.account,
            agent_user: false,
            scope,
            id_token: false,
        },
    )
}

/// `grant_type=refresh_token`: a new user token from a refresh token this emulator issued with
/// a user token (`user_fic` or on-behalf-of), to the same client, authenticated again (an
/// agent identity with a T1). `scope` may name another resource; absent, the original scope.
pub(super) fn refresh(shared: &Shared, tenant: &TenantRef, form: &Form) -> Result<Value, Aadsts> {
    let client_id = form.required("client_id")?;
    let token = form.required("refresh_token")?;
    claims_request(form)?;
    let grant = lock(&shared.refresh_tokens)
        .get(token)
        .cloned()
        .ok_or_else(|| Aadsts::bad_refresh_token("it was not issued by this emulator."))?;
    if grant.tenant_id != tenant.id || !grant.client_id.eq_ignore_ascii_case(client_id) {
        return Err(Aadsts::bad_refresh_token(
            "it was issued to another client or tenant.",
        ));
    }
    if shared.now_unix() > grant.expires {
        return Err(Aadsts::bad_refresh_token("it has expired."));
    }
    let (app, blueprint) = lookup_client(shared, tenant, client_id)?;
    let credential = authenticate_client(shared, tenant, &app, blueprint.as_deref(), form)?;
    let user = lock(&shared.registry)
        .user(&tenant.id, &grant.user_object_id)
        .ok_or_else(|| Aadsts::unknown_user(&echo(&grant.user_object_id), &tenant.id))?;
    let scope = form.get("scope").unwrap_or(&grant.scope);
    issue_user(
        shared,
        tenant,
        form,
        UserGrant {
            grant_type: "refresh_token",
            app: &app,
            credential,
            blueprint,
            user: user.account,
            agent_user: grant.agent_user,
            scope,
            id_token: grant.agent_user,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t1_subject_matches_entra_encoding() {
        // The values of a real T1 (see PROTOCOL.md section 1).
        let sub = t1_subject(
            "237098ae-0798-4cf9-a3a5-208374d2dcfd",
            "9471f355-173a-4466-b142-3d4acf848b03",
            "cd77c677-16ea-4f9d-b5b1-0aab1841694c",
        );
        assert_eq!(
            sub,
            "/eid1/c/pub/t/rphwI5gH-UyjpSCDdNLc_Q/a/VfNxlDoXZkSxQj1Kz4SLAw/cd77c677-16ea-4f9d-b5b1-0aab1841694c"
        );
        assert!(t1_subject("contoso", "app", "x").ends_with("/x"));
    }
}
