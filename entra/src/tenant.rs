//! The multi-tenant rule: a request may name another tenant only if the credential allows it.

use entra_core::Error;

/// Which tenant a request goes to: the credential's own unless the request names another, which
/// is allowed only when `allowed` holds it or `*`.
pub(crate) fn resolve_tenant(
    credential: &str,
    default: Option<&str>,
    requested: Option<&str>,
    allowed: &[String],
) -> Result<Option<String>, Error> {
    let requested = match requested.map(str::trim) {
        None | Some("") => return Ok(default.map(str::to_owned)),
        Some(t) => t,
    };
    if default.is_some_and(|d| d.eq_ignore_ascii_case(requested)) {
        return Ok(Some(requested.to_owned()));
    }
    if allowed
        .iter()
        .any(|a| a.trim() == "*" || a.trim().eq_ignore_ascii_case(requested))
    {
        return Ok(Some(requested.to_owned()));
    }
    Err(Error::Configuration(format!(
        "{credential} is configured for tenant {} and the request asks for tenant {requested}, \
         which it is not allowed to use; add {requested} (or `*` for any tenant) to \
         additionally_allowed_tenants, or to AZURE_ADDITIONALLY_ALLOWED_TENANTS for credentials \
         configured from the environment",
        default.unwrap_or("(none)")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn own_tenant_and_no_tenant_are_always_allowed() {
        assert_eq!(
            resolve_tenant("X", Some("a"), None, &[])
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            resolve_tenant("X", Some("a"), Some("A"), &[])
                .unwrap()
                .as_deref(),
            Some("A")
        );
        assert_eq!(resolve_tenant("X", None, None, &[]).unwrap(), None);
    }

    #[test]
    fn another_tenant_needs_to_be_listed() {
        let err = resolve_tenant("X", Some("a"), Some("b"), &allowed(&["c"])).unwrap_err();
        assert!(matches!(err, Error::Configuration(_)));
        assert!(err.to_string().contains("additionally_allowed_tenants"));
        assert_eq!(
            resolve_tenant("X", Some("a"), Some("b"), &allowed(&["c", "B"]))
                .unwrap()
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            resolve_tenant("X", None, Some("b"), &allowed(&["*"]))
                .unwrap()
                .as_deref(),
            Some("b")
        );
        assert!(resolve_tenant("X", None, Some("b"), &[]).is_err());
    }
}
