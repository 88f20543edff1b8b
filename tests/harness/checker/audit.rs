//! The audit of the resource documents' own write log (the `log` array
//! each fenced write appends to, in commit order; the auditor polls it
//! through the run and merges the entries by write id, so none is lost to
//! the array's cap):
//!
//! - fences never decrease along the log;
//! - a write its worker saw applied is in the log, and one it saw refused
//!   (`stale`, `expired`, `nomatch`) is not; no write is in it twice.
//!   Except for a write the driver retried (after a network error): the
//!   test server runs a retried write again when the first attempt is
//!   still running, or was before a restart (it forgets retryable writes
//!   across one), so it can be applied twice, or answered refused though
//!   the first attempt was applied; MongoDB runs it once and answers the
//!   first outcome. Counted;
//! - the log was followed without a hole (a poll that no longer found the
//!   last entry it had seen, with the array full), and at all when writes
//!   were made.
//!
//! Every entry, those no worker saw answered included (an error, a killed
//! worker), is also judged by the grant rule (`writes.rs`).

use std::collections::{BTreeMap, BTreeSet};

use super::parse::History;
use super::Report;

pub fn check(h: &History, r: &mut Report) {
    r.audited = h.audit_polls.is_some();
    r.logged_writes = h.logged.len();
    if !h.writes.is_empty() && !r.audited {
        r.violations
            .push("writes were made but the resource was never audited".to_owned());
    }
    for key in &h.audit_gaps {
        r.violations.push(format!(
            "the audit of `{key}` has a hole: writes may have gone unseen"
        ));
    }
    let mut by_key: BTreeMap<&str, Vec<&super::parse::Logged>> = BTreeMap::new();
    for e in &h.logged {
        by_key.entry(&e.key).or_default().push(e);
    }
    for (key, entries) in &by_key {
        for pair in entries.windows(2) {
            if pair[1].fence < pair[0].fence {
                r.violations.push(format!(
                    "the log of `{key}` went back: {} fence {} ({}) after {} fence {} ({})",
                    pair[1].worker,
                    pair[1].fence,
                    pair[1].wid,
                    pair[0].worker,
                    pair[0].fence,
                    pair[0].wid
                ));
            }
        }
    }
    if !r.audited {
        return;
    }
    let holes: BTreeSet<&str> = h.audit_gaps.iter().map(String::as_str).collect();
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &h.logged {
        *times.entry(e.wid.as_str()).or_default() += 1;
    }
    for w in h.writes.iter().filter(|w| !w.wid.is_empty()) {
        let found = times.get(w.wid.as_str()).copied().unwrap_or(0);
        if w.accepted && found == 0 && !holes.contains(w.key.as_str()) {
            r.violations.push(format!(
                "applied write missing from the log of `{}`: {} fence {} ({})",
                w.key, w.worker, w.fence, w.wid
            ));
        }
        let refused = !w.accepted && w.result != "error";
        if (refused && found > 0) || found > 1 {
            if w.attempts > 1 {
                // Sent twice by the driver: the test server may run both.
                r.retries_run_again += 1;
                continue;
            }
            r.violations.push(if found > 1 {
                format!(
                    "a write was applied {found} times on `{}`: {} fence {} ({})",
                    w.key, w.worker, w.fence, w.wid
                )
            } else {
                format!(
                    "a write answered `{}` was applied on `{}`: {} fence {} ({})",
                    w.result, w.key, w.worker, w.fence, w.wid
                )
            });
        }
    }
    let answered: BTreeSet<&str> = h
        .writes
        .iter()
        .filter(|w| w.accepted)
        .map(|w| w.wid.as_str())
        .collect();
    r.unanswered_applied = h
        .logged
        .iter()
        .filter(|e| !answered.contains(e.wid.as_str()))
        .count();
}
