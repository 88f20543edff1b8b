//! The elector's state machine, without I/O: what a poll's outcome, or the
//! passing of the local deadline, does to this node's role.
//!
//! A node is master only while its local deadline (monotonic send instant of
//! the last successful acquire or renewal, plus ttl, minus the margin) has
//! not passed, which is before the server could grant the lock to anyone
//! else. Every change of role is one [`Transition`], so `BecameMaster` and
//! `LostMaster` strictly alternate.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::foundation::lease::Lease;
pub(crate) use crate::foundation::loss::LossReason;
use crate::foundation::moment::Moment;

/// This node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Follower,
    Master(Lease),
}

impl Role {
    /// The lease, when master and its local deadline has not passed.
    pub fn live_lease(&self, now: Moment) -> Option<Lease> {
        match self {
            Role::Master(lease) if lease.valid_at(now) => Some(*lease),
            _ => None,
        }
    }
}

/// What one poll's round trip found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Master's renewal succeeded: new server expiry.
    Renewed { expires: DateTime<Utc> },
    /// Master's renewal matched nothing: the acquisition is gone.
    NotRenewed,
    /// Follower took the lock.
    Acquired { fence: i64, expires: DateTime<Utc> },
    /// Follower found it held by `holder` (or could not tell: `None`).
    NotAcquired { holder: Option<Holder> },
    /// The round trip failed.
    Failed,
}

/// Another node holding the lock, as a poll saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub uuid: String,
    pub expires: DateTime<Utc>,
    /// How long until the lock could be taken over (its expiry plus the
    /// takeover grace, in server time), when the poll read the server's
    /// clock too (a look, not an acquire attempt).
    pub takeable_in: Option<Duration>,
}

impl Outcome {
    /// The other holder this outcome names, if any.
    pub fn holder(&self) -> Option<&Holder> {
        match self {
            Outcome::NotAcquired { holder } => holder.as_ref(),
            _ => None,
        }
    }
}

/// A change of role, to be reported as an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Became { fence: i64, expires: DateTime<Utc> },
    Lost { fence: i64, reason: LossReason },
}

/// Steps down when the local deadline has passed.
pub(crate) fn expire(role: Role, now: Moment) -> (Role, Option<Transition>) {
    match role {
        Role::Master(lease) if !lease.valid_at(now) => (
            Role::Follower,
            Some(Transition::Lost {
                fence: lease.fence,
                reason: LossReason::RenewalFailed,
            }),
        ),
        _ => (role, None),
    }
}

/// Steps down on purpose (stop or release).
pub(crate) fn surrender(role: Role, reason: LossReason) -> (Role, Option<Transition>) {
    match role {
        Role::Master(lease) => (
            Role::Follower,
            Some(Transition::Lost {
                fence: lease.fence,
                reason,
            }),
        ),
        Role::Follower => (role, None),
    }
}

/// Applies a poll's `outcome`. `polled_as` is the role the poll started
/// from and `sent` the instant its request was sent; `current` is the role
/// now, which may have changed meanwhile (the deadline passed, or a release).
pub(crate) fn after_poll(
    current: Role,
    polled_as: Role,
    outcome: &Outcome,
    sent: Moment,
    ttl: Duration,
    now: Moment,
) -> (Role, Option<Transition>) {
    let (role, transition) = match (current, polled_as, outcome) {
        // Renewed the acquisition we still hold: push the deadline.
        (Role::Master(held), Role::Master(asked), Outcome::Renewed { expires })
            if held.fence == asked.fence =>
        {
            (
                Role::Master(Lease::granted(held.fence, *expires, sent, ttl)),
                None,
            )
        }
        (Role::Master(held), Role::Master(asked), Outcome::NotRenewed)
            if held.fence == asked.fence =>
        {
            (
                Role::Follower,
                Some(Transition::Lost {
                    fence: held.fence,
                    reason: LossReason::TakenOver,
                }),
            )
        }
        (Role::Follower, Role::Follower, Outcome::Acquired { fence, expires }) => {
            let lease = Lease::granted(*fence, *expires, sent, ttl);
            if lease.valid_at(now) {
                (
                    Role::Master(lease),
                    Some(Transition::Became {
                        fence: *fence,
                        expires: *expires,
                    }),
                )
            } else {
                // The answer came too late to act on (the request hung): do
                // not announce a term that is already over. The next poll
                // takes the lock again, with a fresh lease and a new fence.
                (Role::Follower, None)
            }
        }
        // Anything else leaves the role alone: a failed poll (the deadline
        // decides), a renewal that arrives after this node stepped down
        // (never resurrect an announced loss: the next poll acquires anew,
        // with a new fence), a follower that did not win.
        _ => (current, None),
    };
    if transition.is_some() {
        return (role, transition);
    }
    expire(role, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    fn master(fence: i64, sent: Moment) -> Role {
        Role::Master(Lease::granted(fence, Utc::now(), sent, TTL))
    }

    #[test]
    fn follower_becomes_master_with_deadline_from_the_send() {
        let sent = Moment::now();
        let expires = Utc::now();
        let (role, t) = after_poll(
            Role::Follower,
            Role::Follower,
            &Outcome::Acquired { fence: 4, expires },
            sent,
            TTL,
            sent,
        );
        assert_eq!(t, Some(Transition::Became { fence: 4, expires }));
        let Role::Master(lease) = role else { panic!() };
        assert_eq!(lease.deadline, sent + Duration::from_millis(2700));
    }

    #[test]
    fn an_acquisition_answered_after_its_deadline_is_not_announced() {
        let sent = Moment::now();
        let late = sent + Duration::from_millis(2700);
        let outcome = Outcome::Acquired {
            fence: 4,
            expires: Utc::now(),
        };
        let (role, t) = after_poll(Role::Follower, Role::Follower, &outcome, sent, TTL, late);
        assert_eq!((role, t), (Role::Follower, None));
    }

    #[test]
    fn renewal_moves_the_deadline_without_an_event() {
        let t0 = Moment::now();
        let t1 = t0 + Duration::from_secs(1);
        let (role, t) = after_poll(
            master(4, t0),
            master(4, t0),
            &Outcome::Renewed {
                expires: Utc::now(),
            },
            t1,
            TTL,
            t1,
        );
        assert_eq!(t, None);
        assert_eq!(
            role.live_lease(t1 + Duration::from_millis(2699))
                .unwrap()
                .fence,
            4
        );
        assert!(role.live_lease(t1 + Duration::from_millis(2700)).is_none());
    }

    #[test]
    fn lost_renewal_is_taken_over() {
        let t0 = Moment::now();
        let (role, t) = after_poll(
            master(4, t0),
            master(4, t0),
            &Outcome::NotRenewed,
            t0,
            TTL,
            t0,
        );
        assert_eq!(role, Role::Follower);
        assert_eq!(
            t,
            Some(Transition::Lost {
                fence: 4,
                reason: LossReason::TakenOver
            })
        );
    }

    #[test]
    fn failures_cost_mastership_only_at_the_deadline() {
        let t0 = Moment::now();
        let before = t0 + Duration::from_millis(2699);
        let (role, t) = after_poll(
            master(4, t0),
            master(4, t0),
            &Outcome::Failed,
            t0,
            TTL,
            before,
        );
        assert!(t.is_none() && matches!(role, Role::Master(_)));
        let at = t0 + Duration::from_millis(2700);
        let (role, t) = after_poll(master(4, t0), master(4, t0), &Outcome::Failed, t0, TTL, at);
        assert_eq!(role, Role::Follower);
        assert_eq!(
            t,
            Some(Transition::Lost {
                fence: 4,
                reason: LossReason::RenewalFailed
            })
        );
        assert_eq!(expire(master(4, t0), before).1, None);
        assert!(expire(master(4, t0), at).1.is_some());
        assert_eq!(expire(Role::Follower, at), (Role::Follower, None));
    }

    #[test]
    fn a_late_renewal_never_resurrects_an_announced_loss() {
        let t0 = Moment::now();
        let (role, t) = after_poll(
            Role::Follower,
            master(4, t0),
            &Outcome::Renewed {
                expires: Utc::now(),
            },
            t0,
            TTL,
            t0,
        );
        assert_eq!((role, t), (Role::Follower, None));
        // Nor does a renewal of an older acquisition touch a newer one.
        let (role, t) = after_poll(
            master(5, t0),
            master(4, t0),
            &Outcome::NotRenewed,
            t0,
            TTL,
            t0,
        );
        assert!(t.is_none() && matches!(role, Role::Master(l) if l.fence == 5));
    }

    #[test]
    fn surrender_only_from_master() {
        let t0 = Moment::now();
        assert_eq!(
            surrender(Role::Follower, LossReason::Stopped),
            (Role::Follower, None)
        );
        assert_eq!(
            surrender(master(9, t0), LossReason::Released).1,
            Some(Transition::Lost {
                fence: 9,
                reason: LossReason::Released
            })
        );
    }
}
