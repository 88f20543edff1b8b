//! The many-holder document's updates besides the grant (in `grant.rs`),
//! as pure functions: the renewal and the release of one entry, taking back
//! what a call that got no grant left (an entry whose answer was lost, a
//! waiting writer's intent), and the expressions the grant shares with
//! them. Server time decides every expiry.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use crate::foundation::document::{FENCE, ID, TS_EXPIRE, TS_RELEASED, UUID};
use crate::foundation::expr::{literal, millis, now_plus};
use crate::foundation::shares::document::{HOLDERS, INTENT};

pub(super) fn field(f: &str) -> String {
    format!("${f}")
}

/// `$$h.<f>`: a field of the entry a `$map`/`$filter` is on.
pub(super) fn entry(f: &str) -> String {
    format!("$$h.{f}")
}

/// The stored holders, or none when the field is missing or not an array
/// (a damaged document, which `_ok` then refuses).
pub(super) fn holders() -> Document {
    doc! { "$cond": [{ "$isArray": field(HOLDERS) }, field(HOLDERS), []] }
}

/// A date as milliseconds; anything else (a damaged entry, which `_ok`
/// then refuses) as 0, so that the pipeline itself never fails on it.
pub(super) fn date_ms(ts: &str) -> Document {
    doc! { "$cond": [{ "$eq": [{ "$type": ts }, "date"] }, millis(ts), 0_i64] }
}

/// The entry `$$h` is grant (`token`, `fence`).
pub(crate) fn is_entry(token: &str, fence: i64) -> Document {
    doc! { "$and": [
        { "$eq": [entry(UUID), literal(token)] },
        { "$eq": [entry(FENCE), fence] },
    ]}
}

/// Matches the document while grant (`token`, `fence`) is in it and
/// unexpired in server time.
pub(crate) fn touch_filter(key: &str, token: &str, fence: i64) -> Document {
    let unexpired = doc! { "$gt": [date_ms(&entry(TS_EXPIRE)), millis("$$NOW")] };
    doc! {
        ID: key,
        "$expr": { "$anyElementTrue": [{ "$map": {
            "input": holders(),
            "as": "h",
            "in": { "$and": [is_entry(token, fence), unexpired] },
        }}]},
    }
}

/// Moves grant (`token`, `fence`)'s expiry to `$$NOW + ttl`.
pub(crate) fn touch_update(token: &str, fence: i64, ttl: Duration) -> Vec<Document> {
    vec![doc! { "$set": { HOLDERS: { "$map": {
        "input": field(HOLDERS),
        "as": "h",
        "in": { "$cond": [
            is_entry(token, fence),
            { "$mergeObjects": ["$$h", { TS_EXPIRE: now_plus(ttl) }] },
            "$$h",
        ]},
    }}}}]
}

/// Matches the document while grant (`token`, `fence`) is in it.
pub(crate) fn release_filter(key: &str, token: &str, fence: i64) -> Document {
    doc! { ID: key, HOLDERS: { "$elemMatch": { UUID: token, FENCE: fence } } }
}

/// Removes grant (`token`, `fence`) and records the release in server time
/// (`ts_released`, which wakes waiters through the change stream).
pub(crate) fn release_update(token: &str, fence: i64) -> Vec<Document> {
    vec![doc! { "$set": {
        HOLDERS: { "$filter": {
            "input": field(HOLDERS),
            "as": "h",
            "cond": { "$not": [is_entry(token, fence)] },
        }},
        TS_RELEASED: "$$NOW",
    }}]
}

/// Matches the document while grant `token` has an entry in it or its
/// intent to write is registered.
pub(crate) fn take_back_filter(key: &str, token: &str) -> Document {
    doc! { ID: key, "$or": [
        { format!("{HOLDERS}.{UUID}"): token },
        { format!("{INTENT}.{UUID}"): token },
    ]}
}

/// Takes back everything grant `token` left in the document (its entry, an
/// attempt whose answer was lost or came too late; its intent to write)
/// and records it in server time (`ts_released`, which wakes the waiters
/// it held back).
pub(crate) fn take_back_update(token: &str) -> Vec<Document> {
    vec![doc! { "$set": {
        HOLDERS: { "$filter": {
            "input": holders(),
            "as": "h",
            "cond": { "$ne": [entry(UUID), literal(token)] },
        }},
        INTENT: { "$cond": [
            { "$eq": [format!("${INTENT}.{UUID}"), literal(token)] },
            Bson::Null,
            field(INTENT),
        ]},
        TS_RELEASED: "$$NOW",
    }}]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(p: &[Document], i: usize) -> Document {
        p[i].get_document("$set").unwrap().clone()
    }

    #[test]
    fn touch_and_release_match_one_entry() {
        assert_eq!(
            release_filter("k", "t", 4),
            doc! { "_id": "k", "holders": { "$elemMatch": { "uuid": "t", "fence": 4_i64 } } }
        );
        let r = release_update("t", 4);
        assert_eq!(set(&r, 0).get_str(TS_RELEASED).unwrap(), "$$NOW");
        let f = touch_filter("k", "t", 4);
        assert_eq!(f.get_str("_id").unwrap(), "k");
        assert!(f.get_document("$expr").is_ok());
        let t = touch_update("t", 4, Duration::from_secs(2));
        let map = set(&t, 0)
            .get_document(HOLDERS)
            .unwrap()
            .get_document("$map")
            .unwrap()
            .clone();
        assert_eq!(map.get_str("as").unwrap(), "h");
        assert_eq!(
            take_back_filter("k", "t"),
            doc! { "_id": "k", "$or": [{ "holders.uuid": "t" }, { "intent.uuid": "t" }] }
        );
        let back = set(&take_back_update("t"), 0);
        assert_eq!(back.get_str(TS_RELEASED).unwrap(), "$$NOW");
        let intent = back
            .get_document(INTENT)
            .unwrap()
            .get_array("$cond")
            .unwrap();
        assert_eq!(intent[1], Bson::Null, "our intent: cleared");
        assert_eq!(intent[2], Bson::String("$intent".into()), "another's: kept");
    }
}
