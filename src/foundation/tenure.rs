//! [`Tenure`]: one lock acquisition as this process knows it: its lease,
//! whether and how it ended, and the [`lost`](crate::LockGuard::lost)
//! receivers to tell. No I/O: the locker feeds it each renewal's answer,
//! and the process-wide deadline thread tells it when its deadline passes.
//!
//! An acquisition ends once, for good: by its own release (the receivers
//! are disconnected without a message), or by a loss (each receiver gets
//! one [`LossReason`], then is disconnected). Once it has ended it is never
//! valid again, even if a late renewal answer says the server extended it.

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use std::sync::{Arc, Weak};

use crate::foundation::deadlines::{self, Expire};
use crate::foundation::lease::Lease;
use crate::foundation::loss::LossReason;
use crate::foundation::meter::Meter;
use crate::foundation::moment::Moment;

/// How an acquisition stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Not ended (it may still be past its deadline until someone looks).
    Live,
    /// Ended by its holder's own release.
    Released,
    /// Ended otherwise.
    Lost(LossReason),
}

#[derive(Debug)]
struct State {
    lease: Lease,
    standing: Standing,
    subscribers: Vec<Sender<LossReason>>,
}

/// One acquisition: its fence, its current lease, and how it stands.
#[derive(Debug)]
pub(crate) struct Tenure {
    fence: i64,
    state: Mutex<State>,
    /// What it reports: held while live, then released or lost.
    meter: Option<Meter>,
}

impl Tenure {
    /// A live acquisition with the lease its acquire was granted.
    pub fn new(lease: Lease) -> Self {
        Tenure {
            fence: lease.fence,
            state: Mutex::new(State {
                lease,
                standing: Standing::Live,
                subscribers: Vec::new(),
            }),
            meter: None,
        }
    }

    /// As [`new`](Self::new), reported on `meter` (held now; released or
    /// lost when it ends).
    pub fn metered(lease: Lease, meter: &Meter) -> Self {
        meter.held(true);
        Tenure {
            meter: Some(meter.clone()),
            ..Tenure::new(lease)
        }
    }

    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// Has the deadline thread end this acquisition at `lease`'s deadline
    /// if it is still live and not renewed by then (it holds it weakly).
    pub fn watch_deadline(self: &Arc<Self>, lease: &Lease) {
        deadlines::watch(lease.deadline, Arc::downgrade(self) as Weak<dyn Expire>);
    }

    /// The last lease known (the last one renewed, once it has ended).
    pub fn lease(&self) -> Lease {
        self.state.lock().lease
    }

    #[cfg(test)]
    pub fn standing(&self) -> Standing {
        self.state.lock().standing
    }

    /// Live and before its local deadline at `now`.
    pub fn valid_at(&self, now: Moment) -> bool {
        let st = self.state.lock();
        st.standing == Standing::Live && st.lease.valid_at(now)
    }

    /// A renewal's answer arrived at `now` with `lease`: adopted (true)
    /// unless the acquisition has ended, or its current deadline passed
    /// before the answer came (then it ends now, with `RenewalFailed`: it
    /// was invalid for a moment, and stays so).
    pub fn renewed(&self, lease: Lease, now: Moment) -> bool {
        let mut st = self.state.lock();
        if st.standing != Standing::Live {
            return false;
        }
        if !st.lease.valid_at(now) {
            self.end(&mut st, Standing::Lost(LossReason::RenewalFailed));
            return false;
        }
        st.lease = lease;
        true
    }

    /// Ends it with `RenewalFailed` if it is live and its deadline has
    /// passed at `now`. True when this call ended it.
    pub fn expire_at(&self, now: Moment) -> bool {
        let mut st = self.state.lock();
        if st.standing != Standing::Live || st.lease.valid_at(now) {
            return false;
        }
        self.end(&mut st, Standing::Lost(LossReason::RenewalFailed));
        true
    }

    /// Ends it with `reason` if it is live.
    pub fn lose(&self, reason: LossReason) {
        let mut st = self.state.lock();
        if st.standing == Standing::Live {
            self.end(&mut st, Standing::Lost(reason));
        }
    }

    /// Ends it by its own release if it is live: receivers are disconnected
    /// without a message.
    pub fn release(&self) {
        let mut st = self.state.lock();
        if st.standing == Standing::Live {
            self.end(&mut st, Standing::Released);
        }
    }

    /// A new receiver of the loss: it gets the loss now if it already
    /// happened, is disconnected at once if the acquisition was released.
    pub fn subscribe(&self) -> Receiver<LossReason> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut st = self.state.lock();
        match st.standing {
            Standing::Live => st.subscribers.push(tx),
            Standing::Lost(reason) => {
                let _ = tx.send(reason);
            }
            Standing::Released => {}
        }
        rx
    }
}

/// What a fenced write asks, at each write, of the lease it writes under:
/// a guard's [`Tenure`], an elector's term.
pub(crate) trait LeaseView: Send + Sync {
    /// The lease's server expiry, as last renewed (the last one known,
    /// once it has ended).
    fn expires(&self) -> DateTime<Utc>;
    /// Whether its holder may still act now: not ended (released, lost,
    /// stepped down) and before its local deadline.
    fn in_force(&self) -> bool;
}

impl LeaseView for Tenure {
    fn expires(&self) -> DateTime<Utc> {
        self.lease().expires
    }

    fn in_force(&self) -> bool {
        self.valid_at(Moment::now())
    }
}

impl Tenure {
    /// Records the end and tells every receiver (a loss) or none (a
    /// release); dropping the senders disconnects the receivers either way.
    fn end(&self, st: &mut State, standing: Standing) {
        if let Some(meter) = &self.meter {
            meter.held(false);
            match standing {
                Standing::Lost(reason) => meter.lost(reason),
                _ => meter.released(),
            }
        }
        end(st, standing);
    }
}

/// Records the end in `st` and tells the receivers.
fn end(st: &mut State, standing: Standing) {
    st.standing = standing;
    let subscribers = std::mem::take(&mut st.subscribers);
    if let Standing::Lost(reason) = standing {
        for tx in &subscribers {
            // Bounded(1) and sent once: never blocks; a dropped receiver is fine.
            let _ = tx.try_send(reason);
        }
    }
}

impl Expire for Tenure {
    fn expire_now(&self) {
        if self.expire_at(Moment::now()) {
            log::warn!(
                "lock acquisition with fence {} lost: no renewal before its local deadline",
                self.fence
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::TryRecvError;
    use std::time::Duration;

    const TTL: Duration = Duration::from_secs(1);

    fn tenure(sent: Moment) -> Tenure {
        Tenure::new(Lease::granted(7, Utc::now(), sent, TTL))
    }

    #[test]
    fn a_loss_reaches_every_receiver_once_then_disconnects() {
        let t0 = Moment::now();
        let t = tenure(t0);
        let (a, b) = (t.subscribe(), t.subscribe());
        assert!(!t.expire_at(t0 + Duration::from_millis(899)));
        assert!(t.expire_at(t0 + Duration::from_millis(900)));
        assert!(!t.expire_at(t0 + TTL), "ends once");
        t.lose(LossReason::TakenOver);
        for rx in [a, b] {
            assert_eq!(rx.try_recv(), Ok(LossReason::RenewalFailed));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        }
        // A receiver taken afterwards still learns why.
        let late = t.subscribe();
        assert_eq!(late.try_recv(), Ok(LossReason::RenewalFailed));
        assert_eq!(late.try_recv(), Err(TryRecvError::Disconnected));
        assert!(!t.valid_at(t0));
    }

    #[test]
    fn a_release_disconnects_without_a_message() {
        let t0 = Moment::now();
        let t = tenure(t0);
        let rx = t.subscribe();
        t.release();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert!(!t.expire_at(t0 + TTL), "released: no loss afterwards");
        assert_eq!(t.standing(), Standing::Released);
        assert_eq!(t.subscribe().try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn renewals_move_the_deadline_only_while_live_and_in_time() {
        let t0 = Moment::now();
        let t = tenure(t0);
        let later = t0 + Duration::from_millis(500);
        assert!(t.renewed(Lease::granted(7, Utc::now(), later, TTL), later));
        assert!(t.valid_at(t0 + Duration::from_millis(1300)));
        assert!(!t.expire_at(t0 + Duration::from_millis(1300)));
        // An answer that comes after the current deadline ends it.
        let rx = t.subscribe();
        let late = t0 + Duration::from_millis(1500);
        assert!(!t.renewed(Lease::granted(7, Utc::now(), late, TTL), late));
        assert_eq!(rx.try_recv(), Ok(LossReason::RenewalFailed));
        assert!(!t.valid_at(late), "never valid again");
        assert!(!t.renewed(Lease::granted(7, Utc::now(), late, TTL), late));
    }

    #[test]
    fn taken_over() {
        let t = tenure(Moment::now());
        let rx = t.subscribe();
        t.lose(LossReason::TakenOver);
        t.release();
        assert_eq!(rx.recv(), Ok(LossReason::TakenOver));
        assert_eq!(t.standing(), Standing::Lost(LossReason::TakenOver));
    }
}
