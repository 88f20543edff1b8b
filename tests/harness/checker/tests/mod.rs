//! The checker's own tests: for every rule, a hand-made history that
//! breaks it (and the rule fails it), and near misses that pass.

mod audit;
mod checks;
mod fairness;
mod lock;
mod shares;
mod writes;

use super::{History, Report};

pub fn section(w: &str, fence: i64, start: i64, end: i64, valid: bool) -> String {
    // A section that ended valid had its deadline after its end; one
    // that ended invalid, before.
    let deadline = if valid { end + 50 } else { end - 1 };
    section_until(w, fence, start, end, deadline, valid)
}

pub fn section_until(
    w: &str,
    fence: i64,
    start: i64,
    end: i64,
    deadline: i64,
    valid: bool,
) -> String {
    format!("section kind=lock w={w} key=k fence={fence} start={start} end={end} deadline={deadline} valid={}", valid as u8)
}

pub fn write(w: &str, fence: i64, checked: i64, accepted: bool) -> String {
    format!("write w={w} key=k fence={fence} checked={checked} sent={} done={} deadline={} valid=1 accepted={} probe=0 result=x server={}", checked + 1, checked + 5, checked + 100, accepted as u8, if accepted { checked } else { -1 })
}

/// A write whose server time is `server` ms.
pub fn write_at(w: &str, fence: i64, server: i64) -> String {
    format!("write w={w} key=k fence={fence} checked=10 sent=11 done=15 deadline=100 valid=1 accepted=1 probe=0 result=applied server={server}")
}

pub fn grant(w: &str, fence: i64, granted: i64) -> String {
    format!("grant w={w} key=k fence={fence} granted={granted}")
}

/// A share section of a many-holder primitive, valid until its end.
pub fn share(kind: &str, w: &str, fence: i64, start: i64, end: i64) -> String {
    share_until(kind, w, fence, start, end, end + 50)
}

pub fn share_until(kind: &str, w: &str, fence: i64, start: i64, end: i64, deadline: i64) -> String {
    let permits = if kind == "permit" { " permits=2" } else { "" };
    // Asked 5 before it started.
    format!("section kind={kind} w={w} key=s fence={fence} start={start} end={end} deadline={deadline} valid=1{permits} expires=-1 asked={}", start - 5)
}

/// A validity check.
pub fn check_line(kind: &str, w: &str, fence: i64, at: i64, deadline: i64, valid: bool) -> String {
    format!(
        "check w={w} key=k kind={kind} fence={fence} at={at} deadline={deadline} valid={}",
        valid as u8
    )
}

/// The history checked as a run's would be: audited (with no entries
/// unless the lines give some).
pub fn check(lines: &[String]) -> Report {
    let mut lines = lines.to_vec();
    lines.push("audit polls=1".to_owned());
    check_raw(&lines)
}

/// The history checked as given.
pub fn check_raw(lines: &[String]) -> Report {
    History::parse(&lines.join("\n")).unwrap().check()
}

/// Whether some violation starts with `what`.
pub fn fails(r: &Report, what: &str) -> bool {
    r.violations.iter().any(|v| v.starts_with(what))
}

#[test]
fn garbage_is_an_error() {
    assert!(History::parse("section w=a").is_err());
    assert!(History::parse("hello").is_err());
}
