//! The `timeparanoid` check: is this machine's wall clock close to the
//! server's? Safety never depends on it (leases are judged in server time and
//! on the local monotonic clock); it catches misconfigured machines early,
//! since the times this crate reports would be misleading on them.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::limits::{CLOCK_CHECK_INTERVAL, CLOCK_TOLERANCE};

/// Local minus server clock, assuming the server read its clock half way
/// through the round trip. Returns the offset and the half round trip that
/// is allowed on top of [`CLOCK_TOLERANCE`].
pub(crate) fn offset(
    local_before: DateTime<Utc>,
    local_after: DateTime<Utc>,
    server: DateTime<Utc>,
) -> (TimeDelta, Duration) {
    let rtt = (local_after - local_before).max(TimeDelta::zero());
    let midpoint = local_before + rtt / 2;
    let half_rtt = (rtt / 2).to_std().unwrap_or_default();
    (midpoint - server, half_rtt)
}

/// `Err(offset)` when the offset exceeds the tolerance plus half the round trip.
pub(crate) fn check(
    local_before: DateTime<Utc>,
    local_after: DateTime<Utc>,
    server: DateTime<Utc>,
) -> Result<(), (TimeDelta, Duration)> {
    let (off, half_rtt) = offset(local_before, local_after, server);
    let allowed = CLOCK_TOLERANCE + half_rtt;
    let within = off
        .abs()
        .to_std()
        .map(|abs| abs <= allowed)
        .unwrap_or(false);
    if within {
        Ok(())
    } else {
        Err((off, allowed))
    }
}

/// Something that reads the server's clock (one round trip): the local
/// wall clock just before and after asking, and the server's answer.
pub(crate) trait ServerClock {
    fn server_clock(&self) -> Result<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>;
}

/// The `timeparanoid` policy: check on first use, then at most every
/// [`CLOCK_CHECK_INTERVAL`]; a failed check is repeated on the next call.
#[derive(Debug)]
pub(crate) struct ClockCheck {
    enabled: bool,
    passed_at: Mutex<Option<Instant>>,
}

impl ClockCheck {
    pub fn new(enabled: bool) -> Self {
        ClockCheck {
            enabled,
            passed_at: Mutex::new(None),
        }
    }

    /// One `hello` round trip when a check is due; nothing otherwise.
    pub fn check_if_due(&self, store: &(impl ServerClock + ?Sized)) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let mut passed_at = self.passed_at.lock();
        if matches!(*passed_at, Some(at) if at.elapsed() < CLOCK_CHECK_INTERVAL) {
            return Ok(());
        }
        let (before, after, server) = store.server_clock()?;
        check(before, after, server)
            .map_err(|(offset, tolerance)| Error::ClockSkew { offset, tolerance })?;
        *passed_at = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn offset_uses_the_midpoint() {
        let (off, half) = offset(t(0), t(100), t(50));
        assert_eq!(off, TimeDelta::zero());
        assert_eq!(half, Duration::from_millis(50));
        let (off, _) = offset(t(0), t(100), t(-950));
        assert_eq!(off, TimeDelta::milliseconds(1000));
    }

    #[test]
    fn tolerance_plus_half_round_trip() {
        assert!(check(t(0), t(0), t(500)).is_ok());
        assert!(check(t(0), t(0), t(-500)).is_ok());
        let (off, allowed) = check(t(0), t(0), t(501)).unwrap_err();
        assert_eq!(off, TimeDelta::milliseconds(-501));
        assert_eq!(allowed, CLOCK_TOLERANCE);
        // A slow round trip widens the window by half of it.
        assert!(check(t(0), t(400), t(900)).is_ok());
        assert!(check(t(0), t(400), t(901)).is_err());
        // An hour off is always refused.
        assert!(check(t(0), t(10), t(3_600_000)).is_err());
    }
}
