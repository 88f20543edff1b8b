//! The one-holder document (a lock's, an election's): its own fields
//! (`locked`, `run`; the rest are shared, [`crate::foundation::document`]),
//! what it says ([`LockRecord`]), and how it is read back.

use chrono::{DateTime, Utc};
use mongodb::bson::Document;

use crate::error::Result;
use crate::foundation::document::{
    LockInfo, Reader, FENCE, HOST, ID, METADATA, PID, TS_CREATED, TS_EXPIRE, UUID,
};

pub(crate) const LOCKED: &str = "locked";
/// The elector run, or the locker's acquire call, that acquired the lock,
/// so that a delayed stop-time release of one run, or the take-back of a
/// call's unanswered attempt, cannot free a later one's lock.
pub(crate) const RUN: &str = "run";

/// What a lock document says, before comparing with the server's clock.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LockRecord {
    /// Never taken, or released. `fence` is the last one handed out.
    Free { fence: i64 },
    /// Taken (possibly expired already: compare `expires` with server time).
    Taken(LockInfo),
}

impl LockRecord {
    /// The holder, if the lock is taken and not expired at server time `now`.
    pub fn live_at(self, now: DateTime<Utc>) -> Option<LockInfo> {
        match self {
            LockRecord::Taken(info) if info.expires > now => Some(info),
            _ => None,
        }
    }
}

/// Parses a lock document. A missing `locked` reads as free, as the acquire
/// pipeline reads it; a taken lock must carry every field.
pub(crate) fn parse_lock(doc: &Document, collection: &str) -> Result<LockRecord> {
    let r = Reader::new(doc, collection);
    let key = r.string(ID)?;
    // Absent fields read as free, as the acquire pipeline reads them; a
    // field that is present must have its type, locked or not (a damaged
    // document is never taken, so it must be reported, not read as free).
    let fence = if doc.contains_key(FENCE) {
        r.int(FENCE)?
    } else {
        0
    };
    if fence < 0 {
        return Err(r.malformed(FENCE, format!("is negative: {fence}")));
    }
    let expires = if doc.contains_key(TS_EXPIRE) {
        Some(r.date(TS_EXPIRE)?)
    } else {
        None
    };
    let locked = doc.contains_key(LOCKED) && r.bool(LOCKED)?;
    if !locked {
        return Ok(LockRecord::Free { fence });
    }
    let Some(expires) = expires else {
        return Err(r.malformed(TS_EXPIRE, "is missing"));
    };
    Ok(LockRecord::Taken(LockInfo {
        key,
        uuid: r.string(UUID)?,
        host: r.string(HOST)?,
        pid: r.pid(PID)?,
        created: r.date(TS_CREATED)?,
        expires,
        fence,
        metadata: r.opt_document(METADATA)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use mongodb::bson::Bson;
    use mongodb::bson::{doc, DateTime as BsonDate};

    fn field_of(r: Result<LockRecord>) -> &'static str {
        match r {
            Err(Error::MalformedDocument { field, .. }) => field,
            other => panic!("expected MalformedDocument, got {other:?}"),
        }
    }

    fn taken() -> Document {
        doc! {
            "_id": "k", "locked": true, "uuid": "u", "host": "h", "pid": 42_i32,
            "ts_created": BsonDate::from_millis(1_000), "ts_expire": BsonDate::from_millis(2_000),
            "fence": 7_i64,
        }
    }

    #[test]
    fn reads_a_taken_lock() {
        let LockRecord::Taken(info) = parse_lock(&taken(), "c").unwrap() else {
            panic!("not taken")
        };
        assert_eq!(info.fence, 7);
        assert_eq!(info.pid, 42);
        assert_eq!(info.expires.timestamp_millis(), 2_000);
        assert_eq!(info.metadata, None);
        let mut with = taken();
        with.insert("metadata", doc! {"job": "x", "n": {"deep": [1, 2]}});
        let LockRecord::Taken(meta) = parse_lock(&with, "c").unwrap() else {
            panic!("not taken")
        };
        assert_eq!(
            meta.metadata,
            Some(doc! {"job": "x", "n": {"deep": [1, 2]}})
        );
        let now = DateTime::from_timestamp_millis(1_999).unwrap();
        assert!(LockRecord::Taken(info.clone()).live_at(now).is_some());
        let now = DateTime::from_timestamp_millis(2_000).unwrap();
        assert!(LockRecord::Taken(info).live_at(now).is_none());
    }

    #[test]
    fn free_and_python_era_documents() {
        assert_eq!(
            parse_lock(&doc! {"_id": "k", "locked": false, "fence": 3_i64}, "c").unwrap(),
            LockRecord::Free { fence: 3 }
        );
        assert_eq!(
            parse_lock(&doc! {"_id": "k"}, "c").unwrap(),
            LockRecord::Free { fence: 0 }
        );
        let mut python = taken();
        python.remove("fence");
        assert!(matches!(
            parse_lock(&python, "c").unwrap(),
            LockRecord::Taken(LockInfo { fence: 0, .. })
        ));
    }

    #[test]
    fn names_the_malformed_field() {
        let cases: [(&str, Bson, &str); 9] = [
            ("metadata", Bson::String("x".into()), "metadata"),
            ("locked", Bson::String("yes".into()), "locked"),
            ("uuid", Bson::Int32(1), "uuid"),
            ("host", Bson::Null, "host"),
            ("pid", Bson::Int64(-1), "pid"),
            ("ts_created", Bson::String("now".into()), "ts_created"),
            ("ts_expire", Bson::Int64(5), "ts_expire"),
            ("fence", Bson::String("1".into()), "fence"),
            ("fence", Bson::Int64(-4), "fence"),
        ];
        for (field, value, expected) in cases {
            let mut d = taken();
            d.insert(field, value);
            assert_eq!(field_of(parse_lock(&d, "c")), expected, "{field}");
        }
        let mut d = taken();
        d.remove("ts_expire");
        assert_eq!(field_of(parse_lock(&d, "c")), "ts_expire");
        assert_eq!(field_of(parse_lock(&doc! {"_id": 5}, "c")), "_id");
        // Damage in a free-looking document is reported too.
        let free_but_damaged = [
            (
                doc! {"_id": "k", "locked": false, "ts_expire": "x"},
                "ts_expire",
            ),
            (doc! {"_id": "k", "locked": Bson::Null}, "locked"),
            (doc! {"_id": "k", "ts_expire": Bson::Null}, "ts_expire"),
            (
                doc! {"_id": "k", "locked": false, "fence": Bson::Null},
                "fence",
            ),
        ];
        for (d, field) in free_but_damaged {
            assert_eq!(field_of(parse_lock(&d, "c")), field, "{d}");
        }
    }
}
