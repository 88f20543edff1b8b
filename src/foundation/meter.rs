//! [`Meter`]: what one primitive on one key reports through the `metrics`
//! facade (feature `metrics`; no exporter is linked: the application
//! installs the recorder it likes). Without the feature a `Meter` is empty
//! and every call on it an empty inline function: nothing of the facade is
//! compiled in.
//!
//! Every metric is labelled `primitive` (`lock`, `elector`, `semaphore`,
//! `rwlock`) and `key`; the guide's metrics page lists them.

use std::time::Duration;

use crate::foundation::loss::LossReason;

/// Which primitive a meter counts for (its `primitive` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Primitive {
    Lock,
    Elector,
    Semaphore,
    RwLock,
}

impl Primitive {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            Primitive::Lock => "lock",
            Primitive::Elector => "elector",
            Primitive::Semaphore => "semaphore",
            Primitive::RwLock => "rwlock",
        }
    }
}

/// The metric names, by the Prometheus conventions.
#[cfg(feature = "metrics")]
mod names {
    pub const ACQUISITIONS: &str = "mongoelector_acquisitions_total";
    pub const RELEASES: &str = "mongoelector_releases_total";
    pub const REFUSALS: &str = "mongoelector_refusals_total";
    pub const LOSSES: &str = "mongoelector_losses_total";
    pub const RENEWALS_FAILED: &str = "mongoelector_renewals_failed_total";
    pub const POLL_FAILURES: &str = "mongoelector_poll_failures_total";
    pub const ACQUIRE_WAIT: &str = "mongoelector_acquire_wait_seconds";
    pub const ROUND_TRIP: &str = "mongoelector_round_trip_seconds";
    pub const HELD: &str = "mongoelector_held";
    pub const MASTER: &str = "mongoelector_master";
}

/// The reporter of one primitive on one key. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Meter {
    #[cfg(feature = "metrics")]
    primitive: &'static str,
    #[cfg(feature = "metrics")]
    key: std::sync::Arc<str>,
}

#[cfg(feature = "metrics")]
impl Meter {
    pub fn new(primitive: Primitive, key: &str) -> Self {
        Meter {
            primitive: primitive.label(),
            key: key.into(),
        }
    }

    fn labels(&self) -> [(&'static str, String); 2] {
        [
            ("primitive", self.primitive.to_owned()),
            ("key", self.key.to_string()),
        ]
    }

    /// A grant handed out (a lock, a permit, a share, a term), after
    /// waiting `waited` for it.
    pub fn acquired(&self, waited: Duration) {
        metrics::counter!(names::ACQUISITIONS, &self.labels()).increment(1);
        metrics::histogram!(names::ACQUIRE_WAIT, &self.labels()).record(waited.as_secs_f64());
    }

    /// One attempt refused (the key held, no room, not this one's turn).
    pub fn refused(&self) {
        metrics::counter!(names::REFUSALS, &self.labels()).increment(1);
    }

    /// A grant ended by its holder's own release (a term: stopped,
    /// released, stepped down).
    pub fn released(&self) {
        metrics::counter!(names::RELEASES, &self.labels()).increment(1);
    }

    /// A grant ended otherwise: `reason`.
    pub fn lost(&self, reason: LossReason) {
        let reason = match reason {
            LossReason::RenewalFailed => "renewal_failed",
            LossReason::TakenOver => "taken_over",
            LossReason::Stopped => "stopped",
            LossReason::Released => "released",
        };
        let [p, k] = self.labels();
        metrics::counter!(names::LOSSES, &[p, k, ("reason", reason.to_owned())]).increment(1);
    }

    /// A renewal that failed (an error; it is retried until the deadline).
    pub fn renewal_failed(&self) {
        metrics::counter!(names::RENEWALS_FAILED, &self.labels()).increment(1);
    }

    /// An elector's poll that failed.
    pub fn poll_failed(&self) {
        metrics::counter!(names::POLL_FAILURES, &self.labels()).increment(1);
    }

    /// One round trip of `operation` took `took`.
    pub fn round_trip(&self, operation: &'static str, took: Duration) {
        let [p, k] = self.labels();
        metrics::histogram!(
            names::ROUND_TRIP,
            &[p, k, ("operation", operation.to_owned())]
        )
        .record(took.as_secs_f64());
    }

    /// One more grant held (`true`) or one less (`false`).
    pub fn held(&self, more: bool) {
        let gauge = metrics::gauge!(names::HELD, &self.labels());
        if more {
            gauge.increment(1.0);
        } else {
            gauge.decrement(1.0);
        }
    }

    /// Whether this elector is master now.
    pub fn master(&self, is: bool) {
        metrics::gauge!(names::MASTER, &self.labels()).set(if is { 1.0 } else { 0.0 });
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(clippy::unused_self)]
impl Meter {
    #[inline]
    pub fn new(_: Primitive, _: &str) -> Self {
        Meter {}
    }
    #[inline]
    pub fn acquired(&self, _: Duration) {}
    #[inline]
    pub fn refused(&self) {}
    #[inline]
    pub fn released(&self) {}
    #[inline]
    pub fn lost(&self, _: LossReason) {}
    #[inline]
    pub fn renewal_failed(&self) {}
    #[inline]
    pub fn poll_failed(&self) {}
    #[inline]
    pub fn held(&self, _: bool) {}
    #[inline]
    pub fn master(&self, _: bool) {}
}

/// Times `f` as one round trip of `operation` on `meter`.
#[inline]
pub(crate) fn timed<T>(meter: &Meter, operation: &'static str, f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "metrics")]
    {
        let start = std::time::Instant::now();
        let out = f();
        meter.round_trip(operation, start.elapsed());
        out
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (meter, operation);
        f()
    }
}
