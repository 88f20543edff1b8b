//! When the elector polls next, without I/O: a master renews a few times
//! per ttl, a follower tries at its retry interval or just after the
//! holder's lease expires, whichever comes first.

use std::time::{Duration, Instant};

use chrono::TimeDelta;

use crate::foundation::lease;

/// How many renewals a master sends per ttl: with three, one failed
/// renewal does not cost mastership.
pub(crate) const RENEWALS_PER_TTL: u32 = 3;

/// The interval between a master's renewals.
pub(crate) fn renewal_period(ttl: Duration) -> Duration {
    ttl / RENEWALS_PER_TTL
}

/// When the other holder's lease (plus the takeover grace) runs out, as a
/// follower knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HolderDue {
    /// Measured in server time by a look (a read that returns the server's
    /// clock with the lock): the local instant it runs out.
    Known(Instant),
    /// Estimated from an acquire attempt's answer on the local wall clock,
    /// which may be off: good enough to cut a retry interval short.
    Estimated(TimeDelta),
}

/// The shortest pause of a follower that waits on a change stream: a
/// holder whose expiry keeps being in the past (clocks) costs a look every
/// this often, not a busy loop.
const MIN_STREAM_PAUSE: Duration = Duration::from_millis(100);

/// When the next poll is due. A master renews a renewal period after the
/// send instant of its last successful renewal (`renewed_at`), so that a
/// slow poll or status write does not eat the slack that lets one failed
/// renewal not cost mastership; once that instant has passed (the renewal
/// failed, or took longer than a period), a period from `now`.
///
/// A follower whose change stream is live (`streaming`) and who knows when
/// the holder's lease runs out in server time waits until then and no
/// longer polls at its retry interval: a release or a change of holder
/// wakes it through the stream, and expiry (which makes no change event)
/// is this instant. Otherwise it waits its retry interval, cut to just
/// after the holder's expiry when that is sooner.
pub(crate) fn next_poll(
    renewed_at: Option<Instant>,
    now: Instant,
    ttl: Duration,
    retry: Duration,
    holder: Option<HolderDue>,
    streaming: bool,
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
        None => match holder {
            Some(HolderDue::Known(at)) if streaming => at.max(now + MIN_STREAM_PAUSE.min(retry)),
            Some(HolderDue::Known(at)) => {
                now + lease::retry_pause(
                    retry,
                    None,
                    TimeDelta::from_std(at.saturating_duration_since(now)).ok(),
                )
            }
            Some(HolderDue::Estimated(left)) => now + lease::retry_pause(retry, None, Some(left)),
            None => now + retry,
        },
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
        assert_eq!(
            next_poll(Some(sent), now, ttl, retry, None, false),
            sent + period
        );
        // Past due (the renewal failed, or was slow): a period from now.
        let late = sent + Duration::from_millis(1500);
        assert_eq!(
            next_poll(Some(sent), late, ttl, retry, None, true),
            late + period
        );
    }

    #[test]
    fn follower_waits_for_retry_or_just_past_the_holders_expiry() {
        let ttl = Duration::from_secs(3);
        let retry = Duration::from_millis(600);
        let now = Instant::now();
        let est = |ms| Some(HolderDue::Estimated(TimeDelta::milliseconds(ms)));
        for streaming in [false, true] {
            assert_eq!(
                next_poll(None, now, ttl, retry, None, streaming),
                now + retry
            );
            assert_eq!(
                next_poll(None, now, ttl, retry, est(100), streaming),
                now + Duration::from_millis(105)
            );
            assert_eq!(
                next_poll(None, now, ttl, retry, est(5000), streaming),
                now + retry
            );
        }
        // Known in server time, without a stream: still the retry interval.
        let at = now + Duration::from_secs(5);
        let known = Some(HolderDue::Known(at));
        assert_eq!(next_poll(None, now, ttl, retry, known, false), now + retry);
    }

    #[test]
    fn a_streaming_follower_waits_for_the_holders_expiry_not_its_retry_interval() {
        let (ttl, retry) = (Duration::from_secs(15), Duration::from_secs(3));
        let now = Instant::now();
        let at = now + Duration::from_secs(11);
        assert_eq!(
            next_poll(None, now, ttl, retry, Some(HolderDue::Known(at)), true),
            at
        );
        // Already past: a short pause, never a busy loop.
        let past = Some(HolderDue::Known(now));
        assert_eq!(
            next_poll(None, now, ttl, retry, past, true),
            now + Duration::from_millis(100)
        );
    }
}
