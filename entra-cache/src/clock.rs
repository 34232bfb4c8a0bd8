//! The injected source of wall-clock time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current wall-clock time.
///
/// Token lifetimes are wall-clock facts (`expires_on` is a unix time), so the cache asks a
/// `Clock` rather than the operating system. Production code uses [`SystemClock`]; tests use
/// [`ManualClock`] and move time forward explicitly, so expiry and refresh are tested without
/// sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // This is the edge: the one place the cache reads the real clock.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use entra_cache::{Clock, ManualClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let clock = ManualClock::at_unix_seconds(1_700_000_000);
/// let observer = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(observer.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_090));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `unix_seconds` seconds after the unix epoch.
    pub fn at_unix_seconds(unix_seconds: u64) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(unix_seconds.saturating_mul(1_000_000_000))),
        }
    }

    /// A clock standing at `time` (times before the epoch are clamped to it).
    pub fn at(time: SystemTime) -> Self {
        let clock = Self::at_unix_seconds(0);
        clock.set(time);
        clock
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `time` (times before the epoch are clamped to it).
    pub fn set(&self, time: SystemTime) {
        let nanos = time
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.nanos.store(nanos, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

/// Milliseconds since the unix epoch, saturating at both ends; the cache's internal time unit.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Converts a millisecond offset back into a wall-clock time.
pub(crate) fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix_seconds(10);
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(10));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(11_500));
        clock.set(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(clock.now(), UNIX_EPOCH);
    }

    #[test]
    fn millis_round_trip_and_saturate() {
        let t = UNIX_EPOCH + Duration::from_millis(1_234_567);
        assert_eq!(from_unix_millis(unix_millis(t)), t);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
