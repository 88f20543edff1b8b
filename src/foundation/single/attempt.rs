//! One acquire attempt of a [`LockCore`]: its round trip, or the
//! handover a release of this process left for the call (see
//! [`crate::foundation::handover`]), and the tenure a grant starts.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::error::Result;
use crate::foundation::grants;
use crate::foundation::keepalive::Renew;
use crate::foundation::meter;
use crate::foundation::moment::Moment;
use crate::foundation::single::core::{Answers, LockCore};
use crate::foundation::single::document::LockRecord;
use crate::foundation::single::queue::Fair;
use crate::foundation::tenure::Tenure;
use crate::foundation::waiting::Attempt;

impl LockCore {
    /// One acquire attempt: the acquisition, when this locker now holds
    /// the lock. One round trip, none when a release of this process
    /// handed the lock to the call for its whole ttl. Sets `left` when the
    /// lock may name this locker without handing the acquisition out (an
    /// error, no answer, a late answer).
    pub(super) fn attempt(
        self: &Arc<Self>,
        force: bool,
        call: &str,
        fair: Option<&Fair<'_>>,
        answers: Answers<'_>,
        left: &mut bool,
    ) -> Result<Attempt<Arc<Tenure>>> {
        let _op = self.op.lock();
        // Another thread sharing this locker may have won meanwhile.
        self.refuse_if_held()?;
        // Handed over for the whole ttl (see `handover`): the release's
        // answer is the grant, and its send time bounds the lease. One
        // handed only the waiter lease, or after another attempt of this
        // locker (see `LockCore::attempts_sent`), is claimed by the round trip.
        let untouched = answers.seen.get() == self.attempts_sent.load(Ordering::Relaxed);
        let handover = answers
            .handed
            .lock()
            .take()
            .filter(|h| untouched && h.info.uuid == self.owner.uuid && h.grants_ttl(self.ttl));
        let (sent, answer) = match handover {
            Some(h) => (h.sent, Ok(Some((LockRecord::Taken(h.info), true)))),
            None => {
                answers
                    .seen
                    .set(self.attempts_sent.fetch_add(1, Ordering::Relaxed) + 1);
                let sent = Moment::now();
                (sent, self.round_trip(force, call, fair, answers.nearby))
            }
        };
        if !matches!(answer, Ok(Some(_))) {
            *left = true;
        }
        match answer? {
            Some((LockRecord::Taken(info), true)) if info.uuid == self.owner.uuid => {
                let renew = self
                    .keep_alive
                    .then(|| Arc::downgrade(self) as Weak<dyn Renew>);
                let hold = |t: &Arc<Tenure>| *self.held.lock() = Some(t.clone());
                let started = grants::start(
                    info.fence,
                    info.expires,
                    sent,
                    self.ttl,
                    renew,
                    &self.meter,
                    hold,
                );
                let Some(tenure) = started else {
                    // The answer came after the lease's local deadline (a
                    // slow round trip on a short ttl): nothing to act on.
                    // The lock names this locker until it expires; the next
                    // attempt retakes it (a fair one as handed to its call,
                    // with the same fence, which nobody acted on), or the
                    // call's end takes it back.
                    log::debug!("acquire `{}`: answer came too late to use", self.key);
                    *left = true;
                    return Ok(Attempt::Held { expires: None });
                };
                // Granted after an unreleased lease's expiry, in server
                // time: nothing of it can land any more.
                let mut until = self.unreleased_until.lock();
                if until.is_some_and(|u| info.created >= u) {
                    *until = None;
                }
                drop(until);
                log::debug!("acquired `{}` with fence {}", self.key, info.fence);
                Ok(Attempt::Won(tenure))
            }
            Some((LockRecord::Taken(info), _)) => {
                self.meter.refused();
                Ok(Attempt::Held {
                    expires: Some(info.expires),
                })
            }
            _ => {
                self.meter.refused();
                Ok(Attempt::Held { expires: None })
            }
        }
    }

    /// One acquire round trip: the lock document after it, and whether it
    /// is this call's grant.
    fn round_trip(
        &self,
        force: bool,
        call: &str,
        fair: Option<&Fair<'_>>,
        nearby: &Cell<bool>,
    ) -> Result<Option<(LockRecord, bool)>> {
        meter::timed(&self.meter, "acquire", || match fair {
            Some(fair) => self.fair_round_trip(force, fair, nearby),
            // Without the queue, an answer naming this owner is its grant:
            // the take-over condition takes whatever the owner holds.
            None => self
                .store
                .try_acquire(&self.key, &self.owner, Some(call), self.ttl, force)
                .map(|r| r.map(|r| (r, true))),
        })
    }

    /// A fair attempt: when this locker saw nobody else queue at its last
    /// fair answer, first the small attempt that grants only a free key
    /// nobody queues for ([`LockStore::try_acquire_uncontended`]), then,
    /// if that is refused, the whole one. One round trip; two when a wait
    /// is first refused after a quiet spell (it queues at once) or a free
    /// key has a queue, after which the locker sends the whole one until
    /// an answer shows the queue empty again.
    ///
    /// [`LockStore::try_acquire_uncontended`]: crate::foundation::single::store::LockStore::try_acquire_uncontended
    fn fair_round_trip(
        &self,
        force: bool,
        fair: &Fair<'_>,
        nearby: &Cell<bool>,
    ) -> Result<Option<(LockRecord, bool)>> {
        if !force && !self.contended.load(Ordering::Relaxed) {
            let quick =
                self.store
                    .try_acquire_uncontended(&self.key, &self.owner, self.ttl, fair.call)?;
            match quick {
                Some(a) if a.granted => return Ok(Some((a.record, true))),
                // Refused by a holder with nobody queued: the whole
                // attempt's take-over condition is the same, so a single
                // attempt has its answer. A wait queues now.
                Some(a) if !fair.enqueue && !a.others_queued => {
                    nearby.set(false);
                    return Ok(Some((a.record, false)));
                }
                _ => self.contended.store(true, Ordering::Relaxed),
            }
        }
        let answer = self
            .store
            .try_acquire_fair(&self.key, &self.owner, self.ttl, force, fair)?;
        Ok(answer.map(|a| {
            nearby.set(a.nearby);
            let quiet = a.granted && !a.others_queued;
            self.contended.store(!quiet, Ordering::Relaxed);
            (a.record, a.granted)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundation::document::LockInfo;
    use crate::foundation::handover::{Handover, HandoverSlot};
    use crate::foundation::owner::Owner;
    use crate::foundation::single::core::Settings;
    use crate::foundation::single::store::LockStore;
    use std::time::Duration;

    const TTL: Duration = Duration::from_secs(10);

    /// A locker on a server that is not there: any round trip fails (fast).
    fn core() -> Arc<LockCore> {
        let uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=50&connectTimeoutMS=50";
        let client = mongodb::sync::Client::with_uri_str(uri).unwrap();
        let store = LockStore::new(&client.database("app"), "locks", Duration::ZERO);
        let settings = Settings {
            ttl: TTL,
            step: Duration::from_millis(50),
            timeparanoid: false,
            change_streams: true,
            keep_alive: false,
            hold: Duration::ZERO,
            owner: Owner::new(),
            fair: Some(Duration::from_millis(1500)),
        };
        Arc::new(LockCore::new("k".into(), store, settings))
    }

    fn handover(core: &LockCore, fence: i64) -> Handover {
        let now = chrono::Utc::now();
        Handover {
            info: LockInfo {
                key: "k".into(),
                uuid: core.owner().uuid.clone(),
                host: "h".into(),
                pid: 1,
                created: now,
                expires: now + chrono::TimeDelta::seconds(10),
                fence,
                metadata: None,
            },
            sent: Moment::now(),
        }
    }

    /// The call's attempt with `slot` and `seen`: granted (the fence), or
    /// `None` when it went to the (absent) server instead.
    fn attempt(core: &Arc<LockCore>, slot: &HandoverSlot, seen: &Cell<u64>) -> Option<i64> {
        let fair = Fair {
            call: "c1",
            waiter_lease: Duration::from_millis(1500),
            enqueue: true,
        };
        let nearby = Cell::new(false);
        let answers = Answers {
            nearby: &nearby,
            handed: slot,
            seen,
        };
        match core.attempt(false, "c1", Some(&fair), answers, &mut false) {
            Ok(Attempt::Won(t)) => Some(t.fence()),
            Ok(Attempt::Held { .. }) => panic!("no server to refuse it"),
            Err(_) => None,
        }
    }

    #[test]
    fn a_handover_is_used_only_if_no_other_attempt_of_the_locker_came_between() {
        let core = core();
        let slot = HandoverSlot::default();
        let seen = Cell::new(u64::MAX);
        // The call's first attempt goes to the server (here: fails).
        assert_eq!(attempt(&core, &slot, &seen), None);
        // Handed over since: held with no round trip.
        *slot.lock() = Some(handover(&core, 7));
        assert_eq!(attempt(&core, &slot, &seen), Some(7));
        core.release_fence(Some(7)).ok();

        // Another call of this locker attempted after the call's last
        // attempt (it may have taken the lock from it and let it go):
        // the handover is not used, the call claims the lock instead.
        let seen = Cell::new(u64::MAX);
        assert_eq!(attempt(&core, &slot, &seen), None);
        *slot.lock() = Some(handover(&core, 8));
        let other = Cell::new(u64::MAX);
        assert_eq!(attempt(&core, &HandoverSlot::default(), &other), None);
        assert_eq!(attempt(&core, &slot, &seen), None);
        // A forced release of this locker counts too.
        assert_eq!(attempt(&core, &slot, &seen), None);
        *slot.lock() = Some(handover(&core, 9));
        core.release_anyone().ok();
        assert_eq!(attempt(&core, &slot, &seen), None);
        // A handover of another ttl (only the waiter lease) is claimed.
        assert_eq!(attempt(&core, &slot, &seen), None);
        let mut short = handover(&core, 10);
        short.info.expires = short.info.created + chrono::TimeDelta::milliseconds(1500);
        *slot.lock() = Some(short);
        assert_eq!(attempt(&core, &slot, &seen), None);
    }
}
