//! The lock document: its field names (those of the Python package, plus
//! `fence`, `run` and `metadata`) and how a stored document is read back into typed values.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document};

use crate::error::{Error, Result};

pub(crate) const ID: &str = "_id";
pub(crate) const LOCKED: &str = "locked";
pub(crate) const UUID: &str = "uuid";
pub(crate) const HOST: &str = "host";
pub(crate) const PID: &str = "pid";
pub(crate) const TS_CREATED: &str = "ts_created";
pub(crate) const TS_EXPIRE: &str = "ts_expire";
pub(crate) const FENCE: &str = "fence";
/// The elector run, or the locker's acquire call, that acquired the lock,
/// so that a delayed stop-time release of one run, or the take-back of a
/// call's unanswered attempt, cannot free a later one's lock.
pub(crate) const RUN: &str = "run";
/// The holder's application metadata (a document, or null).
pub(crate) const METADATA: &str = "metadata";
/// Server time when the lock was last released (written by release).
pub(crate) const TS_RELEASED: &str = "ts_released";
/// Server time of a read, added by the read pipeline (never stored).
pub(crate) const SERVER_NOW: &str = "_server_now";
/// A lock as stored in MongoDB: who holds it, since when, until when.
///
/// Returned by [`MongoLocker::get_current`](crate::MongoLocker::get_current)
/// for a lock that is held and not expired in server time.
///
/// ```
/// # fn demo(locker: &mongoelector::MongoLocker) -> mongoelector::Result<()> {
/// if let Some(info) = locker.get_current()? {
///     println!("{} held by {}@{} (pid {}) until {}, fence {}",
///              info.key, info.uuid, info.host, info.pid, info.expires, info.fence);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LockInfo {
    /// The lock's key (the document's `_id`).
    pub key: String,
    /// The holder's owner identity (its [`MongoLocker::uuid`](crate::MongoLocker::uuid)).
    pub uuid: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// Server time at which the current holder acquired the lock.
    pub created: DateTime<Utc>,
    /// Server time at which the lock expires unless renewed.
    pub expires: DateTime<Utc>,
    /// The acquisition's fence token: greater than that of every earlier
    /// acquisition of this key.
    pub fence: i64,
    /// What the holder was configured with through
    /// [`LockerBuilder::metadata`](crate::LockerBuilder::metadata) (a
    /// locker) or [`ElectorBuilder::metadata`](crate::ElectorBuilder::metadata)
    /// (an elector, while it is master), exactly as given; `None` when it
    /// set none (or the holder is an older version of this crate).
    pub metadata: Option<Document>,
}

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

/// Reads fields of one document, naming the field in every error.
pub(crate) struct Reader<'a> {
    doc: &'a Document,
    collection: &'a str,
}

impl<'a> Reader<'a> {
    pub fn new(doc: &'a Document, collection: &'a str) -> Self {
        Reader { doc, collection }
    }

    pub fn malformed(&self, field: &'static str, reason: impl Into<String>) -> Error {
        Error::MalformedDocument {
            collection: self.collection.to_owned(),
            id: self.id_text(),
            field,
            reason: reason.into(),
        }
    }

    /// The document's `_id` as text, for messages.
    pub fn id_text(&self) -> String {
        self.doc
            .get(ID)
            .map(|id| match id {
                Bson::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "<no _id>".to_owned())
    }

    fn get(&self, field: &'static str) -> Result<&'a Bson> {
        self.doc
            .get(field)
            .ok_or_else(|| self.malformed(field, "is missing"))
    }

    pub fn wrong_type(&self, field: &'static str, want: &str, got: &Bson) -> Error {
        self.malformed(
            field,
            format!("should be {want}, found {:?}", got.element_type()),
        )
    }

    pub fn string(&self, field: &'static str) -> Result<String> {
        match self.get(field)? {
            Bson::String(s) => Ok(s.clone()),
            other => Err(self.wrong_type(field, "a string", other)),
        }
    }

    pub fn opt_string(&self, field: &'static str) -> Result<Option<String>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(_) => self.string(field).map(Some),
        }
    }

    pub fn bool(&self, field: &'static str) -> Result<bool> {
        match self.get(field)? {
            Bson::Boolean(b) => Ok(*b),
            other => Err(self.wrong_type(field, "a boolean", other)),
        }
    }

    pub fn date(&self, field: &'static str) -> Result<DateTime<Utc>> {
        match self.get(field)? {
            Bson::DateTime(d) => DateTime::from_timestamp_millis(d.timestamp_millis())
                .ok_or_else(|| self.malformed(field, "is out of chrono's date range")),
            other => Err(self.wrong_type(field, "a date", other)),
        }
    }

    pub fn opt_date(&self, field: &'static str) -> Result<Option<DateTime<Utc>>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(_) => self.date(field).map(Some),
        }
    }

    pub fn int(&self, field: &'static str) -> Result<i64> {
        match self.get(field)? {
            Bson::Int32(i) => Ok(i64::from(*i)),
            Bson::Int64(i) => Ok(*i),
            other => Err(self.wrong_type(field, "an integer", other)),
        }
    }

    pub fn opt_int(&self, field: &'static str) -> Result<Option<i64>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(_) => self.int(field).map(Some),
        }
    }

    pub fn opt_document(&self, field: &'static str) -> Result<Option<Document>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::Document(d)) => Ok(Some(d.clone())),
            Some(other) => Err(self.wrong_type(field, "a document", other)),
        }
    }

    pub fn pid(&self, field: &'static str) -> Result<u32> {
        let pid = self.int(field)?;
        u32::try_from(pid).map_err(|_| self.malformed(field, format!("is out of range: {pid}")))
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

/// The server time a read pipeline added to its answer.
pub(crate) fn server_now(doc: &Document, collection: &str) -> Result<DateTime<Utc>> {
    Reader::new(doc, collection).date(SERVER_NOW)
}

#[cfg(test)]
mod tests {
    use super::*;
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
