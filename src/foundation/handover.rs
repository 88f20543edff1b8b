//! A lock handed over inside one process: what a release tells the fair
//! waiter (of the same process) whose call it handed the lock to, so that
//! the waiter holds it without a round trip of its own.
//!
//! The release grants such a head its full ttl (it knows the head is alive:
//! it waits in the releasing process), and the head counts its lease from
//! the moment the release was sent, on this process's own clock: the
//! server wrote the expiry after that, as it does for an acquire counted
//! from its own send.

use std::sync::Arc;

use chrono::TimeDelta;
use parking_lot::Mutex;

use crate::foundation::document::LockInfo;
use crate::foundation::expr::duration_ms;
use crate::foundation::moment::Moment;

/// A lock handed to a waiting call by a release of this process.
#[derive(Clone, Debug)]
pub(crate) struct Handover {
    /// The lock document's holder after the release.
    pub info: LockInfo,
    /// When the release was sent (before the server granted it).
    pub sent: Moment,
}

impl Handover {
    /// Whether the handover granted a lease of `ttl` (to the millisecond,
    /// in server time): a head granted only its waiter lease (the release
    /// did not know it waited here) must claim it with a round trip.
    pub fn grants_ttl(&self, ttl: std::time::Duration) -> bool {
        self.info.expires - self.info.created == TimeDelta::milliseconds(duration_ms(ttl))
    }
}

/// Where a release leaves the handover for the waiting call, which takes
/// it at its next attempt.
pub(crate) type HandoverSlot = Arc<Mutex<Option<Handover>>>;
