//! Every live lock of a collection, for tools that survey a whole
//! collection rather than one key (the command-line tool's `list`).

use mongodb::bson::{doc, Document};
use mongodb::sync::Database;

use crate::error::{During, Result};
use crate::foundation::document::{server_now, LockInfo, ID, SERVER_NOW};
use crate::foundation::round_trips::safe_collection;
use crate::foundation::single::document::{parse_lock, LOCKED};
use crate::foundation::validate;

/// Every lock in `collection` that is held now (taken and not expired in
/// server time), whoever holds it, sorted by key: locks and elections
/// alike, since an elector's master holds the election's lock.
///
/// One read, from the primary with majority read concern, as every read of
/// the crate; the server's clock comes back with the documents, so the
/// client's clock does not matter. Free and expired locks are left out.
///
/// # Errors
///
/// - [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming
///   `collection` when the name cannot be a collection's.
/// - [`Error::MalformedDocument`](crate::Error::MalformedDocument): a
///   document marked locked does not have the shape this crate writes (it
///   names the document and the field).
/// - [`Error::Database`](crate::Error::Database) with the operation
///   `live_locks` and the collection's name in place of a key.
///
/// # Examples
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// for lock in mongoelector::live_locks(&db, mongoelector::limits::DEFAULT_LOCK_COLLECTION)? {
///     println!("{} held by {} (pid {}), fence {}, until {}",
///              lock.key, lock.host, lock.pid, lock.fence, lock.expires);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn live_locks(db: &Database, collection: &str) -> Result<Vec<LockInfo>> {
    validate::collection("collection", collection)?;
    read_live(db, collection).during("live_locks", collection)
}

fn read_live(db: &Database, collection: &str) -> Result<Vec<LockInfo>> {
    let pipeline = vec![
        doc! { "$match": { LOCKED: true } },
        doc! { "$addFields": { SERVER_NOW: "$$NOW" } },
        doc! { "$sort": { ID: 1 } },
    ];
    let docs = safe_collection(db, collection)
        .aggregate(pipeline)
        .run()?
        .collect::<std::result::Result<Vec<Document>, _>>()?;
    let mut live = Vec::with_capacity(docs.len());
    for doc in &docs {
        let now = server_now(doc, collection)?;
        live.extend(parse_lock(doc, collection)?.live_at(now));
    }
    Ok(live)
}
