//! The injected edges: clock (with sleep), environment.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use entra_cache::ManualClock as VirtualTime;

/// Wall-clock time and waiting, injected so that expiry, refresh and retry back-off are
/// tested without sleeping. Extends the cache's clock with `sleep`.
pub trait Clock: entra_cache::Clock {
    /// Waits `duration` (a virtual clock moves itself forward instead).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: the system time, and tokio's timer for waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl entra_cache::Clock for SystemClock {
    fn now(&self) -> SystemTime {
        entra_cache::SystemClock.now()
    }
}

impl Clock for SystemClock {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A virtual clock for tests: it stands still until advanced, and `sleep` advances it by the
/// duration and returns at once, recording the wait so tests can assert back-off schedules.
///
/// ```
/// use entra_core::{Clock, ManualClock};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::at_unix_seconds(1_700_000_000);
/// let before = entra_cache::Clock::now(&clock);
/// clock.sleep(Duration::from_secs(2)).await;
/// assert_eq!(entra_cache::Clock::now(&clock), before + Duration::from_secs(2));
/// assert_eq!(clock.sleeps(), vec![Duration::from_secs(2)]);
/// # });
/// ```
#[derive(Clone)]
pub struct ManualClock {
    time: VirtualTime,
    sleeps: Arc<Mutex<Vec<Duration>>>,
}

impl ManualClock {
    /// A clock standing at `unix_seconds`.
    pub fn at_unix_seconds(unix_seconds: u64) -> Self {
        Self {
            time: VirtualTime::at_unix_seconds(unix_seconds),
            sleeps: Arc::default(),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.time.advance(by);
    }

    /// Sets the clock.
    pub fn set(&self, time: SystemTime) {
        self.time.set(time);
    }

    /// Every wait requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &entra_cache::Clock::now(&self.time))
            .finish_non_exhaustive()
    }
}

impl entra_cache::Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.time.now()
    }
}

impl Clock for ManualClock {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(duration);
        self.time.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

/// Environment variables, injected so that configuration from the environment is tested
/// without touching the process environment.
pub trait Env: Send + Sync + fmt::Debug {
    /// The value of `name`, if set and valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl Env for SystemEnv {
    // The edge: the one place that reads the process environment.
    #[allow(clippy::disallowed_methods)]
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables, for tests.
///
/// ```
/// use entra_core::{Env, MapEnv};
/// let env = MapEnv::new([("AZURE_TENANT_ID", "contoso")]);
/// assert_eq!(env.var("AZURE_TENANT_ID").as_deref(), Some("contoso"));
/// assert_eq!(env.var("HOME"), None);
/// ```
#[derive(Clone, Default)]
pub struct MapEnv(HashMap<String, String>);

impl MapEnv {
    /// An environment holding exactly `vars`.
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for MapEnv {
    // Values may be secrets (AZURE_CLIENT_SECRET): show names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("MapEnv").field(&names).finish()
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}
