use super::*;

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
fn one_fence_held_by_two_workers_fails() {
    // Overlapping: an overlap, whatever the order of their starts.
    let r = check(&[
        section("a", 7, 0, 100, true),
        section("b", 7, 50, 150, true),
    ]);
    assert!(fails(&r, "overlap"), "{:?}", r.violations);
    assert!(
        fails(&r, "fence 7 on `k` held by two workers"),
        "{:?}",
        r.violations
    );
    // One after the other: still one fence granted twice.
    let r = check(&[
        section("a", 7, 0, 40, true),
        section("b", 7, 100, 150, true),
    ]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(fails(&r, "fence 7 on `k` held by two workers"));
    // The same worker's lines of one holding: fine.
    let r = check(&[
        section("a", 7, 0, 40, true),
        section("a", 8, 100, 150, true),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn a_python_section_ends_at_its_failing_check() {
    // A Python holder (fence 0) whose lease runs to 500 in its own clock
    // checked valid at 100 and found the lock gone at 200: b took a live
    // lock at 150.
    let py = |end: i64, deadline: i64, valid: bool| {
        format!(
            "section kind=lock w=py key=k fence=0 start=0 end={end} deadline={deadline} valid={}",
            valid as u8
        )
    };
    let r = check(&[
        py(100, 500, true),
        py(200, 500, false),
        section("b", 9, 150, 300, true),
    ]);
    assert!(fails(&r, "overlap"), "{:?}", r.violations);
    // Its lease had run out (deadline 140) before b took it: fine.
    let r = check(&[
        py(100, 140, true),
        py(200, 140, false),
        section("b", 9, 150, 300, true),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}
