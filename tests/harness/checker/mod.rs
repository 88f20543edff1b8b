//! The history checker: reads the logs that `examples/worker/` (and
//! `tests/python/worker.py`) append, with what the recorder and the auditor
//! (`tests/harness/recorder/`) saw on the server, and reports every
//! violation of the primitives' guarantees. The rules, by family:
//!
//! - `lock.rs`: one holder at a time for locks and terms (overlaps, a
//!   fence held twice, fences growing in start order);
//! - `shares.rs`: at most N permits, a writer alone, share fences unique
//!   and in grant order;
//! - `checks.rs`: acting while not entitled (a valid check at or after the
//!   deadline, after a loss, or after an invalid check; valid checks count
//!   as acting in the rules above);
//! - `writes.rs`: fenced writes (a lower fence after a higher one; the
//!   grant rule, by commit order or provable takeover; caps on what is not
//!   known);
//! - `audit.rs`: the resource's own write log (fences in order, the
//!   workers' answers true, no hole);
//! - `order.rs`: the commit order (fences granted in increasing order);
//! - `fairness.rs`: the fair queue (no grant passes over a live waiter
//!   ahead of it in the server's queue).
//!
//! A write sent after its holder's local deadline (paused between the check
//! and the send) is counted, refused or not: the server decides, and the
//! grant rule judges what it applied.
#![allow(dead_code)]

mod audit;
mod checks;
mod fairness;
mod lock;
pub mod order;
mod parse;
mod shares;
pub mod writes;

#[cfg(test)]
mod tests;

#[allow(unused_imports)]
pub use parse::{Check, Commit, Grant, Held, History, Logged, Loss, Release, Section, Seen, Write};

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub lock_sections: usize,
    pub master_terms: usize,
    pub writes: usize,
    pub rejected_writes: usize,
    /// Writes (not probes) that got no answer (`result=error`, outcome
    /// unknown; counted among the rejected too).
    pub unanswered_writes: usize,
    pub probes: usize,
    pub probes_rejected: usize,
    /// Writes sent at or after their holder's local deadline (not probes).
    pub late_sends: usize,
    pub late_sends_rejected: usize,
    /// Validity checks logged.
    pub checks: usize,
    /// Accepted writes, and grants, whose server time is not known; grants
    /// whose time came from the recorder or the auditor.
    pub unknown_write_times: usize,
    pub unknown_grants: usize,
    pub filled_grants: usize,
    /// The grant rule: writes judged against a takeover in commit order,
    /// ordered by their holder's release in commit order, judged as a
    /// provable takeover without it, left unjudged (ordered by release,
    /// as far as the workers' clocks tell), and grants whose time is not
    /// known.
    pub grant_judged_commit: usize,
    pub grant_ordered_commit: usize,
    pub grant_judged_alone: usize,
    pub grant_unjudged: usize,
    pub grant_unknown_time: usize,
    /// Pairs that server time alone would flag (no release ordering), and
    /// how many of them had the release first in commit order.
    pub server_time_pairs: usize,
    pub server_time_pairs_release_first: usize,
    /// The resource's own log: audited at all, its entries, and those no
    /// worker saw answered as applied.
    pub audited: bool,
    pub logged_writes: usize,
    pub unanswered_applied: usize,
    /// Writes the driver retried that the test server ran again (applied
    /// twice, or answered refused though the first attempt was applied).
    pub retries_run_again: usize,
    /// Change events recorded, and holes in the stream.
    pub commit_events: usize,
    pub commit_gaps: usize,
    /// Sections of a semaphore's permits, and of a read-write lock.
    pub permit_sections: usize,
    pub read_sections: usize,
    pub write_sections: usize,
    /// The most valid permits seen at one instant on one key.
    pub most_permits_at_once: usize,
    /// The most valid read sections seen at one instant on one key.
    pub most_readers_at_once: usize,
    /// Grants to a call that waited in the lock's queue, judged by the
    /// fair-order rule.
    pub fair_grants_judged: usize,
    pub violations: Vec<String>,
}

impl History {
    /// The history in `dir` and its report; fails the test on any
    /// violation, naming the directory (kept for a look).
    pub fn read_checked(dir: &std::path::Path) -> (History, Report) {
        let history = History::read_dir(dir).expect("readable history");
        let report = history.check();
        assert!(
            report.violations.is_empty(),
            "violations in {}:\n{}",
            dir.display(),
            report.violations.join("\n")
        );
        (history, report)
    }

    pub fn check(&self) -> Report {
        let count = |kind: &str| self.sections.iter().filter(|s| s.kind == kind).count();
        let mut r = Report {
            lock_sections: count("lock"),
            master_terms: count("master"),
            permit_sections: count("permit"),
            read_sections: count("read"),
            write_sections: count("write"),
            writes: self.writes.iter().filter(|w| !w.probe).count(),
            rejected_writes: self
                .writes
                .iter()
                .filter(|w| !w.probe && !w.accepted)
                .count(),
            unanswered_writes: self
                .writes
                .iter()
                .filter(|w| !w.probe && w.result == "error")
                .count(),
            probes: self.writes.iter().filter(|w| w.probe).count(),
            probes_rejected: self
                .writes
                .iter()
                .filter(|w| w.probe && !w.accepted)
                .count(),
            ..Report::default()
        };
        let order = order::Order::build(&self.commits);
        lock::check(self, &mut r);
        shares::check(self, &mut r);
        checks::check(self, &mut r);
        writes::check(self, &order, &mut r);
        audit::check(self, &mut r);
        order::check(self, &order, &mut r);
        fairness::check(self, &mut r);
        let pairs = writes::server_time_pairs(self, &order);
        r.server_time_pairs = pairs.len();
        r.server_time_pairs_release_first = pairs
            .iter()
            .filter(|p| p.2 == writes::Pair::ReleaseFirst)
            .count();
        r
    }
}
