//! When the elector polls next, without I/O: a master renews a few times
//! per ttl, a follower tries at its retry interval or just after the
//! holder's lease expires, whichever comes first.

use std::time::Duration;

use chrono::TimeDelta;

use crate::lease;

/// How many renewals a master sends per ttl: with three, one failed
/// renewal does not cost mastership.
pub(crate) const RENEWALS_PER_TTL: u32 = 3;

/// The interval between a master's renewals.
pub(crate) fn renewal_period(ttl: Duration) -> Duration {
    ttl / RENEWALS_PER_TTL
}

/// The pause before the next poll: the renewal period while master; the
/// retry interval otherwise, cut to just after the holder's expiry
/// (`holder_expires_in`, on the local wall clock) when that is sooner.
pub(crate) fn poll_pause(
    is_master: bool,
    ttl: Duration,
    retry: Duration,
    holder_expires_in: Option<TimeDelta>,
) -> Duration {
    if is_master {
        renewal_period(ttl)
    } else {
        lease::retry_pause(retry, None, holder_expires_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_renews_three_times_per_ttl_follower_waits_for_retry_or_expiry() {
        let ttl = Duration::from_secs(3);
        let retry = Duration::from_millis(600);
        assert_eq!(poll_pause(true, ttl, retry, None), Duration::from_secs(1));
        assert_eq!(
            poll_pause(true, ttl, retry, Some(TimeDelta::milliseconds(10))),
            Duration::from_secs(1)
        );
        assert_eq!(poll_pause(false, ttl, retry, None), retry);
        assert_eq!(
            poll_pause(false, ttl, retry, Some(TimeDelta::milliseconds(100))),
            Duration::from_millis(105)
        );
        assert_eq!(
            poll_pause(false, ttl, retry, Some(TimeDelta::seconds(5))),
            retry
        );
    }
}
