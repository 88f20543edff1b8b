//! Every database call a lock makes, one round trip each. The update
//! pipelines are built by pure functions so their shape can be unit-tested.
//!
//! Server time decides: every expiry is written as `$$NOW + ttl` and compared
//! with `$$NOW` (the expressions are in [`crate::foundation::expr`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{
    Acknowledgment, CollectionOptions, ReadConcern, ReadPreference, ReturnDocument,
    SelectionCriteria, WriteConcern,
};
use mongodb::sync::{Collection, Database};
use parking_lot::Mutex;

use crate::error::{is_duplicate_key, Result};
use crate::foundation::clock::ServerClock;
use crate::foundation::deployment::Deployment;
use crate::foundation::document::{
    parse_lock, server_now, LockInfo, LockRecord, Reader, FENCE, HOST, ID, LOCKED, METADATA, PID,
    RUN, SERVER_NOW, TS_CREATED, TS_EXPIRE, TS_RELEASED, UUID,
};
use crate::foundation::expr::{duration_ms, literal, millis, now_plus, unexpired};
use crate::foundation::kind::{Kind, KIND};
use crate::foundation::owner::Owner;
use crate::foundation::preflight;
use crate::foundation::watch::Hub;

/// Which holder a release may free.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Whose<'a> {
    /// Whoever holds the lock (a forced release).
    Anyone,
    /// Exactly this acquisition: owner identity and fence.
    Acquisition(&'a str, i64),
    /// Any acquisition of this owner identity made in one elector run, or
    /// in one acquire call of a locker (owner identity and run token).
    Run(&'a str, &'a str),
}

/// How often an acquire attempt is repeated at once after losing an insert
/// race (E11000, or the null answer some servers give the loser).
const RACE_RETRIES: usize = 3;

/// Majority, journaled writes; majority reads from the primary. Set on the
/// collection, whatever the caller's `Database` carries, so that a lock
/// write cannot be rolled back by a failover.
pub(crate) fn safe_collection(db: &Database, name: &str) -> Collection<Document> {
    let options = CollectionOptions::builder()
        .write_concern(majority_write())
        .read_concern(ReadConcern::majority())
        .selection_criteria(primary())
        .build();
    db.collection_with_options(name, options)
}

/// Majority, journaled: a write that a failover cannot roll back.
pub(crate) fn majority_write() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build()
}

/// Reads from the primary.
pub(crate) fn primary() -> SelectionCriteria {
    SelectionCriteria::ReadPreference(ReadPreference::Primary)
}

/// The condition under which an acquire takes the lock, evaluated by the
/// server on the document as it was (or on `{_id}` when there is none, whose
/// missing fields read as free):
///
/// fence well-formed AND a lock's document AND (force OR (shape well-formed AND (free OR expired OR already mine)))
///
/// where expired means `ts_expire + grace <= $$NOW`: the takeover grace
/// covers a primary whose clock is ahead of the one that wrote the expiry
/// (a failover, an NTP step).
///
/// A malformed document is never taken (except that `force` ignores all but
/// the fence, which it must increment); it comes back unchanged and the
/// caller reports it.
pub(crate) fn take_condition(uuid: &str, force: bool, grace: Duration) -> Document {
    let field = |f: &str| format!("${f}");
    let type_in = |f: &str, types: &[&str]| doc! { "$in": [{ "$type": field(f) }, types.to_vec()] };
    let fence_ok = doc! { "$and": [
        type_in(FENCE, &["missing", "int", "long"]),
        { "$gte": [{ "$ifNull": [field(FENCE), 0_i64] }, 0_i64] },
    ]};
    let shape_ok = doc! { "$and": [
        type_in(LOCKED, &["missing", "bool"]),
        type_in(TS_EXPIRE, &["missing", "date"]),
    ]};
    let free = doc! { "$ne": [field(LOCKED), true] };
    let expired = doc! { "$and": [
        { "$eq": [{ "$type": field(TS_EXPIRE) }, "date"] },
        { "$lte": [{ "$add": [millis(field(TS_EXPIRE)), duration_ms(grace)] }, millis("$$NOW")] },
    ]};
    let mine = doc! { "$eq": [field(UUID), literal(uuid)] };
    // Another primitive's document is never taken, forced or not.
    doc! { "$and": [
        fence_ok,
        Kind::Lock.fits(),
        { "$or": [force, { "$and": [shape_ok, { "$or": [free, expired, mine] }] }] },
    ]}
}

/// The filter that matches the lock only while `whose` holds it.
fn release_filter(key: &str, whose: Whose<'_>) -> Document {
    let mut filter = doc! { ID: key, LOCKED: true };
    match whose {
        Whose::Anyone => {}
        Whose::Acquisition(uuid, fence) => {
            filter.insert(UUID, uuid);
            filter.insert(FENCE, fence);
        }
        Whose::Run(uuid, run) => {
            filter.insert(UUID, uuid);
            filter.insert(RUN, run);
        }
    }
    filter
}

/// The acquire pipeline: every field becomes ours when [`take_condition`]
/// holds, and the document stays as it was otherwise.
///
/// One `$replaceWith` stage picks between the document with our fields
/// merged in and the document as it was, so the server evaluates the
/// condition once per attempt. (A `$set` stage with one `$cond` per field
/// evaluated it seven times: on SecantusDB an attempt on a held lock cost
/// 4.4 times a plain `find_one_and_update`, and 1.4 times with one
/// evaluation; see the README's Performance section.)
pub(crate) fn acquire_pipeline(
    owner: &Owner,
    run: Option<&str>,
    ttl: Duration,
    force: bool,
    grace: Duration,
) -> Vec<Document> {
    let next_fence = next_fence();
    let ours = doc! {
        KIND: Kind::Lock.name(),
        LOCKED: true,
        UUID: literal(&owner.uuid),
        HOST: literal(&owner.host),
        PID: i64::from(owner.pid),
        TS_CREATED: "$$NOW",
        TS_EXPIRE: now_plus(ttl),
        FENCE: next_fence,
        RUN: run.map(literal),
        // Set (null when absent) so a holder without metadata never shows
        // its predecessor's; a literal, so strings starting with `$` in
        // the user's document stay strings.
        METADATA: owner.metadata.clone().map(|m| doc! { "$literal": m }),
    };
    vec![doc! { "$replaceWith": { "$cond": [
        take_condition(&owner.uuid, force, grace),
        { "$mergeObjects": ["$$ROOT", ours] },
        "$$ROOT",
    ]}}]
}

/// Writes `run` into an acquire pipeline built without one: the same
/// pipeline as [`acquire_pipeline`] with that run.
fn set_run(pipeline: &mut [Document], run: &str) {
    let ours = pipeline
        .first_mut()
        .and_then(|stage| stage.get_document_mut("$replaceWith").ok())
        .and_then(|with| with.get_array_mut("$cond").ok())
        .and_then(|cond| cond.get_mut(1))
        .and_then(Bson::as_document_mut)
        .and_then(|merge| merge.get_array_mut("$mergeObjects").ok())
        .and_then(|merge| merge.get_mut(1))
        .and_then(Bson::as_document_mut);
    if let Some(ours) = ours {
        ours.insert(RUN, literal(run));
    }
}

/// The release update. Without a `hold` (or `until`) it marks the lock
/// free. With one, a lock that is still live (unexpired in server time)
/// and was acquired less than `hold` ago stays taken by its releaser until
/// `ts_created + hold`: `ts_expire` becomes that instant, so other lockers
/// take it only after it (plus the takeover grace), and every read says it
/// is held until then. `until` (server milliseconds) keeps it taken until
/// then the same way, whatever the hold: the server expiry of an earlier
/// acquisition of the releaser's that ended without a release (its holder
/// may still have a write on its way until then). Otherwise it is marked
/// free. Either way `ts_released` records the release, in server time.
pub(crate) fn release_pipeline((hold, until): (Duration, Option<i64>)) -> Vec<Document> {
    let mut ends = Vec::new();
    if !hold.is_zero() {
        ends.push(Bson::Document(
            doc! { "$add": [millis(format!("${TS_CREATED}")), duration_ms(hold)] },
        ));
    }
    if let Some(ms) = until {
        ends.push(Bson::Int64(ms));
    }
    let until = match ends.len() {
        0 => return vec![doc! { "$set": { LOCKED: false, TS_RELEASED: "$$NOW" } }],
        1 => ends.remove(0),
        _ => Bson::Document(doc! { "$max": ends }),
    };
    let keep = doc! { "$and": [
        unexpired(TS_EXPIRE),
        { "$gt": [until.clone(), millis("$$NOW")] },
    ]};
    vec![
        doc! { "$set": { "_hold": keep } },
        doc! { "$set": {
            LOCKED: "$_hold",
            TS_EXPIRE: { "$cond": ["$_hold", { "$toDate": until }, format!("${TS_EXPIRE}")] },
            TS_RELEASED: "$$NOW",
        }},
        doc! { "$unset": "_hold" },
    ]
}

/// The touch update: the expiry becomes `$$NOW + ttl`.
pub(crate) fn touch_pipeline(ttl: Duration) -> Vec<Document> {
    vec![doc! { "$set": { TS_EXPIRE: now_plus(ttl) } }]
}

/// How many fence values one millisecond of the server's clock is worth:
/// the fence floor is the server's time in microseconds.
pub(crate) const FENCES_PER_MS: i64 = 1000;

/// The next fence: one more than the stored one, and at least the server's
/// clock in microseconds (`$$NOW` times [`FENCES_PER_MS`]). The floor keeps
/// fences growing when the document was deleted (a TTL index, an operator,
/// another client's delete): a new document's first fence is still greater
/// than every fence handed out before, unless the primary's clock went back
/// by more than the time since that fence was issued, or more than
/// 1,000 acquisitions a millisecond were sustained on the key.
pub(crate) fn next_fence() -> Document {
    doc! { "$max": [
        { "$add": [{ "$toLong": { "$ifNull": [format!("${FENCE}"), 0_i64] } }, 1_i64] },
        { "$multiply": [millis("$$NOW"), FENCES_PER_MS] },
    ]}
}

/// The `_id` of the document that keeps `key`'s fence floor in the
/// Python-compatible mode (see [`LockStore::register_fence`]).
pub(crate) fn fence_floor_id(key: &str) -> Document {
    doc! { "fence_floor": key }
}

/// The first-use checks of `coll`, until they pass once for this
/// deployment and collection, whichever store of the process runs them (an
/// unreachable server fails them and they run again next time).
pub(crate) fn check_once(
    deployment: &Deployment,
    coll: &Collection<Document>,
    python_compatible: bool,
) -> Result<()> {
    let name = coll.name();
    if deployment.checked(name) {
        return Ok(());
    }
    preflight::check(deployment.database(), coll, python_compatible)?;
    deployment.mark_checked(name);
    Ok(())
}

/// One conditional upsert of `key`'s document by the pipeline that
/// `pipeline` gives (once per attempt: the driver takes it by value): the document
/// after it. `None` only when a lost insert race left no answer even after
/// [`RACE_RETRIES`] immediate retries (E11000, or the null answer some
/// servers give the loser): the caller reads that as "not granted".
pub(crate) fn upsert_after(
    coll: &Collection<Document>,
    key: impl Into<mongodb::bson::Bson>,
    mut pipeline: impl FnMut() -> Vec<Document>,
) -> Result<Option<Document>> {
    let key = key.into();
    for attempt in 1..=RACE_RETRIES {
        let result = coll
            .find_one_and_update(doc! { ID: key.clone() }, pipeline())
            .upsert(true)
            .return_document(ReturnDocument::After)
            .run();
        match result {
            Ok(Some(doc)) => return Ok(Some(doc)),
            // Lost the race to create the document: it exists now, look again.
            Ok(None) => log::debug!("acquire `{key}`: empty answer (attempt {attempt})"),
            Err(e) if is_duplicate_key(&e) => {
                log::debug!("acquire `{key}`: E11000 (attempt {attempt})")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// `key`'s document with the server's clock (`$$NOW`), read together in
/// one round trip: `None` when there is no document.
pub(crate) fn read_with_server_now(
    coll: &Collection<Document>,
    key: &str,
) -> Result<Option<(Document, DateTime<Utc>)>> {
    let pipeline = vec![
        doc! { "$match": { ID: key } },
        doc! { "$addFields": { SERVER_NOW: "$$NOW" } },
    ];
    let mut cursor = coll.aggregate(pipeline).run()?;
    let Some(doc) = cursor.next().transpose()? else {
        return Ok(None);
    };
    let now = server_now(&doc, coll.name())?;
    Ok(Some((doc, now)))
}

/// The server's clock from `hello` on the primary, with the local wall
/// clock just before and after asking.
pub(crate) fn server_clock(db: &Database) -> Result<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
    let before = Utc::now();
    let started = Instant::now();
    let reply = db
        .run_command(doc! { "hello": 1 })
        .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        .run()?;
    let after = before + started.elapsed();
    let server = Reader::new(&reply, "$cmd").date("localTime")?;
    Ok((before, after, server))
}

/// A lock collection and the operations on one of its documents.
#[derive(Debug)]
pub(crate) struct LockStore {
    /// The database handle, standing for its deployment: what is done once
    /// per deployment and collection is shared through it.
    deployment: Arc<Deployment>,
    coll: Collection<Document>,
    /// How long past its expiry a lock must be before it is taken over.
    grace: Duration,
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

/// A value built from a key, kept until it is asked for with another key.
#[derive(Debug, Default)]
struct Memo<K, V>(Mutex<Option<(K, V)>>);

impl<K: PartialEq + Copy, V: Clone> Memo<K, V> {
    fn get(&self, key: K, build: impl FnOnce(K) -> V) -> V {
        let mut memo = self.0.lock();
        match memo.as_ref() {
            Some((k, v)) if *k == key => v.clone(),
            _ => {
                let v = build(key);
                *memo = Some((key, v.clone()));
                v
            }
        }
    }
}

/// An acquire pipeline (without a run) and the arguments it was built from.
#[derive(Debug)]
struct CachedAcquire {
    owner: Owner,
    ttl: Duration,
    force: bool,
    pipeline: Vec<Document>,
}

impl CachedAcquire {
    fn built_from(&self, owner: &Owner, ttl: Duration, force: bool) -> bool {
        self.ttl == ttl
            && self.force == force
            && self.owner.uuid == owner.uuid
            && self.owner.pid == owner.pid
            && self.owner.host == owner.host
            && self.owner.metadata == owner.metadata
    }
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
    fn check_once(&self) -> Result<()> {
        if self.checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        check_once(&self.deployment, &self.coll, self.python_compatible)?;
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
    fn parse(&self, doc: &Document) -> Result<LockRecord> {
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
        let held = self.release_in_place(filter, (hold, until))?;
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
    fn release_in_place(&self, filter: Document, keep: (Duration, Option<i64>)) -> Result<bool> {
        let update = self.release_cache.get(keep, release_pipeline);
        let Some(after) = self
            .coll
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .run()?
        else {
            return Ok(false);
        };
        let r = Reader::new(&after, self.coll.name());
        // Still locked: kept for a hold, which only a live lock gets.
        if r.bool(LOCKED)? {
            return Ok(true);
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
    use mongodb::bson::Bson;

    #[test]
    fn pipeline_sets_every_field_from_one_condition() {
        let owner = Owner {
            uuid: "u1".into(),
            host: "h".into(),
            pid: 9,
            metadata: None,
        };
        let grace = Duration::from_millis(150);
        let pipeline = acquire_pipeline(&owner, None, Duration::from_millis(1500), false, grace);
        assert_eq!(pipeline.len(), 1);
        let cond = pipeline[0]
            .get_document("$replaceWith")
            .unwrap()
            .get_array("$cond")
            .unwrap();
        // The condition appears once: the server evaluates it once.
        assert_eq!(cond[0], Bson::Document(take_condition("u1", false, grace)));
        assert_eq!(cond[2], Bson::String("$$ROOT".into()), "else: unchanged");
        let merge = cond[1]
            .as_document()
            .unwrap()
            .get_array("$mergeObjects")
            .unwrap();
        assert_eq!(merge[0], Bson::String("$$ROOT".into()));
        let set = merge[1].as_document().unwrap();
        let fields: Vec<&str> = set.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [KIND, LOCKED, UUID, HOST, PID, TS_CREATED, TS_EXPIRE, FENCE, RUN, METADATA]
        );
        assert_eq!(set.get(METADATA), Some(&Bson::Null), "absent: null");
        let with = Owner {
            metadata: Some(doc! { "a": "$b" }),
            ..owner.clone()
        };
        let pipeline = acquire_pipeline(&with, None, Duration::from_millis(1500), false, grace);
        let meta = pipeline[0]
            .get_document("$replaceWith")
            .unwrap()
            .get_array("$cond")
            .unwrap()[1]
            .as_document()
            .unwrap()
            .get_array("$mergeObjects")
            .unwrap()[1]
            .as_document()
            .unwrap()
            .get_document(METADATA)
            .unwrap()
            .clone();
        assert_eq!(meta, doc! { "$literal": { "a": "$b" } }, "a literal");
        assert_eq!(
            set.get(TS_EXPIRE).unwrap(),
            &Bson::Document(doc! { "$toDate": { "$add": [{ "$toLong": "$$NOW" }, 1500_i64] } })
        );
    }

    #[test]
    fn a_run_written_in_is_the_pipeline_built_with_it() {
        let owner = Owner::new();
        let grace = Duration::from_millis(150);
        let ttl = Duration::from_secs(2);
        let mut patched = acquire_pipeline(&owner, None, ttl, false, grace);
        set_run(&mut patched, "call-1");
        assert_eq!(
            patched,
            acquire_pipeline(&owner, Some("call-1"), ttl, false, grace)
        );
    }

    #[test]
    fn a_release_keeps_the_lock_until_an_unreleased_lease_ends() {
        let kept = release_pipeline((Duration::ZERO, Some(5_000)));
        let set = kept[1].get_document("$set").unwrap();
        assert_eq!(
            set.get_document(TS_EXPIRE)
                .unwrap()
                .get_array("$cond")
                .unwrap()[1],
            Bson::Document(doc! { "$toDate": 5_000_i64 })
        );
        // With a hold too: the later of the two.
        let both = release_pipeline((Duration::from_secs(2), Some(5_000)));
        let keep = both[0]
            .get_document("$set")
            .unwrap()
            .get_document("_hold")
            .unwrap();
        let until = &keep.get_array("$and").unwrap()[1]
            .as_document()
            .unwrap()
            .get_array("$gt")
            .unwrap()[0];
        assert_eq!(
            until,
            &Bson::Document(doc! { "$max": [
                { "$add": [{ "$toLong": "$ts_created" }, 2000_i64] },
                5_000_i64,
            ]})
        );
    }

    #[test]
    fn release_keeps_a_live_lock_until_the_hold_ends() {
        assert_eq!(
            release_pipeline((Duration::ZERO, None)),
            vec![doc! { "$set": { LOCKED: false, TS_RELEASED: "$$NOW" } }]
        );
        let held = release_pipeline((Duration::from_secs(2), None));
        assert_eq!(held.len(), 3);
        let keep = held[0]
            .get_document("$set")
            .unwrap()
            .get_document("_hold")
            .unwrap();
        let and = keep.get_array("$and").unwrap();
        assert_eq!(and[0], Bson::Document(unexpired(TS_EXPIRE)));
        assert_eq!(
            and[1],
            Bson::Document(doc! { "$gt": [
                { "$add": [{ "$toLong": "$ts_created" }, 2000_i64] },
                { "$toLong": "$$NOW" },
            ]})
        );
        assert_eq!(
            held[1].get_document("$set").unwrap().get_str(LOCKED),
            Ok("$_hold")
        );
        assert_eq!(held[2], doc! { "$unset": "_hold" });
    }

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
                store.release_cache.get((ttl, None), release_pipeline),
                release_pipeline((ttl, None))
            );
        }
        assert_eq!(
            store
                .release_cache
                .get((Duration::ZERO, None), release_pipeline),
            release_pipeline((Duration::ZERO, None))
        );
    }

    #[test]
    fn force_is_inside_the_fence_check() {
        let forced = take_condition("u", true, Duration::ZERO);
        let and = forced.get_array("$and").unwrap();
        assert_eq!(and.len(), 3, "fence check, kind check, then the rest");
        assert_eq!(
            and[1],
            Bson::Document(Kind::Lock.fits()),
            "force takes only a lock's"
        );
        let or = and[2].as_document().unwrap().get_array("$or").unwrap();
        assert_eq!(or[0], Bson::Boolean(true));
    }
}
