//! [`FencedWrite`]: what became of one fenced write.

/// What became of a fenced write. Only `Applied` changed anything.
///
/// # Examples
///
/// ```no_run
/// use mongodb::bson::{doc, Document};
/// use mongoelector::{FencedWrite, MongoLocker};
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let guard = MongoLocker::new("report", &db)?.lock()?;
/// let reports = db.collection::<Document>("reports");
/// match guard.fenced(&reports).upsert_one(doc! { "_id": "daily" }, doc! { "$set": { "body": "..." } })? {
///     FencedWrite::Applied { upserted } => println!("written (created: {upserted})"),
///     FencedWrite::Stale { current } => println!("a newer holder (fence {current}) wrote first"),
///     FencedWrite::Expired => println!("the lease ended before the write reached the server"),
///     FencedWrite::NoMatch => println!("no document matched the filter"),
///     _ => {}
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a fenced write can be refused: look at the answer"]
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FencedWrite {
    /// The write changed the document (or, when `upserted`, created it),
    /// recording this fence.
    Applied {
        /// Whether the write created the document (upserts only).
        upserted: bool,
    },
    /// The document holds a higher fence: a newer holder wrote it. Nothing
    /// changed.
    Stale {
        /// The fence the document holds.
        current: i64,
    },
    /// The fence would have been accepted, but the lease it was given with
    /// had ended in server time when the write reached the server. Nothing
    /// changed.
    Expired,
    /// No document matched the filter (updates and replacements; an upsert
    /// creates one instead, and answers this only when other writers
    /// changed the document under it twice in a row). Nothing changed.
    NoMatch,
}

impl FencedWrite {
    /// Whether the write changed the document.
    ///
    /// ```
    /// use mongoelector::FencedWrite;
    /// assert!(FencedWrite::Applied { upserted: false }.applied());
    /// assert!(!FencedWrite::Stale { current: 9 }.applied());
    /// ```
    pub fn applied(&self) -> bool {
        matches!(self, FencedWrite::Applied { .. })
    }
}
