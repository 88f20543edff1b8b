//! [`ElectorStats`]: an elector's counters, for metrics and health checks.

use std::time::Instant;

/// An elector's counters, as [`MongoElector::stats`](crate::MongoElector::stats)
/// reads them (no I/O), for exporting as metrics.
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
/// let s = elector.stats();
/// println!("polls {} (failed {}), terms {}, master {}", s.polls, s.poll_failures, s.terms, s.is_master);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectorStats {
    /// Polls made (by the elector's thread and by manual
    /// [`poll`](crate::MongoElector::poll)s), whatever their outcome.
    pub polls: u64,
    /// Polls that failed (their round trip, or their status report).
    pub poll_failures: u64,
    /// Times this node became master.
    pub terms: u64,
    /// When the last poll whose round trip got an answer was made.
    pub last_success: Option<Instant>,
    /// Whether this node is master now (as
    /// [`is_master`](crate::MongoElector::is_master), without stepping down).
    pub is_master: bool,
}
