//! The binding cache: one binding per managed identity, reused for every scope.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use entra_cache::{CacheConfig, CacheKey, CacheMode, Clock, Fresh, SystemClock, TokenCache};
use entra_core::Error;

use crate::Binding;

const SELECTOR: &str = "identity_selector";

/// Caches one [`Binding`] per identity selector (`""` for the system-assigned identity, or the
/// selector sent to IMDS such as `client_id=…`; compared exactly).
///
/// A binding is reused for every scope while [`Binding::is_fresh`]; concurrent
/// [`get_or_mint`](Self::get_or_mint) calls for one selector run one mint and share its result
/// (the single-flight of [`entra_cache::TokenCache`]). Cloning shares the storage.
#[derive(Clone)]
pub struct BindingCache {
    cache: TokenCache<Arc<Binding>, Error>,
}

impl fmt::Debug for BindingCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindingCache")
            .field("entries", &self.cache.len())
            .finish()
    }
}

impl Default for BindingCache {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl BindingCache {
    /// An empty cache reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        // Served exactly until `not_after − 24 h` (no margin), and never refreshed early: the
        // refresh time is the expiry and there is no jitter.
        let config = CacheConfig::default()
            .with_clock(clock)
            .with_expiry_margin(Duration::ZERO)
            .with_max_jitter(Duration::ZERO)
            .with_shards(1);
        Self {
            cache: TokenCache::new(config),
        }
    }

    /// The fresh binding for `selector`, minting one with `mint` when there is none.
    ///
    /// Concurrent calls for one selector share one `mint`; its error is returned to every
    /// caller that shared it, and nothing is cached. A minted binding is returned even if it
    /// is already past its reuse window (it is then not kept).
    pub async fn get_or_mint<F, Fut>(&self, selector: &str, mint: F) -> Result<Arc<Binding>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Binding, Error>> + Send + 'static,
    {
        let key = key(selector)?;
        let load = || {
            let minted = mint();
            async move {
                let binding = minted.await?;
                let fresh_until = binding.fresh_until();
                Ok(Fresh::new(Arc::new(binding), fresh_until).with_refresh_on(fresh_until))
            }
        };
        Ok(self
            .cache
            .get_or_load(&key, CacheMode::Use, load)
            .await?
            .value)
    }

    /// The fresh binding for `selector`, if one is cached (never mints).
    pub fn get(&self, selector: &str) -> Option<Arc<Binding>> {
        key(selector).ok().and_then(|k| self.cache.get(&k))
    }

    /// Drops the binding of `selector` (after `invalid_client` or a failed handshake), so the
    /// next [`get_or_mint`](Self::get_or_mint) mints a new one; returns the dropped binding.
    pub fn evict(&self, selector: &str) -> Option<Arc<Binding>> {
        key(selector).ok().and_then(|k| self.cache.remove(&k))
    }
}

fn key(selector: &str) -> Result<CacheKey, Error> {
    Ok(
        CacheKey::builder("imds", "managed-identity", "mtls-pop-binding")
            .scopes(["binding"])
            .extension(SELECTOR, selector)
            .build()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestCa, software_key, unix};
    use entra_cache::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const NOT_AFTER: u64 = 1_800_000_000;

    struct Fixture {
        clock: ManualClock,
        cache: BindingCache,
        mints: Arc<AtomicUsize>,
        ca: Arc<TestCa>,
    }

    impl Fixture {
        fn new() -> Self {
            let clock = ManualClock::at_unix_seconds(NOT_AFTER - 7 * 86_400);
            Self {
                cache: BindingCache::new(Arc::new(clock.clone())),
                clock,
                mints: Arc::new(AtomicUsize::new(0)),
                ca: Arc::new(TestCa::new()),
            }
        }

        /// A mint that counts itself and issues a certificate expiring at `not_after`.
        fn mint(
            &self,
            not_after: u64,
        ) -> impl FnOnce() -> std::pin::Pin<
            Box<dyn Future<Output = Result<Binding, Error>> + Send + 'static>,
        > + use<> {
            let (mints, ca) = (Arc::clone(&self.mints), Arc::clone(&self.ca));
            move || {
                Box::pin(async move {
                    mints.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok(ca.binding(software_key(), unix(not_after)))
                })
            }
        }

        fn mints(&self) -> usize {
            self.mints.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn reuses_one_binding_until_a_day_before_expiry() {
        let f = Fixture::new();
        let first = f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        let again = f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(f.mints(), 1);
        assert!(Arc::ptr_eq(&f.cache.get("").unwrap(), &first));

        // One second before not_after − 24 h: still reused.
        f.clock.set(unix(NOT_AFTER - 86_400 - 1));
        let late = f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        assert!(Arc::ptr_eq(&late, &first));
        assert_eq!(f.mints(), 1);

        // At not_after − 24 h: minted again.
        f.clock.set(unix(NOT_AFTER - 86_400));
        assert!(f.cache.get("").is_none());
        let renewed = f
            .cache
            .get_or_mint("", f.mint(NOT_AFTER + 86_400))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&renewed, &first));
        assert_eq!(renewed.not_after(), unix(NOT_AFTER + 86_400));
        assert_eq!(f.mints(), 2);
    }

    #[tokio::test]
    async fn selectors_have_their_own_bindings() {
        let f = Fixture::new();
        let system = f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        let user = f
            .cache
            .get_or_mint("client_id=ABC", f.mint(NOT_AFTER))
            .await
            .unwrap();
        let other_case = f
            .cache
            .get_or_mint("client_id=abc", f.mint(NOT_AFTER))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&system, &user) && !Arc::ptr_eq(&user, &other_case));
        assert_eq!(f.mints(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_calls_mint_once() {
        let f = Arc::new(Fixture::new());
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let f = Arc::clone(&f);
                tokio::spawn(async move {
                    f.cache
                        .get_or_mint("object_id=o", f.mint(NOT_AFTER))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut bindings = Vec::new();
        for task in tasks {
            bindings.push(task.await.unwrap());
        }
        assert_eq!(f.mints(), 1);
        assert!(bindings.iter().all(|b| Arc::ptr_eq(b, &bindings[0])));
    }

    #[tokio::test]
    async fn evict_forces_a_new_mint_and_errors_are_not_cached() {
        let f = Fixture::new();
        let first = f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        let evicted = f.cache.evict("").unwrap();
        assert!(Arc::ptr_eq(&first, &evicted));
        assert!(f.cache.evict("").is_none());
        let second = f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(f.mints(), 2);

        f.cache.evict("");
        let error = f
            .cache
            .get_or_mint("", || async {
                Err(Error::Configuration("imds said no".to_owned()))
            })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("imds said no"));
        assert!(f.cache.get("").is_none());
        f.cache.get_or_mint("", f.mint(NOT_AFTER)).await.unwrap();
        assert_eq!(f.mints(), 3);
        assert_eq!(format!("{:?}", f.cache), "BindingCache { entries: 1 }");
    }
}
