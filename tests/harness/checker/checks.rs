//! Acting while not entitled, from every validity check the holders logged
//! (`check` lines, taken before the call, of every primitive; and the
//! check before each fenced write):
//!
//! - a check that answered valid at or after the holder's local deadline;
//! - a check that answered valid after the holding's `lost()` receiver had
//!   reported a loss, or after an earlier check of the same holding had
//!   answered invalid (a holding, once ended, is never valid again).
//!
//! A check that answered valid also extends the holding's section through
//! it (`Section::acted_until`), so the exclusion rules (`lock.rs`,
//! `shares.rs`) count the holder as acting at that instant: more than N
//! valid permits at once, or a reader valid while a writer is, counting
//! the check instants, fail there.

use std::collections::BTreeMap;

use super::parse::History;
use super::Report;

/// A holding: worker, key, fence.
type Holding<'a> = (&'a str, &'a str, i64);

pub fn check(h: &History, r: &mut Report) {
    r.checks = h.checks.len();
    for c in h.checks.iter().filter(|c| c.valid) {
        if c.deadline < 0 || c.at >= c.deadline {
            r.violations.push(format!(
                "valid after its deadline on `{}`: {} {} fence {} checked at {} (deadline {})",
                c.key, c.kind, c.worker, c.fence, c.at, c.deadline
            ));
        }
    }
    for w in h.writes.iter().filter(|w| w.valid) {
        if w.deadline < 0 || w.checked >= w.deadline {
            r.violations.push(format!(
                "valid after its deadline on `{}`: {} fence {} checked at {} (deadline {})",
                w.key, w.worker, w.fence, w.checked, w.deadline
            ));
        }
    }
    // Per holding (unfenced Python holdings share fence 0: not told apart).
    let mut holdings: BTreeMap<Holding<'_>, Vec<(i64, bool)>> = BTreeMap::new();
    for c in h.checks.iter().filter(|c| c.fence != 0) {
        holdings
            .entry((&c.worker, &c.key, c.fence))
            .or_default()
            .push((c.at, c.valid));
    }
    for ((worker, key, fence), mut checks) in holdings {
        checks.sort_unstable();
        if let Some(first) = checks.iter().find(|c| !c.1) {
            if let Some(again) = checks.iter().find(|c| c.1 && c.0 > first.0) {
                r.violations.push(format!(
                    "valid again on `{key}`: {worker} fence {fence} checked invalid at {} and valid at {}",
                    first.0, again.0
                ));
            }
        }
        if let Some(loss) = h
            .losses
            .iter()
            .filter(|l| l.worker == worker && l.key == key && l.fence == fence)
            .min_by_key(|l| l.at)
        {
            if let Some(after) = checks.iter().find(|c| c.1 && c.0 > loss.at) {
                r.violations.push(format!(
                    "valid after its loss on `{key}`: {worker} fence {fence} lost ({}) at {} and checked valid at {}",
                    loss.reason, loss.at, after.0
                ));
            }
        }
    }
    r.late_sends = h
        .writes
        .iter()
        .filter(|w| !w.probe && w.sent >= w.deadline)
        .count();
    r.late_sends_rejected = h
        .writes
        .iter()
        .filter(|w| !w.probe && w.sent >= w.deadline && !w.accepted)
        .count();
}
