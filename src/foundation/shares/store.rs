//! Every database call of the many-holder primitives, one round trip each:
//! grant, touch, release, take back what a call left, read. Majority writes and
//! primary reads ([`safe_collection`]); the pipelines are in
//! [`super::pipeline`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use mongodb::options::ReturnDocument;
use mongodb::sync::{Collection, Database};

use crate::error::Result;
use crate::foundation::clock::ServerClock;
use crate::foundation::deployment::Deployment;
use crate::foundation::kind::Kind;
use crate::foundation::round_trips::{self, safe_collection};
use crate::foundation::shares::document::{parse_shares, Shares};
use crate::foundation::shares::grant::{self, Ask, Grantee};
use crate::foundation::shares::pipeline;
use crate::foundation::watch::Hub;

/// A collection of many-holder documents of one kind.
#[derive(Debug)]
pub(crate) struct ShareStore {
    deployment: Arc<Deployment>,
    coll: Collection<Document>,
    grace: Duration,
    kind: Kind,
}

impl ShareStore {
    pub fn new(db: &Database, collection: &str, grace: Duration, kind: Kind) -> Self {
        ShareStore {
            deployment: Deployment::of(db),
            coll: safe_collection(db, collection),
            grace,
            kind,
        }
    }

    /// A stored document of this store's kind, parsed; another kind's is
    /// [`Error::WrongKind`](crate::Error::WrongKind).
    fn parse(&self, doc: &Document) -> Result<Shares> {
        self.kind.check(doc, self.coll.name())?;
        parse_shares(doc, self.coll.name())
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    pub fn collection_name(&self) -> &str {
        self.coll.name()
    }

    /// The process's change stream hub for this collection.
    pub fn hub(&self) -> Arc<Hub> {
        Hub::for_collection(&self.deployment, self.coll.name())
    }

    fn check_once(&self) -> Result<()> {
        round_trips::check_once(&self.deployment, &self.coll, false)
    }

    /// One grant attempt: the document after it (which says whether
    /// `who.token` got an entry), `None` when a lost insert race left no
    /// answer.
    pub fn grant(&self, key: &str, ask: Ask, who: &Grantee<'_>) -> Result<Option<Shares>> {
        self.check_once()?;
        let pipeline = grant::grant_pipeline(ask, who);
        round_trips::upsert_after(&self.coll, key, || pipeline.clone())?
            .map(|doc| self.parse(&doc))
            .transpose()
    }

    /// Renews grant (`token`, `fence`) to `$$NOW + ttl` if it is still in
    /// the document and unexpired: its new expiry.
    pub fn touch(
        &self,
        key: &str,
        token: &str,
        fence: i64,
        ttl: Duration,
    ) -> Result<Option<DateTime<Utc>>> {
        let after = self
            .coll
            .find_one_and_update(
                pipeline::touch_filter(key, token, fence),
                pipeline::touch_update(token, fence, ttl),
            )
            .return_document(ReturnDocument::After)
            .run()?;
        let Some(doc) = after else {
            return Ok(None);
        };
        let shares = self.parse(&doc)?;
        Ok(shares
            .holders
            .iter()
            .find(|e| e.uuid == token && e.fence == fence)
            .map(|e| e.expires))
    }

    /// Removes grant (`token`, `fence`): true when it was still there.
    pub fn release(&self, key: &str, token: &str, fence: i64) -> Result<bool> {
        let result = self
            .coll
            .update_one(
                pipeline::release_filter(key, token, fence),
                pipeline::release_update(token, fence),
            )
            .run()?;
        Ok(result.matched_count > 0)
    }

    /// Removes grant `token`'s entry and intent to write, if either is in
    /// the document.
    pub fn take_back(&self, key: &str, token: &str) -> Result<()> {
        self.coll
            .update_one(
                pipeline::take_back_filter(key, token),
                pipeline::take_back_update(token),
            )
            .run()?;
        Ok(())
    }

    /// The document and the server's clock, read together. `None` when
    /// there is no document.
    pub fn read(&self, key: &str) -> Result<Option<(Shares, DateTime<Utc>)>> {
        self.check_once()?;
        round_trips::read_with_server_now(&self.coll, key)?
            .map(|(doc, now)| Ok((self.parse(&doc)?, now)))
            .transpose()
    }
}

impl ServerClock for ShareStore {
    fn server_clock(&self) -> Result<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
        round_trips::server_clock(self.deployment.database())
    }
}
