//! Cache keys: what makes two token requests interchangeable.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::KeyError;

/// The extension component that isolates tokens per agent identity (`fmi_path`).
pub const FMI_PATH: &str = "fmi_path";
/// The extension component that isolates tokens requested with different client claims.
pub const CLIENT_CLAIMS: &str = "client_claims";
/// The extension component that isolates tokens of one agentic session (`client_session`).
pub const CLIENT_SESSION: &str = "client_session";
/// The extension component that isolates tokens minted with a credential's own `fmi_path`.
pub const CREDENTIAL_FMI_PATH: &str = "credential_fmi_path";

/// Longest accepted key component, in bytes; a longer one is a caller bug, not a token.
pub const MAX_COMPONENT_LEN: usize = 8 * 1024;

/// The type of token a key names: plain bearer, or bound to a key (`mtls_pop` + thumbprint).
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// A bearer token.
    Bearer,
    /// A token bound to a key, such as `mtls_pop` with the certificate's `x5t#S256`.
    Bound {
        /// The token type as sent in the request (`mtls_pop`), stored lower-cased.
        token_type: String,
        /// The key identifier the token is bound to (for mTLS PoP, the certificate's `x5t#S256`).
        key_id: String,
    },
}

impl TokenType {
    /// A token bound to `key_id`, of type `token_type` (for example `mtls_pop`).
    pub fn bound(token_type: impl Into<String>, key_id: impl Into<String>) -> Self {
        Self::Bound {
            token_type: token_type.into().to_ascii_lowercase(),
            key_id: key_id.into(),
        }
    }

    fn type_name(&self) -> &str {
        match self {
            Self::Bearer => "bearer",
            Self::Bound { token_type, .. } => token_type,
        }
    }

    fn key_id(&self) -> &str {
        match self {
            Self::Bearer => "",
            Self::Bound { key_id, .. } => key_id,
        }
    }
}

impl fmt::Debug for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer => f.write_str("Bearer"),
            // A thumbprint is public (it is in the token's `cnf` claim), so it may be shown.
            Self::Bound { token_type, key_id } => write!(f, "Bound({token_type}, {key_id})"),
        }
    }
}

/// Identifies a cached token: authority host, tenant, client id, normalised scope set, token
/// type (with key id for bound tokens), an optional account and the extension components.
///
/// Built with [`CacheKey::builder`]. Cloning is cheap (one reference count). Two keys are equal
/// exactly when every component is equal after normalisation: host, tenant, client id and scopes
/// are compared case-insensitively, scopes as a set, and the extension components through their
/// MSAL hash ([`extension_hash`]), so a key without components never equals one with them.
///
/// `Debug` shows the components that are public (host, tenant, client, scopes, token type) and
/// only the *names* of extension components: their values can hold raw client claims.
#[derive(Clone)]
pub struct CacheKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    /// Hash of `canonical`, computed once with a per-process random seed.
    hash: u64,
    /// An unambiguous (length-prefixed) serialisation of every component; equality compares it.
    canonical: Box<str>,
    authority_host: Box<str>,
    tenant: Box<str>,
    client_id: Box<str>,
    scopes: Box<[Box<str>]>,
    token_type: TokenType,
    account: Option<Box<str>>,
    extensions: BTreeMap<String, String>,
    extension_hash: Option<Box<str>>,
}

impl CacheKey {
    /// Starts a key for the application `client_id` of `tenant` at `authority_host`
    /// (a host name such as `login.microsoftonline.com`, or `127.0.0.1:8443` for the emulator).
    pub fn builder(
        authority_host: impl Into<String>,
        tenant: impl Into<String>,
        client_id: impl Into<String>,
    ) -> CacheKeyBuilder {
        CacheKeyBuilder {
            authority_host: authority_host.into(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            scopes: Vec::new(),
            token_type: TokenType::Bearer,
            account: None,
            extensions: BTreeMap::new(),
        }
    }

    /// The authority host, lower-cased.
    pub fn authority_host(&self) -> &str {
        &self.inner.authority_host
    }

    /// The tenant, lower-cased.
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// The client id, lower-cased.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The normalised scopes: lower-cased, sorted, without duplicates.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.scopes.iter().map(|s| &**s)
    }

    /// The token type.
    pub fn token_type(&self) -> &TokenType {
        &self.inner.token_type
    }

    /// The account the token belongs to, if it is a user (or on-behalf-of) token.
    pub fn account(&self) -> Option<&str> {
        self.inner.account.as_deref()
    }

    /// The value of the extension component `name`, if the key has it.
    ///
    /// Used to select keys, for example every key of one agentic session
    /// (`key.extension(CLIENT_SESSION) == Some(id)`).
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.inner.extensions.get(name).map(String::as_str)
    }

    /// The names of the extension components, sorted.
    pub fn extension_names(&self) -> impl Iterator<Item = &str> {
        self.inner.extensions.keys().map(String::as_str)
    }

    /// The MSAL extension hash of this key's components, or `None` when it has none.
    pub fn extension_hash(&self) -> Option<&str> {
        self.inner.extension_hash.as_deref()
    }

    pub(crate) fn precomputed_hash(&self) -> u64 {
        self.inner.hash
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.hash == other.inner.hash
                && self.inner.canonical == other.inner.canonical)
    }
}

impl Eq for CacheKey {}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.inner.hash);
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.inner;
        f.debug_struct("CacheKey")
            .field("authority_host", &k.authority_host)
            .field("tenant", &k.tenant)
            .field("client_id", &k.client_id)
            .field("scopes", &k.scopes)
            .field("token_type", &k.token_type)
            .field("account", &k.account.as_ref().map(|_| "<set>"))
            .field("extensions", &k.extensions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds a [`CacheKey`]; see [`CacheKey::builder`].
#[derive(Clone)]
pub struct CacheKeyBuilder {
    authority_host: String,
    tenant: String,
    client_id: String,
    scopes: Vec<String>,
    token_type: TokenType,
    account: Option<String>,
    extensions: BTreeMap<String, String>,
}

impl fmt::Debug for CacheKeyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheKeyBuilder")
            .field("authority_host", &self.authority_host)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field("extensions", &self.extensions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CacheKeyBuilder {
    /// Adds scopes. Each item may itself hold several space-separated scopes, as in the
    /// OAuth `scope` parameter; case, order and duplicates do not matter.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for item in scopes {
            self.scopes
                .extend(item.as_ref().split_ascii_whitespace().map(str::to_owned));
        }
        self
    }

    /// Sets the token type (default [`TokenType::Bearer`]).
    pub fn token_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }

    /// Sets the account, for user and on-behalf-of tokens (for on-behalf-of, pass a hash of the
    /// incoming assertion, never the assertion itself).
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Adds an extension component such as [`FMI_PATH`] or [`CLIENT_SESSION`]. As in MSAL, a
    /// component with an empty value is ignored; setting a name twice keeps the last value.
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = value.into();
        let name = name.into();
        if value.is_empty() {
            self.extensions.remove(&name);
        } else {
            self.extensions.insert(name, value);
        }
        self
    }

    /// Validates and normalises the components into a key.
    pub fn build(self) -> Result<CacheKey, KeyError> {
        let authority_host = required("authority host", &self.authority_host)?.to_ascii_lowercase();
        let tenant = required("tenant", &self.tenant)?.to_ascii_lowercase();
        let client_id = required("client id", &self.client_id)?.to_ascii_lowercase();
        if self.scopes.is_empty() {
            return Err(KeyError::NoScopes);
        }
        let mut scopes: Vec<Box<str>> = Vec::with_capacity(self.scopes.len());
        for scope in &self.scopes {
            check_len("scope", scope)?;
            scopes.push(scope.to_lowercase().into_boxed_str());
        }
        scopes.sort_unstable();
        scopes.dedup();
        if let TokenType::Bound { token_type, key_id } = &self.token_type {
            required("token type", token_type)?;
            required("key id", key_id)?;
        }
        let account = match self.account {
            Some(a) => Some(required("account", &a)?.into()),
            None => None,
        };
        for (name, value) in &self.extensions {
            required("extension component name", name)?;
            check_len("extension component value", value)?;
        }
        let extension_hash = extension_hash(
            self.extensions
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map(String::into_boxed_str);

        let mut canonical = String::new();
        let joined_scopes = scopes.join(" ");
        for part in [
            authority_host.as_str(),
            tenant.as_str(),
            client_id.as_str(),
            joined_scopes.as_str(),
            self.token_type.type_name(),
            self.token_type.key_id(),
            account.as_deref().unwrap_or(""),
            extension_hash.as_deref().unwrap_or(""),
        ] {
            netstring(&mut canonical, part);
        }
        let hash = key_hasher().hash_one(canonical.as_str());
        Ok(CacheKey {
            inner: Arc::new(KeyInner {
                hash,
                canonical: canonical.into_boxed_str(),
                authority_host: authority_host.into_boxed_str(),
                tenant: tenant.into_boxed_str(),
                client_id: client_id.into_boxed_str(),
                scopes: scopes.into_boxed_slice(),
                token_type: self.token_type,
                account,
                extensions: self.extensions,
                extension_hash,
            }),
        })
    }
}

fn required<'a>(what: &'static str, value: &'a str) -> Result<&'a str, KeyError> {
    if value.trim().is_empty() {
        return Err(KeyError::Empty { component: what });
    }
    check_len(what, value)?;
    Ok(value)
}

fn check_len(what: &'static str, value: &str) -> Result<(), KeyError> {
    if value.len() > MAX_COMPONENT_LEN {
        return Err(KeyError::TooLong {
            component: what,
            len: value.len(),
            max: MAX_COMPONENT_LEN,
        });
    }
    Ok(())
}

fn netstring(out: &mut String, part: &str) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{}:{}", part.len(), part);
}

/// One random seed per process, so hashes cannot be predicted from outside (the keys contain
/// values that a server's claims challenge can influence) yet stay fixed for the process.
fn key_hasher() -> &'static RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new)
}

/// MSAL's extension-component hash: for each `(name, value)` pair sorted by name and with empty
/// values skipped, `<len(name)>:<name><len(value)>:<value>` (lengths in UTF-8 bytes) is appended;
/// the string is hashed with SHA-256, encoded base64url without padding and lower-cased.
///
/// Returns `None` when no component has a value, so a key without components is distinct from
/// every key with them. The result is byte-identical to MSAL Python's `_compute_ext_cache_key`
/// (≥ 1.38) and MSAL Go's `CacheExtKeyGenerator`.
///
/// ```
/// let hash = entra_cache::extension_hash([("fmi_path", "SomeFmiPath/FmiCredentialPath")]);
/// assert_eq!(hash.as_deref(), Some("cojvfy5tzae3njpkvcebguvvx5vvmnj8hphqrbogjoi"));
/// assert_eq!(entra_cache::extension_hash([("fmi_path", "")]), None);
/// ```
pub fn extension_hash<'a, I>(components: I) -> Option<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let sorted: BTreeMap<&str, &str> = components
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if sorted.is_empty() {
        return None;
    }
    let mut serialised = String::new();
    for (name, value) in sorted {
        netstring(&mut serialised, name);
        netstring(&mut serialised, value);
    }
    let digest = Sha256::digest(serialised.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(digest).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> CacheKeyBuilder {
        CacheKey::builder("login.microsoftonline.com", "tenant-a", "client-a")
            .scopes(["https://graph.microsoft.com/.default"])
    }

    // Vectors computed with MSAL Python 1.39's `msal.token_cache._compute_ext_cache_key`.
    #[test]
    fn extension_hash_matches_msal_python() {
        assert_eq!(
            extension_hash([("fmi_path", "SomeFmiPath/FmiCredentialPath")]).as_deref(),
            Some("cojvfy5tzae3njpkvcebguvvx5vvmnj8hphqrbogjoi")
        );
        assert_eq!(
            extension_hash([
                ("fmi_path", "agent-a"),
                ("client_session", "sess-1"),
                (
                    "client_claims",
                    r#"{"access_token":{"nbf":{"essential":true}}}"#
                ),
            ])
            .as_deref(),
            Some("mobpkndtuylsahs5i9zicv0xwy3fkrrs8nyvdvugz_k")
        );
        // Lengths are UTF-8 byte lengths, not character counts.
        assert_eq!(
            extension_hash([("credential_fmi_path", "é/ü")]).as_deref(),
            Some("ausjfdqznjs1gaaq_xam22dn1vmvqndsphh8juea25u")
        );
    }

    #[test]
    fn extension_hash_is_order_independent_and_skips_empty_values() {
        let a = extension_hash([("fmi_path", "x"), ("client_session", "s")]);
        let b = extension_hash([("client_session", "s"), ("fmi_path", "x"), ("other", "")]);
        assert_eq!(a, b);
        assert_eq!(extension_hash(std::iter::empty()), None);
    }

    #[test]
    fn netstring_serialisation_is_unambiguous() {
        assert_ne!(
            extension_hash([("fmi_path", "value")]),
            extension_hash([("fmi_pat", "hvalue")])
        );
    }

    #[test]
    fn scopes_are_normalised() {
        let a = base()
            .scopes(["User.Read", "Mail.Read user.read"])
            .build()
            .unwrap();
        let b = CacheKey::builder("LOGIN.microsoftonline.com", "Tenant-A", "CLIENT-A")
            .scopes([
                "mail.read",
                "https://graph.microsoft.com/.default",
                "USER.READ",
            ])
            .build()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.scopes().collect::<Vec<_>>(),
            [
                "https://graph.microsoft.com/.default",
                "mail.read",
                "user.read"
            ]
        );
    }

    #[test]
    fn lookup_without_components_never_matches_entry_with_them() {
        let plain = base().build().unwrap();
        let with = base().extension(FMI_PATH, "agent-a").build().unwrap();
        let other = base().extension(FMI_PATH, "agent-b").build().unwrap();
        let session = base().extension(CLIENT_SESSION, "agent-a").build().unwrap();
        assert_ne!(plain, with);
        assert_ne!(with, other);
        // Same value under another name is another key.
        assert_ne!(with, session);
        assert_eq!(with.extension(FMI_PATH), Some("agent-a"));
        assert_eq!(plain.extension_hash(), None);
        // An empty component is no component at all, as in MSAL.
        assert_eq!(plain, base().extension(FMI_PATH, "").build().unwrap());
    }

    #[test]
    fn token_type_and_key_id_separate_keys() {
        let bearer = base().build().unwrap();
        let pop_a = base()
            .token_type(TokenType::bound("MTLS_POP", "thumb-a"))
            .build()
            .unwrap();
        let pop_b = base()
            .token_type(TokenType::bound("mtls_pop", "thumb-b"))
            .build()
            .unwrap();
        assert_ne!(bearer, pop_a);
        assert_ne!(pop_a, pop_b);
        assert_eq!(
            pop_a,
            base()
                .token_type(TokenType::bound("mtls_pop", "thumb-a"))
                .build()
                .unwrap()
        );
        // Key ids are case-sensitive (base64url thumbprints).
        assert_ne!(
            pop_a,
            base()
                .token_type(TokenType::bound("mtls_pop", "THUMB-A"))
                .build()
                .unwrap()
        );
    }

    #[test]
    fn components_cannot_bleed_into_each_other() {
        let a = CacheKey::builder("h", "t1", "c")
            .scopes(["s"])
            .build()
            .unwrap();
        let b = CacheKey::builder("h", "t", "1c")
            .scopes(["s"])
            .build()
            .unwrap();
        assert_ne!(a, b);
        let with_account = base().account("user-1").build().unwrap();
        assert_ne!(with_account, base().build().unwrap());
        assert_ne!(with_account, base().account("user-2").build().unwrap());
    }

    #[test]
    fn invalid_components_are_typed_errors() {
        assert_eq!(
            CacheKey::builder("h", "t", "c").build().unwrap_err(),
            KeyError::NoScopes
        );
        assert_eq!(
            CacheKey::builder(" ", "t", "c")
                .scopes(["s"])
                .build()
                .unwrap_err(),
            KeyError::Empty {
                component: "authority host"
            }
        );
        // Whitespace-only items add no scope; the base scope remains.
        assert!(base().scopes(["   "]).build().is_ok());
        assert_eq!(
            CacheKey::builder("h", "t", "c")
                .scopes(["  "])
                .build()
                .unwrap_err(),
            KeyError::NoScopes
        );
        assert!(matches!(
            base()
                .token_type(TokenType::bound("mtls_pop", ""))
                .build()
                .unwrap_err(),
            KeyError::Empty {
                component: "key id"
            }
        ));
        let long = "x".repeat(MAX_COMPONENT_LEN + 1);
        assert!(matches!(
            base().extension(FMI_PATH, long).build().unwrap_err(),
            KeyError::TooLong { .. }
        ));
    }

    #[test]
    fn debug_never_shows_extension_values_or_account() {
        let key = base()
            .account("alice@contoso.example")
            .extension(CLIENT_CLAIMS, r#"{"access_token":{"secret-claim":null}}"#)
            .build()
            .unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("client_claims"), "{shown}");
        assert!(!shown.contains("secret-claim"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    }
}

#[cfg(test)]
mod laws {
    use super::*;
    use proptest::prelude::*;

    fn scope() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("https://graph.microsoft.com/.default".to_owned()),
            Just("User.Read".to_owned()),
            Just("Mail.Send".to_owned()),
            "[a-zA-Z./:]{1,12}",
        ]
    }

    fn shuffle_case(s: &str, flips: &[bool]) -> String {
        s.chars()
            .zip(flips.iter().cycle())
            .map(|(c, &flip)| {
                if flip {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn scope_order_case_and_duplicates_do_not_matter(
            scopes in proptest::collection::vec(scope(), 1..6),
            seed in any::<u64>(),
            flips in proptest::collection::vec(any::<bool>(), 1..8),
        ) {
            let mut permuted: Vec<String> = scopes.iter().map(|s| shuffle_case(s, &flips)).collect();
            // A deterministic shuffle driven by the seed, plus a duplicate.
            let n = permuted.len();
            for i in 0..n {
                permuted.swap(i, (seed as usize).wrapping_add(i * 7) % n);
            }
            permuted.push(permuted[0].clone());
            let a = CacheKey::builder("h", "t", "c").scopes(&scopes).build().unwrap();
            let b = CacheKey::builder("H", "T", "C").scopes(&permuted).build().unwrap();
            prop_assert_eq!(a.precomputed_hash(), b.precomputed_hash());
            prop_assert_eq!(a, b);
        }

        #[test]
        fn extension_components_are_order_independent_and_always_distinguishing(
            comps in proptest::collection::btree_map("[a-z_]{1,8}", "[ -~]{0,12}", 0..5),
            extra_name in "[a-z_]{1,8}",
            extra_value in "[ -~]{1,12}",
        ) {
            let forward = comps.iter().fold(CacheKey::builder("h", "t", "c").scopes(["s"]), |b, (k, v)| b.extension(k, v));
            let backward = comps.iter().rev().fold(CacheKey::builder("h", "t", "c").scopes(["s"]), |b, (k, v)| b.extension(k, v));
            let forward = forward.build().unwrap();
            prop_assert_eq!(&forward, &backward.build().unwrap());
            // Adding (or changing) a non-empty component always gives another key.
            if comps.get(&extra_name) != Some(&extra_value) {
                let more = comps.iter()
                    .fold(CacheKey::builder("h", "t", "c").scopes(["s"]), |b, (k, v)| b.extension(k, v))
                    .extension(&extra_name, &extra_value)
                    .build()
                    .unwrap();
                prop_assert_ne!(&forward, &more);
            }
        }
    }
}
