//! [`Fenced`]: writes to the user's own documents that a holder with a
//! lower fence (or, given a lease, a holder whose lease has ended in server
//! time) cannot land.
//!
//! - `pipeline`: the filter, the update and the verdict, as pure functions;
//! - `write`: the database calls;
//! - `outcome`: [`FencedWrite`].

mod outcome;
mod pipeline;
mod write;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use mongodb::options::UpdateModifications;
use mongodb::sync::Collection;
use serde::Serialize;

pub use outcome::FencedWrite;
use write::Target;

use crate::error::{During, Error, Result};
use crate::foundation::tenure::LeaseView;
use crate::foundation::validate;
use crate::limits::DEFAULT_FENCE_FIELD;

/// Where a fenced write learns its lease's server expiry, read at each
/// write (a renewed lease moves it).
#[derive(Clone)]
enum Lease {
    /// Fence only.
    None,
    /// A fixed expiry ([`Fenced::until`]).
    Until(DateTime<Utc>),
    /// The holder's own lease (a guard's, an elector term's): its current
    /// expiry, and whether it is still in force.
    Live(Arc<dyn LeaseView>),
}

/// Writes to one collection under one fence: each write is applied only
/// when the document's fence field is absent or not greater than this
/// fence, and records this fence in it. With a lease (through
/// [`LockGuard::fenced`](crate::LockGuard::fenced),
/// [`MongoElector::fenced`](crate::MongoElector::fenced) or
/// [`until`](Self::until)), a write that reaches the server once the lease
/// has expired in server time is refused too.
///
/// A handle made from a guard or a term ([`LockGuard::fenced`](crate::LockGuard::fenced),
/// the same method on [`Permit`](crate::Permit), [`ReadGuard`](crate::ReadGuard)
/// and [`WriteGuard`](crate::WriteGuard), [`MongoElector::fenced`](crate::MongoElector::fenced))
/// ends with it: once the guard is released or dropped, its lease lost or
/// past its local deadline, or the elector stopped, stepped down, released
/// or no longer master under that fence, every write is
/// [`FencedWrite::Expired`] at once, with no round trip. What no handle can
/// take back is a write already sent: it lands if it reaches the server
/// before the lease's expiry in server time and finds no higher fence,
/// even when its holder has released since and a successor, granted but
/// not yet written, is about to (the successor's first write fences it
/// out from then on).
///
/// One round trip when the write is applied; a refused write costs one more
/// (a read that tells [`FencedWrite::Stale`] from the others). Writes use
/// majority, journaled write concern, whatever the collection carries.
///
/// A filter that matches several documents writes the first one (in the
/// server's order) whose fence allows it: a stale holder's filter can land
/// on a document its successor has not touched yet, while the successor
/// works on another. For a resource that one holder at a time owns, filter
/// on its `_id`.
///
/// There is no fenced delete: a deleted document forgets its fence, after
/// which a stale upsert could create it again. Mark the document deleted
/// with a fenced update instead (`{"$set": {"deleted": true}}`), and let a
/// TTL index or a later cleanup remove it.
///
/// # Examples
///
/// ```no_run
/// use mongodb::bson::{doc, Document};
/// use mongoelector::{FencedWrite, MongoLocker};
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let locker = MongoLocker::new("report", &db)?;
/// let guard = locker.lock()?;
/// let reports = db.collection::<Document>("reports");
/// let written = guard
///     .fenced(&reports)
///     .upsert_one(doc! { "_id": "daily" }, doc! { "$set": { "body": "..." } })?;
/// if !written.applied() {
///     eprintln!("not written: {written:?}"); // a newer holder, or the lease ended
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a Fenced does nothing until one of its writes is called"]
pub struct Fenced<'a, T: Send + Sync> {
    coll: &'a Collection<T>,
    fence: i64,
    field: String,
    /// A bad [`field`](Self::field), reported by every write.
    bad_field: Option<Error>,
    lease: Lease,
}

impl<'a, T: Send + Sync> Fenced<'a, T> {
    /// Writes to `coll` under `fence`, checking the fence alone (no lease):
    /// for a fence from anywhere (a guard's, a term's from
    /// [`Event::BecameMaster`](crate::Event::BecameMaster), one passed to
    /// another process). Add [`until`](Self::until) to refuse writes after
    /// the lease's expiry too.
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let jobs = db.collection::<Document>("jobs");
    /// let fence = 42; // handed over by the process that holds the lock
    /// let written = mongoelector::Fenced::new(&jobs, fence)
    ///     .update_one(doc! { "_id": "nightly" }, doc! { "$set": { "state": "done" } })?;
    /// println!("{written:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(coll: &'a Collection<T>, fence: i64) -> Self {
        Fenced {
            coll,
            fence,
            field: DEFAULT_FENCE_FIELD.to_owned(),
            bad_field: None,
            lease: Lease::None,
        }
    }

    /// A fenced write under the holder's own lease, read at each write: a
    /// write once it is no longer in force is refused without a round trip.
    pub(crate) fn live(coll: &'a Collection<T>, fence: i64, lease: Arc<dyn LeaseView>) -> Self {
        Fenced {
            lease: Lease::Live(lease),
            ..Fenced::new(coll, fence)
        }
    }

    /// The field of the user's documents that records the highest fence
    /// written (default [`DEFAULT_FENCE_FIELD`](crate::limits::DEFAULT_FENCE_FIELD), `"fence"`): one top-level
    /// field name. An empty name, one starting with `$`, a dotted path or a
    /// NUL makes every write fail with [`Error::InvalidArgument`] naming
    /// `field`.
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let jobs = db.collection::<Document>("jobs");
    /// let fenced = mongoelector::Fenced::new(&jobs, 7).field("writer_fence");
    /// assert_eq!(fenced.field_name(), "writer_fence");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn field(mut self, name: &str) -> Self {
        self.bad_field = validate::field_name("field", name).err();
        self.field = name.to_owned();
        self
    }

    /// Also refuse writes that reach the server at or after `expires`, in
    /// server time (a lease's [`expires_at`](crate::LockGuard::expires_at),
    /// handed to another process with its fence): such a write is
    /// [`FencedWrite::Expired`].
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let jobs = db.collection::<Document>("jobs");
    /// let (fence, expires) = (42, chrono::Utc::now()); // handed over with the work
    /// let written = mongoelector::Fenced::new(&jobs, fence)
    ///     .until(expires)
    ///     .update_one(doc! { "_id": "nightly" }, doc! { "$set": { "state": "done" } })?;
    /// println!("{written:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn until(mut self, expires: DateTime<Utc>) -> Self {
        self.lease = Lease::Until(expires);
        self
    }

    /// The fence the writes carry.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let jobs = db.collection::<mongodb::bson::Document>("jobs");
    /// assert_eq!(mongoelector::Fenced::new(&jobs, 7).fence(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// The field the fence is recorded in.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let jobs = db.collection::<mongodb::bson::Document>("jobs");
    /// assert_eq!(mongoelector::Fenced::new(&jobs, 7).field_name(), "fence");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn field_name(&self) -> &str {
        &self.field
    }

    /// The lease's server expiry now, if there is a lease.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match &self.lease {
            Lease::None => None,
            Lease::Until(at) => Some(*at),
            Lease::Live(lease) => Some(lease.expires()),
        }
    }

    /// Whether the holder's own lease has ended (released or dropped,
    /// lost, stepped down, past its local deadline): then every write is
    /// [`FencedWrite::Expired`] at once, with no round trip.
    fn ended(&self) -> bool {
        matches!(&self.lease, Lease::Live(lease) if !lease.in_force())
    }

    /// Applies `update` (update operators, or a pipeline) to the first
    /// document matching `filter` whose fence is absent or not greater
    /// (and the lease, if any, has not expired in server time), setting
    /// the fence field. Filter on `_id` for a resource one holder owns:
    /// with several matches, the first one the fence allows is written.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming `field` or `update` (a replacement
    /// document, an empty one); [`Error::Database`];
    /// [`Error::MalformedDocument`] when a refused write finds a fence
    /// field that is not an integer.
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let guard = mongoelector::MongoLocker::new("jobs", &db)?.lock()?;
    /// let jobs = db.collection::<Document>("jobs");
    /// // Operators, or a pipeline (here with the server's clock):
    /// let a = guard.fenced(&jobs).update_one(doc! { "_id": 1 }, doc! { "$inc": { "runs": 1 } })?;
    /// let b = guard.fenced(&jobs).update_one(doc! { "_id": 1 }, vec![doc! { "$set": { "at": "$$NOW" } }])?;
    /// println!("{a:?} {b:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_one(
        &self,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> Result<FencedWrite> {
        let update = update.into();
        self.write("fenced update_one", |t| t.update(filter, update))
    }

    /// As [`update_one`](Self::update_one), creating the document when none
    /// matches `filter` (it gets the filter's equality fields, the update
    /// and the fence). `filter` must pin `_id` to one plain value (no
    /// operator other than `$eq`, no regular expression, array or `$` key
    /// inside it), so that a stale upsert meets the existing document and
    /// is refused, never creates a second. With a lease, a missing document is created only before the
    /// lease's expiry too; with update operators (not a pipeline) that
    /// takes up to three round trips the first time (create with the
    /// filter's fields and the fence, then update), one after.
    ///
    /// # Errors
    ///
    /// As [`update_one`](Self::update_one), and [`Error::InvalidArgument`]
    /// naming `filter` when it does not pin `_id`.
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let guard = mongoelector::MongoLocker::new("jobs", &db)?.lock()?;
    /// let jobs = db.collection::<Document>("jobs");
    /// let written = guard.fenced(&jobs).upsert_one(doc! { "_id": "nightly" }, doc! { "$set": { "state": "running" } })?;
    /// println!("{written:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upsert_one(
        &self,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> Result<FencedWrite> {
        let update = update.into();
        self.write("fenced upsert_one", |t| t.upsert(filter, update))
    }

    /// Replaces the first document matching `filter` with `replacement`
    /// (the fence field set on it), under the same conditions as
    /// [`update_one`](Self::update_one).
    ///
    /// # Errors
    ///
    /// As [`update_one`](Self::update_one), and [`Error::InvalidArgument`]
    /// naming `replacement` when it does not serialize to a document.
    ///
    /// ```no_run
    /// use mongodb::bson::doc;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Job { _id: String, state: String, fence: i64 }
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let guard = mongoelector::MongoLocker::new("jobs", &db)?.lock()?;
    /// let jobs = db.collection::<Job>("jobs");
    /// let job = Job { _id: "nightly".into(), state: "done".into(), fence: 0 }; // fence is set for you
    /// let written = guard.fenced(&jobs).replace_one(doc! { "_id": "nightly" }, job)?;
    /// println!("{written:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace_one(&self, filter: Document, replacement: T) -> Result<FencedWrite>
    where
        T: Serialize,
    {
        let replacement = mongodb::bson::to_document(&replacement)
            .map_err(|e| Error::invalid("replacement", format!("is not a document: {e}")))?;
        self.write("fenced replace_one", |t| t.replace(filter, replacement))
    }

    /// Runs one write on the target, naming the operation and the
    /// collection in a database error.
    fn write(
        &self,
        operation: &'static str,
        f: impl FnOnce(Target) -> Result<FencedWrite>,
    ) -> Result<FencedWrite> {
        let target = self.target().during(operation, self.coll.name())?;
        if self.ended() {
            return Ok(FencedWrite::Expired);
        }
        f(target).during(operation, self.coll.name())
    }

    fn target(&self) -> Result<Target> {
        if let Some(e) = &self.bad_field {
            return Err(e.clone());
        }
        Ok(Target {
            coll: self.coll.clone_with_type::<Document>(),
            field: self.field.clone(),
            fence: self.fence,
            expires_ms: self.expires_at().map(|at| at.timestamp_millis()),
        })
    }
}

impl<T: Send + Sync> fmt::Debug for Fenced<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fenced")
            .field("collection", &self.coll.name())
            .field("fence", &self.fence)
            .field("field", &self.field)
            .field("expires_at", &self.expires_at())
            .finish()
    }
}
