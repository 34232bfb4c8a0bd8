//! Authority hosts and tenants.

use std::fmt;
use std::net::IpAddr;

use url::Url;

use crate::{Env, Error};

/// The environment variable that overrides the authority host.
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";

/// The Entra ID host of a cloud, or a loopback stand-in such as the emulator.
///
/// Only `https` is accepted, except for loopback hosts (`127.0.0.0/8`, `[::1]`, `localhost`),
/// which may use `http` so a local emulator can stand in for Entra ID. A host has no path,
/// query or credentials.
///
/// ```
/// use entra_core::AuthorityHost;
///
/// let public = AuthorityHost::public_cloud();
/// assert_eq!(public.as_str(), "https://login.microsoftonline.com");
/// assert!(AuthorityHost::parse("http://login.microsoftonline.com").is_err());
/// assert!(AuthorityHost::parse("http://127.0.0.1:8080").is_ok());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthorityHost {
    url: Url,
    /// `host[:port]`, lower case: the cache-key component.
    host: String,
}

impl AuthorityHost {
    /// Azure public cloud.
    pub const PUBLIC: &'static str = "https://login.microsoftonline.com";
    /// Azure US Government.
    pub const US_GOVERNMENT: &'static str = "https://login.microsoftonline.us";
    /// Azure operated by 21Vianet (China).
    pub const CHINA: &'static str = "https://login.chinacloudapi.cn";

    /// Azure public cloud.
    pub fn public_cloud() -> Self {
        Self::parse(Self::PUBLIC).unwrap_or_else(|_| unreachable!("the public cloud host is valid"))
    }

    /// Parses and validates a host URL.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::Configuration(format!(
                "authority host {why}; use an https URL such as {}",
                Self::PUBLIC
            ))
        };
        let url = Url::parse(value.trim()).map_err(|_| bad("is not a URL"))?;
        let host = url
            .host_str()
            .ok_or_else(|| bad("has no host"))?
            .to_ascii_lowercase();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => return Err(bad("uses http, which is allowed only for loopback hosts")),
            _ => return Err(bad("must use https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
            return Err(bad(
                "must be a bare host without path or query (the tenant is configured separately)",
            ));
        }
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let mut url = url;
        url.set_path("");
        Ok(Self { url, host })
    }

    /// `AZURE_AUTHORITY_HOST` from `env`, or the public cloud when it is unset or empty.
    pub fn from_env(env: &dyn Env) -> Result<Self, Error> {
        match env.var(AZURE_AUTHORITY_HOST) {
            Some(v) if !v.trim().is_empty() => Self::parse(&v),
            _ => Ok(Self::public_cloud()),
        }
    }

    /// The host URL, without trailing slash.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// `host[:port]` in lower case, as used in cache keys.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this is a loopback host (an emulator).
    pub fn is_loopback(&self) -> bool {
        self.url.host_str().is_some_and(is_loopback)
    }

    /// `{host}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant: &Tenant) -> Url {
        let mut url = self.url.clone();
        url.set_path(&format!("/{}/oauth2/v2.0/token", tenant.as_str()));
        url
    }

    /// The audience of token-exchange tokens (federated credentials, agent T1) in this cloud.
    pub fn token_exchange_audience(&self) -> &'static str {
        if self.host.ends_with("microsoftonline.us") {
            "api://AzureADTokenExchangeUSGov"
        } else if self.host.ends_with("chinacloudapi.cn") {
            "api://AzureADTokenExchangeChina"
        } else {
            "api://AzureADTokenExchange"
        }
    }
}

impl fmt::Debug for AuthorityHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AuthorityHost")
            .field(&self.as_str())
            .finish()
    }
}

impl fmt::Display for AuthorityHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `host` (a URL host string) is a loopback address or `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A tenant: a directory id (GUID) or a verified domain name.
///
/// ```
/// use entra_core::Tenant;
/// assert!(Tenant::new("72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
/// assert!(Tenant::new("contoso.onmicrosoft.com").is_ok());
/// assert!(Tenant::new("../admin").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// Validates `value`: 1 to 256 ASCII letters, digits, `-`, `.` or `_`, not starting or
    /// ending with `.` (so it can only ever be one path segment).
    pub fn new(value: &str) -> Result<Self, Error> {
        let value = value.trim();
        let ok = !value.is_empty()
            && value.len() <= 256
            && !value.starts_with('.')
            && !value.ends_with('.')
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Error::Configuration(
                "the tenant must be a directory id (GUID) or a domain name such as contoso.onmicrosoft.com".to_owned(),
            ))
        }
    }

    /// The tenant as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tenant").field(&self.0).finish()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapEnv;

    #[test]
    fn clouds_and_loopback() {
        for ok in [
            AuthorityHost::PUBLIC,
            AuthorityHost::US_GOVERNMENT,
            AuthorityHost::CHINA,
            "https://login.microsoftonline.com/",
            "http://localhost:8080",
            "http://127.0.0.2:1",
            "http://[::1]:443",
            "https://127.0.0.1:9443",
        ] {
            assert!(AuthorityHost::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://login.microsoftonline.com",
            "http://10.0.0.1",
            "ftp://localhost",
            "https://login.microsoftonline.com/tenant",
            "https://login.microsoftonline.com?x=1",
            "https://user:pw@login.microsoftonline.com",
            "not a url",
        ] {
            let err = AuthorityHost::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Configuration(_)), "{bad}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }

    #[test]
    fn host_and_endpoints() {
        let a = AuthorityHost::parse("https://Login.MicrosoftOnline.com/").unwrap();
        assert_eq!(a.host(), "login.microsoftonline.com");
        assert_eq!(a.as_str(), "https://login.microsoftonline.com");
        let t = Tenant::new("contoso.onmicrosoft.com").unwrap();
        assert_eq!(
            a.token_endpoint(&t).as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let local = AuthorityHost::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(local.host(), "127.0.0.1:8443");
        assert!(local.is_loopback());
        assert_eq!(a.token_exchange_audience(), "api://AzureADTokenExchange");
        assert_eq!(
            AuthorityHost::parse(AuthorityHost::US_GOVERNMENT)
                .unwrap()
                .token_exchange_audience(),
            "api://AzureADTokenExchangeUSGov"
        );
        assert_eq!(
            AuthorityHost::parse(AuthorityHost::CHINA)
                .unwrap()
                .token_exchange_audience(),
            "api://AzureADTokenExchangeChina"
        );
    }

    #[test]
    fn from_env() {
        assert_eq!(
            AuthorityHost::from_env(&MapEnv::default()).unwrap(),
            AuthorityHost::public_cloud()
        );
        let env = MapEnv::new([(AZURE_AUTHORITY_HOST, "https://login.microsoftonline.us")]);
        assert_eq!(
            AuthorityHost::from_env(&env).unwrap().host(),
            "login.microsoftonline.us"
        );
        let env = MapEnv::new([(AZURE_AUTHORITY_HOST, "http://evil.example")]);
        assert!(AuthorityHost::from_env(&env).is_err());
    }

    #[test]
    fn tenants() {
        for bad in ["", " ", "a/b", "a b", ".x", "x.", "a?b", "%2e%2e"] {
            assert!(Tenant::new(bad).is_err(), "{bad:?}");
        }
        assert!(Tenant::new(&"a".repeat(257)).is_err());
        assert_eq!(Tenant::new(" tenant-1 ").unwrap().as_str(), "tenant-1");
    }
}
