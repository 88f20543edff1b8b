//! What every coordination document shares: the field names of the Python
//! package's lock document that every family uses (plus `fence` and
//! `metadata`), the public [`LockInfo`] of one holder, and how a stored
//! document is read back into typed values, naming the field in every error.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document};

use crate::error::{Error, Result};

pub(crate) const ID: &str = "_id";
pub(crate) const UUID: &str = "uuid";
pub(crate) const HOST: &str = "host";
pub(crate) const PID: &str = "pid";
pub(crate) const TS_CREATED: &str = "ts_created";
pub(crate) const TS_EXPIRE: &str = "ts_expire";
pub(crate) const FENCE: &str = "fence";
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

/// The server time a read pipeline added to its answer.
pub(crate) fn server_now(doc: &Document, collection: &str) -> Result<DateTime<Utc>> {
    Reader::new(doc, collection).date(SERVER_NOW)
}
