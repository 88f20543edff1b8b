//! The grant, as a pure function: one conditional upsert that drops expired
//! holders, checks the count, the modes, the document's kind and a waiting
//! writer, and adds the new entry with the next fence (or renews this
//! grant's own entry). Server time decides every expiry.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use crate::foundation::document::{FENCE, HOST, METADATA, PID, TS_CREATED, TS_EXPIRE, UUID};
use crate::foundation::expr::{duration_ms, literal, millis, next_fence, now_plus};
use crate::foundation::kind::{Kind, KIND};
use crate::foundation::owner::Owner;
use crate::foundation::shares::document::{ATTEMPT, HOLDERS, INTENT, MODE, PERMITS, READ, WRITE};
use crate::foundation::shares::pipeline::{date_ms, entry, field, holders};
use crate::limits::MAX_HOLDERS;

/// What a grant asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// One of a semaphore's `permits`.
    Permit { permits: u32 },
    /// A read-write lock's read share.
    Read,
    /// A read-write lock's write share; with `intent`, a refused attempt
    /// registers (or refreshes) this grant's intent to write.
    Write { intent: bool },
}

impl Ask {
    /// The kind of document the grant is made in.
    pub fn kind(self) -> Kind {
        match self {
            Ask::Permit { .. } => Kind::Semaphore,
            Ask::Read | Ask::Write { .. } => Kind::RwLock,
        }
    }
}

/// Who asks: the grant's token (its entry's `uuid`), this attempt's own
/// token, the process identity, the lease length and the takeover grace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grantee<'a> {
    pub token: &'a str,
    /// Written into the entry by the attempt that adds or renews it: an
    /// answer whose entry carries another attempt's token (a refusal that
    /// returns an earlier attempt's entry, dead or not) grants nothing.
    pub attempt: &'a str,
    pub owner: &'a Owner,
    pub ttl: Duration,
    pub grace: Duration,
}

// Temporary fields of the grant pipeline, removed by its last stage.
const LIVE: &str = "_live";
const MINE: &str = "_mine";
const OK: &str = "_ok";
const RIVAL: &str = "_rival";
const FRESH: &str = "_fresh";
const GRANT: &str = "_grant";
const NEXT: &str = "_next";

/// `$type` of `f` is one of `types`.
fn type_in(f: &str, types: &[&str]) -> Document {
    doc! { "$in": [{ "$type": field(f) }, types.to_vec()] }
}

/// An expiry that still counts at `$$NOW`: `ts + grace > $$NOW`.
fn counts(ts: &str, grace: Duration) -> Document {
    doc! { "$gt": [{ "$add": [date_ms(ts), duration_ms(grace)] }, millis("$$NOW")] }
}

/// Every holder entry has the shape a grant relies on.
fn entries_ok() -> Document {
    doc! { "$allElementsTrue": [{ "$map": {
        "input": holders(),
        "as": "h",
        "in": { "$and": [
            { "$eq": [{ "$type": entry(TS_EXPIRE) }, "date"] },
            { "$in": [{ "$type": entry(FENCE) }, ["int", "long"]] },
            { "$eq": [{ "$type": entry(UUID) }, "string"] },
        ]},
    }}]}
}

/// Whether `$$h.mode` is `mode`.
fn mode_is(mode: &str) -> Document {
    doc! { "$eq": [entry(MODE), mode] }
}

/// The grant pipeline (see the module docs). Stages: the live holders
/// (expiry plus grace after `$$NOW`) and the flags, then whether to grant,
/// then the new document, then the temporaries removed. Each condition is
/// evaluated once.
pub(crate) fn grant_pipeline(ask: Ask, who: &Grantee<'_>) -> Vec<Document> {
    let token = literal(who.token);
    let live = doc! { "$filter": {
        "input": holders(),
        "as": "h",
        "cond": counts(&entry(TS_EXPIRE), who.grace),
    }};
    let mut shape = vec![
        Bson::Document(type_in(FENCE, &["missing", "int", "long"])),
        Bson::Document(doc! { "$gte": [{ "$ifNull": [field(FENCE), 0_i64] }, 0_i64] }),
        Bson::Document(type_in(HOLDERS, &["missing", "null", "array"])),
        Bson::Document(entries_ok()),
        // Another primitive's document (a lock's, or the other many-holder
        // kind's) is never granted in, nor tagged.
        Bson::Document(ask.kind().fits()),
    ];
    let mut first = doc! { LIVE: live };
    match ask {
        Ask::Permit { permits } => {
            shape.push(Bson::Document(type_in(
                PERMITS,
                &["missing", "int", "long"],
            )));
            shape.push(Bson::Document(doc! {
                "$eq": [{ "$ifNull": [field(PERMITS), i64::from(permits)] }, i64::from(permits)]
            }));
        }
        Ask::Read | Ask::Write { .. } => {
            shape.push(Bson::Document(type_in(
                INTENT,
                &["missing", "null", "object"],
            )));
            let intent_expire = format!("${INTENT}.{TS_EXPIRE}");
            let intent_uuid = format!("${INTENT}.{UUID}");
            // A live intent of another grant.
            first.insert(
                RIVAL,
                doc! { "$and": [
                    { "$eq": [{ "$type": &intent_expire }, "date"] },
                    counts(&intent_expire, who.grace),
                    { "$ne": [&intent_uuid, token.clone()] },
                ]},
            );
            // Our own intent, with more than two thirds of a ttl left: no
            // need to rewrite it (each rewrite is a change event).
            first.insert(
                FRESH,
                doc! { "$and": [
                    { "$eq": [{ "$type": &intent_expire }, "date"] },
                    { "$eq": [&intent_uuid, token.clone()] },
                    { "$gt": [date_ms(&intent_expire),
                              { "$add": [millis("$$NOW"), duration_ms(who.ttl * 2 / 3)] }] },
                ]},
            );
        }
    }
    first.insert(OK, doc! { "$and": shape });
    first.insert(NEXT, next_fence());
    let uuids = doc! { "$map": { "input": field(LIVE), "as": "h", "in": entry(UUID) } };
    let second = doc! { MINE: { "$in": [token.clone(), uuids] } };
    let room = match ask {
        Ask::Permit { permits } => {
            doc! { "$lt": [{ "$size": field(LIVE) }, i64::from(permits)] }
        }
        Ask::Read => doc! { "$and": [
            { "$not": [field(RIVAL)] },
            { "$not": [{ "$anyElementTrue": [{ "$map": {
                "input": field(LIVE), "as": "h", "in": mode_is(WRITE),
            }}]}]},
            // Readers fill a document as permits do: no more than fit.
            { "$lt": [{ "$size": field(LIVE) }, i64::from(MAX_HOLDERS)] },
        ]},
        Ask::Write { .. } => doc! { "$and": [
            { "$not": [field(RIVAL)] },
            { "$eq": [{ "$size": field(LIVE) }, 0_i64] },
        ]},
    };
    let third = doc! { GRANT: { "$and": [field(OK), { "$not": [field(MINE)] }, room] } };
    let mut new_entry = doc! {
        UUID: token.clone(),
        FENCE: field(NEXT),
        HOST: literal(&who.owner.host),
        PID: i64::from(who.owner.pid),
        TS_CREATED: "$$NOW",
        TS_EXPIRE: now_plus(who.ttl),
        ATTEMPT: literal(who.attempt),
        // A literal, so strings starting with `$` in the user's document
        // stay strings.
        METADATA: who.owner.metadata.clone().map(|m| doc! { "$literal": m }),
    };
    match ask {
        Ask::Read => {
            new_entry.insert(MODE, READ);
        }
        Ask::Write { .. } => {
            new_entry.insert(MODE, WRITE);
        }
        Ask::Permit { .. } => {}
    }
    // A retry of this grant whose earlier answer was lost finds its own
    // entry: it renews it (the caller's lease then starts at this
    // attempt) instead of taking a second share.
    let renewed = doc! { "$map": { "input": field(LIVE), "as": "h", "in": { "$cond": [
        { "$eq": [entry(UUID), token.clone()] },
        { "$mergeObjects": ["$$h", { TS_EXPIRE: now_plus(who.ttl), ATTEMPT: literal(who.attempt) }] },
        "$$h",
    ]}}};
    let mut fourth = doc! {
        HOLDERS: { "$cond": [
            field(MINE),
            renewed,
            { "$cond": [field(GRANT), { "$concatArrays": [field(LIVE), [new_entry]] }, field(HOLDERS)] },
        ]},
        FENCE: { "$cond": [field(GRANT), field(NEXT), field(FENCE)] },
        KIND: { "$cond": [field(OK), ask.kind().name(), field(KIND)] },
    };
    let mut temporaries = vec![LIVE, MINE, OK, GRANT, NEXT];
    match ask {
        Ask::Permit { permits } => {
            fourth.insert(
                PERMITS,
                doc! { "$cond": [field(GRANT), i64::from(permits), field(PERMITS)] },
            );
        }
        Ask::Read => temporaries.extend([RIVAL, FRESH]),
        Ask::Write { intent } => {
            // Granted (or ours already): no intent left. Refused: register
            // ours while readers hold (they are what a writer can starve
            // behind), unless another writer waits or ours is fresh. Not
            // while only a writer holds: then its release lets readers and
            // writers race, so a steady stream of writers cannot shut
            // readers out either.
            let readers_hold = doc! { "$anyElementTrue": [{ "$map": {
                "input": field(LIVE), "as": "h", "in": mode_is(READ),
            }}]};
            let register = if intent {
                Bson::Document(doc! { "$and": [
                    field(OK), { "$not": [field(RIVAL)] }, { "$not": [field(FRESH)] }, readers_hold,
                ]})
            } else {
                Bson::Boolean(false)
            };
            fourth.insert(
                INTENT,
                doc! { "$cond": [
                    { "$or": [field(GRANT), field(MINE)] },
                    Bson::Null,
                    { "$cond": [
                        register,
                        { UUID: token, TS_EXPIRE: now_plus(who.ttl) },
                        field(INTENT),
                    ]},
                ]},
            );
            temporaries.extend([RIVAL, FRESH]);
        }
    }
    vec![
        doc! { "$set": first },
        doc! { "$set": second },
        doc! { "$set": third },
        doc! { "$set": fourth },
        doc! { "$unset": temporaries },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            uuid: "proc".into(),
            host: "h".into(),
            pid: 9,
            metadata: Some(doc! { "a": "$b" }),
        }
    }

    fn who(o: &Owner) -> Grantee<'_> {
        Grantee {
            token: "t1",
            attempt: "a1",
            owner: o,
            ttl: Duration::from_millis(3000),
            grace: Duration::from_millis(300),
        }
    }

    fn set(p: &[Document], i: usize) -> Document {
        p[i].get_document("$set").unwrap().clone()
    }

    #[test]
    fn a_permit_grant_checks_the_count_and_room_once() {
        let o = owner();
        let p = grant_pipeline(Ask::Permit { permits: 3 }, &who(&o));
        assert_eq!(p.len(), 5);
        let first = set(&p, 0);
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(keys, [LIVE, OK, NEXT]);
        assert_eq!(first.get_document(NEXT).unwrap(), &next_fence());
        let ok = first.get_document(OK).unwrap().get_array("$and").unwrap();
        assert!(ok.contains(&Bson::Document(
            doc! { "$eq": [{ "$ifNull": ["$permits", 3_i64] }, 3_i64] }
        )));
        let grant = set(&p, 2);
        let and = grant
            .get_document(GRANT)
            .unwrap()
            .get_array("$and")
            .unwrap();
        assert_eq!(
            and[2],
            Bson::Document(doc! { "$lt": [{ "$size": "$_live" }, 3_i64] })
        );
        let fourth = set(&p, 3);
        assert!(fourth.contains_key(PERMITS) && !fourth.contains_key(INTENT));
        assert_eq!(p[4], doc! { "$unset": [LIVE, MINE, OK, GRANT, NEXT] });
    }

    #[test]
    fn the_new_entry_carries_the_fence_identity_and_literal_metadata() {
        let o = owner();
        let p = grant_pipeline(Ask::Read, &who(&o));
        let fourth = set(&p, 3);
        let outer = fourth
            .get_document(HOLDERS)
            .unwrap()
            .get_array("$cond")
            .unwrap();
        let inner = outer[2].as_document().unwrap().get_array("$cond").unwrap();
        let concat = inner[1]
            .as_document()
            .unwrap()
            .get_array("$concatArrays")
            .unwrap();
        let entry = concat[1].as_array().unwrap()[0].as_document().unwrap();
        assert_eq!(
            entry.get_document(UUID).unwrap(),
            &doc! { "$literal": "t1" }
        );
        assert_eq!(entry.get_str(FENCE).unwrap(), "$_next");
        assert_eq!(entry.get_str(MODE).unwrap(), READ);
        assert_eq!(
            entry.get_document(METADATA).unwrap(),
            &doc! { "$literal": { "a": "$b" } }
        );
        assert!(
            !fourth.contains_key(INTENT),
            "a reader leaves the intent alone"
        );
    }

    #[test]
    fn readers_wait_for_writers_and_for_a_rival_intent() {
        let o = owner();
        let p = grant_pipeline(Ask::Read, &who(&o));
        let first = set(&p, 0);
        assert!(first.contains_key(RIVAL) && first.contains_key(FRESH));
        let grant = set(&p, 2);
        let and = grant
            .get_document(GRANT)
            .unwrap()
            .get_array("$and")
            .unwrap();
        let room = and[2].as_document().unwrap().get_array("$and").unwrap();
        assert_eq!(room[0], Bson::Document(doc! { "$not": ["$_rival"] }));
    }

    #[test]
    fn a_blocking_writer_registers_its_intent_a_try_does_not() {
        let o = owner();
        let blocking = grant_pipeline(Ask::Write { intent: true }, &who(&o));
        let intent = set(&blocking, 3).get_document(INTENT).unwrap().clone();
        let cond = intent.get_array("$cond").unwrap();
        assert_eq!(cond[1], Bson::Null, "granted: cleared");
        let inner = cond[2].as_document().unwrap().get_array("$cond").unwrap();
        assert!(inner[0].as_document().is_some());
        assert_eq!(
            inner[1].as_document().unwrap().get_document(UUID).unwrap(),
            &doc! { "$literal": "t1" }
        );
        let trying = grant_pipeline(Ask::Write { intent: false }, &who(&o));
        let intent = set(&trying, 3).get_document(INTENT).unwrap().clone();
        let inner = intent.get_array("$cond").unwrap()[2]
            .as_document()
            .unwrap()
            .get_array("$cond")
            .unwrap()
            .clone();
        assert_eq!(inner[0], Bson::Boolean(false));
        let grant = set(&trying, 2);
        let and = grant
            .get_document(GRANT)
            .unwrap()
            .get_array("$and")
            .unwrap();
        let room = and[2].as_document().unwrap().get_array("$and").unwrap();
        assert_eq!(
            room[1],
            Bson::Document(doc! { "$eq": [{ "$size": "$_live" }, 0_i64] })
        );
    }
}
