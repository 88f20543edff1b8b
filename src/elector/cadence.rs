//! When the elector polls next, without I/O: a master renews a few times
//! per ttl, a follower tries at its retry interval or just after the
//! holder's lease expires, whichever comes first.

use std::time::{Duration, Instant};

use chrono::TimeDelta;

use crate::lease;

/// How many renewals a master sends per ttl: with three, one failed
/// renewal does not cost mastership.
pub(crate) const RENEWALS_PER_TTL: u32 = 3;

/// The interval between a master's renewals.
pub(crate) fn renewal_period(ttl: Duration) -> Duration {
    ttl / RENEWALS_PER_TTL
}

/// When the next poll is due. A master renews a renewal period after the
/// send instant of its last successful renewal (`renewed_at`), so that a
/// slow poll or status write does not eat the slack that lets one failed
/// renewal not cost mastership; once that instant has passed (the renewal
/// failed, or took longer than a period), a period from `now`. A follower
/// waits its retry interval, cut to just after the holder's expiry
/// (`holder_expires_in`, on the local wall clock) when that is sooner.
pub(crate) fn next_poll(
    renewed_at: Option<Instant>,
    now: Instant,
    ttl: Duration,
    retry: Duration,
    holder_expires_in: Option<TimeDelta>,
) -> Instant {
    match renewed_at {
        Some(sent) => {
            let due = sent + renewal_period(ttl);
            if due > now {
                due
            } else {
                now + renewal_period(ttl)
            }
        }
        None => now + lease::retry_pause(retry, None, holder_expires_in),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_renews_a_period_after_its_last_renewal_was_sent() {
        let ttl = Duration::from_secs(3);
        let retry = Duration::from_millis(600);
        let sent = Instant::now();
        let period = Duration::from_secs(1);
        // A poll (and status write) that took 400 ms does not push the renewal.
        let now = sent + Duration::from_millis(400);
        assert_eq!(next_poll(Some(sent), now, ttl, retry, None), sent + period);
        // Past due (the renewal failed, or was slow): a period from now.
        let late = sent + Duration::from_millis(1500);
        assert_eq!(next_poll(Some(sent), late, ttl, retry, None), late + period);
    }

    #[test]
    fn follower_waits_for_retry_or_just_past_the_holders_expiry() {
        let ttl = Duration::from_secs(3);
        let retry = Duration::from_millis(600);
        let now = Instant::now();
        assert_eq!(next_poll(None, now, ttl, retry, None), now + retry);
        assert_eq!(
            next_poll(None, now, ttl, retry, Some(TimeDelta::milliseconds(100))),
            now + Duration::from_millis(105)
        );
        assert_eq!(
            next_poll(None, now, ttl, retry, Some(TimeDelta::seconds(5))),
            now + retry
        );
    }
}
