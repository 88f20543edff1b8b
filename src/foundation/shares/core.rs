//! [`ShareCore`]: one semaphore's or read-write lock's identity, settings
//! and the grants it holds (any number, one [`Tenure`] each, keyed by
//! fence), and every operation on them: the blocking acquire (the lock's
//! [`waiting`] loop around one grant round trip), touch and release by
//! fence, and the keep-alive's renewals ([`Renew`]). Shared through an
//! `Arc` by the public handle and its guards.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::Result;
use crate::foundation::clock::ClockCheck;
use crate::foundation::grants;
use crate::foundation::holding::Holder;
use crate::foundation::keepalive::{self, Renew};
use crate::foundation::kind::Kind;
use crate::foundation::loss::LossReason;
use crate::foundation::meter::{self, Meter, Primitive};
use crate::foundation::moment::Moment;
use crate::foundation::options::LeaseOptions;
use crate::foundation::owner::Owner;
use crate::foundation::shares::document::Shares;
use crate::foundation::shares::grant::{Ask, Grantee};
use crate::foundation::shares::store::ShareStore;
use crate::foundation::tenure::Tenure;
use crate::foundation::waiting::{self, Attempt, Wait, Waiting};

/// One grant this process holds: its token (the entry's `uuid`) and tenure.
#[derive(Debug)]
struct Grant {
    token: String,
    tenure: Arc<Tenure>,
}

/// A many-holder primitive's identity and grants.
#[derive(Debug)]
pub(crate) struct ShareCore {
    key: String,
    owner: Owner,
    ttl: Duration,
    step: Duration,
    store: ShareStore,
    clock: ClockCheck,
    change_streams: bool,
    keep_alive: bool,
    /// The grants held, by fence. Locked only briefly, never across I/O.
    held: Mutex<HashMap<i64, Grant>>,
    /// What it reports.
    meter: Meter,
}

impl ShareCore {
    /// A new identity of `kind` holding nothing, from its builder's
    /// options (checked here) and the kind's `default_collection`. No I/O.
    pub fn build(options: LeaseOptions, kind: Kind, default_collection: &str) -> Result<Self> {
        let collection = options.collection_or(default_collection);
        let grace = options.check(collection)?;
        let store = ShareStore::new(&options.db, collection, grace, kind);
        let primitive = match kind {
            Kind::Semaphore => Primitive::Semaphore,
            _ => Primitive::RwLock,
        };
        Ok(ShareCore {
            meter: Meter::new(primitive, &options.key),
            owner: options.owner(),
            ttl: options.ttl,
            step: options.step,
            store,
            clock: ClockCheck::new(options.timeparanoid),
            change_streams: options.change_streams,
            keep_alive: options.keep_alive,
            held: Mutex::new(HashMap::new()),
            key: options.key,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn collection_name(&self) -> &str {
        self.store.collection_name()
    }

    /// The takeover grace.
    pub fn grace(&self) -> Duration {
        self.store.grace()
    }

    /// The document and the server's clock (`None`: no document yet).
    pub fn read(&self) -> Result<Option<(Shares, DateTime<Utc>)>> {
        self.store.read(&self.key)
    }

    /// Takes a share (`ask`) as `wait` says: the grant, or `None` when one
    /// attempt was refused or the timeout passed.
    pub fn acquire(self: &Arc<Self>, ask: Ask, wait: Wait) -> Result<Option<Arc<Tenure>>> {
        self.call(ask, Option::is_some, |how, attempt| {
            waiting::acquire(how, wait, attempt)
        })
    }

    /// Takes a share (`ask`), waiting until it is granted.
    pub fn acquire_until_granted(self: &Arc<Self>, ask: Ask) -> Result<Arc<Tenure>> {
        self.call(
            ask,
            |_| true,
            |how, attempt| waiting::until_granted(how, attempt),
        )
    }

    /// One acquire call. A fresh token names the grant; every attempt of
    /// the call reuses it, so that a retry after a lost answer finds its
    /// own entry. When the answer (`granted` tells) hands out nothing, the
    /// call takes back (best effort, one round trip) what its attempts may
    /// have left: an entry whose answer was lost or came too late, a
    /// writer's intent.
    fn call<R>(
        self: &Arc<Self>,
        ask: Ask,
        granted: fn(&R) -> bool,
        wait: impl FnOnce(&Waiting<'_>, &mut dyn FnMut() -> Result<Attempt<Arc<Tenure>>>) -> Result<R>,
    ) -> Result<R> {
        let token = uuid::Uuid::new_v4().to_string();
        let hub = || self.change_streams.then(|| self.store.hub());
        // A permit of one count, or a read share, is refused alike to
        // every handle of the process that asks (the grace deciding which
        // holders still count): one refusal per change does. A grant may
        // leave room for the next, which then tries at once. A writer's
        // answer may be its own (its intent).
        let grace = self.store.grace();
        let alike = match ask {
            Ask::Permit { permits } => Some(format!("{permits} permits, grace {grace:?}")),
            Ask::Read => Some(format!("read, grace {grace:?}")),
            Ask::Write { .. } => None,
        };
        let how = Waiting {
            key: &self.key,
            step: self.step,
            grace,
            hub: &hub,
            alike: alike.as_deref(),
            exclusive: false,
            queue: None,
        };
        // Whether the document may hold something of this call's.
        let mut left = matches!(ask, Ask::Write { intent: true });
        let started = std::time::Instant::now();
        let result = wait(&how, &mut || {
            self.clock.check_if_due(&self.store)?;
            self.attempt(ask, &token, &mut left)
        });
        let won = result.as_ref().is_ok_and(granted);
        if won {
            self.meter.acquired(started.elapsed());
        } else if left {
            let taken_back = meter::timed(&self.meter, "take_back", || {
                self.store.take_back(&self.key, &token)
            });
            if let Err(e) = taken_back {
                log::debug!(
                    "`{}`: taking back an ungranted attempt failed (it expires after ttl + grace): {e}",
                    self.key
                );
            }
        }
        result
    }

    /// One grant round trip. Sets `left` when it may leave an entry of
    /// this grant that it does not hand out (its answer lost, too late, or
    /// a refusal that shows an earlier attempt's entry).
    fn attempt(
        self: &Arc<Self>,
        ask: Ask,
        token: &str,
        left: &mut bool,
    ) -> Result<Attempt<Arc<Tenure>>> {
        let attempt = uuid::Uuid::new_v4().to_string();
        let who = Grantee {
            token,
            attempt: &attempt,
            owner: &self.owner,
            ttl: self.ttl,
            grace: self.store.grace(),
        };
        let sent = Moment::now();
        let answer = meter::timed(&self.meter, "acquire", || {
            self.store.grant(&self.key, ask, &who)
        });
        // Until the answer says otherwise, the attempt may have been
        // applied (an error, or no answer after a lost insert race).
        let Ok(Some(shares)) = answer else {
            *left = true;
            return answer.map(|_| Attempt::Held { expires: None });
        };
        if let Ask::Permit { permits } = ask {
            shares.check_permits(permits)?;
        }
        // Only an entry this attempt added or renewed is a lease from
        // `sent`: a refusal returns the stored entries as they are, an
        // earlier attempt's entry of this grant included (its answer lost,
        // and perhaps dead by now).
        let Some(entry) = shares.granted(token, &attempt) else {
            *left |= shares.entry(token).is_some();
            self.meter.refused();
            return Ok(Attempt::Held {
                expires: shares.first_expiry(),
            });
        };
        let renew = self
            .keep_alive
            .then(|| Arc::downgrade(self) as Weak<dyn Renew>);
        let hold = |t: &Arc<Tenure>| {
            let grant = Grant {
                token: token.to_owned(),
                tenure: t.clone(),
            };
            self.held.lock().insert(t.fence(), grant);
        };
        let Some(tenure) = grants::start(
            entry.fence,
            entry.expires,
            sent,
            self.ttl,
            renew,
            &self.meter,
            hold,
        ) else {
            // The answer came after the lease's local deadline: the next
            // attempt (same token) renews the entry with a fresh lease.
            log::debug!("acquire `{}`: answer came too late to use", self.key);
            *left = true;
            return Ok(Attempt::Held { expires: None });
        };
        log::debug!("granted `{}` with fence {}", self.key, tenure.fence());
        Ok(Attempt::Won(tenure))
    }

    /// The grant `fence`'s token and tenure, if held.
    fn grant(&self, fence: i64) -> Option<(String, Arc<Tenure>)> {
        self.held
            .lock()
            .get(&fence)
            .map(|g| (g.token.clone(), g.tenure.clone()))
    }

    /// Forgets grant `fence` if it is still `tenure`.
    fn forget(&self, fence: i64, tenure: &Arc<Tenure>) {
        let mut held = self.held.lock();
        if held
            .get(&fence)
            .is_some_and(|g| Arc::ptr_eq(&g.tenure, tenure))
        {
            held.remove(&fence);
        }
    }

    /// Renews grant `fence`: its new expiry, or `None` when it is over (then
    /// it is forgotten, and a live one is lost: `TakenOver`). No I/O for a
    /// grant already ended or past its deadline.
    pub fn touch(&self, fence: i64) -> Result<Option<DateTime<Utc>>> {
        let Some((token, tenure)) = self.grant(fence) else {
            return Ok(None);
        };
        if !tenure.valid_at(Moment::now()) {
            return Ok(None);
        }
        let sent = Moment::now();
        let renewed = meter::timed(&self.meter, "touch", || {
            self.store.touch(&self.key, &token, fence, self.ttl)
        })?;
        match renewed {
            Some(expires) => Ok(grants::renewed(&tenure, expires, sent, self.ttl)),
            None => {
                tenure.lose(LossReason::TakenOver);
                self.forget(fence, &tenure);
                Ok(None)
            }
        }
    }

    /// Releases grant `fence`: true when the document still had it.
    pub fn release(&self, fence: i64) -> Result<bool> {
        let Some(grant) = self.held.lock().remove(&fence) else {
            return Ok(false);
        };
        grant.tenure.release();
        meter::timed(&self.meter, "release", || {
            self.store.release(&self.key, &grant.token, fence)
        })
    }
}

impl Holder for ShareCore {
    fn key(&self) -> &str {
        &self.key
    }

    fn touch_fence(&self, fence: i64) -> Result<Option<DateTime<Utc>>> {
        self.touch(fence)
    }

    fn release_fence(&self, fence: i64) -> Result<bool> {
        self.release(fence)
    }
}

impl Renew for ShareCore {
    fn renew(&self, fence: i64) -> Option<Moment> {
        let (_, tenure) = self.grant(fence)?;
        keepalive::renew_step(
            &tenure,
            self.ttl,
            format_args!("`{}` (fence {fence})", self.key),
            || {
                let renewed = self.touch(fence);
                if renewed.is_err() {
                    self.meter.renewal_failed();
                }
                renewed
            },
        )
    }
}
