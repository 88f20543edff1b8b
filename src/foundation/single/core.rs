//! [`LockCore`]: one locker's identity, settings and current acquisition,
//! and every operation on them. Shared (through an `Arc`) by the
//! [`MongoLocker`](crate::MongoLocker) and its [`LockGuard`](crate::LockGuard)s,
//! which only call its methods. Each acquisition is a [`Tenure`], watched
//! by the deadline thread and, with keep-alive, renewed by the keep-alive
//! thread (which calls [`Renew::renew`] here).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::foundation::clock::ClockCheck;
use crate::foundation::document::LockInfo;
use crate::foundation::grants;
use crate::foundation::handover::HandoverSlot;
use crate::foundation::holding::Holder;
use crate::foundation::keepalive::{self, Renew};
use crate::foundation::loss::LossReason;
use crate::foundation::meter::{self, Meter, Primitive};
use crate::foundation::moment::Moment;
use crate::foundation::owner::Owner;
use crate::foundation::single::document::LockRecord;
use crate::foundation::single::pipeline::Whose;
use crate::foundation::single::queue::Fair;
use crate::foundation::single::store::LockStore;
use crate::foundation::tenure::Tenure;
use crate::foundation::waiting::{self, Attempt, Queued, Wait, Waiting};
use crate::foundation::watch::Hub;

/// A locker's identity and state.
#[derive(Debug)]
pub(crate) struct LockCore {
    pub(super) key: String,
    pub(super) owner: Owner,
    pub(super) ttl: Duration,
    step: Duration,
    pub(super) store: LockStore,
    pub(super) clock: ClockCheck,
    /// Serialises this locker's acquire attempts, touches and releases, so
    /// that its view of the lease matches the database's.
    pub(super) op: Mutex<()>,
    /// The acquisition this locker holds, if any. Locked only briefly.
    pub(super) held: Mutex<Option<Arc<Tenure>>>,
    /// Whether blocking acquires wait on a change stream (where supported).
    change_streams: bool,
    /// Whether the keep-alive thread renews each acquisition.
    pub(super) keep_alive: bool,
    /// How long after its acquisition a released lock stays unavailable.
    hold: Duration,
    /// The waiter lease of a fair locker: its waits queue (see
    /// [`crate::foundation::single::queue`]). `None`: they race.
    fair: Option<Duration>,
    /// The latest server expiry of this locker's acquisitions that ended
    /// without a release (past their local deadline): until then a write
    /// of theirs may still be on its way, so this locker's own later
    /// releases keep the lock taken until then. Cleared by a grant made
    /// after it in server time.
    pub(super) unreleased_until: Mutex<Option<DateTime<Utc>>>,
    /// What it reports.
    pub(super) meter: Meter,
    /// Whether its last fair answer showed others queued (or refused it):
    /// its next fair attempt is then the whole one at once (see
    /// `attempt.rs`).
    pub(super) contended: AtomicBool,
    /// The acquire attempts and forced releases this locker has sent: a
    /// handover left for a call is used only if none was sent since that
    /// call's own last attempt (one could have taken the lock from it as
    /// "already mine", a thread sharing the handle, and let it go again).
    pub(super) attempts_sent: AtomicU64,
}

/// Where a fair call's attempts leave and find what is told besides their
/// answers.
#[derive(Clone, Copy)]
pub(super) struct Answers<'a> {
    /// Set by each round trip (see [`Queued::nearby`]).
    pub nearby: &'a Cell<bool>,
    /// A handover from a release of this process (see [`Queued::handed`]).
    pub handed: &'a HandoverSlot,
    /// The locker's count of attempts sent (see [`LockCore::attempts_sent`]) just
    /// after the call's last one.
    pub seen: &'a Cell<u64>,
}

/// What a locker is configured with, beyond its key and store (checked by
/// the builder).
#[derive(Debug)]
pub(crate) struct Settings {
    pub ttl: Duration,
    pub step: Duration,
    pub timeparanoid: bool,
    pub change_streams: bool,
    pub keep_alive: bool,
    pub hold: Duration,
    pub owner: Owner,
    /// The waiter lease, when waits queue.
    pub fair: Option<Duration>,
}

impl LockCore {
    /// A new identity on `key`, holding nothing. No I/O.
    pub fn new(key: String, store: LockStore, settings: Settings) -> Self {
        LockCore {
            meter: Meter::new(Primitive::Lock, &key),
            key,
            owner: settings.owner,
            ttl: settings.ttl,
            step: settings.step,
            store,
            clock: ClockCheck::new(settings.timeparanoid),
            op: Mutex::new(()),
            held: Mutex::new(None),
            change_streams: settings.change_streams,
            keep_alive: settings.keep_alive,
            hold: settings.hold,
            fair: settings.fair,
            unreleased_until: Mutex::new(None),
            contended: AtomicBool::new(false),
            attempts_sent: AtomicU64::new(0),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The interval between attempts of `lock` and `try_lock_for`.
    pub fn step(&self) -> Duration {
        self.step
    }

    pub fn collection_name(&self) -> &str {
        self.store.collection_name()
    }

    /// The lock document and the server's clock, read together.
    pub fn read(&self) -> Result<Option<(LockRecord, DateTime<Utc>)>> {
        self.store.read(&self.key)
    }

    /// The live holder (taken and not expired in server time), if any.
    pub fn current(&self) -> Result<Option<LockInfo>> {
        self.store.current(&self.key)
    }

    /// Takes the lock as `wait` says: the acquisition, or `None` when one
    /// attempt found it held or the timeout passed.
    pub fn acquire(
        self: &Arc<Self>,
        wait: Wait,
        step: Duration,
        force: bool,
    ) -> Result<Option<Arc<Tenure>>> {
        let enqueue = matches!(wait, Wait::For(_));
        self.call(step, force, enqueue, Option::is_some, |how, attempt| {
            waiting::acquire(how, wait, attempt)
        })
    }

    /// Takes the lock, waiting until it is granted.
    pub fn acquire_until_granted(
        self: &Arc<Self>,
        step: Duration,
        force: bool,
    ) -> Result<Arc<Tenure>> {
        self.call(
            step,
            force,
            true,
            |_| true,
            |how, attempt| waiting::until_granted(how, attempt),
        )
    }

    /// One acquire call: its attempts waited for as `wait` runs them, and
    /// what they left taken back when the answer (`granted` tells) hands
    /// out nothing. A fair locker's unforced attempts are fair ones; with
    /// `enqueue` (a call that waits) they queue, and a call that ends
    /// without the grant leaves the queue.
    fn call<R>(
        self: &Arc<Self>,
        step: Duration,
        force: bool,
        enqueue: bool,
        granted: fn(&R) -> bool,
        wait: impl FnOnce(&Waiting<'_>, &mut dyn FnMut() -> Result<Attempt<Arc<Tenure>>>) -> Result<R>,
    ) -> Result<R> {
        self.refuse_if_held()?;
        let hub = || self.hub();
        // A token of this call, written into the document by its attempts
        // (the `run` field), so that its take-back frees only what one of
        // them took, never a later call's acquisition; in a fair call's
        // queue entry too, which a release hands the lock to.
        let call = uuid::Uuid::new_v4().to_string();
        let fair = self.fair.filter(|_| !force).map(|waiter_lease| Fair {
            call: &call,
            waiter_lease,
            enqueue,
        });
        let nearby = Cell::new(false);
        let handed = HandoverSlot::default();
        let seen = Cell::new(u64::MAX);
        let queue = fair.filter(|f| f.enqueue).map(|f| Queued {
            call: f.call,
            refresh: f.waiter_lease / 3,
            nearby: &nearby,
            handed: &handed,
        });
        // Unforced attempts on one key get one answer (taken or refused),
        // whichever locker of the process makes them: one per change does.
        // The grace is part of it: it decides when a holder has expired.
        // A fair waiter's answer is its own (its place in the queue).
        let alike =
            (!force && queue.is_none()).then(|| format!("lock, grace {:?}", self.store.grace()));
        let how = Waiting {
            key: &self.key,
            step,
            grace: self.store.grace(),
            hub: &hub,
            alike: alike.as_deref(),
            exclusive: true,
            queue,
        };
        // Whether the lock document may name this call for an attempt
        // whose answer was lost or came too late.
        let mut left = false;
        let started = std::time::Instant::now();
        let result = wait(&how, &mut || {
            self.clock.check_if_due(&self.store)?;
            let answer = Answers {
                nearby: &nearby,
                handed: &handed,
                seen: &seen,
            };
            self.attempt(force, &call, fair.as_ref(), answer, &mut left)
        });
        let won = result.as_ref().is_ok_and(granted);
        if won {
            self.meter.acquired(started.elapsed());
        } else if queue.is_some() || left {
            // A queued call's entry may be in the queue, and the lock may
            // have been handed to it: both go now, not at the waiter
            // lease's end.
            self.give_back(&call, queue.is_some());
        }
        result
    }

    /// Gives back what call `call` may have left behind without handing
    /// it out, so others need not wait for it to lapse. Queued, its entry
    /// leaves the queue, and the lock goes too if it was handed to the
    /// call meanwhile (or an attempt's lost answer granted it): one round
    /// trip, two when it was. Otherwise what an attempt took and did not
    /// hand out is released as a release of this locker would (the hold,
    /// an unreleased earlier lease): one round trip (two,
    /// Python-compatible, when it was not there). Best effort.
    fn give_back(&self, call: &str, queued: bool) {
        let _op = self.op.lock();
        let until = *self.unreleased_until.lock();
        let (name, lapses) = if queued {
            ("leave_queue", "the entry lapses with its waiter lease")
        } else {
            ("take_back", "it expires after ttl + grace")
        };
        let given = meter::timed(&self.meter, name, || {
            if queued {
                self.store
                    .leave_queue(&self.key, &self.owner.uuid, call, until)
            } else {
                let attempts = Whose::Run(&self.owner.uuid, call);
                self.store
                    .release_holding(&self.key, attempts, self.hold, until)
                    .map(drop)
            }
        });
        if let Err(e) = given {
            log::debug!(
                "`{}`: {name} of an ungranted call failed ({lapses}): {e}",
                self.key
            );
        }
    }

    pub(super) fn refuse_if_held(&self) -> Result<()> {
        let mut held = self.held.lock();
        let now = Moment::now();
        match held.as_ref() {
            Some(t) if t.valid_at(now) => Err(Error::AlreadyHeld {
                key: self.key.clone(),
                fence: t.fence(),
            }),
            // Ended, or past its local deadline: stale, a new acquisition
            // may replace it (ending it first, if the deadline thread has
            // not yet).
            Some(t) => {
                t.expire_at(now);
                // Not released by its holder: until its server expiry a
                // write of its may still be on its way.
                let expires = t.lease().expires;
                let mut until = self.unreleased_until.lock();
                *until = Some(until.map_or(expires, |u| u.max(expires)));
                *held = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The change stream hub to wait on, unless change streams are off.
    /// Only the waiter's `Interest` keeps it: it closes when nobody waits.
    fn hub(&self) -> Option<Arc<Hub>> {
        self.change_streams.then(|| self.store.hub())
    }

    /// Releases this locker's acquisition; when `fence` is given, only if it
    /// is that acquisition. With a hold, the lock stays unavailable to
    /// others until its acquisition time plus the hold.
    pub fn release_fence(&self, fence: Option<i64>) -> Result<bool> {
        let _op = self.op.lock();
        let Some(tenure) = self.take_if(fence) else {
            return Ok(false);
        };
        tenure.release();
        let until = *self.unreleased_until.lock();
        meter::timed(&self.meter, "release", || {
            self.store.release_holding(
                &self.key,
                Whose::Acquisition(&self.owner.uuid, tenure.fence()),
                self.hold,
                until,
            )
        })
    }

    /// Frees the lock whoever holds it (at once, whatever the hold),
    /// forgetting this locker's acquisition.
    pub fn release_anyone(&self) -> Result<bool> {
        let _op = self.op.lock();
        self.attempts_sent.fetch_add(1, Ordering::Relaxed);
        if let Some(tenure) = self.held.lock().take() {
            tenure.release();
        }
        self.store.release(&self.key, Whose::Anyone)
    }

    fn take_if(&self, fence: Option<i64>) -> Option<Arc<Tenure>> {
        let mut held = self.held.lock();
        match (held.as_ref(), fence) {
            (Some(t), Some(f)) if t.fence() != f => None,
            _ => held.take(),
        }
    }

    /// Renews this locker's acquisition (when `fence` is given, only if it
    /// is that one): the new expiry, or `None` when it no longer holds it
    /// (then it forgets it, and a live acquisition is lost: `TakenOver`).
    /// An acquisition already lost is not renewed (no I/O).
    pub fn touch_fence(&self, fence: Option<i64>) -> Result<Option<DateTime<Utc>>> {
        let _op = self.op.lock();
        let Some(tenure) = self.held.lock().clone() else {
            return Ok(None);
        };
        if fence.is_some_and(|f| f != tenure.fence()) || !tenure.valid_at(Moment::now()) {
            return Ok(None);
        }
        let sent = Moment::now();
        let renewed = meter::timed(&self.meter, "touch", || {
            self.store
                .touch(&self.key, &self.owner.uuid, tenure.fence(), self.ttl)
        })?;
        match renewed {
            // Its deadline passed before the answer came: lost.
            Some(expires) => Ok(grants::renewed(&tenure, expires, sent, self.ttl)),
            None => {
                tenure.lose(LossReason::TakenOver);
                let mut held = self.held.lock();
                if held.as_ref().is_some_and(|t| Arc::ptr_eq(t, &tenure)) {
                    *held = None;
                }
                Ok(None)
            }
        }
    }
}

impl Holder for LockCore {
    fn key(&self) -> &str {
        &self.key
    }

    fn touch_fence(&self, fence: i64) -> Result<Option<DateTime<Utc>>> {
        LockCore::touch_fence(self, Some(fence))
    }

    fn release_fence(&self, fence: i64) -> Result<bool> {
        LockCore::release_fence(self, Some(fence))
    }
}

impl Renew for LockCore {
    fn renew(&self, fence: i64) -> Option<Moment> {
        let tenure = self.held.lock().clone()?;
        if tenure.fence() != fence {
            return None;
        }
        keepalive::renew_step(
            &tenure,
            self.ttl,
            format_args!("lock `{}` (fence {fence})", self.key),
            || {
                let renewed = self.touch_fence(Some(fence));
                if renewed.is_err() {
                    self.meter.renewal_failed();
                }
                renewed
            },
        )
    }
}
