//! The one-holder document's updates, as pure functions: the take-over
//! condition (the fair queue's parts are in [`super::queue`]), the acquire (one `$replaceWith` that takes every field or
//! none), the release (with a hold, or until an unreleased lease's
//! expiry), the touch, and which holder a release may free. Server time
//! decides every expiry.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use crate::foundation::document::{
    FENCE, HOST, ID, METADATA, PID, TS_CREATED, TS_EXPIRE, TS_RELEASED, UUID,
};
use crate::foundation::expr::{duration_ms, literal, millis, next_fence, now_plus, unexpired};
use crate::foundation::kind::{Kind, KIND};
use crate::foundation::owner::Owner;
use crate::foundation::single::document::{LOCKED, RUN};
use crate::foundation::single::queue::{
    fair_acquire_pipeline, free_or_hand_over, Fair, RELEASED_LIVE,
};

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
    let free = doc! { "$ne": [field(LOCKED), true] };
    let expired = doc! { "$and": [
        { "$eq": [{ "$type": field(TS_EXPIRE) }, "date"] },
        { "$lte": [{ "$add": [millis(field(TS_EXPIRE)), duration_ms(grace)] }, millis("$$NOW")] },
    ]};
    let mine = doc! { "$eq": [field(UUID), literal(uuid)] };
    // Another primitive's document is never taken, forced or not.
    doc! { "$and": [
        fence_ok(),
        Kind::Lock.fits(),
        { "$or": [force, { "$and": [shape_ok(), { "$or": [free, expired, mine] }] }] },
    ]}
}

fn type_in(f: &str, types: &[&str]) -> Document {
    doc! { "$in": [{ "$type": format!("${f}") }, types.to_vec()] }
}

/// The fence is absent or a non-negative integer.
fn fence_ok() -> Document {
    doc! { "$and": [
        type_in(FENCE, &["missing", "int", "long"]),
        { "$gte": [{ "$ifNull": [format!("${FENCE}"), 0_i64] }, 0_i64] },
    ]}
}

/// `locked` and `ts_expire` have their types, where present.
fn shape_ok() -> Document {
    doc! { "$and": [
        type_in(LOCKED, &["missing", "bool"]),
        type_in(TS_EXPIRE, &["missing", "date"]),
    ]}
}

/// A lock's document, not damaged (a taken one names its holder and its
/// expiry): one a refused fair attempt may queue on. Any other is left as
/// it was, to be reported.
pub(crate) fn well_formed() -> Document {
    let holder_named = doc! { "$or": [
        { "$ne": ["$locked", true] },
        { "$and": [
            { "$eq": [{ "$type": format!("${TS_EXPIRE}") }, "date"] },
            { "$eq": [{ "$type": format!("${UUID}") }, "string"] },
        ]},
    ]};
    doc! { "$and": [fence_ok(), Kind::Lock.fits(), shape_ok(), holder_named] }
}

/// The filter that matches the lock only while `whose` holds it.
pub(crate) fn release_filter(key: &str, whose: Whose<'_>) -> Document {
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
    grant_when(take_condition(&owner.uuid, force, grace), owner, run, ttl)
}

/// The one-stage grant: every field [`ours`] when `take` holds, the
/// document as it was otherwise.
fn grant_when(take: Document, owner: &Owner, run: Option<&str>, ttl: Duration) -> Vec<Document> {
    vec![doc! { "$replaceWith": { "$cond": [
        take,
        { "$mergeObjects": ["$$ROOT", ours(owner, run, ttl)] },
        "$$ROOT",
    ]}}]
}

/// The fields a grant writes: every one of them, from one condition.
fn ours(owner: &Owner, run: Option<&str>, ttl: Duration) -> Document {
    doc! {
        KIND: Kind::Lock.name(),
        LOCKED: true,
        UUID: literal(&owner.uuid),
        HOST: literal(&owner.host),
        PID: i64::from(owner.pid),
        TS_CREATED: "$$NOW",
        TS_EXPIRE: now_plus(ttl),
        FENCE: next_fence(),
        RUN: run.map(literal),
        // Set (null when absent) so a holder without metadata never shows
        // its predecessor's; a literal, so strings starting with `$` in
        // the user's document stay strings.
        METADATA: owner.metadata.clone().map(|m| doc! { "$literal": m }),
    }
}

/// The acquire pipeline of a fair attempt (see
/// [`fair_acquire_pipeline`]): the same grant as [`acquire_pipeline`]'s
/// (with the call as its run), to the head of the live queue only.
pub(crate) fn fair_acquire(
    owner: &Owner,
    ttl: Duration,
    force: bool,
    grace: Duration,
    fair: &Fair<'_>,
) -> Vec<Document> {
    fair_acquire_pipeline(
        owner,
        ours(owner, Some(fair.call), ttl),
        take_condition(&owner.uuid, force, grace),
        well_formed(),
        ttl,
        force,
        fair,
    )
}

/// The fair attempt of a locker that saw nobody queue at its last grant:
/// granted as [`acquire_pipeline`] grants, with the call as its run, only
/// when its take-over condition holds and nobody queues (no `queue`, or
/// an empty one); otherwise it changes nothing, and the caller follows it
/// with the whole [`fair_acquire`] when that could answer otherwise. A
/// third of that pipeline's size: on SecantusDB, which parses every
/// pipeline it is sent, an uncontended fair lock's attempt then costs
/// what a racing one's does.
pub(crate) fn uncontended_fair_acquire(
    owner: &Owner,
    call: &str,
    ttl: Duration,
    grace: Duration,
) -> Vec<Document> {
    let queue = format!("${}", super::queue::QUEUE);
    let nobody_queues = doc! { "$eq": [
        { "$cond": [{ "$isArray": &queue }, { "$size": &queue }, 0] }, 0,
    ]};
    let take = doc! { "$and": [take_condition(&owner.uuid, false, grace), nobody_queues] };
    grant_when(take, owner, Some(call), ttl)
}

/// Writes `run` into an acquire pipeline built without one: the same
/// pipeline as [`acquire_pipeline`] with that run.
pub(crate) fn set_run(pipeline: &mut [Document], run: &str) {
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

/// The release update. Without a `hold` (or `until`) it hands the lock
/// over to the head of its live queue, or marks it free when nobody waits
/// ([`free_or_hand_over`]). With one, a lock that is still live (unexpired in server time)
/// and was acquired less than `hold` ago stays taken by its releaser until
/// `ts_created + hold`: `ts_expire` becomes that instant, so other lockers
/// take it only after it (plus the takeover grace), and every read says it
/// is held until then. `until` (server milliseconds) keeps it taken until
/// then the same way, whatever the hold: the server expiry of an earlier
/// acquisition of the releaser's that ended without a release (its holder
/// may still have a write on its way until then). Otherwise it is handed
/// over or marked free. Either way `ts_released` records the release, in
/// server time. `waiting_here`: the calls of the releasing process's fair
/// waiters (a handover to one grants it its ttl).
pub(crate) fn release_pipeline(
    (hold, until): (Duration, Option<i64>),
    waiting_here: &[String],
) -> Vec<Document> {
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
        0 => return vec![doc! { "$replaceWith": free_or_hand_over(waiting_here) }],
        1 => ends.remove(0),
        _ => Bson::Document(doc! { "$max": ends }),
    };
    let keep = doc! { "$and": [
        unexpired(TS_EXPIRE),
        { "$gt": [until.clone(), millis("$$NOW")] },
    ]};
    let kept = doc! { "$mergeObjects": ["$$ROOT", {
        TS_EXPIRE: { "$toDate": until },
        TS_RELEASED: "$$NOW",
        RELEASED_LIVE: true,
    }]};
    vec![
        doc! { "$set": { "_hold": keep } },
        doc! { "$replaceWith": { "$cond": ["$_hold", kept, free_or_hand_over(waiting_here)] } },
        doc! { "$unset": "_hold" },
    ]
}

/// The touch update: the expiry becomes `$$NOW + ttl`.
pub(crate) fn touch_pipeline(ttl: Duration) -> Vec<Document> {
    vec![doc! { "$set": { TS_EXPIRE: now_plus(ttl) } }]
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

    /// The kept branch's expiry, and the `_hold` condition's end.
    fn kept_until(pipeline: &[Document]) -> (Bson, Bson) {
        let cond = pipeline[1]
            .get_document("$replaceWith")
            .unwrap()
            .get_array("$cond")
            .unwrap();
        assert_eq!(cond[0], Bson::String("$_hold".into()));
        assert_eq!(
            cond[2],
            Bson::Document(free_or_hand_over(&[])),
            "else freed"
        );
        let kept = cond[1]
            .as_document()
            .unwrap()
            .get_array("$mergeObjects")
            .unwrap()[1]
            .as_document()
            .unwrap()
            .get(TS_EXPIRE)
            .unwrap()
            .clone();
        let keep = pipeline[0]
            .get_document("$set")
            .unwrap()
            .get_document("_hold")
            .unwrap();
        let and = keep.get_array("$and").unwrap();
        assert_eq!(
            and[0],
            Bson::Document(unexpired(TS_EXPIRE)),
            "only a live lock"
        );
        let until = and[1].as_document().unwrap().get_array("$gt").unwrap()[0].clone();
        (kept, until)
    }

    #[test]
    fn a_release_keeps_the_lock_until_an_unreleased_lease_ends() {
        let (kept, _) = kept_until(&release_pipeline((Duration::ZERO, Some(5_000)), &[]));
        assert_eq!(kept, Bson::Document(doc! { "$toDate": 5_000_i64 }));
        // With a hold too: the later of the two.
        let (_, until) = kept_until(&release_pipeline(
            (Duration::from_secs(2), Some(5_000)),
            &[],
        ));
        assert_eq!(
            until,
            Bson::Document(doc! { "$max": [
                { "$add": [{ "$toLong": "$ts_created" }, 2000_i64] },
                5_000_i64,
            ]})
        );
    }

    #[test]
    fn release_keeps_a_live_lock_until_the_hold_ends() {
        assert_eq!(
            release_pipeline((Duration::ZERO, None), &[]),
            vec![doc! { "$replaceWith": free_or_hand_over(&[]) }],
            "no hold: freed, or handed to the queue's head"
        );
        let held = release_pipeline((Duration::from_secs(2), None), &[]);
        assert_eq!(held.len(), 3);
        let (_, until) = kept_until(&held);
        assert_eq!(
            until,
            Bson::Document(doc! { "$add": [{ "$toLong": "$ts_created" }, 2000_i64] })
        );
        assert_eq!(held[2], doc! { "$unset": "_hold" });
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

    #[test]
    fn the_uncontended_fair_attempt_is_the_racing_one_when_nobody_queues() {
        let owner = Owner {
            uuid: "u1".into(),
            host: "h".into(),
            pid: 9,
            metadata: None,
        };
        let ttl = Duration::from_secs(2);
        let grace = Duration::from_millis(150);
        let p = uncontended_fair_acquire(&owner, "c1", ttl, grace);
        assert_eq!(p.len(), 1, "one stage: one evaluation");
        let cond = p[0]
            .get_document("$replaceWith")
            .unwrap()
            .get_array("$cond")
            .unwrap();
        let take = cond[0].as_document().unwrap().get_array("$and").unwrap();
        assert!(format!("{take:?}").contains("$queue"), "nobody queues");
        assert_eq!(
            take[0],
            Bson::Document(take_condition("u1", false, grace)),
            "the whole fair attempt's condition, and the racing one's"
        );
        assert_eq!(cond[2], Bson::String("$$ROOT".into()), "else: unchanged");
        // The grant is the racing grant, with the call as its run.
        assert_eq!(
            cond[1],
            Bson::Document(doc! { "$mergeObjects": ["$$ROOT", ours(&owner, Some("c1"), ttl)] })
        );
    }
}
