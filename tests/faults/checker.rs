//! The history checker: reads the logs that `examples/worker.rs` appends and
//! reports every violation of the lock's and the elector's guarantees.
//!
//! - two sections (or terms) on one key with fences f < g where the first
//!   could still act when the second began: `min(end_f, deadline_f) >
//!   start_g` on the shared monotonic clock (so a local deadline that is
//!   late fails here even when the section ended in time); a section with
//!   fence 0 (a holder of the Python package, which has no fences) against
//!   any other that began after it;
//! - a fence that does not grow in the order holders started (learned they
//!   had won), per key, among holders that acted: one that learned of its
//!   lease only after its deadline, or was paused before noting its start,
//!   never held it usefully and is not ordered;
//! - `is_valid()` (or `is_master()`) answered true at or after the local
//!   deadline (checked before the call, so the answer came later still);
//! - a fenced write accepted from a lower fence after a higher one was;
//! - a fenced write of fence f accepted at a server time (`$$NOW` recorded
//!   in the written document) at or after the server grant time
//!   (`ts_created`) of a higher fence on the key to another worker: the
//!   data writes are mutually exclusive, not just ordered.
//!
//! A write sent after its holder's local deadline (paused between the check
//! and the send) is counted, refused or not: the server decides.
//!
//! Sections of the many-holder primitives (`kind=permit` of a semaphore,
//! `kind=read` / `kind=write` of a read-write lock) are judged by their own
//! rules, each section valid from its start until the earlier of its end
//! (the holder stopped acting, just before releasing) and its deadline:
//!
//! - at no instant more than `permits` valid permit sections on one key;
//! - a write section overlaps no other section (read or write) of its key;
//! - per key, fences are unique and grow in grant order: a section that
//!   started (its holder had its answer) before another holder asked has
//!   the smaller fence. (Not the grants' `$$NOW`: an operation's `$$NOW` is
//!   taken when it starts, so of two racing grants the one that committed
//!   second, with the greater fence, can carry the earlier time.)
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub worker: String,
    pub key: String,
    pub fence: i64,
    pub start: i64,
    pub end: i64,
    pub deadline: i64,
    pub valid: bool,
    /// A semaphore's permit count (`permits=`; 0 for other kinds).
    pub permits: u32,
    /// The lease's server expiry (ms) when the section ended; -1 unknown.
    pub expires: i64,
    /// When the holder started asking for it (a many-holder section); -1
    /// unknown.
    pub asked: i64,
}

impl Section {
    /// Until when the holder could act: its end or its deadline.
    pub fn acted_until(&self) -> i64 {
        self.end.min(self.deadline)
    }

    /// A section of a semaphore or a read-write lock.
    pub fn is_share(&self) -> bool {
        matches!(self.kind.as_str(), "permit" | "read" | "write")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub worker: String,
    pub key: String,
    pub fence: i64,
    pub checked: i64,
    /// When the write request was sent (after the validity check).
    pub sent: i64,
    pub done: i64,
    pub deadline: i64,
    /// What the validity check at `checked` answered.
    pub valid: bool,
    pub accepted: bool,
    pub probe: bool,
    /// The write's server time (`$$NOW`, ms) when accepted; -1 unknown.
    pub server: i64,
}

/// The server time (ms) a fence was granted on a key; -1 unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub worker: String,
    pub key: String,
    pub fence: i64,
    pub granted: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub sections: Vec<Section>,
    pub writes: Vec<Write>,
    pub grants: Vec<Grant>,
    /// `kind` of each error line, with its count.
    pub errors: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub lock_sections: usize,
    pub master_terms: usize,
    pub writes: usize,
    pub rejected_writes: usize,
    pub probes: usize,
    pub probes_rejected: usize,
    /// Writes sent at or after their holder's local deadline (not probes).
    pub late_sends: usize,
    pub late_sends_rejected: usize,
    /// Accepted writes, and grants, whose server time is not known.
    pub unknown_write_times: usize,
    pub unknown_grants: usize,
    /// Sections of a semaphore's permits, and of a read-write lock.
    pub permit_sections: usize,
    pub read_sections: usize,
    pub write_sections: usize,
    /// The most valid permits seen at one instant on one key.
    pub most_permits_at_once: usize,
    /// The most valid read sections seen at one instant on one key.
    pub most_readers_at_once: usize,
    pub violations: Vec<String>,
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    let mut map = BTreeMap::new();
    for word in line.split_whitespace().skip(1) {
        if let Some((k, v)) = word.split_once('=') {
            if k == "msg" {
                break; // the rest of the line is free text
            }
            map.insert(k, v);
        }
    }
    map
}

fn get<T: std::str::FromStr>(f: &BTreeMap<&str, &str>, k: &str, line: &str) -> Result<T, String> {
    f.get(k)
        .ok_or_else(|| format!("no `{k}` in: {line}"))?
        .parse()
        .map_err(|_| format!("bad `{k}` in: {line}"))
}

/// An optional field: `default` when absent.
fn optional<T: std::str::FromStr>(
    f: &BTreeMap<&str, &str>,
    k: &str,
    line: &str,
    default: T,
) -> Result<T, String> {
    if f.contains_key(k) {
        get(f, k, line)
    } else {
        Ok(default)
    }
}

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

impl History {
    pub fn parse(text: &str) -> Result<History, String> {
        let mut h = History::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f = fields(line);
            let word = |k: &str| get::<String>(&f, k, line);
            match line.split_whitespace().next() {
                Some("section") => h.sections.push(Section {
                    kind: word("kind")?,
                    worker: word("w")?,
                    key: word("key")?,
                    fence: get(&f, "fence", line)?,
                    start: get(&f, "start", line)?,
                    end: get(&f, "end", line)?,
                    deadline: get(&f, "deadline", line)?,
                    valid: get::<u8>(&f, "valid", line)? == 1,
                    permits: optional(&f, "permits", line, 0)?,
                    expires: optional(&f, "expires", line, -1)?,
                    asked: optional(&f, "asked", line, -1)?,
                }),
                Some("write") => h.writes.push(Write {
                    worker: word("w")?,
                    key: word("key")?,
                    fence: get(&f, "fence", line)?,
                    checked: get(&f, "checked", line)?,
                    sent: get(&f, "sent", line)?,
                    done: get(&f, "done", line)?,
                    deadline: get(&f, "deadline", line)?,
                    valid: get::<u8>(&f, "valid", line)? == 1,
                    accepted: get::<u8>(&f, "accepted", line)? == 1,
                    probe: get::<u8>(&f, "probe", line)? == 1,
                    server: get(&f, "server", line)?,
                }),
                Some("grant") => h.grants.push(Grant {
                    worker: word("w")?,
                    key: word("key")?,
                    fence: get(&f, "fence", line)?,
                    granted: get(&f, "granted", line)?,
                }),
                Some("error") => *h.errors.entry(word("kind")?).or_default() += 1,
                _ => return Err(format!("unknown log line: {line}")),
            }
        }
        Ok(h)
    }

    /// Every `*.log` file in `dir`, as one history.
    pub fn read_dir(dir: &Path) -> Result<History, String> {
        let mut text = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        entries.sort();
        for path in entries {
            text.push_str(&std::fs::read_to_string(&path).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        History::parse(&text)
    }

    /// The history in `dir` and its report; fails the test on any
    /// violation, naming the directory (kept for a look).
    pub fn read_checked(dir: &Path) -> (History, Report) {
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
        let mut r = Report {
            lock_sections: self.sections.iter().filter(|s| s.kind == "lock").count(),
            master_terms: self.sections.iter().filter(|s| s.kind == "master").count(),
            writes: self.writes.iter().filter(|w| !w.probe).count(),
            rejected_writes: self
                .writes
                .iter()
                .filter(|w| !w.probe && !w.accepted)
                .count(),
            probes: self.writes.iter().filter(|w| w.probe).count(),
            probes_rejected: self
                .writes
                .iter()
                .filter(|w| w.probe && !w.accepted)
                .count(),
            late_sends: self.late_sends().count(),
            late_sends_rejected: self.late_sends().filter(|w| !w.accepted).count(),
            unknown_write_times: self
                .writes
                .iter()
                .filter(|w| w.accepted && w.server < 0)
                .count(),
            unknown_grants: self.grants.iter().filter(|g| g.granted < 0).count(),
            permit_sections: self.sections.iter().filter(|s| s.kind == "permit").count(),
            read_sections: self.sections.iter().filter(|s| s.kind == "read").count(),
            write_sections: self.sections.iter().filter(|s| s.kind == "write").count(),
            most_permits_at_once: 0,
            most_readers_at_once: 0,
            violations: Vec::new(),
        };
        self.check_shares(&mut r);
        let mut by_key: BTreeMap<&str, Vec<&Section>> = BTreeMap::new();
        for s in self.sections.iter().filter(|s| !s.is_share()) {
            by_key.entry(&s.key).or_default().push(s);
        }
        for (key, mut sections) in by_key {
            sections.sort_by_key(|s| (s.start, s.fence));
            // A section could act until its end or its deadline, whichever
            // came first; a later acquisition (greater fence) began no
            // earlier than that.
            for a in &sections {
                let acted_until = a.end.min(a.deadline);
                for b in &sections {
                    // An unfenced section (fence 0: a holder of the Python
                    // package, which has no fences) is ordered by start.
                    let later = if a.fence == 0 || b.fence == 0 {
                        b.start >= a.start
                    } else {
                        b.fence > a.fence
                    };
                    if later && b.worker != a.worker && acted_until > b.start {
                        r.violations.push(format!(
                            "overlap on `{key}`: {} fence {} [{}, {}] (deadline {}) could still act when {} fence {} began at {}",
                            a.worker, a.fence, a.start, a.end, a.deadline, b.worker, b.fence, b.start
                        ));
                    }
                }
            }
            // Fences grow in the order holders that acted started.
            let mut acted: Vec<&&Section> = sections
                .iter()
                .filter(|s| {
                    self.writes.iter().any(|w| {
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
        let mut writes_by_key: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
        for w in self.writes.iter().filter(|w| w.accepted) {
            writes_by_key.entry(&w.key).or_default().push(w);
        }
        for (key, writes) in writes_by_key {
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
        for w in self.writes.iter().filter(|w| w.valid) {
            if w.deadline < 0 || w.checked >= w.deadline {
                r.violations.push(format!(
                    "valid after its deadline on `{}`: {} fence {} checked at {} (deadline {})",
                    w.key, w.worker, w.fence, w.checked, w.deadline
                ));
            }
        }
        for w in self.writes.iter().filter(|w| w.accepted && w.server >= 0) {
            // Another worker's grant: one that re-took its own lock (an
            // elector stepping down at its local deadline and winning again
            // before its lease ran out in server time) is the same owner,
            // as in the overlap rule.
            if let Some(g) = self.grants.iter().find(|g| {
                g.key == w.key
                    && g.fence > w.fence
                    && g.worker != w.worker
                    && g.granted >= 0
                    && w.server >= g.granted
            }) {
                r.violations.push(format!(
                    "write after a later grant on `{}`: {} fence {} accepted at server time {} ms, {} fence {} granted at {} ms",
                    w.key, w.worker, w.fence, w.server, g.worker, g.fence, g.granted
                ));
            }
        }
        r
    }

    /// The rules of the semaphore and the read-write lock.
    fn check_shares(&self, r: &mut Report) {
        let mut by_key: BTreeMap<&str, Vec<&Section>> = BTreeMap::new();
        for s in self.sections.iter().filter(|s| s.is_share()) {
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

    fn late_sends(&self) -> impl Iterator<Item = &Write> {
        self.writes
            .iter()
            .filter(|w| !w.probe && w.sent >= w.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(w: &str, fence: i64, start: i64, end: i64, valid: bool) -> String {
        // A section that ended valid had its deadline after its end; one
        // that ended invalid, before.
        let deadline = if valid { end + 50 } else { end - 1 };
        section_until(w, fence, start, end, deadline, valid)
    }

    fn section_until(
        w: &str,
        fence: i64,
        start: i64,
        end: i64,
        deadline: i64,
        valid: bool,
    ) -> String {
        format!("section kind=lock w={w} key=k fence={fence} start={start} end={end} deadline={deadline} valid={}", valid as u8)
    }

    fn write(w: &str, fence: i64, checked: i64, accepted: bool) -> String {
        format!("write w={w} key=k fence={fence} checked={checked} sent={} done={} deadline={} valid=1 accepted={} probe=0 result=x server={}", checked + 1, checked + 5, checked + 100, accepted as u8, if accepted { checked } else { -1 })
    }

    /// A write whose server time is `server` ms.
    fn write_at(w: &str, fence: i64, server: i64) -> String {
        format!("write w={w} key=k fence={fence} checked=10 sent=11 done=15 deadline=100 valid=1 accepted=1 probe=0 result=applied server={server}")
    }

    fn grant(w: &str, fence: i64, granted: i64) -> String {
        format!("grant w={w} key=k fence={fence} granted={granted}")
    }

    fn check(lines: &[String]) -> Report {
        History::parse(&lines.join("\n")).unwrap().check()
    }

    #[test]
    fn a_clean_history_passes() {
        let r = check(&[
            section("a", 1, 0, 100, true),
            write("a", 1, 10, true),
            section("b", 2, 110, 200, true),
            write("b", 2, 120, true),
            "error w=a key=k kind=Database msg=some text with = signs".to_owned(),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.lock_sections, r.writes), (2, 2));
    }

    #[test]
    fn an_overlap_fails() {
        let r = check(&[
            section("a", 1, 0, 100, true),
            section("b", 2, 50, 150, true),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].starts_with("overlap"));
        // The same overlap is fine when the first holder's deadline came
        // before the second began (it knew it had lost).
        let r = check(&[
            section_until("a", 1, 0, 100, 40, false),
            section("b", 2, 50, 150, true),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn unfenced_sections_are_ordered_by_start() {
        // A Python holder (fence 0) overlapping a later fenced one, and a
        // fenced one overlapping a later Python holder: both fail.
        let r = check(&[
            section("py", 0, 0, 100, true),
            section("rs", 9, 50, 150, true),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        let r = check(&[
            section("rs", 9, 0, 100, true),
            section("py", 0, 50, 150, true),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        let r = check(&[
            section("py", 0, 0, 100, true),
            section("py2", 0, 50, 150, true),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        // One after the other: fine, whatever the fences.
        let r = check(&[
            section("rs", 9, 0, 40, true),
            section("py", 0, 100, 150, true),
            section("rs", 10, 200, 250, true),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn a_late_deadline_fails_even_when_the_section_ended_invalid() {
        // a ended invalid (it noticed at 100), but its deadline said it
        // could act until 90, after b was granted the lock at 50: a late
        // local deadline, which the old "both ended valid" rule passed.
        let r = check(&[
            section_until("a", 1, 0, 100, 90, false),
            section("b", 2, 50, 150, true),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].starts_with("overlap"));
        // Only the deadline is late: a's section ended before b began, but
        // it believed it could act until after b's start.
        let r = check(&[
            section_until("a", 1, 0, 40, 60, true),
            section("b", 2, 50, 150, true),
        ]);
        assert!(
            r.violations.is_empty(),
            "ended before b began: {:?}",
            r.violations
        );
        // Ended after b began, still believing itself valid until 70.
        let r = check(&[
            section_until("a", 1, 0, 80, 70, false),
            section("b", 2, 50, 150, true),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }

    #[test]
    fn a_shrinking_fence_fails() {
        let r = check(&[
            section("a", 5, 0, 100, true),
            write("a", 5, 10, true),
            section("b", 4, 110, 200, true),
            write("b", 4, 120, false),
        ]);
        assert!(
            r.violations.iter().any(|v| v.starts_with("fence")),
            "{:?}",
            r.violations
        );
        // A holder that never acted (it learned of its lease too late: its
        // deadline had passed before the other was granted the lock) is
        // not ordered.
        let r = check(&[
            section("a", 5, 0, 100, true),
            write("a", 5, 10, true),
            section_until("b", 4, 110, 200, -5, false),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn a_stale_accepted_write_fails() {
        let r = check(&[write("b", 2, 100, true), write("a", 1, 200, true)]);
        assert!(
            r.violations.iter().any(|v| v.starts_with("stale write")),
            "{:?}",
            r.violations
        );
        let r = check(&[write("b", 2, 100, true), write("a", 1, 200, false)]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn valid_after_the_deadline_fails() {
        let late = "write w=a key=k fence=1 checked=400 sent=401 done=505 deadline=400 valid=1 accepted=0 probe=0 result=expired server=-1";
        let r = check(&[late.to_owned()]);
        assert!(
            r.violations[0].starts_with("valid after"),
            "{:?}",
            r.violations
        );
        // A probe (checked invalid) after the deadline is expected.
        let probe = late
            .replace("probe=0", "probe=1")
            .replace("valid=1", "valid=0");
        assert!(check(&[probe]).violations.is_empty());
    }

    #[test]
    fn a_late_send_is_counted_not_a_violation() {
        // Checked in time, sent after the deadline (paused in between):
        // refused or accepted, the server decided; the grant rule judges it.
        for accepted in [0, 1] {
            let r = check(&[format!(
                "write w=a key=k fence=1 checked=300 sent=450 done=455 deadline=400 valid=1 accepted={accepted} probe=0 result=x server=1000"
            )]);
            assert!(r.violations.is_empty(), "{:?}", r.violations);
            assert_eq!((r.late_sends, r.late_sends_rejected), (1, 1 - accepted));
        }
    }

    #[test]
    fn a_write_at_or_after_a_later_grant_fails() {
        let r = check(&[write_at("a", 1, 1000), grant("b", 2, 1000)]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].starts_with("write after a later grant"));
        // Before the grant: fine; a lower or equal fence's grant is no bar.
        let r = check(&[
            write_at("a", 1, 999),
            grant("b", 2, 1000),
            write_at("b", 2, 1500),
            grant("a", 1, 500),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        // The same worker re-taking its own lock (with a new fence) before
        // its old lease ran out: one owner, not a violation.
        let r = check(&[write_at("a", 1, 1000), grant("a", 2, 900)]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        // Unknown times are counted, not judged.
        let r = check(&[write_at("a", 1, -1), grant("b", 2, -1)]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.unknown_write_times, r.unknown_grants), (1, 1));
    }

    /// A section of a many-holder primitive, valid until its end.
    fn share(kind: &str, w: &str, fence: i64, start: i64, end: i64) -> String {
        share_until(kind, w, fence, start, end, end + 50)
    }

    fn share_until(kind: &str, w: &str, fence: i64, start: i64, end: i64, deadline: i64) -> String {
        let permits = if kind == "permit" { " permits=2" } else { "" };
        // Asked 5 before it started.
        format!("section kind={kind} w={w} key=s fence={fence} start={start} end={end} deadline={deadline} valid=1{permits} expires=-1 asked={}", start - 5)
    }

    #[test]
    fn permits_up_to_the_count_pass_and_one_more_fails() {
        // Two permits: a and b overlap, c starts as a ends (touching).
        let ok = [
            share("permit", "a", 1, 0, 100),
            share("permit", "b", 2, 50, 150),
            share("permit", "c", 3, 100, 200),
        ];
        let r = check(&ok);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.permit_sections, r.most_permits_at_once), (3, 2));
        // c starts while a and b are still valid: three at once.
        let r = check(&[
            share("permit", "a", 1, 0, 100),
            share("permit", "b", 2, 50, 150),
            share("permit", "c", 3, 99, 200),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].starts_with("3 valid permits at once"));
        assert_eq!(r.most_permits_at_once, 3);
        // The same, but a's deadline passed before c began: a stopped
        // holder is not counted past its deadline.
        let r = check(&[
            share_until("permit", "a", 1, 0, 300, 90),
            share("permit", "b", 2, 50, 150),
            share("permit", "c", 3, 99, 200),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn a_writer_overlapping_a_reader_or_a_writer_fails() {
        // Readers overlap each other; the writer comes after them all.
        let r = check(&[
            share("read", "r1", 1, 0, 100),
            share("read", "r2", 2, 10, 90),
            share("read", "r3", 3, 20, 80),
            share("write", "w1", 4, 100, 150),
            share("read", "r1", 5, 150, 200),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.read_sections, r.write_sections), (4, 1));
        assert_eq!(r.most_readers_at_once, 3);
        // A writer that began while a reader was valid.
        let r = check(&[
            share("read", "r1", 1, 0, 100),
            share("write", "w1", 2, 99, 150),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].starts_with("a writer overlapped"));
        // A reader that began while the writer was valid.
        let r = check(&[
            share("write", "w1", 1, 0, 100),
            share("read", "r1", 2, 50, 150),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        // Two writers.
        let r = check(&[
            share("write", "w1", 1, 0, 100),
            share("write", "w2", 2, 50, 150),
        ]);
        assert!(!r.violations.is_empty(), "{:?}", r.violations);
        // A writer paused past its deadline: the reader after it is fine.
        let r = check(&[
            share_until("write", "w1", 1, 0, 300, 40),
            share("read", "r1", 2, 50, 150),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn share_fences_must_be_unique_and_grow_in_grant_order() {
        // a and b asked at once (unordered: any fences); c asked after
        // both had theirs.
        let r = check(&[
            share("permit", "a", 20, 0, 100),
            share("permit", "b", 10, 2, 100),
            share("permit", "c", 30, 200, 300),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        // c asked after a started but got a smaller fence.
        let r = check(&[
            share("permit", "a", 20, 0, 100),
            share("permit", "b", 10, 2, 100),
            share("permit", "c", 15, 200, 300),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("did not grow in grant order"));
        // The same between a reader and a writer.
        let r = check(&[
            share("write", "w", 20, 0, 100),
            share("read", "r", 19, 200, 300),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        // The same fence twice.
        let r = check(&[share("read", "a", 7, 0, 100), share("read", "b", 7, 1, 100)]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("granted twice"));
    }

    #[test]
    fn share_sections_do_not_count_as_lock_sections() {
        // Overlapping permits are fine for the lock rules, and a lock's
        // sections are not counted as permits.
        let r = check(&[
            share("permit", "a", 1, 0, 100),
            share("permit", "b", 2, 50, 150),
            section("x", 1, 0, 100, true),
        ]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.lock_sections, r.permit_sections), (1, 2));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(History::parse("section w=a").is_err());
        assert!(History::parse("hello").is_err());
    }
}
