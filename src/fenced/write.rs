//! The database calls of a fenced write: one round trip when it is
//! applied; a look at the document only when it was not, to say why.

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ReadConcern, UpdateModifications};
use mongodb::results::UpdateResult;
use mongodb::sync::Collection;

use super::outcome::FencedWrite;
use super::pipeline::{self, Refusal, Seen, GUARD_CODE};
use crate::error::{has_code, is_duplicate_key, Error, Result};
use crate::foundation::round_trips::{majority_write, primary};

/// How often an upsert that lost a race to create its document is sent.
const UPSERT_TRIES: usize = 2;

/// Where and with what a fenced write writes.
pub(crate) struct Target {
    pub coll: Collection<Document>,
    pub field: String,
    pub fence: i64,
    /// The lease's server expiry, in milliseconds, when there is one.
    pub expires_ms: Option<i64>,
}

impl Target {
    fn filter(&self, user: &Document, with_expiry: bool) -> Document {
        let expires = self.expires_ms.filter(|_| with_expiry);
        pipeline::filter(user.clone(), &self.field, self.fence, expires)
    }

    fn run(
        &self,
        filter: Document,
        update: UpdateModifications,
        upsert: bool,
    ) -> mongodb::error::Result<UpdateResult> {
        self.coll
            .update_one(filter, update)
            .upsert(upsert)
            .write_concern(majority_write())
            .run()
    }

    pub fn update(&self, filter: Document, update: UpdateModifications) -> Result<FencedWrite> {
        let update = pipeline::update(update, &self.field, self.fence, None, false)?;
        let done = self.run(self.filter(&filter, true), update, false)?;
        self.verdict(&filter, &done)
    }

    pub fn replace(&self, filter: Document, mut replacement: Document) -> Result<FencedWrite> {
        replacement.insert(&self.field, self.fence);
        let done = self
            .coll
            .replace_one(self.filter(&filter, true), replacement)
            .write_concern(majority_write())
            .run()?;
        self.verdict(&filter, &done)
    }

    /// An upsert. Without a lease, or with a pipeline (which starts with a
    /// stage that fails once the lease ended, the insert included), one
    /// round trip. With a lease and update operators, one round trip when
    /// the document exists; a missing one is first created with a guarded
    /// pipeline (the filter's fields and the fence), then updated.
    pub fn upsert(&self, filter: Document, update: UpdateModifications) -> Result<FencedWrite> {
        pipeline::pinned_id(&filter)?;
        let operators = matches!(update, UpdateModifications::Document(_));
        match self.expires_ms {
            Some(expires) if operators => self.upsert_in_steps(filter, update, expires),
            guard => {
                let update = pipeline::update(update, &self.field, self.fence, guard, false)?;
                // A lost race to create the document is tried again once.
                for _ in 0..UPSERT_TRIES {
                    let done = self.run(self.filter(&filter, false), update.clone(), true);
                    if let Some(answer) = self.settle(&filter, done)? {
                        return Ok(answer);
                    }
                }
                Ok(FencedWrite::NoMatch)
            }
        }
    }

    fn upsert_in_steps(
        &self,
        filter: Document,
        update: UpdateModifications,
        expires: i64,
    ) -> Result<FencedWrite> {
        let plain = pipeline::update(update.clone(), &self.field, self.fence, None, false)?;
        let done = self.run(self.filter(&filter, true), plain, false)?;
        if done.matched_count > 0 {
            return Ok(FencedWrite::Applied { upserted: false });
        }
        if self.look(&filter)?.is_some() {
            return self.verdict(&filter, &done);
        }
        let create = pipeline::create(&self.field, self.fence, expires);
        let done = self.run(self.filter(&filter, false), create.into(), true);
        let created = match &done {
            Ok(r) => r.upserted_id.is_some(),
            // Created by someone else meanwhile: update it as it is.
            Err(e) if is_duplicate_key(e) => false,
            Err(_) => return Ok(self.settle(&filter, done)?.unwrap_or(FencedWrite::NoMatch)),
        };
        let folded = pipeline::update(update, &self.field, self.fence, None, created)?;
        let done = self.run(self.filter(&filter, true), folded, false)?;
        if done.matched_count > 0 {
            return Ok(FencedWrite::Applied { upserted: created });
        }
        self.verdict(&filter, &done)
    }

    /// An upsert's answer: applied, or refused (a duplicate key: the
    /// document exists with a higher fence; the guard: the lease ended).
    /// `None` when it lost a race to create the document and nothing
    /// tells why: worth one more try.
    fn settle(
        &self,
        filter: &Document,
        done: mongodb::error::Result<UpdateResult>,
    ) -> Result<Option<FencedWrite>> {
        let guard = match &done {
            Ok(r) if r.upserted_id.is_some() => {
                return Ok(Some(FencedWrite::Applied { upserted: true }))
            }
            Ok(r) if r.matched_count > 0 => {
                return Ok(Some(FencedWrite::Applied { upserted: false }))
            }
            // Some servers answer a lost insert race with nothing.
            Ok(_) => false,
            Err(e) if is_duplicate_key(e) => false,
            Err(e) if guard_fired(e) => true,
            Err(_) => return done.map(|_| None).map_err(Error::from),
        };
        Ok(match self.refusal(filter)? {
            Some(Refusal::Stale(current)) => Some(FencedWrite::Stale { current }),
            Some(Refusal::Expired) => Some(FencedWrite::Expired),
            _ if guard => Some(FencedWrite::Expired),
            _ => None,
        })
    }

    /// The answer to an update or replacement.
    fn verdict(&self, filter: &Document, done: &UpdateResult) -> Result<FencedWrite> {
        if done.matched_count > 0 {
            return Ok(FencedWrite::Applied { upserted: false });
        }
        Ok(match self.refusal(filter)? {
            Some(Refusal::Stale(current)) => FencedWrite::Stale { current },
            Some(Refusal::Expired) => FencedWrite::Expired,
            // No document, or one that changed between the write and the
            // look: nothing matched when the write ran.
            Some(Refusal::Accepted) | None => FencedWrite::NoMatch,
        })
    }

    /// Why nothing matched, from one look; `None` when no document matches
    /// the user's filter.
    fn refusal(&self, filter: &Document) -> Result<Option<Refusal>> {
        let Some(seen) = self.look(filter)? else {
            return Ok(None);
        };
        pipeline::refusal(self.fence, self.expires_ms, &seen)
            .map(Some)
            .map_err(|bad| Error::MalformedDocument {
                collection: self.coll.name().to_owned(),
                id: seen.id.to_string(),
                field: "field",
                reason: format!("`{}` holds {bad}, not an integer fence", self.field),
            })
    }

    /// The first document the user's filter matches: its fence, with the
    /// server's clock; from the primary, majority read.
    fn look(&self, filter: &Document) -> Result<Option<Seen>> {
        let pipeline = vec![
            doc! { "$match": filter.clone() },
            doc! { "$limit": 1 },
            doc! { "$project": { "_id": 1, "f": format!("${}", self.field), "now": { "$toLong": "$$NOW" } } },
        ];
        let mut cursor = self
            .coll
            .aggregate(pipeline)
            .selection_criteria(primary())
            .read_concern(ReadConcern::majority())
            .run()?;
        let Some(found) = cursor.next().transpose()? else {
            return Ok(None);
        };
        Ok(Some(Seen {
            id: found.get("_id").cloned().unwrap_or(Bson::Null),
            stored: found.get("f").cloned(),
            now_ms: found.get_i64("now").unwrap_or(i64::MIN),
        }))
    }
}

/// Whether the write failed on the guard stage: the lease had ended.
fn guard_fired(e: &mongodb::error::Error) -> bool {
    has_code(e, GUARD_CODE)
}
