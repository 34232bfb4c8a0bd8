//! When a token should be refreshed: the expiry arithmetic of PROTOCOL.md section 1.

use std::time::{Duration, SystemTime};

/// Tokens that live longer than this are refreshed at half their lifetime.
pub const LONG_LIVED: Duration = Duration::from_secs(2 * 60 * 60);
/// Shorter-lived tokens are refreshed this long before they expire.
pub const SHORT_LIVED_LEAD: Duration = Duration::from_secs(5 * 60);

/// The time at which a token acquired at `now` and expiring at `expires_on` should be refreshed.
///
/// - With a server-sent `refresh_in`: `now + refresh_in`.
/// - Otherwise, for a token that lives more than two hours: half its lifetime.
/// - Otherwise: five minutes before it expires.
///
/// The result is always within `[now, expires_on]` (a `refresh_in` past expiry is clamped).
///
/// ```
/// use entra_cache::refresh_on;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
/// let day = now + Duration::from_secs(24 * 3600);
/// assert_eq!(refresh_on(now, day, None), now + Duration::from_secs(12 * 3600));
/// let hour = now + Duration::from_secs(3600);
/// assert_eq!(refresh_on(now, hour, None), now + Duration::from_secs(55 * 60));
/// assert_eq!(refresh_on(now, hour, Some(Duration::from_secs(600))), now + Duration::from_secs(600));
/// ```
pub fn refresh_on(
    now: SystemTime,
    expires_on: SystemTime,
    refresh_in: Option<Duration>,
) -> SystemTime {
    let lifetime = expires_on.duration_since(now).unwrap_or(Duration::ZERO);
    let after = match refresh_in {
        Some(refresh_in) => refresh_in.min(lifetime),
        None if lifetime > LONG_LIVED => lifetime / 2,
        None => lifetime.saturating_sub(SHORT_LIVED_LEAD),
    };
    now + after
}

/// How far ahead of `refresh_on` a key's refresh may start, so that many tokens acquired
/// together do not all refresh in the same instant.
///
/// The offset is a fixed fraction of `max_jitter` derived from the key's hash (which has a
/// per-process random seed, so processes spread too), and never more than a tenth of the time
/// left before `refresh_on`.
pub(crate) fn jitter(key_hash: u64, until_refresh: Duration, max_jitter: Duration) -> Duration {
    let window = max_jitter.min(until_refresh / 10);
    let fraction = (key_hash & 0xFFFF) as f64 / 65_536.0;
    window.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn exactly_two_hours_is_short_lived() {
        let now = at(1_000);
        assert_eq!(
            refresh_on(now, now + LONG_LIVED, None),
            now + LONG_LIVED - SHORT_LIVED_LEAD
        );
        assert_eq!(
            refresh_on(now, now + LONG_LIVED + Duration::from_secs(2), None),
            now + LONG_LIVED / 2 + Duration::from_secs(1)
        );
    }

    #[test]
    fn already_expired_refreshes_now() {
        assert_eq!(refresh_on(at(100), at(50), None), at(100));
        assert_eq!(refresh_on(at(100), at(200), None), at(100));
    }

    proptest! {
        #[test]
        fn refresh_on_is_between_now_and_expiry(
            now in 0u64..4_000_000_000,
            life in 0u64..10_000_000,
            refresh_in in proptest::option::of(0u64..20_000_000),
        ) {
            let now = at(now);
            let exp = now + Duration::from_secs(life);
            let r = refresh_on(now, exp, refresh_in.map(Duration::from_secs));
            prop_assert!(r >= now && r <= exp);
        }

        #[test]
        fn server_refresh_in_wins_when_within_lifetime(
            life in 1u64..10_000_000, frac in 0.0f64..1.0,
        ) {
            let now = at(1_700_000_000);
            let exp = now + Duration::from_secs(life);
            let refresh_in = Duration::from_secs((life as f64 * frac) as u64);
            prop_assert_eq!(refresh_on(now, exp, Some(refresh_in)), now + refresh_in);
        }

        #[test]
        fn long_lived_tokens_refresh_at_half_life(life in 7_201u64..10_000_000) {
            let now = at(1_700_000_000);
            let exp = now + Duration::from_secs(life);
            let r = refresh_on(now, exp, None);
            prop_assert_eq!(r.duration_since(now).unwrap(), Duration::from_secs(life) / 2);
        }

        #[test]
        fn short_lived_tokens_refresh_five_minutes_early(life in 300u64..=7_200) {
            let now = at(1_700_000_000);
            let exp = now + Duration::from_secs(life);
            prop_assert_eq!(exp.duration_since(refresh_on(now, exp, None)).unwrap(), SHORT_LIVED_LEAD);
        }

        #[test]
        fn jitter_is_bounded(hash in any::<u64>(), until in 0u64..100_000, max in 0u64..600) {
            let until = Duration::from_secs(until);
            let max = Duration::from_secs(max);
            let j = jitter(hash, until, max);
            prop_assert!(j <= max && j <= until / 10);
        }
    }
}
