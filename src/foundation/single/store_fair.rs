//! The fair queue's round trips of a lock store (see `store.rs`): the
//! fair attempt, leaving the queue, and telling a waiter of this process
//! that a release handed it the lock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;

use crate::error::Result;
use crate::foundation::document::{Reader, HOST, ID, PID, UUID};
use crate::foundation::handover::Handover;
use crate::foundation::moment::Moment;
use crate::foundation::owner::Owner;
use crate::foundation::round_trips::upsert_after;
use crate::foundation::single::document::{LockRecord, LOCKED, RUN};
use crate::foundation::single::pipeline::{fair_acquire, uncontended_fair_acquire, Whose};
use crate::foundation::single::queue::{leave_update, Fair, CALL, QUEUE};
use crate::foundation::single::store::LockStore;
use crate::foundation::watch::Hub;

/// A fair attempt's answer (see [`LockStore::try_acquire_fair`]).
#[derive(Debug)]
pub(crate) struct FairAnswer {
    /// The lock document after the attempt.
    pub record: LockRecord,
    /// Whether it is this call's grant.
    pub granted: bool,
    /// Whether the holder and every waiter ahead of the call are of this
    /// process (so only a release of this process can hand it the lock).
    pub nearby: bool,
    /// Whether the document queues anyone but the call (live or not).
    pub others_queued: bool,
}

/// The queue entries ahead of `call`'s in `doc`; `None` when it has none.
fn ahead_of<'d>(doc: &'d Document, call: &str) -> Option<Vec<&'d Document>> {
    let entries: Vec<&Document> = doc
        .get_array(QUEUE)
        .ok()?
        .iter()
        .filter_map(Bson::as_document)
        .collect();
    let place = entries.iter().position(|e| e.get_str(CALL) == Ok(call))?;
    Some(entries[..place].to_vec())
}

impl LockStore {
    /// One fair acquire attempt (see
    /// [`fair_acquire`](super::pipeline::fair_acquire)): granted only at
    /// the head of the key's live queue, or when it was handed to the
    /// call; refused, it queues as `fair` says. The lock document after
    /// the attempt, and whether it is this call's grant: only an answer
    /// that names the call (`run`) is. One naming the owner alone is not:
    /// a fair attempt refused at its turn leaves another call's (or a
    /// stale) acquisition of the same owner in place. Never
    /// Python-compatible (the builder turns fairness off there).
    pub fn try_acquire_fair(
        &self,
        key: &str,
        owner: &Owner,
        ttl: Duration,
        force: bool,
        fair: &Fair<'_>,
    ) -> Result<Option<FairAnswer>> {
        self.check_once()?;
        // Built per call: the call's token is in several places.
        upsert_after(&self.coll, key, || {
            fair_acquire(owner, ttl, force, self.grace, fair)
        })?
        .map(|doc| self.fair_answer(&doc, owner, fair.call))
        .transpose()
    }

    /// A fair attempt for a locker that saw nobody queue at its last
    /// grant (see [`uncontended_fair_acquire`]): granted to the call only
    /// when the key is free or expired and nobody queues; otherwise it
    /// changes nothing (the caller follows it with
    /// [`try_acquire_fair`](Self::try_acquire_fair)).
    pub fn try_acquire_uncontended(
        &self,
        key: &str,
        owner: &Owner,
        ttl: Duration,
        call: &str,
    ) -> Result<Option<FairAnswer>> {
        self.check_once()?;
        upsert_after(&self.coll, key, || {
            uncontended_fair_acquire(owner, call, ttl, self.grace)
        })?
        .map(|doc| self.fair_answer(&doc, owner, call))
        .transpose()
    }

    /// What a fair attempt's answer `doc` says to `owner`'s call `call`.
    fn fair_answer(&self, doc: &Document, owner: &Owner, call: &str) -> Result<FairAnswer> {
        let record = self.parse(doc)?;
        let granted = matches!(&record, LockRecord::Taken(info) if info.uuid == owner.uuid)
            && doc.get_str(RUN) == Ok(call);
        let others_queued = doc.get_array(QUEUE).is_ok_and(|q| {
            q.iter()
                .any(|e| e.as_document().is_none_or(|e| e.get_str(CALL) != Ok(call)))
        });
        let nearby = ahead_of(doc, call).is_some_and(|ahead| {
            let here = |d: &Document| {
                d.get_str(HOST) == Ok(owner.host.as_str())
                    && Reader::new(d, self.coll.name())
                        .pid(PID)
                        .is_ok_and(|pid| pid == owner.pid)
            };
            (doc.get_bool(LOCKED) != Ok(true) || here(doc)) && ahead.iter().all(|e| here(e))
        });
        Ok(FairAnswer {
            record,
            granted,
            nearby,
            others_queued,
        })
    }

    /// Tells this process's waiter of the call that `doc` (a release's
    /// answer, sent at `sent`) names, if one waits, that the lock is its
    /// own now: a call of `waiting_here` (the release granted it its ttl)
    /// finds the grant in its slot; another only wakes, to claim it.
    pub(super) fn wake_handed(
        &self,
        hub: &Hub,
        doc: &Document,
        waiting_here: &[String],
        sent: Moment,
    ) {
        let (Ok(key), Ok(run)) = (doc.get_str(ID), doc.get_str(RUN)) else {
            return;
        };
        let handover = match self.parse(doc) {
            Ok(LockRecord::Taken(info)) if waiting_here.iter().any(|c| c == run) => {
                Some(Handover { info, sent })
            }
            _ => None,
        };
        hub.handed(key, run, handover);
    }

    /// Takes `call`'s entry out of `key`'s queue; when the lock was handed
    /// to that call meanwhile, releases it too (to the next in the queue),
    /// so that nobody waits for a waiter that left. One round trip, two
    /// when it had been handed the lock.
    pub fn leave_queue(
        &self,
        key: &str,
        uuid: &str,
        call: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let after = self
            .coll
            .find_one_and_update(doc! { ID: key }, leave_update(call))
            .return_document(ReturnDocument::After)
            .run()?;
        let handed = after.is_some_and(|d| {
            d.get_bool(LOCKED) == Ok(true)
                && d.get_str(UUID) == Ok(uuid)
                && d.get_str(RUN) == Ok(call)
        });
        // Never used, so no hold: only an unreleased earlier lease's
        // expiry keeps it.
        if handed {
            self.release_holding(key, Whose::Run(uuid, call), Duration::ZERO, until)?;
        }
        Ok(())
    }
}
