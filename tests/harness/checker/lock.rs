//! The lock's and the elector's rules (sections of kind `lock` and
//! `master`, one holder at a time):
//!
//! - two sections on one key by different workers where the earlier could
//!   still act when the later began: with fences f < g, `acted_until(f) >
//!   start(g)` on the shared monotonic clock (a local deadline that is late
//!   fails here even when the section ended in time); with equal fences,
//!   or an unfenced one (fence 0: a holder of the Python package), ordered
//!   by start;
//! - one fence held by two workers, at any times;
//! - a fence that does not grow in the order holders started (learned they
//!   had won), per key, among holders that acted: one that learned of its
//!   lease only after its deadline, or was paused before noting its start,
//!   never held it usefully and is not ordered.

use std::collections::BTreeMap;

use super::parse::{History, Section};
use super::Report;

pub fn check(h: &History, r: &mut Report) {
    let mut by_key: BTreeMap<&str, Vec<&Section>> = BTreeMap::new();
    for s in h.sections.iter().filter(|s| !s.is_share()) {
        by_key.entry(&s.key).or_default().push(s);
    }
    for (key, mut sections) in by_key {
        sections.sort_by_key(|s| (s.start, s.fence));
        for (i, a) in sections.iter().enumerate() {
            for (j, b) in sections.iter().enumerate() {
                if i == j || b.worker == a.worker {
                    continue;
                }
                // Equal fences (two holders granted one fence) and unfenced
                // sections are ordered by start; ties by position.
                let later = if a.fence == 0 || b.fence == 0 || a.fence == b.fence {
                    (b.start, j) > (a.start, i)
                } else {
                    b.fence > a.fence
                };
                if later && a.acted_until() > b.start {
                    r.violations.push(format!(
                        "overlap on `{key}`: {} fence {} [{}, {}] (deadline {}) could still act when {} fence {} began at {}",
                        a.worker, a.fence, a.start, a.end, a.deadline, b.worker, b.fence, b.start
                    ));
                }
                if a.fence != 0 && a.fence == b.fence && i < j {
                    r.violations.push(format!(
                        "fence {} on `{key}` held by two workers: {} and {}",
                        a.fence, a.worker, b.worker
                    ));
                }
            }
        }
        // Fences grow in the order holders that acted started.
        let mut acted: Vec<&&Section> = sections
            .iter()
            .filter(|s| {
                h.writes.iter().any(|w| {
                    !w.probe && w.key == s.key && w.worker == s.worker && w.fence == s.fence
                })
            })
            .collect();
        acted.sort_by_key(|s| (s.start, s.fence));
        for pair in acted.windows(2) {
            if pair[1].fence <= pair[0].fence {
                r.violations.push(format!(
                    "fence on `{key}` did not grow: {} fence {} started before {} fence {}",
                    pair[0].worker, pair[0].fence, pair[1].worker, pair[1].fence
                ));
            }
        }
    }
}
