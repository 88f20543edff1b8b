//! The fenced writes' rules:
//!
//! - a lower fence accepted after a higher one was (as the workers saw
//!   the answers);
//! - the grant rule: a write of fence f applied at a server time (its
//!   `$$NOW`) at or after the grant time (`ts_created`, the grant's
//!   `$$NOW`) of a later grant to another owner that took the holding
//!   over, not after its release. A server binds `$$NOW` when it starts an
//!   operation, which may wait before it commits (the test server binds it
//!   when it parses the command, before it takes the collection's lock):
//!   a grant that waited behind its predecessor's release can carry a
//!   `$$NOW` earlier than that predecessor's last writes. Server time
//!   orders only a takeover: a write is applied only while its `$$NOW` is
//!   before the holder's expiry E, and a takeover needs E + grace <= the
//!   grant's `$$NOW`. A grant after a release is ordered by the release
//!   (the holder's answered writes committed before it);
//! - grant times and write times not known count against a cap: more than
//!   5% of a run's grants (so any, in a run of fewer than 20), or of its
//!   accepted writes, fails it.
//!
//! Which grant took over is read from the commit order when the recorder
//! saw it (`order.rs`). Without it (a standalone server has no change
//! streams) a pair is judged only when it is provably a takeover: the
//! earlier holder never sent a release, or the later holder learned of its
//! grant (shared monotonic clock) before the release was sent. The other
//! pairs are counted as ordered by release, unjudged.

use std::collections::{BTreeMap, BTreeSet};

use super::order::{End, Order, Verdict};
use super::parse::{Grant, History};
use super::Report;

/// A write the server applied: answered to its worker, or found only in
/// the resource's own log (its answer lost, or its worker killed).
#[derive(Clone, Debug)]
pub struct Applied<'a> {
    pub worker: &'a str,
    pub key: &'a str,
    pub fence: i64,
    pub server: i64,
    pub wid: &'a str,
    pub answered: bool,
}

/// Every applied write: each entry of the resource's own log (a write
/// applied twice, twice), then the workers' accepted writes the log does
/// not have (a run with no audit).
pub fn applied(h: &History) -> Vec<Applied<'_>> {
    let accepted: BTreeSet<&str> = h
        .writes
        .iter()
        .filter(|w| w.accepted && !w.wid.is_empty())
        .map(|w| w.wid.as_str())
        .collect();
    let logged: BTreeSet<&str> = h.logged.iter().map(|e| e.wid.as_str()).collect();
    let mut out: Vec<Applied<'_>> = h
        .logged
        .iter()
        .map(|e| Applied {
            worker: &e.worker,
            key: &e.key,
            fence: e.fence,
            server: e.at,
            wid: &e.wid,
            answered: accepted.contains(e.wid.as_str()),
        })
        .collect();
    for w in h
        .writes
        .iter()
        .filter(|w| w.accepted && !logged.contains(w.wid.as_str()))
    {
        out.push(Applied {
            worker: &w.worker,
            key: &w.key,
            fence: w.fence,
            server: w.server,
            wid: &w.wid,
            answered: true,
        });
    }
    out
}

/// A later grant on the key, from a worker's line or seen only by the
/// auditor (its holder killed before logging it).
#[derive(Clone, Debug)]
struct Candidate<'a> {
    fence: i64,
    granted: i64,
    start: i64,
    worker: Option<&'a str>,
    uuid: &'a str,
}

/// Whether one owner holds both (a lock or an elector re-taking its own
/// lock keeps its uuid; each share grant has a token of its own).
fn same_owner(kind: &str, worker: &str, uuid: &str, c: &Candidate<'_>) -> bool {
    if !uuid.is_empty() && !c.uuid.is_empty() {
        uuid == c.uuid
    } else {
        matches!(kind, "lock" | "master") && c.worker == Some(worker)
    }
}

/// Judges `a` without the commit order: against the first grant to
/// another owner after it, when that is provably a takeover.
fn judge_alone(h: &History, a: &Applied<'_>, r: &mut Report) {
    let mine = h
        .grants
        .iter()
        .find(|g| g.key == a.key && g.worker == a.worker && g.fence == a.fence);
    let kind = mine.map_or("lock", |g| g.kind.as_str());
    let uuid = mine.map_or("", |g| g.uuid.as_str());
    let mut later: Vec<Candidate<'_>> = h
        .grants
        .iter()
        .filter(|g| g.key == a.key && g.fence > a.fence)
        .map(|g| Candidate {
            fence: g.fence,
            granted: g.granted,
            start: g.start,
            worker: Some(&g.worker),
            uuid: &g.uuid,
        })
        .collect();
    for s in h
        .seen
        .iter()
        .filter(|s| s.key == a.key && s.fence > a.fence)
    {
        if !later.iter().any(|c| c.fence == s.fence) {
            later.push(Candidate {
                fence: s.fence,
                granted: s.created,
                start: -1,
                worker: None,
                uuid: &s.uuid,
            });
        }
    }
    later.sort_by_key(|c| c.fence);
    let Some(next) = later.iter().find(|c| !same_owner(kind, a.worker, uuid, c)) else {
        return;
    };
    // The holding that `next` followed: the owner's last before it.
    let last = later
        .iter()
        .filter(|c| c.fence < next.fence && same_owner(kind, a.worker, uuid, c))
        .map(|c| c.fence)
        .max()
        .unwrap_or(a.fence);
    let sent = h
        .releases
        .iter()
        .filter(|x| x.key == a.key && x.worker == a.worker && x.fence == last)
        .map(|x| x.sent)
        .min();
    let takeover = match sent {
        None => true,
        Some(sent) => next.start >= 0 && next.start < sent,
    };
    if !takeover {
        r.grant_unjudged += 1;
    } else if next.granted < 0 {
        r.grant_unknown_time += 1;
    } else {
        r.grant_judged_alone += 1;
        if a.server >= next.granted {
            r.violations.push(format!(
                "write after a later grant on `{}`: {} fence {} applied at server time {} ms{}, {} fence {} granted at {} ms, a takeover (no release before it)",
                a.key, a.worker, a.fence, a.server, if a.answered { "" } else { " (unanswered)" },
                next.worker.unwrap_or("an unlogged holder"), next.fence, next.granted
            ));
        }
    }
}

/// How close to a server restart (its stop to its return) a grant's
/// start must be for an unknown time to be excused: a second.
const RESTART_SLACK_NS: i64 = 1_000_000_000;

pub fn check(h: &History, order: &Order, r: &mut Report) {
    let mut by_key: BTreeMap<&str, Vec<&super::parse::Write>> = BTreeMap::new();
    for w in h.writes.iter().filter(|w| w.accepted) {
        by_key.entry(&w.key).or_default().push(w);
    }
    for (key, writes) in by_key {
        // A lower fence accepted after a higher one had been accepted
        // (the higher one finished before the lower one was sent).
        for w in &writes {
            if let Some(higher) = writes
                .iter()
                .find(|h| h.fence > w.fence && h.done < w.checked)
            {
                r.violations.push(format!(
                    "stale write accepted on `{key}`: {} fence {} at {} after {} fence {} at {}",
                    w.worker, w.fence, w.checked, higher.worker, higher.fence, higher.done
                ));
            }
        }
    }
    for a in applied(h).iter().filter(|a| a.server >= 0) {
        match order.verdict(a.key, a.fence) {
            Verdict::Judge(grants) => {
                r.grant_judged_commit += 1;
                for (fence, created) in grants {
                    if created < 0 {
                        r.grant_unknown_time += 1;
                    } else if a.server >= created {
                        r.violations.push(format!(
                            "write after a later grant on `{}`: {} fence {} applied at server time {} ms{}, fence {fence} granted at {created} ms, a takeover in commit order",
                            a.key, a.worker, a.fence, a.server, if a.answered { "" } else { " (unanswered)" }
                        ));
                    }
                }
            }
            Verdict::Ordered(_) => r.grant_ordered_commit += 1,
            Verdict::Unknown => judge_alone(h, a, r),
        }
    }
    let unknown: Vec<&Grant> = h.grants.iter().filter(|g| g.granted < 0).collect();
    r.unknown_grants = unknown.len();
    r.filled_grants = h.grants.iter().filter(|g| g.filled).count();
    // A grant answered as the server went down for a restart leaves its
    // holder's read of the time unanswered: the cap counts the others.
    let around_restart = |g: &Grant| {
        h.restarts.iter().any(|&(down, up)| {
            g.start >= down - RESTART_SLACK_NS && g.start <= up + RESTART_SLACK_NS
        })
    };
    let capped = unknown.iter().filter(|g| !around_restart(g)).count();
    if capped * 20 > h.grants.len() {
        r.violations.push(format!(
            "grant times not known for {capped} of {} grants (more than 5%; {} more around a server restart): the grant rule would judge too little",
            h.grants.len(),
            unknown.len() - capped
        ));
    }
    let accepted = h.writes.iter().filter(|w| w.accepted).count();
    r.unknown_write_times = h
        .writes
        .iter()
        .filter(|w| w.accepted && w.server < 0)
        .count();
    if r.unknown_write_times * 20 > accepted {
        r.violations.push(format!(
            "server times not known for {} of {accepted} accepted writes (more than 5%)",
            r.unknown_write_times
        ));
    }
}

/// How a pair flagged by server time alone stands in commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pair {
    /// The earlier holder's release (or deletion) came before the grant.
    ReleaseFirst,
    /// The grant took the holding over: a true violation.
    Takeover,
    /// The holding ended otherwise before this grant (taken over by
    /// another, or its expired entry dropped).
    EndedBefore,
    /// Not in the recorded commit order.
    Unknown,
}

/// The pairs the server-time rule alone (no release ordering) flags: a
/// write accepted at a server time at or after the grant time of a higher
/// fence to another worker; each with its standing in commit order.
pub fn server_time_pairs<'a>(
    h: &'a History,
    order: &Order,
) -> Vec<(&'a super::parse::Write, &'a super::parse::Grant, Pair)> {
    let mut out = Vec::new();
    for w in h.writes.iter().filter(|w| w.accepted && w.server >= 0) {
        for g in h.grants.iter().filter(|g| {
            g.key == w.key
                && g.fence > w.fence
                && g.worker != w.worker
                && g.granted >= 0
                && w.server >= g.granted
        }) {
            let pair = match order.positions(&w.key, w.fence, g.fence) {
                None => Pair::Unknown,
                Some((_, _, End::Takeover(by))) if by.contains(&g.fence) => Pair::Takeover,
                Some((granted, ended, End::Release | End::Deleted)) if ended < granted => {
                    Pair::ReleaseFirst
                }
                Some((granted, ended, _)) if ended < granted => Pair::EndedBefore,
                Some((_, _, End::Unknown)) => Pair::Unknown,
                // Granted while the holding was live.
                Some(_) => Pair::Takeover,
            };
            out.push((w, g, pair));
        }
    }
    out
}
