//! How an acquire waits, shared by the lock and the many-holder
//! primitives: [`Wait`] for one that can end without a grant (one attempt,
//! or a timeout), [`until_granted`] for one that ends only with the grant
//! or an error. Both take a change-stream interest lazily, ride through
//! transient errors while they wait, and pause between attempts
//! ([`lease::retry_pause`]). Each caller brings its own attempt.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::foundation::handover::HandoverSlot;
use crate::foundation::lease;
use crate::foundation::validate;
use crate::foundation::watch::{Hub, Interest};

/// One attempt's answer.
pub(crate) enum Attempt<T> {
    /// Granted.
    Won(T),
    /// Not granted; when known, the server expiry of the holder whose end
    /// would let the next attempt through (the wait is cut short to just
    /// after it, plus the takeover grace).
    Held { expires: Option<DateTime<Utc>> },
}

/// How long an acquire that may end without the grant waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// One attempt; any error ends it.
    Once,
    /// Attempts until the grant or the timeout, riding through transient
    /// errors (the last one is the answer when the time runs out).
    For(Duration),
}

impl Wait {
    /// The Python package's `(blocking, timeout)`: `None` for a wait
    /// until granted (`blocking` without a timeout); a timeout without
    /// `blocking` is refused.
    pub fn from_python(blocking: bool, timeout: Option<Duration>) -> Result<Option<Wait>> {
        match (blocking, timeout) {
            (false, Some(_)) => Err(Error::invalid(
                "timeout",
                "can only be given with blocking = true",
            )),
            (false, None) => Ok(Some(Wait::Once)),
            (true, Some(t)) => Ok(Some(Wait::For(t))),
            (true, None) => Ok(None),
        }
    }
}

/// What every wait needs besides its attempt.
pub(crate) struct Waiting<'a> {
    /// The key, for the log.
    pub key: &'a str,
    pub step: Duration,
    /// The takeover grace: how long past its expiry a holder still counts.
    pub grace: Duration,
    /// The change stream hub to wait on (`None`: poll every step). Called
    /// only once a first attempt failed, so an acquire that never waits
    /// opens no stream.
    pub hub: &'a dyn Fn() -> Option<Arc<Hub>>,
    /// What makes this wait's attempts alike to other waits' on the key
    /// (see [`Hub::interest_alike`]): `None` when its answer may be its
    /// own (a forced take-over, a writer's intent).
    pub alike: Option<&'a str>,
    /// Whether a grant leaves nothing for the alike waits (a lock has one
    /// holder): then it answers the change for them, as a refusal does.
    /// A permit or a read share may leave room for the next: the turn
    /// passes on at once.
    pub exclusive: bool,
    /// A fair wait: its attempts queue, and a release hands the key over
    /// to the queue's head, so it wakes only for a change that hands the
    /// key to its own call (or one whose holder is not known), and
    /// otherwise attempts only to refresh its place.
    pub queue: Option<Queued<'a>>,
}

/// A fair wait's place in the key's queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queued<'a> {
    /// The acquire call its entry and the handover name.
    pub call: &'a str,
    /// How often its entry must be refreshed to stay live (a third of the
    /// waiter lease, so one lost refresh does not lose its place).
    pub refresh: Duration,
    /// Set by each attempt: whether the key's holder and every waiter
    /// ahead of this one are of this process. Then only a release of this
    /// process can hand the key to it, and that release wakes it: it
    /// needs no change stream (on the test server every open stream costs
    /// a `getMore` per write).
    pub nearby: &'a Cell<bool>,
    /// Where a release of this process leaves the key it hands to this
    /// wait's call, for its next attempt to take without a round trip.
    pub handed: &'a HandoverSlot,
}

/// Runs `attempt` as `wait` says: the grant, or `None` when one attempt
/// found it held or the timeout passed (or the last attempt's transient
/// error). Non-transient errors end it at once.
pub(crate) fn acquire<T>(
    how: &Waiting<'_>,
    wait: Wait,
    mut attempt: impl FnMut() -> Result<Attempt<T>>,
) -> Result<Option<T>> {
    validate::step("step", how.step)?;
    let timeout = match wait {
        Wait::Once => {
            return Ok(match attempt()? {
                Attempt::Won(won) => Some(won),
                Attempt::Held { .. } => None,
            })
        }
        Wait::For(timeout) => timeout,
    };
    // No instant that far ahead: it never times out.
    let give_up = Instant::now().checked_add(timeout);
    let mut waiter = Waiter::new(how);
    loop {
        let failed = match waiter.turn(&mut attempt)? {
            Turn::Won(won) => return Ok(Some(won)),
            Turn::Again(failed) => failed,
        };
        let left = match give_up {
            None => None,
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return failed.map_or(Ok(None), Err),
            },
        };
        waiter.pause(left);
    }
}

/// Runs `attempt` until it wins: only a non-transient error ends it
/// without the grant.
pub(crate) fn until_granted<T>(
    how: &Waiting<'_>,
    mut attempt: impl FnMut() -> Result<Attempt<T>>,
) -> Result<T> {
    validate::step("step", how.step)?;
    let mut waiter = Waiter::new(how);
    loop {
        if let Turn::Won(won) = waiter.turn(&mut attempt)? {
            return Ok(won);
        }
        waiter.pause(None);
    }
}

/// One attempt's outcome, for a wait that goes on.
enum Turn<T> {
    Won(T),
    /// Not granted; the attempt's transient error, if it failed.
    Again(Option<Error>),
}

/// The state of one wait between its attempts.
struct Waiter<'a> {
    how: &'a Waiting<'a>,
    /// Interest in the key's changes, re-armed before each attempt so a
    /// release between the attempt and the wait still wakes it. Taken only
    /// once the first attempt failed (a release right between that first
    /// attempt and the registration is noticed one step late), except a
    /// fair waiter's (see [`Waiter::new`]).
    interest: Option<Interest>,
    /// The holder's expiry the last attempt saw, if any.
    holder_expires: Option<DateTime<Utc>>,
}

impl<'a> Waiter<'a> {
    fn new(how: &'a Waiting<'a>) -> Self {
        // A fair waiter registers its call before its first attempt,
        // without a stream (that waits for the attempt's answer): a
        // release of this process may hand it the key right after that
        // answer, before the waiter would otherwise have registered, and
        // the handover's wake-up would be lost until its next refresh.
        let interest = how.queue.and_then(|q| {
            (how.hub)().map(|hub| hub.interest_for_call(how.key, q.call, q.handed, false))
        });
        Waiter {
            how,
            interest,
            holder_expires: None,
        }
    }

    /// One attempt: won, or not (a transient error is ridden through: a
    /// failover, a restart, the server unreachable for a while).
    fn turn<T>(&mut self, attempt: &mut impl FnMut() -> Result<Attempt<T>>) -> Result<Turn<T>> {
        if let Some(i) = &mut self.interest {
            i.rearm();
        }
        let answer = attempt();
        if let Some(i) = &mut self.interest {
            i.attempted(match &answer {
                Ok(Attempt::Won(_)) => self.how.exclusive,
                Ok(Attempt::Held { .. }) => true,
                Err(_) => false,
            });
        }
        let (expires, failed) = match answer {
            Ok(Attempt::Won(won)) => return Ok(Turn::Won(won)),
            Ok(Attempt::Held { expires }) => (expires, None),
            Err(e) if e.is_transient() => {
                log::warn!("acquire `{}`: {e}; retrying", self.how.key);
                (None, Some(e))
            }
            Err(e) => return Err(e),
        };
        self.holder_expires = expires;
        match (&self.interest, &self.how.queue) {
            (None, None) => {
                self.interest =
                    (self.how.hub)().map(|hub| hub.interest_alike(self.how.key, self.how.alike));
            }
            // A fair waiter registered in `new`. Someone of another process
            // is ahead now: its release must reach this waiter through the
            // stream.
            (Some(i), Some(q)) if !q.nearby.get() => i.ensure_stream(),
            _ => {}
        }
        Ok(Turn::Again(failed))
    }

    /// Waits for the next attempt: the step, cut short by a change of the
    /// key (one that an alike waiter's attempt has not answered meanwhile),
    /// the holder's expiry (plus the grace) or `left` before the timeout.
    fn pause(&mut self, left: Option<Duration>) {
        let grace = lease::as_delta(self.how.grace);
        // A fair waiter refreshes its place often enough to keep it; it
        // need not poll at its step while the stream (or a releaser of
        // this process) will tell it that the key is its own.
        let live = self
            .interest
            .as_ref()
            .is_some_and(|i| i.stream_live() || self.how.queue.is_some_and(|q| q.nearby.get()));
        let step = match &self.how.queue {
            Some(q) if live => q.refresh,
            Some(q) => q.refresh.min(self.how.step),
            None => self.how.step,
        };
        let pause = lease::retry_pause(
            step,
            left,
            self.holder_expires.map(|e| e - Utc::now() + grace),
        );
        match &mut self.interest {
            Some(i) => {
                i.wait_turn(Instant::now() + pause);
            }
            None => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn how() -> Waiting<'static> {
        Waiting {
            key: "k",
            step: Duration::from_millis(1),
            grace: Duration::ZERO,
            hub: &|| None,
            alike: None,
            exclusive: false,
            queue: None,
        }
    }

    fn unreachable() -> Error {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        Error::from(mongodb::error::Error::from(io))
    }

    #[test]
    fn retries_until_won() {
        let mut n = 0;
        let got = until_granted(&how(), || {
            n += 1;
            Ok(if n == 3 {
                Attempt::Won(n)
            } else {
                Attempt::Held { expires: None }
            })
        });
        assert_eq!(got.unwrap(), 3);
        // Through transient errors too.
        let mut n = 0;
        let got = until_granted(&how(), || {
            n += 1;
            if n < 3 {
                Err(unreachable())
            } else {
                Ok(Attempt::Won(n))
            }
        });
        assert_eq!(got.unwrap(), 3);
    }

    #[test]
    fn one_attempt_and_every_error_at_once() {
        let mut n = 0;
        let got = acquire(&how(), Wait::Once, || {
            n += 1;
            Ok(Attempt::<()>::Held { expires: None })
        });
        assert_eq!((got.unwrap(), n), (None, 1));
        let got = acquire(&how(), Wait::Once, || Err::<Attempt<()>, _>(unreachable()));
        assert!(got.is_err(), "one attempt: even a transient error");
    }

    #[test]
    fn a_timed_wait_rides_through_transient_errors_until_the_timeout() {
        let mut n = 0;
        let got = acquire(&how(), Wait::For(Duration::from_millis(30)), || {
            n += 1;
            Err::<Attempt<()>, _>(unreachable())
        });
        assert!(got.unwrap_err().is_transient(), "the last error");
        assert!(n > 1, "retried");
        let mut n = 0;
        let got = until_granted(&how(), || {
            n += 1;
            Err::<Attempt<()>, _>(Error::invalid("x", "no"))
        });
        assert!(matches!(got, Err(Error::InvalidArgument { .. })));
        assert_eq!(n, 1, "a non-transient error ends it at once");
    }

    #[test]
    fn times_out_with_none_and_checks_the_step_first() {
        let got = acquire(&how(), Wait::For(Duration::from_millis(20)), || {
            Ok(Attempt::<()>::Held { expires: None })
        });
        assert_eq!(got.unwrap(), None);
        let zero = Waiting {
            step: Duration::ZERO,
            ..how()
        };
        let mut n = 0;
        let got = acquire(&zero, Wait::Once, || {
            n += 1;
            Ok(Attempt::<()>::Held { expires: None })
        });
        assert!(matches!(
            got,
            Err(Error::InvalidArgument {
                parameter: "step",
                ..
            })
        ));
        assert_eq!(n, 0);
    }

    #[test]
    fn the_python_arguments_become_one_wait() {
        assert_eq!(Wait::from_python(false, None).unwrap(), Some(Wait::Once));
        let t = Duration::from_secs(2);
        assert_eq!(
            Wait::from_python(true, Some(t)).unwrap(),
            Some(Wait::For(t))
        );
        assert_eq!(Wait::from_python(true, None).unwrap(), None);
        assert!(matches!(
            Wait::from_python(false, Some(t)),
            Err(Error::InvalidArgument {
                parameter: "timeout",
                ..
            })
        ));
    }
}
