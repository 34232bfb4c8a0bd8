//! The emulator's one source of time.
//!
//! The emulator is a server, so it is an edge: it may read the system clock. It does so in exactly
//! one place ([`system_now`]); everything else asks the emulator's [`Clock`], which a test can
//! replace to issue tokens "in the past" or "in the future".

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time, as used by an emulator for `iat`/`nbf`/`exp` and for
/// validating assertions.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The real system clock (the default).
    pub fn system() -> Self {
        Clock(Arc::new(system_now))
    }

    /// A clock that asks `now` for the time.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    /// A clock that is always `offset` ahead of the system clock.
    pub fn ahead(offset: Duration) -> Self {
        Clock::from_fn(move || system_now() + offset)
    }

    /// A clock that is always `offset` behind the system clock.
    pub fn behind(offset: Duration) -> Self {
        Clock::from_fn(move || system_now() - offset)
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }

    /// The current time in whole seconds since the Unix epoch.
    pub fn unix_now(&self) -> u64 {
        unix_seconds(self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock").finish_non_exhaustive()
    }
}

/// The system clock: the only place this crate reads it.
#[allow(clippy::disallowed_methods)] // the emulator is a server: its clock is an edge
pub(crate) fn system_now() -> SystemTime {
    SystemTime::now()
}

/// Whole seconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2016-01-09 02:02:12Z`, the timestamp format of Entra error bodies.
pub(crate) fn format_timestamp(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `11/23/2026 14:05:00 +00:00` (`MM/dd/yyyy HH:mm:ss +00:00`), the date form of `expires_on`
/// App Service has sent.
pub(crate) fn format_app_service_date(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{m:02}/{d:02}/{y:04} {:02}:{:02}:{:02} +00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps_like_entra() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_timestamp(1_452_304_932), "2016-01-09 02:02:12Z");
        assert_eq!(format_timestamp(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(format_timestamp(4_102_444_799), "2099-12-31 23:59:59Z");
    }

    #[test]
    fn formats_app_service_dates() {
        assert_eq!(format_app_service_date(0), "01/01/1970 00:00:00 +00:00");
        assert_eq!(
            format_app_service_date(1_795_961_100),
            "11/29/2026 14:05:00 +00:00"
        );
    }

    #[test]
    fn injected_clock_is_used() {
        let fixed = UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = Clock::from_fn(move || fixed);
        assert_eq!(clock.unix_now(), 1_000);
    }
}
