//! The rules of the many-holder primitives (sections of kind `permit` of a
//! semaphore, `read` and `write` of a read-write lock), each section valid
//! from its start until it could no longer act (`acted_until`: the earlier
//! of its end, just before releasing, and its deadline, and at least
//! through its last check that answered valid):
//!
//! - at no instant more than `permits` valid permit sections on one key;
//! - a write section overlaps no other section (read or write) of its key;
//! - per key, fences are unique and grow in grant order: a section that
//!   started (its holder had its answer) before another holder asked has
//!   the smaller fence. (Not the grants' `$$NOW`: an operation's `$$NOW` is
//!   taken when it starts, so of two racing grants the one that committed
//!   second, with the greater fence, can carry the earlier time.)

use std::collections::BTreeMap;

use super::parse::{History, Section};
use super::Report;

/// The most sections valid at one instant, and one such instant's set
/// (half-open intervals `[start, acted_until)`; empty ones skipped).
fn most_at_once<'a>(sections: &[&'a Section]) -> (usize, Vec<&'a Section>) {
    let mut events: Vec<(i64, i8, usize)> = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        if s.acted_until() > s.start {
            events.push((s.start, 1, i));
            events.push((s.acted_until(), -1, i));
        }
    }
    // Ends before starts at one instant: touching intervals do not overlap.
    events.sort();
    let mut live: Vec<usize> = Vec::new();
    let (mut most, mut at) = (0, Vec::new());
    for (_, step, i) in events {
        if step < 0 {
            live.retain(|&j| j != i);
        } else {
            live.push(i);
            if live.len() > most {
                most = live.len();
                at = live.iter().map(|&j| sections[j]).collect();
            }
        }
    }
    (most, at)
}

pub fn check(h: &History, r: &mut Report) {
    let mut by_key: BTreeMap<&str, Vec<&Section>> = BTreeMap::new();
    for s in h.sections.iter().filter(|s| s.is_share()) {
        by_key.entry(&s.key).or_default().push(s);
    }
    let show = |s: &Section| {
        format!(
            "{} {} fence {} [{}, {}] (deadline {})",
            s.kind, s.worker, s.fence, s.start, s.end, s.deadline
        )
    };
    for (key, sections) in &by_key {
        let permits: Vec<&Section> = sections
            .iter()
            .copied()
            .filter(|s| s.kind == "permit")
            .collect();
        if !permits.is_empty() {
            // The count every holder of the key agreed on (the smallest
            // logged, should any differ).
            let allowed = permits.iter().map(|s| s.permits).min().unwrap_or(0) as usize;
            let (most, at) = most_at_once(&permits);
            r.most_permits_at_once = r.most_permits_at_once.max(most);
            if most > allowed {
                let who: Vec<String> = at.iter().map(|s| show(s)).collect();
                r.violations.push(format!(
                    "{most} valid permits at once on `{key}` (permits {allowed}): {}",
                    who.join(", ")
                ));
            }
        }
        let reads: Vec<&Section> = sections
            .iter()
            .copied()
            .filter(|s| s.kind == "read")
            .collect();
        r.most_readers_at_once = r.most_readers_at_once.max(most_at_once(&reads).0);
        for w in sections.iter().filter(|s| s.kind == "write") {
            for o in sections.iter().filter(|o| o.kind != "permit" && o != &w) {
                let overlap = w.start < o.acted_until()
                    && o.start < w.acted_until()
                    && w.start < w.acted_until()
                    && o.start < o.acted_until();
                if overlap {
                    r.violations.push(format!(
                        "a writer overlapped on `{key}`: {} and {}",
                        show(w),
                        show(o)
                    ));
                }
            }
        }
        let mut fences: Vec<i64> = sections.iter().map(|s| s.fence).collect();
        fences.sort_unstable();
        for pair in fences.windows(2) {
            if pair[0] == pair[1] {
                r.violations
                    .push(format!("fence {} granted twice on `{key}`", pair[0]));
            }
        }
        // Grant order, as far as it is known: a section whose holder
        // had its answer before another holder asked was granted first.
        let mut by_start: Vec<&Section> = sections.clone();
        by_start.sort_by_key(|s| s.start);
        let mut by_asked: Vec<&Section> =
            sections.iter().copied().filter(|s| s.asked >= 0).collect();
        by_asked.sort_by_key(|s| s.asked);
        let mut first: Option<&Section> = None; // greatest fence so far
        let mut next = 0;
        for b in by_asked {
            while next < by_start.len() && by_start[next].start < b.asked {
                let a = by_start[next];
                if first.is_none_or(|f| a.fence > f.fence) {
                    first = Some(a);
                }
                next += 1;
            }
            if let Some(a) = first.filter(|a| a.fence >= b.fence) {
                r.violations.push(format!(
                        "fence on `{key}` did not grow in grant order: {} fence {} started at {}, before {} asked at {} and got fence {}",
                        a.worker, a.fence, a.start, b.worker, b.asked, b.fence
                    ));
            }
        }
    }
}
