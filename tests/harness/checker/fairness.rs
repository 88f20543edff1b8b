//! The fair-order rule, from the recorder's commit order: a lock granted
//! (or handed over) to a call that was waiting in the key's queue must not
//! pass over a live waiter ahead of it. The queue is the server's own
//! record of arrival order (entries are appended, and a refresh keeps a
//! place), so the rule needs no client clock: an entry ahead of the
//! granted call whose waiter lease ends after the grant's server time (its
//! `ts_created`), by more than [`SLACK_MS`], was live and was overtaken.
//!
//! Exceptions, as stated in the guarantees: an entry whose lease had
//! passed (a waiter frozen, partitioned, or whose refreshes failed) is not
//! live and may be passed over; a grant to a call that was not in the
//! queue (a racing or forced attempt, a `try_lock` of an empty queue) is
//! not judged here; nothing is judged across a hole in the stream.

use std::collections::HashMap;

use super::parse::{Commit, History};
use super::Report;

/// How far past a grant's `ts_created` an entry's lease must end for the
/// rule to call it live then: a server may read `$$NOW` when it parses an
/// update rather than when it applies it (SecantusDB does, by up to about
/// a second under load), so a grant's recorded time can come before an
/// entry's lapse that came before the grant.
pub const SLACK_MS: i64 = 1000;

pub fn check(h: &History, r: &mut Report) {
    let mut before: HashMap<(&str, &str), &Commit> = HashMap::new();
    for c in &h.commits {
        if c.op == "gap" {
            // A hole: what came before may not be the state just before.
            if c.key.is_empty() {
                before.clear();
            } else {
                before.remove(&(c.coll.as_str(), c.key.as_str()));
            }
            continue;
        }
        let slot = (c.coll.as_str(), c.key.as_str());
        if let Some(prev) = before.get(&slot) {
            judge(prev, c, r);
        }
        before.insert(slot, c);
    }
}

/// Judges `c` against the state `prev` just before it on the same key.
fn judge(prev: &Commit, c: &Commit, r: &mut Report) {
    let (Some(now), true) = (c.held.first(), c.run != "-") else {
        return;
    };
    // A new holding: a grant or a handover (a head's claim keeps the
    // fence the handover gave).
    if prev.held.first().is_some_and(|p| p.fence == now.fence) {
        return;
    }
    let Some(place) = prev.queue.iter().position(|(call, _)| *call == c.run) else {
        return;
    };
    r.fair_grants_judged += 1;
    if now.created < 0 {
        return;
    }
    for (call, expires) in &prev.queue[..place] {
        if *expires > now.created + SLACK_MS {
            r.violations.push(format!(
                "fair order: key {} granted (fence {}, at {}) to call {} at place {place} of the queue, \
                 ahead of live waiter {call} (its place held until {expires}), commit {}",
                c.key, now.fence, now.created, c.run, c.seq
            ));
        }
    }
}
