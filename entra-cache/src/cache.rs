//! The cache: sharded storage, single-flight loading and proactive refresh.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

use crate::clock::{from_unix_millis, millis, unix_millis};
use crate::refresh::{jitter, refresh_on};
use crate::{CacheKey, Clock, SystemClock};

/// A freshly acquired token, ready to be stored.
#[derive(Clone)]
pub struct Fresh<T> {
    value: T,
    expires_on: SystemTime,
    refresh_on: Option<SystemTime>,
}

impl<T> Fresh<T> {
    /// A token that expires at `expires_on`; its refresh time follows [`refresh_on`](crate::refresh_on).
    pub fn new(value: T, expires_on: SystemTime) -> Self {
        Self {
            value,
            expires_on,
            refresh_on: None,
        }
    }

    /// Sets an explicit refresh time (for example from the server's `refresh_in`); it is clamped
    /// to the token's lifetime.
    pub fn with_refresh_on(mut self, refresh_on: SystemTime) -> Self {
        self.refresh_on = Some(refresh_on);
        self
    }

    /// When the token expires.
    pub fn expires_on(&self) -> SystemTime {
        self.expires_on
    }
}

impl<T> fmt::Debug for Fresh<T> {
    // The value is a token: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fresh")
            .field("expires_on", &self.expires_on)
            .field("refresh_on", &self.refresh_on)
            .finish_non_exhaustive()
    }
}

/// Whether a lookup may be answered from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheMode {
    /// Serve a valid cached token; load (once for all concurrent callers) on a miss.
    #[default]
    Use,
    /// Always load a fresh token and store it, replacing the cached one: for a claims challenge,
    /// which the cached token by definition failed to satisfy.
    Bypass,
}

/// Where a returned token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// From the cache, without waiting for any load.
    Cache,
    /// This call ran the loader (a miss, a due refresh, or a bypass).
    Fetched,
    /// Another concurrent call ran the loader and this call shared its result.
    Shared,
}

/// A token and where it came from.
#[derive(Clone)]
pub struct Acquired<T> {
    /// The token.
    pub value: T,
    /// Where it came from.
    pub source: TokenSource,
}

impl<T> fmt::Debug for Acquired<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquired")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Tuning of a [`TokenCache`]; every field has a sensible default.
#[derive(Clone)]
#[non_exhaustive]
pub struct CacheConfig {
    /// A token is no longer served once it has less than this left (default 60 s), so a caller
    /// never receives a token that expires while in flight to the resource.
    pub expiry_margin: Duration,
    /// After a proactive refresh fails (or while one is running), the next attempt waits this
    /// long (default 30 s); the still-valid token is served meanwhile.
    pub refresh_retry_interval: Duration,
    /// Largest amount by which a refresh may start early, to spread refreshes (default 30 s).
    pub max_jitter: Duration,
    /// Expired entries are swept from a shard at most this often, on insert (default 5 min).
    pub sweep_interval: Duration,
    /// Number of independently locked shards; rounded up to a power of two (default: four per
    /// core, at least 16).
    pub shards: usize,
    /// The clock (default: the system clock).
    pub clock: Arc<dyn Clock>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        Self {
            expiry_margin: Duration::from_secs(60),
            refresh_retry_interval: Duration::from_secs(30),
            max_jitter: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(300),
            shards: (cores * 4).max(16),
            clock: Arc::new(SystemClock),
        }
    }
}

impl CacheConfig {
    /// Uses `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`expiry_margin`](Self::expiry_margin).
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Sets [`refresh_retry_interval`](Self::refresh_retry_interval).
    pub fn with_refresh_retry_interval(mut self, interval: Duration) -> Self {
        self.refresh_retry_interval = interval;
        self
    }

    /// Sets [`max_jitter`](Self::max_jitter).
    pub fn with_max_jitter(mut self, jitter: Duration) -> Self {
        self.max_jitter = jitter;
        self
    }

    /// Sets [`sweep_interval`](Self::sweep_interval).
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Sets [`shards`](Self::shards).
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("expiry_margin", &self.expiry_margin)
            .field("refresh_retry_interval", &self.refresh_retry_interval)
            .field("max_jitter", &self.max_jitter)
            .field("sweep_interval", &self.sweep_interval)
            .field("shards", &self.shards)
            .field("clock", &self.clock)
            .finish()
    }
}

/// The token cache shared by every flow.
///
/// - **Lookups** cost O(1) whatever the number of entries: the key's hash is computed once when
///   the key is built, selects one of many shards, and a hit takes only that shard's read lock,
///   which never waits for other readers.
/// - **Single-flight**: concurrent misses for one key run the loader once and all receive its
///   result (success or error); misses for different keys load in parallel. The load keeps going
///   if the caller that started it is cancelled, as long as another caller waits for it.
/// - **Proactive refresh**: once a token's refresh time (minus a per-key jitter) has passed, the
///   first caller to notice runs one refresh while every other caller keeps receiving the cached
///   token; if the refresh fails, the still-valid token keeps being served, the failure is
///   reported through `tracing`, and the next attempt waits
///   [`refresh_retry_interval`](CacheConfig::refresh_retry_interval). An expired token is never
///   served.
/// - **Bypass** ([`CacheMode::Bypass`]) for claims challenges; **removal by predicate**; expired
///   entries swept on insert so memory stays bounded by the live tokens.
///
/// `T` is the stored token (cloned out on every hit, so make it cheap to clone) and `E` the
/// loader's error (cloned to every caller that shared a failed load). Cloning the cache clones a
/// handle to the same storage.
///
/// ```
/// use entra_cache::{CacheConfig, CacheKey, CacheMode, Fresh, TokenCache, TokenSource};
/// use std::time::{Duration, SystemTime};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let cache: TokenCache<String, String> = TokenCache::new(CacheConfig::default());
/// let key = CacheKey::builder("login.microsoftonline.com", "contoso.onmicrosoft.com", "my-app")
///     .scopes(["https://graph.microsoft.com/.default"])
///     .build()?;
/// let load = || async {
///     Ok::<_, String>(Fresh::new("token".to_owned(), SystemTime::now() + Duration::from_secs(3600)))
/// };
/// let first = cache.get_or_load(&key, CacheMode::Use, load).await?;
/// assert_eq!(first.source, TokenSource::Fetched);
/// let second = cache.get_or_load(&key, CacheMode::Use, load).await?;
/// assert_eq!(second.source, TokenSource::Cache);
/// assert_eq!(second.value, "token");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct TokenCache<T, E> {
    inner: Arc<Inner<T, E>>,
}

impl<T, E> Clone for TokenCache<T, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, E> fmt::Debug for TokenCache<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.inner.len())
            .field("config", &self.inner.config)
            .finish()
    }
}

type Flight<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;
type KeyMap<V> = HashMap<CacheKey, V, BuildHasherDefault<PrecomputedHasher>>;

struct Inner<T, E> {
    shards: Box<[Shard<T, E>]>,
    shard_mask: u64,
    config: CacheConfig,
    margin_ms: u64,
    retry_ms: u64,
    next_flight_id: AtomicU64,
}

// Aligned so that two shards never share a cache line (hits on different shards from different
// cores do not contend).
#[repr(align(128))]
struct Shard<T, E> {
    entries: RwLock<KeyMap<Entry<T>>>,
    flights: Mutex<KeyMap<(u64, Flight<T, E>)>>,
    next_sweep_ms: AtomicU64,
}

struct Entry<T> {
    value: T,
    expires_ms: u64,
    refresh_ms: u64,
    /// The earliest time a refresh may be started; moved forward when a caller claims one.
    next_attempt_ms: AtomicU64,
}

enum Probe<T> {
    Hit(T),
    /// The refresh is due and this caller claimed it; the value is still valid.
    Refresh(T),
    Miss,
}

/// `CacheKey` carries a hash computed once (with a random per-process seed); the maps use it
/// as it is instead of hashing the key again on every lookup.
#[derive(Default)]
struct PrecomputedHasher(u64);

impl Hasher for PrecomputedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than `CacheKey` were hashed; fold it in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn read<G>(lock: &RwLock<G>) -> RwLockReadGuard<'_, G> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<G>(lock: &RwLock<G>) -> RwLockWriteGuard<'_, G> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<G>(lock: &Mutex<G>) -> MutexGuard<'_, G> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, E> Default for TokenCache<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + fmt::Display + 'static,
{
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

impl<T, E> TokenCache<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + fmt::Display + 'static,
{
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let shards = config.shards.clamp(1, 1 << 16).next_power_of_two();
        let shard_vec = (0..shards)
            .map(|_| Shard {
                entries: RwLock::new(KeyMap::default()),
                flights: Mutex::new(KeyMap::default()),
                next_sweep_ms: AtomicU64::new(0),
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards: shard_vec,
                shard_mask: shards as u64 - 1,
                margin_ms: millis(config.expiry_margin),
                retry_ms: millis(config.refresh_retry_interval).max(1),
                config,
                next_flight_id: AtomicU64::new(1),
            }),
        }
    }

    /// The configuration this cache was built with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Returns the token for `key`, loading it with `load` when needed.
    ///
    /// With [`CacheMode::Use`]: a valid cached token is returned at once; a miss (or an expired
    /// token) runs `load` once for all concurrent callers of the same key; a token past its
    /// refresh time is refreshed by this call while concurrent callers get the cached one, and
    /// if that refresh fails the cached token is returned (it is still valid) and the error is
    /// reported through `tracing`. With [`CacheMode::Bypass`], `load` always runs and its token
    /// replaces the cached one.
    ///
    /// `load` is called at most once, and not at all when another call's load is shared; the
    /// future it returns runs at most once for all concurrent callers of `key`. (In a rare
    /// race, a call may create its future and then find another call's fresh token; that
    /// future is dropped unpolled.)
    pub async fn get_or_load<F, Fut>(
        &self,
        key: &CacheKey,
        mode: CacheMode,
        load: F,
    ) -> Result<Acquired<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fresh<T>, E>> + Send + 'static,
    {
        if mode == CacheMode::Bypass {
            let fresh = load().await?;
            return Ok(Acquired {
                value: self.inner.store(key.clone(), fresh),
                source: TokenSource::Fetched,
            });
        }
        match self.inner.probe(key) {
            Probe::Hit(value) => Ok(Acquired {
                value,
                source: TokenSource::Cache,
            }),
            Probe::Miss => self.load_once(key, load, true).await,
            Probe::Refresh(current) => match self.load_once(key, load, false).await {
                Ok(acquired) => Ok(acquired),
                Err(error) => {
                    let now = unix_millis(self.inner.config.clock.now());
                    self.inner.defer_refresh(key, now);
                    tracing::warn!(
                        target: "entra_cache",
                        %error,
                        "proactive token refresh failed; serving the cached token, which is still valid"
                    );
                    // The refresh may have taken a while: serve the cached token only if it is
                    // still valid now.
                    match self.inner.probe_valid(key, now) {
                        Some(_) => Ok(Acquired {
                            value: current,
                            source: TokenSource::Cache,
                        }),
                        None => Err(error),
                    }
                }
            },
        }
    }

    /// The valid cached token for `key`, if there is one (never starts a load or refresh).
    pub fn get(&self, key: &CacheKey) -> Option<T> {
        let now = unix_millis(self.inner.config.clock.now());
        self.inner.probe_valid(key, now)
    }

    /// Stores `fresh` under `key`, replacing any cached token, and returns its value.
    pub fn insert(&self, key: CacheKey, fresh: Fresh<T>) -> T {
        self.inner.store(key, fresh)
    }

    /// Removes the token cached under `key`.
    pub fn remove(&self, key: &CacheKey) -> Option<T> {
        write(&self.inner.shard(key).entries)
            .remove(key)
            .map(|e| e.value)
    }

    /// Removes every token whose key matches `predicate` (for example every token of a finished
    /// agentic session, or bound to a discarded certificate) and returns how many were removed.
    pub fn remove_where(&self, mut predicate: impl FnMut(&CacheKey) -> bool) -> usize {
        let mut removed = 0;
        for shard in self.inner.shards.iter() {
            let mut entries = write(&shard.entries);
            let before = entries.len();
            entries.retain(|key, _| !predicate(key));
            removed += before - entries.len();
        }
        removed
    }

    /// Removes every expired token (those within the expiry margin included) and returns how
    /// many were removed. Inserts already do this for their shard every
    /// [`sweep_interval`](CacheConfig::sweep_interval); call this to reclaim memory at once.
    pub fn sweep_expired(&self) -> usize {
        let now = unix_millis(self.inner.config.clock.now());
        self.inner
            .shards
            .iter()
            .map(|shard| self.inner.sweep(&mut write(&shard.entries), now))
            .sum()
    }

    /// Removes every token.
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            write(&shard.entries).clear();
        }
    }

    /// The number of stored tokens (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn valid_now(&self, key: &CacheKey) -> Option<T> {
        self.inner
            .probe_valid(key, unix_millis(self.inner.config.clock.now()))
    }

    /// Runs `load` once for all concurrent callers of `key` and stores its token.
    async fn load_once<F, Fut>(
        &self,
        key: &CacheKey,
        load: F,
        after_miss: bool,
    ) -> Result<Acquired<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fresh<T>, E>> + Send + 'static,
    {
        let shard = self.inner.shard(key);
        let existing = {
            let flights = lock(&shard.flights);
            match flights.get(key) {
                Some((_, flight)) => Some(flight.clone()),
                None => {
                    // A load may have finished since our miss: it stored its token before it
                    // left the flight map (whose lock we hold), so the token is visible here.
                    if after_miss && let Some(value) = self.valid_now(key) {
                        return Ok(Acquired {
                            value,
                            source: TokenSource::Shared,
                        });
                    }
                    None
                }
            }
        };
        if let Some(flight) = existing {
            return flight.await.map(|value| Acquired {
                value,
                source: TokenSource::Shared,
            });
        }
        // Create the load outside the lock: `load` is the caller's code.
        let load = load();
        let id = self.inner.next_flight_id.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(&self.inner);
        let flight_key = key.clone();
        let flight: Flight<T, E> = async move {
            let result = AssertUnwindSafe(load).catch_unwind().await;
            let inner = weak.upgrade();
            let out = match (result, &inner) {
                (Ok(Ok(fresh)), Some(inner)) => Ok(inner.store(flight_key.clone(), fresh)),
                (Ok(Ok(fresh)), None) => Ok(fresh.value),
                (Ok(Err(error)), _) => Err(error),
                (Err(panic), _) => {
                    if let Some(inner) = &inner {
                        inner.end_flight(&flight_key, id);
                    }
                    std::panic::resume_unwind(panic)
                }
            };
            // Stored first, then the flight ends: a caller arriving in between joins the
            // finished flight or hits the stored token, never starts a second load.
            if let Some(inner) = &inner {
                inner.end_flight(&flight_key, id);
            }
            out
        }
        .boxed()
        .shared();

        let (flight, source) = {
            let mut flights = lock(&shard.flights);
            match flights.get(key) {
                // Another caller registered a load while ours was being created: share theirs.
                Some((_, theirs)) => (theirs.clone(), TokenSource::Shared),
                None => {
                    // The same check again: a load may have finished while ours was created.
                    // (Not for a due refresh, whose current token is valid by definition.)
                    if after_miss && let Some(value) = self.valid_now(key) {
                        return Ok(Acquired {
                            value,
                            source: TokenSource::Shared,
                        });
                    }
                    flights.insert(key.clone(), (id, flight.clone()));
                    (flight, TokenSource::Fetched)
                }
            }
        };
        flight.await.map(|value| Acquired { value, source })
    }
}

impl<T, E> Inner<T, E> {
    fn shard(&self, key: &CacheKey) -> &Shard<T, E> {
        // The maps use the low bits of the hash (and hashbrown the top seven): pick the shard
        // from the middle so the three stay independent. The mask keeps the index in range.
        let index = (key.precomputed_hash() >> 32) & self.shard_mask;
        &self.shards[index as usize]
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| read(&s.entries).len()).sum()
    }
}

impl<T: Clone, E> Inner<T, E> {
    fn probe(&self, key: &CacheKey) -> Probe<T> {
        let now = unix_millis(self.config.clock.now());
        let entries = read(&self.shard(key).entries);
        let Some(entry) = entries.get(key) else {
            return Probe::Miss;
        };
        if now.saturating_add(self.margin_ms) >= entry.expires_ms {
            return Probe::Miss;
        }
        if now >= entry.refresh_ms {
            let next = entry.next_attempt_ms.load(Ordering::Acquire);
            if now >= next
                && entry
                    .next_attempt_ms
                    .compare_exchange(
                        next,
                        now.saturating_add(self.retry_ms),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Probe::Refresh(entry.value.clone());
            }
        }
        Probe::Hit(entry.value.clone())
    }

    fn probe_valid(&self, key: &CacheKey, now: u64) -> Option<T> {
        let entries = read(&self.shard(key).entries);
        entries
            .get(key)
            .filter(|e| now.saturating_add(self.margin_ms) < e.expires_ms)
            .map(|e| e.value.clone())
    }

    fn defer_refresh(&self, key: &CacheKey, now: u64) {
        if let Some(entry) = read(&self.shard(key).entries).get(key) {
            entry
                .next_attempt_ms
                .fetch_max(now.saturating_add(self.retry_ms), Ordering::AcqRel);
        }
    }

    fn store(&self, key: CacheKey, fresh: Fresh<T>) -> T {
        let now_time = self.config.clock.now();
        let now = unix_millis(now_time);
        let expires_ms = unix_millis(fresh.expires_on);
        let refresh_time = fresh
            .refresh_on
            .unwrap_or_else(|| refresh_on(now_time, fresh.expires_on, None));
        let planned = unix_millis(refresh_time).clamp(now, expires_ms.max(now));
        let early = jitter(
            key.precomputed_hash(),
            Duration::from_millis(planned - now),
            self.config.max_jitter,
        );
        let refresh_ms = planned - millis(early).min(planned - now);
        let value = fresh.value.clone();
        let shard = self.shard(&key);
        let mut entries = write(&shard.entries);
        entries.insert(
            key,
            Entry {
                value: fresh.value,
                expires_ms,
                refresh_ms,
                next_attempt_ms: AtomicU64::new(refresh_ms),
            },
        );
        if now >= shard.next_sweep_ms.load(Ordering::Relaxed) {
            shard.next_sweep_ms.store(
                now.saturating_add(millis(self.config.sweep_interval)),
                Ordering::Relaxed,
            );
            let swept = self.sweep(&mut entries, now);
            if swept > 0 {
                tracing::debug!(target: "entra_cache", swept, "swept expired tokens");
            }
        }
        value
    }

    fn sweep(&self, entries: &mut KeyMap<Entry<T>>, now: u64) -> usize {
        let before = entries.len();
        let margin = self.margin_ms;
        entries.retain(|_, e| now.saturating_add(margin) < e.expires_ms);
        before - entries.len()
    }

    fn end_flight(&self, key: &CacheKey, id: u64) {
        let mut flights = lock(&self.shard(key).flights);
        if flights.get(key).is_some_and(|(current, _)| *current == id) {
            flights.remove(key);
        }
    }
}

impl<T, E> TokenCache<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + fmt::Display + 'static,
{
    /// When the token cached under `key` will next be refreshed, and when it expires.
    pub fn schedule(&self, key: &CacheKey) -> Option<(SystemTime, SystemTime)> {
        read(&self.inner.shard(key).entries).get(key).map(|e| {
            (
                from_unix_millis(e.refresh_ms),
                from_unix_millis(e.expires_ms),
            )
        })
    }
}
