//! The token cache every entra-rs flow shares.
//!
//! A token request is answered from this cache when an equivalent request was answered before
//! and its token is still valid. "Equivalent" is decided by a [`CacheKey`]: authority host,
//! tenant, client id, the normalised scope set, the token type (with the key id for bound
//! `mtls_pop` tokens), an optional account, and *extension components* such as `fmi_path`,
//! `client_claims` and `client_session`, hashed the way MSAL hashes them
//! ([`extension_hash`]), so a lookup without components never matches an entry with them.
//!
//! [`TokenCache`] adds what a busy service needs on top of a map: O(1) lookups that never wait
//! on a global lock, single-flight loading (a thousand concurrent misses make one request),
//! proactive refresh that keeps serving the current token, a bypass for claims challenges,
//! removal by predicate, and sweeping of expired entries. Time comes from an injected
//! [`Clock`], so expiry and refresh are tested without sleeping.
//!
//! The crate does no I/O and knows nothing of HTTP: the loader passed to
//! [`TokenCache::get_or_load`] does the network work.
//!
//! ```
//! use entra_cache::{CacheConfig, CacheKey, CacheMode, Fresh, ManualClock, TokenCache, TokenSource};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::at_unix_seconds(1_700_000_000);
//! let cache: TokenCache<String, String> =
//!     TokenCache::new(CacheConfig::default().with_clock(Arc::new(clock.clone())));
//! let key = CacheKey::builder("login.microsoftonline.com", "contoso.onmicrosoft.com", "app-id")
//!     .scopes(["https://vault.azure.net/.default"])
//!     .extension(entra_cache::FMI_PATH, "agent-identity-id")
//!     .build()?;
//!
//! let now = entra_cache::Clock::now(&clock);
//! let token = cache
//!     .get_or_load(&key, CacheMode::Use, move || async move {
//!         Ok::<_, String>(Fresh::new("T1".to_owned(), now + Duration::from_secs(3600)))
//!     })
//!     .await?;
//! assert_eq!(token.source, TokenSource::Fetched);
//! assert_eq!(cache.get(&key).as_deref(), Some("T1"));
//!
//! // An hour later the token has expired and is never served.
//! clock.advance(Duration::from_secs(3600));
//! assert_eq!(cache.get(&key), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod cache;
mod clock;
mod error;
mod key;
mod refresh;

pub use cache::{Acquired, CacheConfig, CacheMode, Fresh, TokenCache, TokenSource};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::KeyError;
pub use key::{
    CLIENT_CLAIMS, CLIENT_SESSION, CREDENTIAL_FMI_PATH, CacheKey, CacheKeyBuilder, FMI_PATH,
    MAX_COMPONENT_LEN, TokenType, extension_hash,
};
pub use refresh::{LONG_LIVED, SHORT_LIVED_LEAD, refresh_on};
