//! The round trips every family of documents makes, and how: majority,
//! journaled writes and majority reads from the primary on every
//! collection ([`safe_collection`]), the first-use checks once per
//! deployment and collection, one conditional upsert with its insert race
//! ridden through, a read together with the server's clock, and the
//! server's clock alone.

use std::time::Instant;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{
    Acknowledgment, CollectionOptions, ReadConcern, ReadPreference, ReturnDocument,
    SelectionCriteria, WriteConcern,
};
use mongodb::sync::{Collection, Database};

use crate::error::{is_duplicate_key, Result};
use crate::foundation::deployment::Deployment;
use crate::foundation::document::{server_now, Reader, ID, SERVER_NOW};
use crate::foundation::preflight;

/// How often an acquire attempt is repeated at once after losing an insert
/// race (E11000, or the null answer some servers give the loser).
const RACE_RETRIES: usize = 3;

/// Majority, journaled writes; majority reads from the primary. Set on the
/// collection, whatever the caller's `Database` carries, so that a lock
/// write cannot be rolled back by a failover.
pub(crate) fn safe_collection(db: &Database, name: &str) -> Collection<Document> {
    let options = CollectionOptions::builder()
        .write_concern(majority_write())
        .read_concern(ReadConcern::majority())
        .selection_criteria(primary())
        .build();
    db.collection_with_options(name, options)
}

/// Majority, journaled: a write that a failover cannot roll back.
pub(crate) fn majority_write() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build()
}

/// Reads from the primary.
pub(crate) fn primary() -> SelectionCriteria {
    SelectionCriteria::ReadPreference(ReadPreference::Primary)
}

/// The first-use checks of `coll`, until they pass once for this
/// deployment and collection, whichever store of the process runs them (an
/// unreachable server fails them and they run again next time).
pub(crate) fn check_once(
    deployment: &Deployment,
    coll: &Collection<Document>,
    python_compatible: bool,
) -> Result<()> {
    let name = coll.name();
    if deployment.checked(name) {
        return Ok(());
    }
    preflight::check(deployment.database(), coll, python_compatible)?;
    deployment.mark_checked(name);
    Ok(())
}

/// One conditional upsert of `key`'s document by the pipeline that
/// `pipeline` gives (once per attempt: the driver takes it by value): the document
/// after it. `None` only when a lost insert race left no answer even after
/// [`RACE_RETRIES`] immediate retries (E11000, or the null answer some
/// servers give the loser): the caller reads that as "not granted".
pub(crate) fn upsert_after(
    coll: &Collection<Document>,
    key: impl Into<Bson>,
    mut pipeline: impl FnMut() -> Vec<Document>,
) -> Result<Option<Document>> {
    let key = key.into();
    for attempt in 1..=RACE_RETRIES {
        let result = coll
            .find_one_and_update(doc! { ID: key.clone() }, pipeline())
            .upsert(true)
            .return_document(ReturnDocument::After)
            .run();
        match result {
            Ok(Some(doc)) => return Ok(Some(doc)),
            // Lost the race to create the document: it exists now, look again.
            Ok(None) => log::debug!("acquire `{key}`: empty answer (attempt {attempt})"),
            Err(e) if is_duplicate_key(&e) => {
                log::debug!("acquire `{key}`: E11000 (attempt {attempt})")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// `key`'s document with the server's clock (`$$NOW`), read together in
/// one round trip: `None` when there is no document.
pub(crate) fn read_with_server_now(
    coll: &Collection<Document>,
    key: &str,
) -> Result<Option<(Document, DateTime<Utc>)>> {
    let pipeline = vec![
        doc! { "$match": { ID: key } },
        doc! { "$addFields": { SERVER_NOW: "$$NOW" } },
    ];
    let mut cursor = coll.aggregate(pipeline).run()?;
    let Some(doc) = cursor.next().transpose()? else {
        return Ok(None);
    };
    let now = server_now(&doc, coll.name())?;
    Ok(Some((doc, now)))
}

/// The server's clock from `hello` on the primary, with the local wall
/// clock just before and after asking.
pub(crate) fn server_clock(db: &Database) -> Result<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
    let before = Utc::now();
    let started = Instant::now();
    let reply = db
        .run_command(doc! { "hello": 1 })
        .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        .run()?;
    let after = before + started.elapsed();
    let server = Reader::new(&reply, "$cmd").date("localTime")?;
    Ok((before, after, server))
}
