//! The fair queue of a one-holder document, as pure expressions: the
//! waiters in arrival order (`queue`, an array of entries each with a
//! waiter lease of its own, in server time), the fair acquire (granted
//! only to the head of the live queue, or when it is empty; a refused
//! waiter enqueues or refreshes its entry in the same round trip), and the
//! release's handover to the live head.
//!
//! A waiter whose lease has passed is not live: every update that reads
//! the queue drops it, so a crashed or paused waiter is skipped by the
//! next grant with no sweeper. A handover grants a head of another process
//! only its waiter lease (from the release): the head's next attempt,
//! woken by the change, extends it to its ttl in the same answer that
//! tells it; a dead head thus holds up the queue by at most its waiter
//! lease (plus the takeover grace), never its ttl. A head that waits in
//! the releasing process is alive, as the releaser knows: it is granted
//! its ttl at once and told by the releaser (see
//! [`crate::foundation::handover`]), with no round trip of its own.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use crate::foundation::document::{
    FENCE, HOST, METADATA, PID, TS_CREATED, TS_EXPIRE, TS_RELEASED, UUID,
};
use crate::foundation::expr::{duration_ms, literal, millis, next_fence, now_plus, unexpired};
use crate::foundation::kind::Kind;
use crate::foundation::owner::Owner;
use crate::foundation::single::document::{LOCKED, RUN};
use crate::limits::MAX_WAITERS;

/// The queue of waiters, in arrival order.
pub(crate) const QUEUE: &str = "queue";
/// An entry's acquire call (the `run` its grant carries).
pub(crate) const CALL: &str = "call";
/// When the entry was first enqueued (server time).
pub(crate) const SINCE: &str = "since";
/// The end of the entry's waiter lease (server time).
pub(crate) const EXPIRES: &str = "expires";
/// The waiter lease, in milliseconds: how long a handover holds the lock
/// for the head before its own attempt extends it.
pub(crate) const LEASE_MS: &str = "lease_ms";
/// The waiter's ttl, in milliseconds: what a handover grants it when the
/// release comes from its own process.
pub(crate) const TTL_MS: &str = "ttl_ms";
/// Set by a release that handed over or kept the lock: whether the
/// releaser's lease was still live (the release's answer).
pub(crate) const RELEASED_LIVE: &str = "released_live";

/// How a fair attempt treats the queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fair<'a> {
    /// The acquire call: the entry's identity and the grant's `run`.
    pub call: &'a str,
    /// The entry's lease, renewed by each refused attempt.
    pub waiter_lease: Duration,
    /// Whether a refused attempt enqueues (a waiting call) or leaves the
    /// queue as it is (a single attempt: `try_lock`).
    pub enqueue: bool,
}

fn has_queue() -> Document {
    doc! { "$isArray": format!("${QUEUE}") }
}

/// The live entries, in order (`[]` when there is no queue): unexpired,
/// and well-formed (a damaged entry is dropped like an expired one, so a
/// handover never reads a bad field).
fn live_entries() -> Document {
    let e = |f: &str| format!("$$e.{f}");
    doc! { "$filter": {
        "input": { "$cond": [has_queue(), format!("${QUEUE}"), []] },
        "as": "e",
        "cond": { "$and": [
            { "$eq": [{ "$type": e(EXPIRES) }, "date"] },
            { "$gt": [millis(e(EXPIRES)), millis("$$NOW")] },
            { "$eq": [{ "$type": e(CALL) }, "string"] },
            { "$eq": [{ "$type": e(UUID) }, "string"] },
            { "$eq": [{ "$type": e(HOST) }, "string"] },
            { "$in": [{ "$type": e(PID) }, ["int", "long"]] },
            { "$in": [{ "$type": e(LEASE_MS) }, ["int", "long"]] },
            { "$gt": [e(LEASE_MS), 0_i64] },
            { "$lte": [e(LEASE_MS), MAX_LEASE_MS] },
            // Not further ahead than twice its own lease: one written by
            // a primary whose clock ran ahead, or damaged, would hold up a
            // free key until then. (Twice: a server may read `$$NOW` when
            // it parses an update, so one parsed before a refresh and
            // applied after it sees that entry a little ahead.)
            { "$lte": [
                { "$subtract": [millis(e(EXPIRES)), millis("$$NOW")] },
                { "$multiply": [e(LEASE_MS), 2_i64] },
            ]},
        ]},
    }}
}

/// The longest waiter lease an entry may carry (a minute): one that says
/// more is damaged, and skipped, so no entry can hold up a handover long.
const MAX_LEASE_MS: i64 = 60_000;

/// The calls of `list` (an expression), in order.
fn calls_of(list: &str) -> Document {
    doc! { "$map": { "input": list, "as": "e", "in": format!("$$e.{CALL}") } }
}

/// The entries of `list` that are not `call`'s.
fn without(list: &str, call: &str) -> Document {
    doc! { "$filter": {
        "input": list,
        "as": "e",
        "cond": { "$ne": [format!("$$e.{CALL}"), literal(call)] },
    }}
}

/// A new entry for `owner`'s call, whose grant lasts `ttl`.
fn entry(owner: &Owner, fair: &Fair<'_>, ttl: Duration) -> Document {
    doc! {
        CALL: literal(fair.call),
        UUID: literal(&owner.uuid),
        HOST: literal(&owner.host),
        PID: i64::from(owner.pid),
        METADATA: owner.metadata.clone().map(|m| doc! { "$literal": m }),
        SINCE: "$$NOW",
        EXPIRES: now_plus(fair.waiter_lease),
        LEASE_MS: duration_ms(fair.waiter_lease),
        TTL_MS: duration_ms(ttl),
    }
}

/// The live queue with `call`'s entry refreshed in place, or appended
/// when it is not live (new, or its lease passed: it lost its place) and
/// the queue has room ([`MAX_WAITERS`]).
fn with_entry(owner: &Owner, fair: &Fair<'_>, ttl: Duration) -> Document {
    let refreshed = doc! { "$map": {
        "input": "$$live",
        "as": "e",
        "in": { "$cond": [
            { "$eq": [format!("$$e.{CALL}"), literal(fair.call)] },
            { "$mergeObjects": ["$$e", { EXPIRES: now_plus(fair.waiter_lease) }] },
            "$$e",
        ]},
    }};
    doc! { "$cond": [
        { "$in": [literal(fair.call), calls_of("$$live")] },
        refreshed,
        { "$cond": [
            { "$lt": [{ "$size": "$$live" }, MAX_WAITERS as i64] },
            { "$concatArrays": ["$$live", [entry(owner, fair, ttl)]] },
            // Full: it waits without a place (granted once the queue
            // is empty), as a racing waiter would.
            "$$live",
        ]},
    ]}
}

/// The fair acquire pipeline. Evaluated on the document as it was:
///
/// 1. handed to this call (`run` is its call, and `uuid` its owner's):
///    granted; the expiry becomes `$$NOW + ttl` (the handover gave only
///    the waiter lease) and the fence stays the one the release handed
///    out;
/// 2. `take` holds (the one-holder take-over condition) and the live
///    queue is empty or headed by this call (or `force`): granted as
///    `acquire_pipeline` (in `pipeline.rs`) grants, and
///    the call leaves the queue;
/// 3. otherwise refused: a lock's well-formed document gets the live
///    queue with this call's entry refreshed or appended (`enqueue`), or
///    only pruned; any other stays as it was.
pub(crate) fn fair_acquire_pipeline(
    owner: &Owner,
    ours: Document,
    take: Document,
    well_formed: Document,
    ttl: Duration,
    force: bool,
    fair: &Fair<'_>,
) -> Vec<Document> {
    let call = literal(fair.call);
    // Handed to this call, its waiter lease passed or not: nobody can have
    // taken it since (a take-over rewrites `uuid` and `run`).
    let handed = doc! { "$and": [
        Kind::Lock.fits(),
        { "$eq": [format!("${LOCKED}"), true] },
        { "$eq": [format!("${UUID}"), literal(&owner.uuid)] },
        { "$eq": [format!("${RUN}"), call.clone()] },
        { "$eq": [{ "$type": format!("${TS_EXPIRE}") }, "date"] },
    ]};
    let my_turn = doc! { "$or": [
        force,
        { "$eq": [{ "$size": "$$others" }, 0] },
        { "$eq": [{ "$arrayElemAt": [calls_of("$$live"), 0] }, call] },
    ]};
    // Only a document that has a queue gets one written back: a lock
    // nobody queued for keeps the shape it always had.
    let queue_as = |list: Bson| doc! { "$cond": [has_queue(), { QUEUE: list }, {}] };
    // A single attempt only prunes a queue that is there.
    let refused_queue = if fair.enqueue {
        doc! { QUEUE: with_entry(owner, fair, ttl) }
    } else {
        queue_as("$$live".into())
    };
    let refused = doc! { "$cond": [
        well_formed,
        { "$mergeObjects": ["$$ROOT", refused_queue] },
        "$$ROOT",
    ]};
    let decide = doc! { "$switch": {
        "branches": [
            // Its lease starts now: a hold counts from here.
            { "case": handed, "then": { "$mergeObjects": [
                "$$ROOT",
                { TS_CREATED: "$$NOW", TS_EXPIRE: now_plus(ttl) },
                queue_as("$$others".into()),
            ]}},
            { "case": { "$and": [take, my_turn] }, "then": { "$mergeObjects": [
                "$$ROOT", ours, queue_as("$$others".into()),
            ]}},
        ],
        "default": refused,
    }};
    vec![doc! { "$replaceWith": { "$let": {
        "vars": { "live": live_entries() },
        "in": { "$let": {
            "vars": { "others": without("$$live", fair.call) },
            "in": decide,
        }},
    }}}]
}

/// The release's end of a lease, for a lock that is not kept: handed over
/// to the head of the live queue (a new fence, the head's identity and
/// call, and from now its waiter lease, or its ttl when it is one of
/// `waiting_here`: calls that wait in the releasing process), or marked
/// free when the queue is empty or absent. `ts_released` records the
/// release either way.
pub(crate) fn free_or_hand_over(waiting_here: &[String]) -> Document {
    let head = |f: &str| format!("$$head.{f}");
    let lease_ms = if waiting_here.is_empty() {
        Bson::String(head(LEASE_MS))
    } else {
        let here = doc! { "$and": [
            { "$in": [head(CALL), { "$literal": waiting_here }] },
            { "$in": [{ "$type": head(TTL_MS) }, ["int", "long"]] },
            { "$gt": [head(TTL_MS), 0_i64] },
        ]};
        Bson::Document(doc! { "$cond": [here, head(TTL_MS), head(LEASE_MS)] })
    };
    let hand_over = doc! { "$let": {
        "vars": { "head": { "$arrayElemAt": ["$$live", 0] } },
        "in": { "$mergeObjects": ["$$ROOT", {
            LOCKED: true,
            UUID: head(UUID),
            HOST: head(HOST),
            PID: head(PID),
            METADATA: { "$ifNull": [head(METADATA), Bson::Null] },
            RUN: head(CALL),
            TS_CREATED: "$$NOW",
            TS_EXPIRE: { "$toDate": { "$add": [millis("$$NOW"), { "$toLong": lease_ms }] } },
            FENCE: next_fence(),
            TS_RELEASED: "$$NOW",
            RELEASED_LIVE: unexpired(TS_EXPIRE),
            QUEUE: { "$slice": ["$$live", 1, { "$max": [{ "$size": "$$live" }, 1] }] },
        }]},
    }};
    let free = doc! { "$mergeObjects": ["$$ROOT", { LOCKED: false, TS_RELEASED: "$$NOW" }] };
    doc! { "$cond": [
        has_queue(),
        { "$let": {
            "vars": { "live": live_entries() },
            "in": { "$cond": [
                { "$gt": [{ "$size": "$$live" }, 0] },
                hand_over,
                { "$mergeObjects": [free.clone(), { QUEUE: "$$live" }] },
            ]},
        }},
        free,
    ]}
}

/// The update that takes `call`'s entry out of the queue (a waiter that
/// timed out or gave up).
pub(crate) fn leave_update(call: &str) -> Document {
    doc! { "$pull": { QUEUE: { CALL: call } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            uuid: "u".into(),
            host: "h".into(),
            pid: 1,
            metadata: None,
        }
    }

    fn fair(enqueue: bool) -> Fair<'static> {
        Fair {
            call: "c1",
            waiter_lease: Duration::from_millis(1500),
            enqueue,
        }
    }

    #[test]
    fn a_single_attempt_does_not_enqueue() {
        let p = |enqueue| {
            fair_acquire_pipeline(
                &owner(),
                doc! { "ours": 1 },
                doc! { "take": 1 },
                doc! { "ok": 1 },
                Duration::from_secs(2),
                false,
                &fair(enqueue),
            )
        };
        let queued = format!("{:?}", p(true));
        let once = format!("{:?}", p(false));
        assert!(queued.contains("$concatArrays"), "a waiter appends itself");
        assert!(!once.contains("$concatArrays"), "one attempt only prunes");
        assert_eq!(p(true).len(), 1, "one stage: one evaluation");
    }

    #[test]
    fn the_handover_grants_the_waiter_lease_and_a_new_fence() {
        let text = format!("{:?}", free_or_hand_over(&[]));
        assert!(text.contains("$$head.lease_ms"));
        assert!(!text.contains("$$head.ttl_ms"), "nobody waits here");
        assert!(text.contains("$$head.call"));
        assert!(text.contains(&format!("{:?}", next_fence())));
        let here = format!("{:?}", free_or_hand_over(&["c1".into()]));
        assert!(here.contains("$$head.ttl_ms") && here.contains("c1"));
        assert_eq!(
            leave_update("c"),
            doc! { "$pull": { "queue": { "call": "c" } } }
        );
    }
}
