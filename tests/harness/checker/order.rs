//! The commit order, from the recorder's change stream: per key, each
//! holding's grant event and the event that ended it, and how (a release,
//! a takeover by a grant in the same event, a deletion). The grant rule
//! (`writes.rs`) uses it to tell a grant that followed its predecessor's
//! release from one that took over a lease by expiry; its own rule: fences
//! are granted in increasing order of commit.

use std::collections::BTreeMap;

use super::parse::{Commit, History};
use super::Report;

/// How a holding ended, in commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Replaced in the same event by these newly granted fences (the lock
    /// taken over by expiry, or re-taken by its owner; an expired share
    /// entry dropped by a grant).
    Takeover(Vec<i64>),
    /// Removed by a release (the lock marked free, or the entry removed
    /// with `ts_released` set).
    Release,
    /// The document was deleted (a Python-compatible release, the Python
    /// package's release, a TTL index).
    Deleted,
    /// Removed with no grant and no release (an expired entry dropped).
    Dropped,
    /// Still held when the stream ended.
    Open,
    /// The stream had a hole between its last sighting and its end.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Tenure {
    pub fence: i64,
    pub uuid: String,
    pub created: i64,
    /// The `seq` of its grant event, and whether a hole came just before
    /// it (then it may have been granted earlier).
    pub granted: u64,
    pub after_gap: bool,
    /// The `seq` of the event that ended it (u64::MAX: open or unknown).
    pub ended: u64,
    pub end: End,
}

/// The holdings of each key, by fence.
#[derive(Debug, Default)]
pub struct Order {
    pub keys: BTreeMap<String, BTreeMap<i64, Tenure>>,
    /// Newly granted fences per key, in commit order.
    pub granted: BTreeMap<String, Vec<(u64, i64)>>,
}

/// What the commit order says about the writes of a holding against
/// later grants to others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Granted to another owner without the holding's release before it:
    /// (fence, ts_created) of each, judged by server time.
    Judge(Vec<(i64, i64)>),
    /// Ended before any other owner's grant, this way.
    Ordered(End),
    /// Not known from the stream.
    Unknown,
}

impl Order {
    pub fn build(commits: &[Commit]) -> Order {
        let mut order = Order::default();
        // Per key: the holdings after its last event, `ts_released`, and
        // whether a hole came since.
        type Last = (Vec<(i64, i64, String)>, i64, bool);
        let mut last: BTreeMap<String, Last> = BTreeMap::new();
        for c in commits {
            if c.op == "gap" && c.coll == "resource" {
                continue; // a write's event: no holding is involved
            }
            if c.op == "gap" {
                // A hole in the whole stream, or in one key's events.
                for (key, l) in last.iter_mut() {
                    if c.key.is_empty() || *key == c.key {
                        l.2 = true;
                    }
                }
                if !c.key.is_empty() && !last.contains_key(&c.key) {
                    last.insert(c.key.clone(), (Vec::new(), -1, true));
                }
                continue;
            }
            if c.coll == "resource" || c.key.is_empty() {
                continue;
            }
            let now: Vec<(i64, i64, String)> = c
                .held
                .iter()
                .map(|h| (h.fence, h.created, h.uuid.clone()))
                .collect();
            let (before, released, tainted) =
                last.remove(&c.key).unwrap_or((Vec::new(), -1, false));
            let fresh: Vec<i64> = now
                .iter()
                .filter(|n| !before.iter().any(|b| b.0 == n.0))
                .map(|n| n.0)
                .collect();
            let tenures = order.keys.entry(c.key.clone()).or_default();
            for b in before.iter().filter(|b| !now.iter().any(|n| n.0 == b.0)) {
                let end = if tainted {
                    End::Unknown
                } else if !fresh.is_empty() {
                    End::Takeover(fresh.clone())
                } else if c.op == "delete" {
                    End::Deleted
                } else if c.released != released {
                    End::Release
                } else {
                    End::Dropped
                };
                if let Some(t) = tenures.get_mut(&b.0) {
                    t.ended = if end == End::Unknown { u64::MAX } else { c.seq };
                    t.end = end;
                }
            }
            for n in now.iter().filter(|n| fresh.contains(&n.0)) {
                order
                    .granted
                    .entry(c.key.clone())
                    .or_default()
                    .push((c.seq, n.0));
                tenures.insert(
                    n.0,
                    Tenure {
                        fence: n.0,
                        uuid: n.2.clone(),
                        created: n.1,
                        granted: c.seq,
                        after_gap: tainted,
                        ended: u64::MAX,
                        end: End::Open,
                    },
                );
            }
            last.insert(c.key.clone(), (now, c.released, false));
        }
        // A hole after a holding's last sighting: its end is not known.
        for (key, (held, _, tainted)) in &last {
            if *tainted {
                for h in held {
                    if let Some(t) = order.keys.get_mut(key).and_then(|k| k.get_mut(&h.0)) {
                        t.end = End::Unknown;
                    }
                }
            }
        }
        order
    }

    /// The writes of fence `fence` on `key`: which later grants to other
    /// owners must come after them in server time. Its owner's own
    /// re-grants (the same uuid, in the same event) continue its holding.
    pub fn verdict(&self, key: &str, fence: i64) -> Verdict {
        let Some(tenures) = self.keys.get(key) else {
            return Verdict::Unknown;
        };
        let Some(mut t) = tenures.get(&fence) else {
            return Verdict::Unknown;
        };
        if t.after_gap {
            return Verdict::Unknown;
        }
        let (first, uuid) = (t.granted, t.uuid.clone());
        loop {
            match &t.end {
                End::Takeover(by) => {
                    let mine: Vec<&Tenure> = by
                        .iter()
                        .filter_map(|f| tenures.get(f))
                        .filter(|n| n.uuid == uuid)
                        .collect();
                    let others: Vec<(i64, i64)> = by
                        .iter()
                        .filter_map(|f| tenures.get(f))
                        .filter(|n| n.uuid != uuid)
                        .map(|n| (n.fence, n.created))
                        .collect();
                    if others.is_empty() && !mine.is_empty() {
                        t = mine[0];
                        continue;
                    }
                    let mut judged = self.inside(tenures, &uuid, first, t.ended);
                    judged.extend(others);
                    return Verdict::Judge(judged);
                }
                // A hole after its last sighting: how and when it ended,
                // and what was granted meanwhile, are not known.
                End::Unknown => return Verdict::Unknown,
                end => {
                    let inside = self.inside(tenures, &uuid, first, t.ended);
                    return if !inside.is_empty() {
                        Verdict::Judge(inside)
                    } else if *end == End::Open {
                        Verdict::Unknown
                    } else {
                        Verdict::Ordered(end.clone())
                    };
                }
            }
        }
    }

    /// Other owners' grants committed while a holding chain was live
    /// (between its first grant and its end): never right for a holding
    /// that excludes them.
    fn inside(
        &self,
        tenures: &BTreeMap<i64, Tenure>,
        uuid: &str,
        from: u64,
        to: u64,
    ) -> Vec<(i64, i64)> {
        tenures
            .values()
            .filter(|n| n.uuid != uuid && !n.after_gap && n.granted > from && n.granted < to)
            .map(|n| (n.fence, n.created))
            .collect()
    }

    /// The `seq` of `fence`'s grant on `key`, and of the end of the
    /// holding chain that starts at `from` (with how it ended).
    pub fn positions(&self, key: &str, from: i64, fence: i64) -> Option<(u64, u64, End)> {
        let tenures = self.keys.get(key)?;
        let granted = tenures.get(&fence)?.granted;
        let mut t = tenures.get(&from)?;
        loop {
            if let End::Takeover(by) = &t.end {
                if let Some(next) = by
                    .iter()
                    .filter_map(|f| tenures.get(f))
                    .find(|n| n.uuid == t.uuid && n.fence != fence)
                {
                    t = next;
                    continue;
                }
            }
            return Some((granted, t.ended, t.end.clone()));
        }
    }
}

/// The recorder's rule: on each key, every newly granted fence is greater
/// than every fence granted before it in commit order (unfenced Python
/// holdings, fence 0, aside).
pub fn check(h: &History, order: &Order, r: &mut Report) {
    r.commit_events = h.commits.iter().filter(|c| c.op != "gap").count();
    r.commit_gaps = h.commits.iter().filter(|c| c.op == "gap").count();
    for (key, grants) in &order.granted {
        let mut top: Option<i64> = None;
        for &(seq, fence) in grants.iter().filter(|g| g.1 != 0) {
            if let Some(t) = top.filter(|&t| fence <= t) {
                r.violations.push(format!(
                    "fence on `{key}` granted out of commit order: {fence} (event {seq}) after {t}"
                ));
            }
            top = Some(top.map_or(fence, |t| t.max(fence)));
        }
    }
}
