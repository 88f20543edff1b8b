//! The blocking acquire loop that the lock and the many-holder primitives
//! share: argument checks, the give-up deadline, a change-stream interest
//! taken lazily, transient errors ridden through, and the pause between
//! attempts ([`lease::retry_pause`]). Each caller brings its own attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::Result;
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

/// How a blocking acquire waits between attempts.
pub(crate) struct Waiting<'a> {
    /// The key, for the log.
    pub key: &'a str,
    pub blocking: bool,
    pub timeout: Option<Duration>,
    pub step: Duration,
    /// The takeover grace: how long past its expiry a holder still counts.
    pub grace: Duration,
    /// The change stream hub to wait on (`None`: poll every step). Called
    /// only once a first attempt failed, so an acquire that never waits
    /// opens no stream.
    pub hub: &'a dyn Fn() -> Option<Arc<Hub>>,
}

/// Runs `attempt` until it wins (`Some`), once when not blocking, or until
/// the timeout (`None`, or the last attempt's transient error). Non-transient
/// errors end it at once.
pub(crate) fn acquire<T>(
    how: Waiting<'_>,
    mut attempt: impl FnMut() -> Result<Attempt<T>>,
) -> Result<Option<T>> {
    validate::acquire_args(how.blocking, how.timeout, how.step)?;
    let give_up = how.timeout.and_then(|t| Instant::now().checked_add(t));
    // Interest in the key's changes, re-armed before each attempt so a
    // release between the attempt and the wait still wakes it. Taken only
    // once the first attempt failed (a release right between that first
    // attempt and the registration is noticed one step late).
    let mut interest: Option<Interest> = None;
    loop {
        if let Some(i) = &mut interest {
            i.rearm();
        }
        // `failed`: the attempt's transient error, which a timeout returns.
        let (holder_expires, failed) = match attempt() {
            Ok(Attempt::Won(won)) => return Ok(Some(won)),
            Ok(Attempt::Held { expires }) => (expires, None),
            // Blocking: ride through a failover (a restart, a step-down,
            // the server unreachable for a while) until the timeout.
            Err(e) if how.blocking && e.is_transient() => {
                log::warn!("acquire `{}`: {e}; retrying", how.key);
                (None, Some(e))
            }
            Err(e) => return Err(e),
        };
        if !how.blocking {
            return Ok(None);
        }
        if interest.is_none() {
            interest = (how.hub)().map(|hub| hub.interest(how.key));
        }
        let left = match give_up {
            None => None,
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return failed.map_or(Ok(None), Err),
            },
        };
        let grace = lease::as_delta(how.grace);
        let pause = lease::retry_pause(
            how.step,
            left,
            holder_expires.map(|e| e - Utc::now() + grace),
        );
        match &mut interest {
            Some(i) => {
                i.wait_until(Instant::now() + pause, || false);
            }
            None => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn how(blocking: bool, timeout: Option<Duration>) -> Waiting<'static> {
        Waiting {
            key: "k",
            blocking,
            timeout,
            step: Duration::from_millis(1),
            grace: Duration::ZERO,
            hub: &|| None,
        }
    }

    fn unreachable() -> Error {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        Error::from(mongodb::error::Error::from(io))
    }

    #[test]
    fn retries_until_won() {
        let mut n = 0;
        let got = acquire(how(true, None), || {
            n += 1;
            Ok(if n == 3 {
                Attempt::Won(n)
            } else {
                Attempt::Held { expires: None }
            })
        });
        assert_eq!(got.unwrap(), Some(3));
    }

    #[test]
    fn one_attempt_without_blocking_and_every_error_at_once() {
        let mut n = 0;
        let got = acquire(how(false, None), || {
            n += 1;
            Ok(Attempt::<()>::Held { expires: None })
        });
        assert_eq!((got.unwrap(), n), (None, 1));
        let got = acquire(how(false, None), || Err::<Attempt<()>, _>(unreachable()));
        assert!(got.is_err(), "not blocking: even a transient error");
    }

    #[test]
    fn blocking_rides_through_transient_errors_until_the_timeout() {
        let mut n = 0;
        let got = acquire(how(true, Some(Duration::from_millis(30))), || {
            n += 1;
            Err::<Attempt<()>, _>(unreachable())
        });
        assert!(got.unwrap_err().is_transient(), "the last error");
        assert!(n > 1, "retried");
        let mut n = 0;
        let got = acquire(how(true, None), || {
            n += 1;
            Err::<Attempt<()>, _>(Error::invalid("x", "no"))
        });
        assert!(matches!(got, Err(Error::InvalidArgument { .. })));
        assert_eq!(n, 1, "a non-transient error ends it at once");
    }

    #[test]
    fn times_out_with_none_and_checks_arguments_first() {
        let got = acquire(how(true, Some(Duration::from_millis(20))), || {
            Ok(Attempt::<()>::Held { expires: None })
        });
        assert_eq!(got.unwrap(), None);
        let mut n = 0;
        let got = acquire(how(false, Some(Duration::from_millis(20))), || {
            n += 1;
            Ok(Attempt::<()>::Held { expires: None })
        });
        assert!(matches!(
            got,
            Err(Error::InvalidArgument {
                parameter: "timeout",
                ..
            })
        ));
        assert_eq!(n, 0);
    }
}
