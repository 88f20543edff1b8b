//! The status collection: each node's report upserted by its own poll, and
//! the live reports of one election read back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::sync::{Collection, Database};
use mongodb::IndexModel;

use super::status::NodeStatus;
use crate::error::Result;
use crate::foundation::document::{Reader, ID};
use crate::foundation::expr::{literal, now_plus, unexpired};

const KEY: &str = "key";
const UUID: &str = "uuid";
const HOST: &str = "host";
const PID: &str = "pid";
const TTL: &str = "ttl";
const IS_MASTER: &str = "ismaster";
const RUNNING: &str = "running";
const LAST_POLL: &str = "last_poll";
const APP_VERSION: &str = "app_version";
const METADATA: &str = "metadata";
const TIMESTAMP: &str = "timestamp";
const FENCE: &str = "fence";
/// Server time after which the report no longer counts as a live member;
/// a TTL index deletes it a little later.
const TS_EXPIRE: &str = "ts_expire";

/// The status collection.
#[derive(Debug)]
pub(crate) struct StatusStore {
    coll: Collection<Document>,
    index_ready: AtomicBool,
}

impl StatusStore {
    pub fn new(db: &Database, collection: &str) -> Self {
        StatusStore {
            coll: db.collection(collection),
            index_ready: AtomicBool::new(false),
        }
    }

    /// The TTL index that prunes old reports; created once per elector (by
    /// `start` and by a direct `report_status`, never inside a poll).
    pub fn ensure_index(&self) -> Result<()> {
        if self.index_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let index = IndexModel::builder()
            .keys(doc! { TS_EXPIRE: 1 })
            .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
            .build();
        self.coll.create_index(index).run()?;
        self.index_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Upserts `status` (its `timestamp` is replaced by server time); it
    /// counts as live for `live_for`.
    pub fn report(&self, status: &NodeStatus, live_for: Duration) -> Result<()> {
        let set = doc! {
            KEY: literal(&status.key),
            UUID: literal(&status.uuid),
            HOST: literal(&status.host),
            PID: i64::from(status.pid),
            TTL: status.ttl.as_secs_f64(),
            IS_MASTER: status.is_master,
            RUNNING: status.running,
            LAST_POLL: status.last_poll.map(bson_date),
            APP_VERSION: status.app_version.as_deref().map(literal),
            METADATA: status.metadata.clone().map(|m| doc! { "$literal": m }),
            TIMESTAMP: "$$NOW",
            FENCE: status.fence,
            TS_EXPIRE: now_plus(live_for),
        };
        self.coll
            .update_one(doc! { ID: &status.uuid }, vec![doc! { "$set": set }])
            .upsert(true)
            .run()?;
        Ok(())
    }

    /// The live reports for `key`, newest first.
    pub fn members(&self, key: &str) -> Result<Vec<NodeStatus>> {
        let filter = doc! {
            KEY: key,
            "$expr": unexpired(TS_EXPIRE),
        };
        let cursor = self.coll.find(filter).sort(doc! { TIMESTAMP: -1 }).run()?;
        let mut members = Vec::new();
        for doc in cursor {
            members.push(self.parse(&doc?)?);
        }
        Ok(members)
    }

    fn parse(&self, doc: &Document) -> Result<NodeStatus> {
        let r = Reader::new(doc, self.coll.name());
        let ttl = match doc.get(TTL) {
            Some(Bson::Double(s)) => Duration::try_from_secs_f64(*s).ok(),
            Some(Bson::Int32(s)) => u64::try_from(*s).ok().map(Duration::from_secs),
            Some(Bson::Int64(s)) => u64::try_from(*s).ok().map(Duration::from_secs),
            _ => None,
        };
        let Some(ttl) = ttl else {
            return Err(r.malformed(TTL, "should be a non-negative number of seconds"));
        };
        let app_version = match doc.get(APP_VERSION) {
            None | Some(Bson::Null) => None,
            Some(_) => Some(r.string(APP_VERSION)?),
        };
        Ok(NodeStatus {
            key: r.string(KEY)?,
            uuid: r.string(UUID)?,
            host: r.string(HOST)?,
            pid: r.pid(PID)?,
            ttl,
            is_master: r.bool(IS_MASTER)?,
            running: r.bool(RUNNING)?,
            last_poll: r.opt_date(LAST_POLL)?,
            app_version,
            timestamp: r.date(TIMESTAMP)?,
            fence: r.opt_int(FENCE)?,
            metadata: r.opt_document(METADATA)?,
        })
    }
}

fn bson_date(d: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(d.timestamp_millis())
}
