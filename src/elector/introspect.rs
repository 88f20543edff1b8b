//! The read-only half of [`MongoElector`]'s API: who is master (now, and
//! as it changes), the election's members, this node's status, counters and
//! health.

use std::time::Duration;

use super::handle::MongoElector;
use super::observer::MasterReceiver;
use super::stats::ElectorStats;
use super::status::{ClusterDetail, NodeStatus};
use crate::error::{During, Result};

impl MongoElector {
    /// Whether any node (this one or another) holds the election lock now,
    /// in server time.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// if !elector.master_exists()? {
    ///     println!("no master right now");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn master_exists(&self) -> Result<bool> {
        self.engine()
            .master_exists()
            .during("master_exists", self.key())
    }

    /// This node's status, from local state (no I/O; `timestamp` is the
    /// local clock). The `Result` keeps the Python package's shape.
    ///
    /// # Errors
    ///
    /// None at present.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let me = elector.node_status()?;
    /// assert_eq!(me.uuid, elector.uuid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn node_status(&self) -> Result<NodeStatus> {
        Ok(self.engine().node_status())
    }

    /// The election's live members (recent status reports, newest first)
    /// and its master, read from the lock document itself.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let cluster = elector.cluster_detail()?;
    /// println!("{} members, master {:?}", cluster.members.len(), cluster.master.map(|m| m.uuid));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cluster_detail(&self) -> Result<ClusterDetail> {
        self.engine()
            .cluster_detail()
            .during("cluster_detail", self.key())
    }

    /// Upserts this node's status into the status collection now (each poll
    /// does this when status reporting is on). One write; the first also
    /// creates the TTL index that prunes old reports.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.report_status()?;
    /// assert_eq!(elector.cluster_detail()?.members.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn report_status(&self) -> Result<()> {
        self.engine()
            .report_status_now()
            .during("report_status", self.key())
    }

    /// A receiver of who is master: the current master first (`None` when
    /// there is none), then one message per change of master: another node
    /// took over (a new fence), the master released (`None`), or its lease
    /// expired in server time (`None`). Renewals by the same master are not
    /// changes. It works whether or not this elector campaigns: an elector
    /// that is never started is a pure observer.
    ///
    /// One thread per elector serves every receiver. It looks at the lock
    /// when the process's change stream says it changed and when the
    /// master's lease would run out (expiry makes no change event), and at
    /// the retry interval when there is no live stream; so a change reaches
    /// receivers within milliseconds on a replica set. The thread ends, and
    /// its reads stop, when the elector is dropped, or within one retry
    /// interval after the last [`MasterReceiver`] (and its clones) is
    /// dropped. Messages queue unread without bound, one per change.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let watcher = mongoelector::MongoElector::new("scheduler", &db)?; // never started
    /// for master in watcher.observe().iter() {
    ///     match master {
    ///         Some(m) => println!("master: {} (fence {})", m.host, m.fence),
    ///         None => println!("no master"),
    ///     }
    ///     # break;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn observe(&self) -> MasterReceiver {
        self.engine().observe()
    }

    /// This elector's counters: polls, failed polls, terms as master, the
    /// last poll that got an answer, and whether it is master. No I/O.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let s = elector.stats();
    /// println!("polls_total {} poll_failures_total {} terms_total {}", s.polls, s.poll_failures, s.terms);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> ElectorStats {
        self.engine().stats()
    }

    /// For a liveness probe: the elector is running, and its last poll
    /// that got an answer is no older than its current poll interval (the
    /// pause its thread chose after that poll) plus `tolerance`. No I/O:
    /// cheap enough for every probe. It turns false when the database stops
    /// answering (frozen, unreachable) for longer than that, and true again
    /// with the first answered poll.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.start(false)?;
    /// let ok = elector.healthy(Duration::from_secs(5)); // answer 200 or 503
    /// # let _ = ok;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn healthy(&self, tolerance: Duration) -> bool {
        self.engine().healthy(tolerance)
    }
}
