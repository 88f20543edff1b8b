//! Status reports: each node's view of itself, upserted into the status
//! collection, and the cluster view read back from it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::sync::{Collection, Database};
use mongodb::IndexModel;

use crate::document::{LockInfo, Reader, ID};
use crate::error::Result;
use crate::store::literal;

/// Default status collection, as in the Python package.
pub const DEFAULT_STATUS_COLLECTION: &str = "elector.status";

const KEY: &str = "key";
const UUID: &str = "uuid";
const HOST: &str = "host";
const PID: &str = "pid";
const TTL: &str = "ttl";
const IS_MASTER: &str = "ismaster";
const RUNNING: &str = "running";
const LAST_POLL: &str = "last_poll";
const APP_VERSION: &str = "app_version";
const TIMESTAMP: &str = "timestamp";
const FENCE: &str = "fence";
/// Server time after which the report no longer counts as a live member;
/// a TTL index deletes it a little later.
const TS_EXPIRE: &str = "ts_expire";

/// One elector node's status, as it reports it (the Python package's
/// `node_status`, plus the fence).
///
/// ```no_run
/// # fn demo(elector: &mongoelector::MongoElector) -> mongoelector::Result<()> {
/// let me = elector.node_status()?;
/// println!("{}@{} master={} fence={:?}", me.uuid, me.host, me.is_master, me.fence);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// The election's key.
    pub key: String,
    /// The node's owner identity.
    pub uuid: String,
    /// The node's host name.
    pub host: String,
    /// The node's process id.
    pub pid: u32,
    /// The node's lease length.
    pub ttl: Duration,
    /// Whether the node was master (lease-aware) when it reported.
    pub is_master: bool,
    /// Whether the node's elector thread was running.
    pub running: bool,
    /// When the node last polled (its local clock).
    pub last_poll: Option<DateTime<Utc>>,
    /// The application version the node was built with, if given.
    pub app_version: Option<String>,
    /// When the report was written: server time for stored reports, the
    /// local clock for [`MongoElector::node_status`](crate::MongoElector::node_status).
    pub timestamp: DateTime<Utc>,
    /// The fence token of the node's acquisition while it is master.
    pub fence: Option<i64>,
}

/// The live members of one election and its master.
///
/// ```no_run
/// # fn demo(elector: &mongoelector::MongoElector) -> mongoelector::Result<()> {
/// let cluster = elector.cluster_detail()?;
/// for member in &cluster.members {
///     println!("{} master={}", member.uuid, member.is_master);
/// }
/// if let Some(master) = &cluster.master {
///     println!("master: {} (fence {}) until {}", master.uuid, master.fence, master.expires);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterDetail {
    /// Members whose last report is recent (ttl plus the retry interval),
    /// newest report first.
    pub members: Vec<NodeStatus>,
    /// The master, read from the lock document itself (never from a report,
    /// which may be stale): the live holder of the election's lock.
    pub master: Option<LockInfo>,
}

impl ClusterDetail {
    /// The master's own status report, when it is among the members.
    pub fn master_status(&self) -> Option<&NodeStatus> {
        let master = self.master.as_ref()?;
        self.members.iter().find(|m| m.uuid == master.uuid)
    }
}

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
        let live_ms = i64::try_from(live_for.as_millis()).unwrap_or(i64::MAX);
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
            TIMESTAMP: "$$NOW",
            FENCE: status.fence,
            TS_EXPIRE: { "$toDate": { "$add": [{ "$toLong": "$$NOW" }, live_ms] } },
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
            "$expr": { "$gt": [{ "$toLong": format!("${TS_EXPIRE}") }, { "$toLong": "$$NOW" }] },
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
        })
    }
}

fn bson_date(d: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(d.timestamp_millis())
}
