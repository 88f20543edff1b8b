//! The status types: one node's report of itself ([`NodeStatus`]) and the
//! cluster view ([`ClusterDetail`]). Stored and read by `status_store`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::foundation::document::LockInfo;

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
    /// The node's metadata ([`ElectorBuilder::metadata`](crate::ElectorBuilder::metadata)), if any.
    pub metadata: Option<mongodb::bson::Document>,
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
    /// Members whose last report is recent (three ttls: a running node
    /// reports on each change of role and every ttl or two),
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
