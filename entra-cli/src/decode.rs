//! `entra decode`: the header and claims of a JWT, readable, never presented as verified.
//!
//! Self-contained on purpose (no `crate::` paths, only `base64`, `serde_json` and `time`): the
//! fuzz target `fuzz/fuzz_targets/jwt_decode.rs` includes this file by path, so it is fuzzed
//! without building the whole CLI.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// Why a text is not a decodable JWT. The message never quotes the input (it is a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// What a JWT says, decoded but **not verified**.
pub(crate) struct Decoded {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
}

/// Claim names only: the values are a credential's content.
impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("header", &self.header.keys().collect::<Vec<_>>())
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Splits and decodes a compact JWS. The input is never echoed in errors (it is a credential).
pub(crate) fn decode(token: &str) -> Result<Decoded, DecodeError> {
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, _signature] = parts.as_slice() else {
        return Err(DecodeError(format!(
            "not a JWT: expected three dot-separated parts, found {}; pass an access token \
             (an encrypted JWE has five parts and cannot be decoded without its key)",
            parts.len()
        )));
    };
    Ok(Decoded {
        header: part(header, "header")?,
        claims: part(claims, "claims")?,
    })
}

fn part(text: &str, name: &str) -> Result<Map<String, Value>, DecodeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| DecodeError(format!("not a JWT: its {name} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DecodeError(format!(
            "not a JWT: its {name} is not a JSON object"
        ))),
    }
}

/// What facet numbers mean, as far as public sources and the seed traces tell.
fn facet_name(facet: &str) -> Option<&'static str> {
    Some(match facet {
        "3" => "application",
        "9" => "agent identity blueprint / federated",
        "11" => "agent identity",
        "13" => "agent user",
        "21" => "agentic session",
        _ => return None,
    })
}

fn time_text(seconds: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The JSON `entra decode` prints: header, claims, and an `explained` section.
pub(crate) fn render(decoded: &Decoded, now_unix: i64) -> Value {
    let claims = &decoded.claims;
    let mut explained = Map::new();
    for name in ["exp", "iat", "nbf", "xms_tcdt"] {
        if let Some(seconds) = claims.get(name).and_then(Value::as_i64)
            && let Some(text) = time_text(seconds)
        {
            explained.insert(name.to_owned(), json!(text));
        }
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        // In i128: `exp` comes from the token and may be anywhere in i64.
        let left = i128::from(exp) - i128::from(now_unix);
        let (minutes, seconds) = (left.unsigned_abs() / 60, left.unsigned_abs() % 60);
        let status = if left > 0 {
            format!("expires in {minutes}m {seconds}s")
        } else {
            format!("expired {minutes}m {seconds}s ago")
        };
        explained.insert("expiry".to_owned(), json!(status));
    }
    if let Some(parent) = claims.get("xms_par_app_azp").and_then(Value::as_str) {
        explained.insert(
            "xms_par_app_azp".to_owned(),
            json!(format!(
                "agent identity token: the blueprint (parent application) is {parent}"
            )),
        );
    }
    for name in ["xms_act_fct", "xms_sub_fct", "xms_sess_fct", "xms_tnt_fct"] {
        if let Some(text) = claims.get(name).and_then(Value::as_str) {
            let facets: Vec<Value> = text
                .split_whitespace()
                .map(|f| match facet_name(f) {
                    Some(meaning) => json!(format!("{f} = {meaning}")),
                    None => json!(format!("{f} = (not documented)")),
                })
                .collect();
            explained.insert(name.to_owned(), Value::Array(facets));
        }
    }
    if let Some(session) = claims.get("xms_cli_ses").and_then(Value::as_str) {
        explained.insert(
            "xms_cli_ses".to_owned(),
            json!(format!("acquired in agentic session {session}")),
        );
    }
    if let Some(cnf) = claims.get("cnf").and_then(Value::as_object) {
        if let Some(thumbprint) = cnf.get("x5t#S256").and_then(Value::as_str) {
            explained.insert(
                "cnf".to_owned(),
                json!(format!(
                    "bound token (mTLS proof-of-possession): usable only over a TLS connection \
                     presenting the certificate whose SHA-256 thumbprint is {thumbprint}"
                )),
            );
        } else if cnf.contains_key("kid") || cnf.contains_key("jwk") {
            explained.insert(
                "cnf".to_owned(),
                json!("bound token (proof-of-possession with a key)"),
            );
        }
    }
    if let Some(kind) = claims.get("idtyp").and_then(Value::as_str) {
        let meaning = match kind {
            "app" => "an application (app-only) token",
            "user" => "a delegated token of a user",
            _ => "an identity type this tool does not know",
        };
        explained.insert("idtyp".to_owned(), json!(meaning));
    }
    if let Some(fmi) = claims.get("sub").and_then(Value::as_str)
        && fmi.starts_with("/eid1/")
        && let Some(last) = fmi.rsplit('/').next()
    {
        explained.insert(
            "sub".to_owned(),
            json!(format!(
                "a blueprint token (T1) for the agent identity {last} (its fmi_path)"
            )),
        );
    }
    json!({
        "signature": "NOT VERIFIED: this shows what the token claims, not that it is genuine",
        "header": decoded.header,
        "claims": decoded.claims,
        "explained": explained,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn explains_agent_claims_times_and_binding() {
        let token = jwt(
            &json!({"alg": "RS256", "kid": "k1"}),
            &json!({
                "exp": 1_700_003_600, "iat": 1_700_000_000, "nbf": 1_700_000_000,
                "xms_par_app_azp": "blueprint-id", "xms_act_fct": "3 11 9",
                "xms_sess_fct": "21", "xms_cli_ses": "s1", "idtyp": "app",
                "cnf": {"x5t#S256": "abc"}, "sub": "/eid1/c/pub/t/x/a/y/agent-id"
            }),
        );
        let out = render(&decode(&format!("Bearer {token}")).unwrap(), 1_700_000_000);
        assert_eq!(out["header"]["kid"], "k1");
        assert_eq!(out["explained"]["exp"], "2023-11-14T23:13:20Z");
        assert_eq!(out["explained"]["expiry"], "expires in 60m 0s");
        assert!(
            out["explained"]["xms_par_app_azp"]
                .as_str()
                .unwrap()
                .contains("blueprint-id")
        );
        assert_eq!(out["explained"]["xms_act_fct"][1], "11 = agent identity");
        assert_eq!(out["explained"]["xms_sess_fct"][0], "21 = agentic session");
        assert!(out["explained"]["cnf"].as_str().unwrap().contains("abc"));
        assert!(
            out["explained"]["sub"]
                .as_str()
                .unwrap()
                .contains("agent-id")
        );
        assert!(
            out["signature"]
                .as_str()
                .unwrap()
                .starts_with("NOT VERIFIED")
        );
        assert!(out.get("verified").is_none());
    }

    #[test]
    fn extreme_expiry_times_render() {
        // Found by the `jwt_decode` fuzz target: `exp - now` overflowed.
        for (exp, now, expected) in [
            (
                i64::MIN,
                1_800_000_000,
                "expired 153722867310912930m 8s ago",
            ),
            (i64::MAX, -1, "expires in 153722867280912930m 8s"),
            (1_800_000_000, 1_800_000_061, "expired 1m 1s ago"),
        ] {
            let token = jwt(&json!({"alg": "none"}), &json!({ "exp": exp }));
            let out = render(&decode(&token).unwrap(), now);
            assert_eq!(out["explained"]["expiry"], expected, "{exp} {now}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_jwt_without_echoing_it() {
        for bad in [
            "secret-value",
            "a.b",
            "!!!.e30.x",
            "e30.bm90LWpzb24.x",
            "a.b.c.d.e",
        ] {
            let err = decode(bad).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("secret-value"), "{shown}");
            assert!(shown.contains("not a JWT"), "{shown}");
        }
    }
}
