//! The two steps every core takes on an answer, written once: a grant's
//! answer starts a [`Tenure`] (unless it came after the lease's local
//! deadline: nothing to act on), watched by the deadline thread and, with
//! keep-alive, renewed by the keep-alive thread; a renewal's answer moves
//! its lease (unless the tenure ended, or its deadline passed first).

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::foundation::keepalive::{self, Renew};
use crate::foundation::lease::Lease;
use crate::foundation::meter::Meter;
use crate::foundation::moment::Moment;
use crate::foundation::tenure::Tenure;

/// The tenure a grant answered with `expires` starts, for a request sent
/// at `sent`: `None` when the answer came after the lease's local
/// deadline. `hold` files it with its core before anything can look it up
/// there; `renew`, when keep-alive is on, is the core that renews it;
/// `meter` reports it.
pub(crate) fn start(
    fence: i64,
    expires: DateTime<Utc>,
    sent: Moment,
    ttl: Duration,
    renew: Option<Weak<dyn Renew>>,
    meter: &Meter,
    hold: impl FnOnce(&Arc<Tenure>),
) -> Option<Arc<Tenure>> {
    let lease = Lease::granted(fence, expires, sent, ttl);
    if !lease.valid_at(Moment::now()) {
        return None;
    }
    let tenure = Arc::new(Tenure::metered(lease, meter));
    hold(&tenure);
    tenure.watch_deadline(&lease);
    if let Some(core) = renew {
        keepalive::schedule(keepalive::renewal_due(sent, ttl), core, fence);
    }
    Some(tenure)
}

/// A renewal of `tenure` sent at `sent` answered with `expires`: the new
/// expiry, adopted and watched; `None` when the tenure has ended or its
/// deadline passed before the answer came (it is lost then).
pub(crate) fn renewed(
    tenure: &Arc<Tenure>,
    expires: DateTime<Utc>,
    sent: Moment,
    ttl: Duration,
) -> Option<DateTime<Utc>> {
    let lease = Lease::granted(tenure.fence(), expires, sent, ttl);
    if !tenure.renewed(lease, Moment::now()) {
        return None;
    }
    tenure.watch_deadline(&lease);
    Some(expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(1);

    fn meter() -> Meter {
        Meter::new(crate::foundation::meter::Primitive::Lock, "k")
    }

    #[test]
    fn a_late_answer_starts_nothing_and_files_nothing() {
        let late = Moment::now();
        crate::foundation::moment::simulate_suspend(Duration::from_secs(5));
        let mut filed = false;
        assert!(start(1, Utc::now(), late, TTL, None, &meter(), |_| filed = true).is_none());
        assert!(!filed);
        let t = start(2, Utc::now(), Moment::now(), TTL, None, &meter(), |_| {
            filed = true
        })
        .unwrap();
        assert!(filed && t.valid_at(Moment::now()) && t.fence() == 2);
    }

    #[test]
    fn a_renewal_moves_the_lease_unless_it_came_too_late() {
        let t = start(3, Utc::now(), Moment::now(), TTL, None, &meter(), |_| {}).unwrap();
        let later = Utc::now() + chrono::TimeDelta::seconds(1);
        assert_eq!(renewed(&t, later, Moment::now(), TTL), Some(later));
        assert_eq!(t.lease().expires, later);
        t.release();
        assert_eq!(renewed(&t, later, Moment::now(), TTL), None, "ended");
    }
}
