//! [`Moment`]: the clock that lease deadlines are measured on. On Linux it
//! is `CLOCK_BOOTTIME`, which keeps counting while the machine is
//! suspended (and, on most hypervisors, while a VM is paused), unlike
//! `Instant` (`CLOCK_MONOTONIC`): a holder frozen past its lease wakes up
//! knowing it. Elsewhere it is `Instant`, which on some platforms stops
//! during suspend (see the README's guarantees).

use std::ops::Add;
use std::time::{Duration, Instant};

/// A point on the lease clock: the time since an arbitrary origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Moment(Duration);

impl Moment {
    /// Now, on the lease clock.
    pub fn now() -> Moment {
        Moment(since_origin() + suspended())
    }

    /// How long after `earlier` this is (zero when it is not after).
    pub fn saturating_duration_since(self, earlier: Moment) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// The same point as an `Instant`, as of now (for the public API, and
    /// for waits, which the standard library takes on `Instant`).
    pub fn to_instant(self) -> Instant {
        let (now, moment) = (Instant::now(), Moment::now());
        if self >= moment {
            now + self.saturating_duration_since(moment)
        } else {
            let ago = moment.saturating_duration_since(self);
            now.checked_sub(ago).unwrap_or(now)
        }
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;
    fn add(self, d: Duration) -> Moment {
        Moment(self.0.saturating_add(d))
    }
}

// Time this thread's tests pretend the machine spent suspended: the lease
// clock counts it, `Instant` does not (as with `CLOCK_BOOTTIME` and
// `CLOCK_MONOTONIC` across a real suspend, which tests cannot cause).
#[cfg(test)]
thread_local! {
    static SUSPENDED: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

#[cfg(test)]
fn suspended() -> Duration {
    SUSPENDED.with(|s| s.get())
}

#[cfg(not(test))]
fn suspended() -> Duration {
    Duration::ZERO
}

/// Makes this thread's lease clock jump `d` ahead, as a suspend of the
/// machine would.
#[cfg(test)]
pub(crate) fn simulate_suspend(d: Duration) {
    SUSPENDED.with(|s| s.set(s.get() + d));
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn since_origin() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn since_origin() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_with_time_and_converts_to_instants() {
        let a = Moment::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = Moment::now();
        assert!(b.saturating_duration_since(a) >= Duration::from_millis(20));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        let later = b + Duration::from_secs(5);
        let at = later.to_instant();
        let left = at.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_millis(4900) && left <= Duration::from_secs(5));
        let past = a.to_instant();
        assert!(past <= Instant::now());
    }

    /// On Linux the lease clock is CLOCK_BOOTTIME, which counts suspended
    /// time (CLOCK_MONOTONIC does not). Both read the same while awake,
    /// give or take what suspends this machine has seen since boot.
    #[cfg(target_os = "linux")]
    #[test]
    fn is_boottime_on_linux() {
        let boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let ours = Moment::now().0;
        let diff = ours.as_secs_f64() - (boot.tv_sec as f64 + boot.tv_nsec as f64 / 1e9);
        assert!((0.0..0.5).contains(&diff), "{diff}");
    }
}
