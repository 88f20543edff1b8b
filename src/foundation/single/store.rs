//! Every database call of a lock and an election, one round trip each:
//! acquire (with the Python-compatible fence floor), touch, release, read.
//! Majority writes and primary reads ([`safe_collection`]); the pipelines
//! are in [`super::pipeline`], built once per store and cloned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::sync::{Collection, Database};
use parking_lot::Mutex;

use crate::error::Result;
use crate::foundation::clock::ServerClock;
use crate::foundation::deployment::Deployment;
use crate::foundation::document::{LockInfo, Reader, FENCE, ID, TS_EXPIRE, TS_RELEASED, UUID};
use crate::foundation::expr::unexpired;
use crate::foundation::kind::Kind;
use crate::foundation::moment::Moment;
use crate::foundation::owner::Owner;
use crate::foundation::round_trips::{
    self, read_with_server_now, safe_collection, server_clock, upsert_after,
};
use crate::foundation::single::document::{parse_lock, LockRecord, LOCKED};
use crate::foundation::single::pipeline::{
    acquire_pipeline, release_filter, release_pipeline, set_run, touch_pipeline, Whose,
};
use crate::foundation::single::queue::RELEASED_LIVE;
use crate::foundation::single::store_cache::{CachedAcquire, Memo};
use crate::foundation::watch::Hub;

/// The `_id` of the document that keeps `key`'s fence floor in the
/// Python-compatible mode (see [`LockStore::register_fence`]).
pub(crate) fn fence_floor_id(key: &str) -> Document {
    doc! { "fence_floor": key }
}

/// A lock collection and the operations on one of its documents.
#[derive(Debug)]
pub(crate) struct LockStore {
    /// The database handle, standing for its deployment: what is done once
    /// per deployment and collection is shared through it.
    deployment: Arc<Deployment>,
    pub(super) coll: Collection<Document>,
    /// How long past its expiry a lock must be before it is taken over.
    pub(super) grace: Duration,
    /// Release by deleting the document, as the Python package does, so
    /// that its nodes (which take a lock only by inserting it) can take it.
    python_compatible: bool,
    /// Set once this store's first-use checks passed (the deployment's
    /// record of it is never withdrawn): later calls skip its lookup.
    checked: AtomicBool,
    /// The last acquire pipeline built and what it was built from. A
    /// store's owner sends the same pipeline at every attempt, so it is
    /// built once and cloned (building it cost more than the clone).
    acquire_cache: Mutex<Option<CachedAcquire>>,
    /// The touch update for a ttl, and the release update for a hold:
    /// the same at every call of one locker or elector, so built once.
    touch_cache: Memo<Duration, Vec<Document>>,
    release_cache: Memo<(Duration, Option<i64>), Vec<Document>>,
    /// The touch filter's condition (the lease unexpired in server time).
    unexpired: Document,
}

impl LockStore {
    pub fn new(db: &Database, collection: &str, grace: Duration) -> Self {
        LockStore {
            deployment: Deployment::of(db),
            coll: safe_collection(db, collection),
            grace,
            python_compatible: false,
            checked: AtomicBool::new(false),
            acquire_cache: Mutex::new(None),
            touch_cache: Memo::default(),
            release_cache: Memo::default(),
            unexpired: unexpired(TS_EXPIRE),
        }
    }

    /// With `on`, releases delete the lock document (see
    /// [`release_holding`](Self::release_holding)) and the first-use check
    /// expects the Python package's TTL index instead of warning about it.
    pub fn python_compatible(mut self, on: bool) -> Self {
        self.python_compatible = on;
        self
    }

    /// How long past its expiry a lock must be before it is taken over.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The first-use checks, until they pass once for this deployment and
    /// collection, whichever store of the process runs them (an
    /// unreachable server fails them and they run again next time).
    pub(super) fn check_once(&self) -> Result<()> {
        if self.checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        round_trips::check_once(&self.deployment, &self.coll, self.python_compatible)?;
        self.checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// [`acquire_pipeline`] for these arguments: built without a run once
    /// for the same other arguments, and cloned with `run` written in (a
    /// locker's run is a token of one call, new at every call).
    fn acquire_update(
        &self,
        owner: &Owner,
        run: Option<&str>,
        ttl: Duration,
        force: bool,
    ) -> Vec<Document> {
        let mut pipeline = {
            let mut cache = self.acquire_cache.lock();
            match cache.as_ref() {
                Some(cached) if cached.built_from(owner, ttl, force) => cached.pipeline.clone(),
                _ => {
                    let pipeline = acquire_pipeline(owner, None, ttl, force, self.grace);
                    *cache = Some(CachedAcquire {
                        owner: owner.clone(),
                        ttl,
                        force,
                        pipeline: pipeline.clone(),
                    });
                    pipeline
                }
            }
        };
        if let Some(run) = run {
            set_run(&mut pipeline, run);
        }
        pipeline
    }

    pub fn collection_name(&self) -> &str {
        self.coll.name()
    }

    /// The process's change stream hub for this deployment and collection
    /// (its stream opens when a waiter registers).
    pub fn hub(&self) -> Arc<Hub> {
        Hub::for_collection(&self.deployment, self.coll.name())
    }

    /// The hub, only if it exists now (something waits on it, or its
    /// stream lingers after the last waiter).
    pub fn existing_hub(&self) -> Option<Arc<Hub>> {
        Hub::existing(&self.deployment, self.coll.name())
    }

    /// A stored lock document, parsed; another primitive's is
    /// [`Error::WrongKind`](crate::Error::WrongKind).
    pub(super) fn parse(&self, doc: &Document) -> Result<LockRecord> {
        Kind::Lock.check(doc, self.coll.name())?;
        parse_lock(doc, self.coll.name())
    }

    /// One acquire attempt: the lock document after the attempt, which says
    /// whether `owner` won. `None` only when a lost insert race left no
    /// answer even after [`RACE_RETRIES`] immediate retries.
    ///
    /// Python-compatible, an acquisition's fence is also registered with
    /// the key's fence floor (see [`register_fence`](Self::register_fence)):
    /// one more round trip, two when the floor was ahead.
    pub fn try_acquire(
        &self,
        key: &str,
        owner: &Owner,
        run: Option<&str>,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<LockRecord>> {
        self.check_once()?;
        let record = upsert_after(&self.coll, key, || {
            self.acquire_update(owner, run, ttl, force)
        })?
        .map(|doc| self.parse(&doc))
        .transpose()?;
        match record {
            Some(LockRecord::Taken(info)) if self.python_compatible && info.uuid == owner.uuid => {
                self.register_fence(key, info)
            }
            other => Ok(other),
        }
    }

    /// Makes acquisition `info`'s fence greater than every fence handed
    /// out on `key` before, whatever deleted the lock document since.
    ///
    /// The Python-compatible release deletes the document (the Python
    /// package takes a lock only by inserting it), and with it the fence
    /// counter: the next acquisition's fence then starts from the server's
    /// clock ([`next_fence`]), which two acquisitions in one millisecond on
    /// each side of the delete share, and which an acquisition whose
    /// `$$NOW` was read before it waited for the document can undercut. So
    /// every acquisition of this mode raises the key's floor, kept in a
    /// document of its own that nothing deletes (`_id: {fence_floor: key}`,
    /// never a string, so never a key), to more than its old value, and
    /// takes that as its fence: one round trip, and a second that moves
    /// the lock document's fence when the floor was ahead of it. `None`
    /// when the lock was taken over in between (not acquired).
    fn register_fence(&self, key: &str, mut info: LockInfo) -> Result<Option<LockRecord>> {
        let raised = vec![doc! { "$set": { FENCE: { "$max": [
            { "$add": [{ "$ifNull": [format!("${FENCE}"), 0_i64] }, 1_i64] },
            info.fence,
        ]}}}];
        // No answer (a lost race to create the floor, three times over):
        // not registered, so not acquired; the call takes it back.
        let Some(floor) = upsert_after(&self.coll, fence_floor_id(key), || raised.clone())? else {
            return Ok(None);
        };
        let floor = Reader::new(&floor, self.coll.name()).int(FENCE)?;
        if floor == info.fence {
            return Ok(Some(LockRecord::Taken(info)));
        }
        let ours = doc! { ID: key, UUID: &info.uuid, FENCE: info.fence, LOCKED: true };
        let moved = self
            .coll
            .update_one(ours, doc! { "$set": { FENCE: floor } })
            .run()?;
        if moved.matched_count == 0 {
            return Ok(None);
        }
        info.fence = floor;
        Ok(Some(LockRecord::Taken(info)))
    }

    /// Extends the lease of acquisition (`uuid`, `fence`) to `$$NOW + ttl`,
    /// if it still holds the lock. Returns the new expiry.
    pub fn touch(
        &self,
        key: &str,
        uuid: &str,
        fence: i64,
        ttl: Duration,
    ) -> Result<Option<DateTime<Utc>>> {
        let filter = doc! {
            ID: key, UUID: uuid, FENCE: fence, LOCKED: true, "$expr": self.unexpired.clone()
        };
        let update = self.touch_cache.get(ttl, touch_pipeline);
        let after = self
            .coll
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .run()?;
        after
            .map(|doc| Reader::new(&doc, self.coll.name()).date(TS_EXPIRE))
            .transpose()
    }

    /// Marks the lock free if `whose` holds it. True when the lock was held
    /// (taken and not expired) at the moment it was freed.
    pub fn release(&self, key: &str, whose: Whose<'_>) -> Result<bool> {
        self.release_holding(key, whose, Duration::ZERO, None)
    }

    /// As [`release`](Self::release), but with a `hold` a live lock stays
    /// taken until `ts_created + hold`, and with `until` until then (see
    /// [`release_pipeline`]).
    ///
    /// Python-compatible, the freed document is deleted instead of kept
    /// (see [`release_by_deleting`](Self::release_by_deleting)).
    pub fn release_holding(
        &self,
        key: &str,
        whose: Whose<'_>,
        hold: Duration,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let filter = release_filter(key, whose);
        let until = until.map(|at| at.timestamp_millis());
        if self.python_compatible && hold.is_zero() && until.is_none() {
            return self.release_by_deleting(filter);
        }
        let held = self.release_in_place(key, filter, (hold, until))?;
        if self.python_compatible {
            // Kept for a hold, it stays (and the Python nodes wait for its
            // expiry and their TTL index); freed, it goes. Only a free
            // document is deleted: one taken since is someone else's.
            self.coll
                .delete_one(doc! { ID: key, LOCKED: false })
                .run()?;
        }
        Ok(held)
    }

    /// The Python-compatible release: the Python package takes a lock only
    /// by inserting its document, so a kept free document would block its
    /// nodes until their TTL index removed it (up to a minute after its
    /// expiry). Deleting is safe for fencing: every acquisition of this
    /// mode takes its fence from the key's floor, which outlives the
    /// document ([`register_fence`](Self::register_fence)).
    ///
    /// One round trip when the lock was live (the answer is then `true`);
    /// a second one deletes an expired document of ours (answer `false`).
    fn release_by_deleting(&self, filter: Document) -> Result<bool> {
        let mut live = filter.clone();
        live.insert("$expr", self.unexpired.clone());
        if self.coll.find_one_and_delete(live).run()?.is_some() {
            return Ok(true);
        }
        self.coll.delete_one(filter).run()?;
        Ok(false)
    }

    /// The release that keeps the document (see [`release_pipeline`]).
    /// A lock handed over to a waiter of this process wakes it at once,
    /// before the change stream (if any) brings the change, and is its
    /// grant (see [`crate::foundation::handover`]).
    fn release_in_place(
        &self,
        key: &str,
        filter: Document,
        keep: (Duration, Option<i64>),
    ) -> Result<bool> {
        // The calls a handover grants their ttl: this process's waiters.
        let hub = self.existing_hub();
        let here = hub
            .as_ref()
            .map(|hub| hub.waiting_calls(key))
            .unwrap_or_default();
        let update = if here.is_empty() {
            self.release_cache.get(keep, |k| release_pipeline(k, &[]))
        } else {
            release_pipeline(keep, &here)
        };
        let sent = Moment::now();
        let Some(after) = self
            .coll
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .run()?
        else {
            return Ok(false);
        };
        let r = Reader::new(&after, self.coll.name());
        // Still locked: kept for a hold, or handed over; either says
        // whether the releaser's lease was live.
        if r.bool(LOCKED)? {
            if let Some(hub) = &hub {
                self.wake_handed(hub, &after, &here, sent);
            }
            return Ok(after.get_bool(RELEASED_LIVE).unwrap_or(true));
        }
        // A document released after its expiry was no longer held.
        Ok(match r.opt_date(TS_EXPIRE)? {
            Some(expires) => expires > r.date(TS_RELEASED)?,
            None => false,
        })
    }

    /// The lock document and the server's clock, read together from the
    /// primary with majority read concern. `None` when there is no document.
    pub fn read(&self, key: &str) -> Result<Option<(LockRecord, DateTime<Utc>)>> {
        self.check_once()?;
        read_with_server_now(&self.coll, key)?
            .map(|(doc, now)| Ok((self.parse(&doc)?, now)))
            .transpose()
    }

    /// The live holder (taken and not expired in server time), if any.
    pub fn current(&self, key: &str) -> Result<Option<LockInfo>> {
        Ok(self
            .read(key)?
            .and_then(|(record, now)| record.live_at(now)))
    }
}

impl ServerClock for LockStore {
    fn server_clock(&self) -> Result<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
        server_clock(self.deployment.database())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_acquire_pipeline_is_the_one_its_arguments_build() {
        // Clients connect lazily: no server needed.
        let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/").unwrap();
        let grace = Duration::from_millis(150);
        let store = LockStore::new(&client.database("app"), "locks", grace);
        let owner = Owner::new();
        let ttl = Duration::from_secs(2);
        let fresh =
            |o: &Owner, run: Option<&str>, ttl, force| acquire_pipeline(o, run, ttl, force, grace);
        for _ in 0..2 {
            assert_eq!(
                store.acquire_update(&owner, None, ttl, false),
                fresh(&owner, None, ttl, false)
            );
        }
        // Any argument that differs rebuilds it.
        assert_eq!(
            store.acquire_update(&owner, Some("r1"), ttl, false),
            fresh(&owner, Some("r1"), ttl, false)
        );
        assert_eq!(
            store.acquire_update(&owner, Some("r2"), ttl, false),
            fresh(&owner, Some("r2"), ttl, false)
        );
        assert_eq!(
            store.acquire_update(&owner, Some("r2"), ttl, true),
            fresh(&owner, Some("r2"), ttl, true)
        );
        let longer = Duration::from_secs(3);
        assert_eq!(
            store.acquire_update(&owner, Some("r2"), longer, true),
            fresh(&owner, Some("r2"), longer, true)
        );
        let other = Owner::new();
        assert_eq!(
            store.acquire_update(&other, Some("r2"), longer, true),
            fresh(&other, Some("r2"), longer, true)
        );
        let with = other.clone().with_metadata(Some(doc! { "a": 1 }));
        assert_eq!(
            store.acquire_update(&with, Some("r2"), longer, true),
            fresh(&with, Some("r2"), longer, true)
        );
        // The touch and release updates are kept per ttl and hold.
        for ttl in [ttl, ttl, longer, ttl] {
            assert_eq!(
                store.touch_cache.get(ttl, touch_pipeline),
                touch_pipeline(ttl)
            );
            assert_eq!(
                store
                    .release_cache
                    .get((ttl, None), |k| release_pipeline(k, &[])),
                release_pipeline((ttl, None), &[])
            );
        }
        assert_eq!(
            store
                .release_cache
                .get((Duration::ZERO, None), |k| release_pipeline(k, &[])),
            release_pipeline((Duration::ZERO, None), &[])
        );
    }
}
