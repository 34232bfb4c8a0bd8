"""Microsoft's own clients (MSAL Python, azure-identity) against the entra-rs emulator.

Entra ID: client secret and certificate. Managed identity: IMDS and App Service, system- and
user-assigned. Agent identities (MSAL Python): blueprint T1 with fmi_path, the agent identity's
TR and T2 with the T1 as client assertion, an agent user token (user_fic), and on-behalf-of for
an app and for an agent identity.

Run by `cargo xtask interop`, which starts the emulator binary and passes its start-up line
(JSON: https, http, ca_pem, authority_host) as the only argument, with REQUESTS_CA_BUNDLE set
to the emulator's CA so both clients trust it. Registers a tenant and two applications through
the emulator's admin API, acquires client-secret and client-certificate tokens with both
clients, and verifies every token's signature and claims against the emulator's JWKS.
Exits non-zero on the first failure.
"""

import datetime
import hashlib
import json
import os
import sys
import tempfile
import uuid

import jwt
import msal
import requests
from azure.identity import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SCOPE = "https://graph.microsoft.com/.default"
AUDIENCE = "https://graph.microsoft.com"


def make_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-rs interop")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_pem, key_pem, sha1


class Verifier:
    def __init__(self, base, tenant):
        jwks = requests.get(f"{base}/discovery/v2.0/keys", timeout=10).json()
        self.keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"]}
        self.issuer = f"{base}/{tenant}/v2.0"
        self.tenant = tenant

    def verify(self, token, client_id, audience=AUDIENCE):
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(
            token,
            self.keys[kid],
            algorithms=["RS256"],
            audience=audience,
            issuer=self.issuer,
        )
        assert claims["tid"] == self.tenant, claims
        assert claims["azp"] == client_id, claims
        return claims


def main():
    info = json.loads(sys.argv[1])
    base = info["https"]
    tenant = str(uuid.uuid4())
    secret_app, cert_app = str(uuid.uuid4()), str(uuid.uuid4())
    secret = "interop-" + uuid.uuid4().hex
    cert_pem, key_pem, sha1 = make_certificate()

    def admin(path, body):
        r = requests.post(f"{base}/_emulator{path}", json=body, timeout=10)
        assert r.ok, f"admin {path}: HTTP {r.status_code}"

    admin("/tenants", {"tenant_id": tenant})
    admin(f"/tenants/{tenant}/applications", {"client_id": secret_app, "client_secrets": [secret]})
    admin(f"/tenants/{tenant}/applications", {"client_id": cert_app, "certificates": [cert_pem]})
    verifier = Verifier(base, tenant)
    authority = f"{base}/{tenant}"
    results = []

    def check(name, client_id, get):
        token = get()
        claims = verifier.verify(token, client_id)
        results.append((name, claims["aud"], claims["exp"] - claims["iat"]))

    def msal_token(app):
        result = app.acquire_token_for_client(scopes=[SCOPE])
        assert "access_token" in result, {k: result.get(k) for k in ("error", "error_codes")}
        return result["access_token"]

    check(
        "msal client secret",
        secret_app,
        lambda: msal_token(
            msal.ConfidentialClientApplication(
                secret_app, client_credential=secret, authority=authority, instance_discovery=False
            )
        ),
    )
    check(
        "msal client certificate",
        cert_app,
        lambda: msal_token(
            msal.ConfidentialClientApplication(
                cert_app,
                client_credential={"private_key": key_pem, "thumbprint": sha1, "public_certificate": cert_pem},
                authority=authority,
                instance_discovery=False,
            )
        ),
    )
    # A wrong secret must fail with the real AADSTS code.
    bad = msal.ConfidentialClientApplication(
        secret_app, client_credential="wrong", authority=authority, instance_discovery=False
    ).acquire_token_for_client(scopes=[SCOPE])
    assert 7000215 in bad.get("error_codes", []), bad.get("error_codes")
    results.append(("msal wrong secret -> AADSTS7000215", "-", 0))

    check(
        "azure-identity ClientSecretCredential",
        secret_app,
        lambda: ClientSecretCredential(
            tenant, secret_app, secret, authority=base, disable_instance_discovery=True
        ).get_token(SCOPE).token,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        f.write(cert_pem + key_pem)
        pem_path = f.name
    try:
        check(
            "azure-identity CertificateCredential",
            cert_app,
            lambda: CertificateCredential(
                tenant, cert_app, certificate_path=pem_path, authority=base, disable_instance_discovery=True
            ).get_token(SCOPE).token,
        )
    finally:
        os.unlink(pem_path)

    managed_identity(base, info["http"], tenant, verifier, results)
    agent_identities(base, tenant, verifier, results)

    print(f"msal {msal.__version__}")
    for name, aud, life in results:
        print(f"  ok  {name:45} aud={aud} lifetime={life}s")
    print(f"{len(results)} passed, 0 failed")


MI_ENV = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


def mi_environment(**values):
    """Sets exactly the managed identity variables given (both clients read os.environ)."""
    for name in MI_ENV:
        os.environ.pop(name, None)
    os.environ.update(values)


def managed_identity(base, http, tenant, verifier, results):
    """MSAL Python's ManagedIdentityClient and azure-identity's ManagedIdentityCredential against
    the emulator's IMDS and App Service endpoints, system- and user-assigned."""
    system = {"tenant": tenant, "client_id": str(uuid.uuid4()), "object_id": str(uuid.uuid4()),
              "resource_id": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"}
    user = {"tenant": tenant, "client_id": str(uuid.uuid4()), "object_id": str(uuid.uuid4()),
            "resource_id": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ua"}
    for identity, system_assigned in ((system, True), (user, False)):
        r = requests.post(f"{base}/_emulator/managed-identities",
                          json=dict(identity, system_assigned=system_assigned), timeout=10)
        assert r.ok, f"managed identity registration: HTTP {r.status_code}"
    info = requests.get(f"{base}/_emulator/info", timeout=10).json()["managed_identity"]

    def check_mi(name, identity, get):
        token = get()
        claims = verifier.verify(token, identity["client_id"])
        assert claims["oid"] == identity["object_id"], claims
        assert claims["xms_mirid"] == identity["resource_id"], claims
        results.append((name, claims["aud"], claims["exp"] - claims["iat"]))

    def msal_mi(selector):
        client = msal.ManagedIdentityClient(selector, http_client=requests.Session())
        result = client.acquire_token_for_client(resource=AUDIENCE)
        assert "access_token" in result, {k: result.get(k) for k in ("error", "error_description")}
        return result["access_token"]

    sources = (
        ("IMDS", {"AZURE_POD_IDENTITY_AUTHORITY_HOST": http}),
        ("App Service", {"IDENTITY_ENDPOINT": f"{http}/msi/token", "IDENTITY_HEADER": info["app_service_secret"]}),
    )
    for source, env in sources:
        mi_environment(**env)
        check_mi(f"msal ManagedIdentityClient {source} system", system,
                 lambda: msal_mi(msal.SystemAssignedManagedIdentity()))
        check_mi(f"msal ManagedIdentityClient {source} user (client id)", user,
                 lambda: msal_mi(msal.UserAssignedManagedIdentity(client_id=user["client_id"])))
        check_mi(f"azure-identity ManagedIdentityCredential {source} system", system,
                 lambda: ManagedIdentityCredential().get_token(SCOPE).token)
        check_mi(f"azure-identity ManagedIdentityCredential {source} user", user,
                 lambda: ManagedIdentityCredential(client_id=user["client_id"]).get_token(SCOPE).token)
    mi_environment()


TOKEN_EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"


def agent_identities(base, tenant, verifier, results):
    """MSAL Python's agent identity flows: T1 (fmi_path), TR/T2 (T1 as client assertion),
    user_fic, and on-behalf-of, against agents registered through the admin API."""
    blueprint, agent, other_agent = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    api_app = str(uuid.uuid4())
    blueprint_secret, api_secret = "bp-" + uuid.uuid4().hex, "api-" + uuid.uuid4().hex
    agent_user, agent_upn = str(uuid.uuid4()), f"agent-user-{uuid.uuid4().hex[:8]}@interop.example"
    human = str(uuid.uuid4())
    authority = f"{base}/{tenant}"

    def admin(path, body):
        r = requests.post(f"{base}/_emulator{path}", json=body, timeout=10)
        assert r.ok, f"admin {path}: HTTP {r.status_code} {r.text}"
        return r.json()

    t = f"/tenants/{tenant}"
    admin(f"{t}/agent-blueprints", {"client_id": blueprint, "client_secrets": [blueprint_secret]})
    agent_oid = admin(f"{t}/agent-identities", {"blueprint_client_id": blueprint, "agent_client_id": agent})["object_id"]
    admin(f"{t}/agent-identities", {"blueprint_client_id": blueprint, "agent_client_id": other_agent})
    admin(f"{t}/agent-users", {"agent_client_id": agent, "object_id": agent_user,
                               "user_principal_name": agent_upn, "display_name": "Interop Agent User"})
    admin(f"{t}/users", {"object_id": human, "user_principal_name": "alice@interop.example"})
    admin(f"/tenants/{tenant}/applications", {"client_id": api_app, "client_secrets": [api_secret]})

    def ok(result):
        assert "access_token" in result, {k: result.get(k) for k in ("error", "error_codes", "error_description")}
        return result

    def app(client_id, credential):
        return msal.ConfidentialClientApplication(
            client_id, client_credential=credential, authority=authority, instance_discovery=False)

    # T1: the blueprint with fmi_path.
    blueprint_app = app(blueprint, blueprint_secret)
    t1 = ok(blueprint_app.acquire_token_for_client([EXCHANGE_SCOPE], fmi_path=agent))["access_token"]
    claims = verifier.verify(t1, blueprint, audience=TOKEN_EXCHANGE_APP_ID)
    assert claims["sub"].endswith("/" + agent), claims
    assert claims["sub"].startswith("/eid1/"), claims
    assert claims["idtyp"] == "app" and claims["xms_act_fct"] == "9 3", claims
    results.append(("msal blueprint T1 (fmi_path)", claims["aud"], claims["exp"] - claims["iat"]))
    # A T1 for another agent differs (MSAL keys its cache by fmi_path).
    t1_other = ok(blueprint_app.acquire_token_for_client([EXCHANGE_SCOPE], fmi_path=other_agent))["access_token"]
    other_claims = verifier.verify(t1_other, blueprint, audience=TOKEN_EXCHANGE_APP_ID)
    assert other_claims["sub"].endswith("/" + other_agent), other_claims
    results.append(("msal blueprint T1 for a second fmi_path", other_claims["aud"],
                    other_claims["exp"] - other_claims["iat"]))

    # TR and T2: the agent identity with the T1 as client assertion.
    # A callable assertion, as MSAL recommends (a static string is deprecated).
    agent_app = app(agent, {"client_assertion": lambda: t1})
    tr = ok(agent_app.acquire_token_for_client([SCOPE]))["access_token"]
    claims = verifier.verify(tr, agent)
    assert claims["appid"] == agent and claims["oid"] == agent_oid, claims
    assert claims["xms_par_app_azp"] == blueprint, claims
    assert claims["xms_act_fct"] == "3 11 9" and claims["xms_sub_fct"] == "9 3 11", claims
    results.append(("msal agent identity TR (T1 assertion)", claims["aud"], claims["exp"] - claims["iat"]))
    t2 = ok(agent_app.acquire_token_for_client([EXCHANGE_SCOPE]))["access_token"]
    claims = verifier.verify(t2, agent, audience=TOKEN_EXCHANGE_APP_ID)
    assert claims["xms_par_app_azp"] == blueprint, claims
    results.append(("msal agent identity T2", claims["aud"], claims["exp"] - claims["iat"]))

    # The T1 of another agent is refused with AADSTS700211.
    wrong = app(agent, {"client_assertion": lambda: t1_other}).acquire_token_for_client([SCOPE])
    assert 700211 in wrong.get("error_codes", []), wrong.get("error_codes")
    results.append(("msal T1 of another agent -> AADSTS700211", "-", 0))

    # Agent user (user_fic), by object id and by UPN.
    for how, selector in (("object id", {"user_object_id": agent_user}), ("upn", {"username": agent_upn})):
        result = ok(agent_app.acquire_token_by_user_federated_identity_credential(
            [GRAPH_USER_READ], t2, **selector))
        claims = verifier.verify(result["access_token"], agent)
        assert claims["oid"] == agent_user and claims["idtyp"] == "user", claims
        assert claims["scp"] == "User.Read" and claims["upn"] == agent_upn, claims
        assert claims["xms_par_app_azp"] == blueprint and claims["xms_sub_fct"] == "13", claims
        id_claims = result.get("id_token_claims") or {}
        assert id_claims.get("oid") == agent_user, id_claims
        assert "refresh_token" in result, sorted(result)
        results.append((f"msal agent user user_fic ({how})", claims["aud"], claims["exp"] - claims["iat"]))

    # MSAL's cache holds the agent user's account; a forced silent call redeems its refresh token.
    accounts = agent_app.get_accounts(username=agent_upn)
    assert accounts, "msal cached no account for the agent user"
    result = ok(agent_app.acquire_token_silent_with_error([GRAPH_USER_READ], accounts[0], force_refresh=True) or {})
    claims = verifier.verify(result["access_token"], agent)
    assert claims["oid"] == agent_user and claims["xms_sub_fct"] == "13", claims
    grants = [f["value"] for r in requests.get(f"{base}/_emulator/requests", timeout=10).json()
              for f in r["form"] if f["name"] == "grant_type"]
    assert "refresh_token" in grants, grants
    results.append(("msal agent user silent refresh (refresh_token)", claims["aud"], claims["exp"] - claims["iat"]))

    # On-behalf-of: an ordinary app, then the agent identity (incoming token for its blueprint).
    def user_token(audience):
        return admin(f"{t}/user-tokens", {"user_object_id": human, "client_id": str(uuid.uuid4()),
                                          "audience": audience, "scopes": "access_as_user"})["token"]

    result = ok(app(api_app, api_secret).acquire_token_on_behalf_of(user_token(f"api://{api_app}"), [GRAPH_USER_READ]))
    claims = verifier.verify(result["access_token"], api_app)
    assert claims["oid"] == human and claims["idtyp"] == "user", claims
    results.append(("msal on-behalf-of (app)", claims["aud"], claims["exp"] - claims["iat"]))
    result = ok(app(agent, {"client_assertion": lambda: t1}).acquire_token_on_behalf_of(
        user_token(blueprint), [GRAPH_USER_READ]))
    claims = verifier.verify(result["access_token"], agent)
    assert claims["oid"] == human and claims["xms_par_app_azp"] == blueprint, claims
    results.append(("msal on-behalf-of (agent identity)", claims["aud"], claims["exp"] - claims["iat"]))
    bad = app(api_app, api_secret).acquire_token_on_behalf_of(user_token(blueprint), [GRAPH_USER_READ])
    assert 500131 in bad.get("error_codes", []), bad.get("error_codes")
    results.append(("msal on-behalf-of wrong audience -> AADSTS500131", "-", 0))

    # The request log records fmi_path and the user selectors, never a token or a secret.
    log = requests.get(f"{base}/_emulator/requests", timeout=10).text
    for secret in (t1, t1_other, tr, t2, blueprint_secret, api_secret):
        assert secret not in log, "a token or secret reached the request log"
    assert agent in log and agent_upn in log, "fmi_path/username not recorded"
    results.append(("request log: agent secrets redacted", "-", 0))


if __name__ == "__main__":
    main()
