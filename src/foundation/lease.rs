//! Lease arithmetic: how long this process may act on a lease it holds,
//! judged only by its own monotonic clock.
//!
//! The server writes `ts_expire = server_now + ttl` when it executes the
//! acquire or touch, which is after the client sent it. So a lease is safe to
//! act on locally until `sent + ttl`, measured on the lease clock
//! ([`Moment`]: monotonic, and counting suspended time on Linux); the
//! [`margin`] taken off covers a difference in clock *rates* between this
//! machine and the server (not a difference in wall-clock time, which does
//! not matter).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::foundation::moment::Moment;

/// The safety margin taken off a lease's local deadline: a tenth of the ttl,
/// at most one second (a rate drift of 0.17% on the default 600 s lease, far
/// beyond real quartz drift).
///
/// ```
/// use std::time::Duration;
/// use mongoelector::lease_margin;
///
/// assert_eq!(lease_margin(Duration::from_secs(1)), Duration::from_millis(100));
/// assert_eq!(lease_margin(Duration::from_secs(600)), Duration::from_secs(1));
/// ```
pub fn lease_margin(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(1))
}

/// This process's view of a lease it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Fence token of the acquisition.
    pub fence: i64,
    /// Expiry in server time, as the server wrote it.
    pub expires: DateTime<Utc>,
    /// Local monotonic instant until which the lease may be acted on.
    pub deadline: Moment,
    /// Local monotonic instant the request that granted or renewed it was sent.
    pub sent: Moment,
}

impl Lease {
    /// A lease granted (or renewed) by a request sent at `sent`.
    pub fn granted(fence: i64, expires: DateTime<Utc>, sent: Moment, ttl: Duration) -> Self {
        Lease {
            fence,
            expires,
            deadline: local_deadline(sent, ttl),
            sent,
        }
    }

    /// Whether the lease may still be acted on at `now`.
    pub fn valid_at(&self, now: Moment) -> bool {
        now < self.deadline
    }
}

/// How far past a holder's expiry a waiter wakes to try again: enough for
/// the server's clock to have passed it too.
const EXPIRY_SLACK: Duration = Duration::from_millis(5);

/// How long a waiter pauses before its next attempt: its `step`, cut short
/// to just after the holder's expiry when that comes first, and to the
/// time `left` before its timeout. `holder_expires_in` is measured on the
/// local wall clock; a wrong clock only makes that wake-up early (one more
/// attempt) or late (no later than `step`).
pub(crate) fn retry_pause(
    step: Duration,
    left: Option<Duration>,
    holder_expires_in: Option<chrono::TimeDelta>,
) -> Duration {
    let until_expiry = holder_expires_in
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .map(|d| d + EXPIRY_SLACK);
    [Some(step), left, until_expiry]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(step)
}

/// A duration as a `TimeDelta`, for wall-clock arithmetic (saturating;
/// durations are validated far below the limit).
pub(crate) fn as_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// `sent + ttl - margin`: the last instant the holder may act.
pub(crate) fn local_deadline(sent: Moment, ttl: Duration) -> Moment {
    sent + (ttl - lease_margin(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_tenth_capped_at_one_second() {
        assert_eq!(
            lease_margin(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(
            lease_margin(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            lease_margin(Duration::from_secs(15)),
            Duration::from_secs(1)
        );
        assert_eq!(
            lease_margin(Duration::from_secs(600)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn retry_pause_is_the_step_cut_to_expiry_and_timeout() {
        let step = Duration::from_millis(250);
        let ms = chrono::TimeDelta::milliseconds;
        assert_eq!(retry_pause(step, None, None), step);
        assert_eq!(
            retry_pause(step, Some(Duration::from_millis(40)), None),
            Duration::from_millis(40)
        );
        assert_eq!(
            retry_pause(step, None, Some(ms(100))),
            Duration::from_millis(105)
        );
        assert_eq!(retry_pause(step, None, Some(ms(900))), step);
        // Already expired by our clock (but not the server's): the step, no busy loop.
        assert_eq!(retry_pause(step, None, Some(ms(-3))), step);
        assert_eq!(retry_pause(step, None, Some(ms(0))), step);
    }

    #[test]
    fn deadline_is_before_the_server_expiry() {
        let sent = Moment::now();
        let ttl = Duration::from_secs(2);
        let lease = Lease::granted(3, Utc::now(), sent, ttl);
        assert_eq!(lease.deadline, sent + Duration::from_millis(1800));
        assert!(lease.valid_at(sent));
        assert!(lease.valid_at(sent + Duration::from_millis(1799)));
        assert!(!lease.valid_at(sent + Duration::from_millis(1800)));
        assert!(!lease.valid_at(sent + ttl));
    }
}
